//! Server functions of the admin UI. Each one is a thin adapter: check the session, parse
//! the input, call a backend service, map its error. No business rule lives here.

mod activity;
mod catalog;
mod customers;
mod desk;
mod orders;
mod outbox;
mod payments;
mod settings;

pub use activity::*;
pub use catalog::*;
pub use customers::*;
pub use desk::*;
pub use orders::*;
pub use outbox::*;
pub use payments::*;
pub use settings::*;

use crate::error::AppError;
use domain::wire::{AccessOverview, DashboardFigures, SessionUser};
use leptos::prelude::*;

/// The signed-in admin.
#[server(prefix = "/rpc", endpoint = "session")]
pub async fn current_user() -> Result<SessionUser, AppError> {
    use crate::server::{require_user, respond};
    respond(require_user().await)
}

/// Signs in and sets the session cookie.
#[server(prefix = "/rpc", endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<SessionUser, AppError> {
    use crate::server::{client_ip, respond, set_session_cookie, state};
    respond(
        async move {
            let state = state()?;
            let session = state
                .access
                .login(&email, password, client_ip(), backend::clock::now())
                .await?;
            set_session_cookie(
                &session.token,
                state.access.session_lifetime().as_secs(),
                state.secure_cookies,
            );
            Ok(session.user)
        }
        .await,
    )
}

/// Ends the current session.
#[server(prefix = "/rpc", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::server::{clear_session_cookie, respond, session_cookie, state};
    respond(
        async move {
            let state = state()?;
            if let Some(cookie) = session_cookie() {
                state.access.logout(cookie).await?;
            }
            clear_session_cookie(state.secure_cookies);
            Ok(())
        }
        .await,
    )
}

/// Whether a first-run setup link is still valid.
#[server(prefix = "/rpc", endpoint = "setup-status")]
pub async fn setup_status(token: String) -> Result<bool, AppError> {
    use crate::server::{respond, state};
    respond(async move { Ok(state()?.access.setup_token_is_valid(token).await?) }.await)
}

/// Creates the first admin from the setup link and signs them in.
#[server(prefix = "/rpc", endpoint = "setup")]
pub async fn create_first_admin(
    token: String,
    email: String,
    name: String,
    password: String,
    confirm: String,
) -> Result<SessionUser, AppError> {
    use crate::server::{client_ip, respond, set_session_cookie, state};
    use domain::{Email, NewPassword};
    let invalid = |field: &str, message: String| AppError::Invalid {
        field: field.into(),
        message,
    };
    respond(
        async move {
            let email = Email::parse(&email).map_err(|e| invalid("email", e.to_string()))?;
            let password =
                NewPassword::parse(&password).map_err(|e| invalid("password", e.to_string()))?;
            if confirm != password.expose() {
                return Err(invalid(
                    "confirm",
                    "the two passwords are not the same".into(),
                ));
            }
            let state = state()?;
            let session = state
                .access
                .create_first_admin(
                    token,
                    email,
                    name,
                    password,
                    client_ip(),
                    backend::clock::now(),
                )
                .await?;
            set_session_cookie(
                &session.token,
                state.access.session_lifetime().as_secs(),
                state.secure_cookies,
            );
            Ok(session.user)
        }
        .await,
    )
}

/// The dashboard's figures.
#[server(prefix = "/rpc", endpoint = "dashboard")]
pub async fn load_dashboard() -> Result<DashboardFigures, AppError> {
    crate::server::as_user(|state| async move {
        Ok(state.dashboard.figures(backend::clock::now()).await?)
    })
    .await
}

/// Staff accounts and API tokens.
#[server(prefix = "/rpc", endpoint = "access")]
pub async fn load_access() -> Result<AccessOverview, AppError> {
    crate::server::as_user(|state| async move { Ok(state.access.access_overview().await?) }).await
}

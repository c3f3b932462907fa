//! Server functions of the Settings screen: the store's settings, staff accounts, the
//! admin's own password and API tokens.

use crate::error::AppError;
use domain::settings::StoreSettings;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

/// A token just created: the secret is in this answer only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub id: domain::ApiTokenId,
    pub name: String,
    pub secret: String,
}

/// The store's settings in force.
#[server(prefix = "/rpc", endpoint = "settings")]
pub async fn load_settings() -> Result<StoreSettings, AppError> {
    crate::server::as_user(|state| async move { Ok(state.settings.current()) }).await
}

/// Saves the store's settings; a refused field changes nothing.
#[server(prefix = "/rpc", endpoint = "settings-save", input = Json)]
pub async fn save_settings(input: StoreSettings) -> Result<StoreSettings, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .settings
            .update(input, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Adds a staff account with a first password the new admin changes after signing in.
#[server(prefix = "/rpc", endpoint = "admin-create")]
pub async fn create_admin_account(
    email: String,
    name: String,
    password: String,
) -> Result<domain::AdminId, AppError> {
    crate::server::as_admin(|state, actor| async move {
        let email = domain::Email::parse(&email).map_err(|e| AppError::Invalid {
            field: "email".into(),
            message: e.to_string(),
        })?;
        let password = domain::NewPassword::parse(&password).map_err(|e| AppError::Invalid {
            field: "password".into(),
            message: e.to_string(),
        })?;
        Ok(state
            .access
            .create_admin(email, name, password, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Removes another admin's account and signs them out.
#[server(prefix = "/rpc", endpoint = "admin-remove")]
pub async fn remove_admin_account(admin_id: u64) -> Result<(), AppError> {
    use crate::server::{require_user, respond, state};
    respond(
        async move {
            let user = require_user().await?;
            let actor = backend::services::Actor::Admin {
                id: user.admin_id,
                email: user.email.to_string(),
            };
            Ok(state()?
                .access
                .remove_admin(
                    domain::AdminId::new(admin_id),
                    user.admin_id,
                    actor,
                    backend::clock::now(),
                )
                .await?)
        }
        .await,
    )
}

/// Changes the signed-in admin's password; their other sessions end, this one continues.
#[server(prefix = "/rpc", endpoint = "password-change")]
pub async fn change_own_password(
    current: String,
    password: String,
    confirm: String,
) -> Result<(), AppError> {
    use crate::server::{require_user, respond, set_session_cookie, state};
    respond(
        async move {
            let user = require_user().await?;
            let password =
                domain::NewPassword::parse(&password).map_err(|e| AppError::Invalid {
                    field: "password".into(),
                    message: e.to_string(),
                })?;
            if confirm != password.expose() {
                return Err(AppError::Invalid {
                    field: "confirm".into(),
                    message: "the two passwords are not the same".into(),
                });
            }
            let state = state()?;
            let session = state
                .access
                .change_own_password(user.admin_id, current, password, backend::clock::now())
                .await?;
            set_session_cookie(
                &session.token,
                state.access.session_lifetime().as_secs(),
                state.secure_cookies,
            );
            Ok(())
        }
        .await,
    )
}

/// Creates an API token; its secret is shown once.
#[server(prefix = "/rpc", endpoint = "token-create")]
pub async fn create_token(name: String) -> Result<CreatedToken, AppError> {
    crate::server::as_admin(|state, actor| async move {
        let (id, secret) = state
            .access
            .create_api_token(&name, actor, backend::clock::now())
            .await?;
        Ok(CreatedToken {
            id,
            name: name.trim().to_owned(),
            secret,
        })
    })
    .await
}

/// Revokes an API token at once.
#[server(prefix = "/rpc", endpoint = "token-revoke")]
pub async fn revoke_token(token_id: u64) -> Result<(), AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .access
            .revoke_api_token(
                domain::ApiTokenId::new(token_id),
                actor,
                backend::clock::now(),
            )
            .await?)
    })
    .await
}

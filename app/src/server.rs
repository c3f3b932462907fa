//! Server-side glue for the UI (feature `ssr`): the state server functions reach through
//! Leptos context, the session cookie, the client's IP and the page security headers.

use crate::error::AppError;
use backend::AccessService;
use domain::wire::SessionUser;
use http::header::{CONTENT_SECURITY_POLICY, COOKIE, SET_COOKIE};
use http::{HeaderValue, request::Parts};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use std::net::{IpAddr, Ipv4Addr};

/// What the UI needs from the running server; provided as Leptos context by the server.
#[derive(Clone, Debug)]
pub struct UiState {
    pub access: AccessService,
    pub downloads: backend::services::DownloadService,
    pub catalog: backend::services::CatalogService,
    pub orders: backend::services::OrderService,
    pub desk: backend::services::DeskService,
    pub announcements: backend::services::AnnouncementService,
    pub activity: backend::services::ActivityService,
    pub settings: backend::services::SettingsService,
    pub outbox: backend::services::OutboxService,
    pub self_service: backend::services::SelfService,
    pub payments: backend::services::PaymentService,
    pub webhooks: backend::services::WebhookService,
    /// For the audit log, read directly (it has no service of its own).
    pub store: backend::Store,
    pub dashboard: backend::services::DashboardService,
    pub customers: backend::services::CustomerService,
    /// Mark cookies `Secure` (the public URL is https).
    pub secure_cookies: bool,
}

/// The client's IP as the server resolved it (trusted proxies applied); a request extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Name of the session cookie on plain http (a local trial).
pub const SESSION_COOKIE: &str = "dg_session";
/// Name of the session cookie on https: the `__Host-` prefix makes browsers refuse it
/// unless it is `Secure`, for `Path=/` and without a `Domain`, so no subdomain or plain-http
/// page can set or shadow it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-dg_session";

/// The session cookie's name on this server.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The session cookie's value in request headers, if any.
pub fn session_cookie_in(headers: &http::HeaderMap, secure: bool) -> Option<String> {
    let wanted = session_cookie_name(secure);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.to_owned())
}

/// The server state, or an error if the server forgot to provide it.
pub fn state() -> Result<UiState, AppError> {
    use_context::<UiState>().ok_or_else(|| AppError::Failed("server state is missing".into()))
}

fn request_parts() -> Option<Parts> {
    use_context::<Parts>()
}

/// Passes a server function's result through, setting the HTTP status of an error so that
/// API clients and logs see 400/401/403/429 rather than a blanket 500.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let (Err(error), Some(options)) = (&result, use_context::<ResponseOptions>())
        && let Ok(status) = http::StatusCode::from_u16(error.status())
    {
        options.set_status(status);
    }
    result
}

/// The value of the session cookie of the current request.
pub fn session_cookie() -> Option<String> {
    let secure = state().ok()?.secure_cookies;
    session_cookie_in(&request_parts()?.headers, secure)
}

/// The signed-in admin, or `SignedOut`. Every admin server function starts with this: the
/// UI hiding a button is never the check.
pub async fn require_user() -> Result<SessionUser, AppError> {
    let state = state()?;
    let cookie = session_cookie().ok_or(AppError::SignedOut)?;
    state
        .access
        .session_user(cookie, backend::clock::now())
        .await?
        .ok_or(AppError::SignedOut)
}

/// The signed-in admin as the audit log names them: for every server function that
/// changes something.
pub async fn require_admin() -> Result<backend::services::Actor, AppError> {
    let user = require_user().await?;
    Ok(backend::services::Actor::Admin {
        id: user.admin_id,
        email: user.email.to_string(),
    })
}

/// The body of a server function that reads: runs it with the server state once the
/// session is checked, and gives an error its HTTP status (see [`respond`]).
pub async fn as_user<T, Body, Done>(body: Body) -> Result<T, AppError>
where
    Body: FnOnce(UiState) -> Done,
    Done: std::future::Future<Output = Result<T, AppError>>,
{
    let result = async {
        require_user().await?;
        body(state()?).await
    }
    .await;
    respond(result)
}

/// The body of a server function that changes something: as [`as_user`], and it gets
/// the signed-in admin as the audit log names them.
pub async fn as_admin<T, Body, Done>(body: Body) -> Result<T, AppError>
where
    Body: FnOnce(UiState, backend::services::Actor) -> Done,
    Done: std::future::Future<Output = Result<T, AppError>>,
{
    let result = async {
        let actor = require_admin().await?;
        body(state()?, actor).await
    }
    .await;
    respond(result)
}

/// The client's IP for throttling and logs.
pub fn client_ip() -> IpAddr {
    request_parts()
        .and_then(|p| p.extensions.get::<ClientIp>().copied())
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0)
}

/// Sets the session cookie: HttpOnly, SameSite=Strict, Secure on https.
pub fn set_session_cookie(token: &str, max_age_secs: u64, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let name = session_cookie_name(!secure.is_empty());
    let cookie = format!(
        "{name}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    );
    append_cookie(&cookie);
}

/// Deletes the session cookie in the browser.
pub fn clear_session_cookie(secure: bool) {
    let name = session_cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    append_cookie(&format!(
        "{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
    ));
}

fn append_cookie(cookie: &str) {
    if let (Some(options), Ok(value)) = (
        use_context::<ResponseOptions>(),
        HeaderValue::from_str(cookie),
    ) {
        options.append_header(SET_COOKIE, value);
    }
}

/// The Content-Security-Policy of rendered pages: scripts only from us or with this
/// response's nonce (the hydration script), WASM allowed to compile, nothing framed.
pub fn set_page_security_headers() {
    let (Some(nonce), Some(options)) =
        (leptos::nonce::use_nonce(), use_context::<ResponseOptions>())
    else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        options.insert_header(CONTENT_SECURITY_POLICY, value);
    }
}

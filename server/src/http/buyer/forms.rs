//! The buyer pages' forms: `POST /resend` (new links, or a sign-in link to the library)
//! and the library's sign-in, open and sign-out.
//!
//! Post/redirect/get: every answer is a 303, so the pages work without JavaScript and a
//! reload does not send a form twice. Whether or not the address has purchases, `/resend`
//! answers with the same redirect after the same minimum time, so neither the words nor
//! the timing reveal which addresses are buyers.

use super::{HttpState, browser_language};
use app::server::ClientIp;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use backend::services::{LinkRefusal, LinkRequest};
use domain::{Email, GrantId, Timestamp};
use http::{HeaderMap, HeaderValue, header};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Every answer waits until at least this long after the request arrived; the work for a
/// known address (a write transaction, a few mails queued) takes a few milliseconds.
const ANSWER_AFTER: Duration = Duration::from_millis(400);

/// The library session's cookie: only sent to `/library`, never to scripts.
const SESSION_COOKIE: &str = "dropgate_library";

/// The form's fields; missing fields count as empty so a bad post gets the page's message.
#[derive(Debug, serde::Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    email: String,
    /// Optional: renew only this order's links.
    #[serde(default)]
    order_id: String,
    /// The honeypot (hidden from people by the page's CSS).
    #[serde(default)]
    website: String,
    /// The signed time the page was shown (see `backend::auth::form_stamp`).
    #[serde(default)]
    shown: String,
    /// `library` for a sign-in link to the library; anything else: new links.
    #[serde(default)]
    want: String,
}

/// `POST /resend`.
pub async fn request_links(
    State(state): State<HttpState>,
    client_ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    Form(form): Form<ResendForm>,
) -> Response {
    let deadline = tokio::time::Instant::now() + ANSWER_AFTER;
    let client = client_ip.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0);
    let library = form.want == "library";
    let request = LinkRequest {
        email: form.email,
        order_id: if library {
            String::new()
        } else {
            form.order_id
        },
        honeypot: form.website,
        form_stamp: form.shown,
        client,
        language: browser_language(&headers),
    };
    let now = backend::clock::now();
    let outcome = if library {
        state.self_service.request_library(request, now).await
    } else {
        state.self_service.request(request, now).await
    };
    tokio::time::sleep_until(deadline).await;
    let query = match (&outcome, library) {
        (Ok(()), true) => "library=sent",
        _ => outcome_query(&outcome),
    };
    Redirect::to(&format!("/resend?{query}")).into_response()
}

/// The page's query for an outcome; the page turns it into words.
fn outcome_query(outcome: &Result<(), LinkRefusal>) -> &'static str {
    match outcome {
        Ok(()) => "sent=1",
        Err(LinkRefusal::Email(_)) => "error=email",
        Err(LinkRefusal::OrderId) => "error=order",
        Err(LinkRefusal::TooQuick) => "error=quick",
        Err(LinkRefusal::Stale) => "error=stale",
        Err(LinkRefusal::TooMany { .. }) => "error=busy",
        Err(LinkRefusal::Failed(e)) => {
            tracing::error!(error = %e, "self-service request failed");
            "error=failed"
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
}

/// `POST /library/sign-in`: uses the mailed link up and opens a session.
pub async fn sign_in(State(state): State<HttpState>, Form(form): Form<SignInForm>) -> Response {
    let session = state
        .self_service
        .library()
        .sign_in(&form.token, backend::clock::now())
        .await;
    match session {
        Ok(Some(token)) => {
            // No Max-Age: the cookie ends with the browser; the server ends it after
            // `SESSION_LIFETIME` at most.
            let secure = if state.https { "; Secure" } else { "" };
            let cookie =
                format!("{SESSION_COOKIE}={token}; Path=/library; HttpOnly; SameSite=Lax{secure}");
            let mut response = Redirect::to("/library").into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Ok(None) => Redirect::to("/resend?library=invalid").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "library sign-in failed");
            Redirect::to("/resend?error=failed").into_response()
        }
    }
}

/// The session token the browser sent, if any.
fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The address of the request's library session, while it lasts.
pub async fn session_email(
    state: &HttpState,
    headers: &HeaderMap,
    now: Timestamp,
) -> Option<Email> {
    let token = session_token(headers)?;
    state
        .self_service
        .library()
        .session(&token, now)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "library session could not be read");
            None
        })
}

#[derive(Debug, serde::Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    grant: String,
}

/// `POST /library/open`: a fresh link to one purchase, and straight to its download page.
pub async fn open_purchase(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Form(form): Form<OpenForm>,
) -> Response {
    let now = backend::clock::now();
    let Some(email) = session_email(&state, &headers, now).await else {
        return Redirect::to("/resend?library=ended").into_response();
    };
    let Some(grant) = form.grant.trim().parse::<u64>().ok().map(GrantId::new) else {
        return Redirect::to("/library").into_response();
    };
    match state.self_service.library().open(&email, grant, now).await {
        Ok(Some(password)) => Redirect::to(&format!("/d/{}", password.display())).into_response(),
        Ok(None) => Redirect::to("/library").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "opening a library purchase failed");
            Redirect::to("/library").into_response()
        }
    }
}

/// `POST /library/sign-out`: ends the session here and in the browser.
pub async fn sign_out(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers)
        && let Err(e) = state.self_service.library().sign_out(&token).await
    {
        tracing::error!(error = %e, "library sign-out failed");
    }
    let mut response = Redirect::to("/resend").into_response();
    let cookie = format!("{SESSION_COOKIE}=; Path=/library; HttpOnly; SameSite=Lax; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

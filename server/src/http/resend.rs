//! `POST /resend`: the target of the self-service form on the buyer's `/resend` page.
//!
//! Post/redirect/get: the answer is a 303 back to the page with the outcome in the query, so
//! the page works without JavaScript and a reload does not send the form twice. Whether or
//! not the address has purchases, the answer is the same redirect after the same minimum
//! time, so neither the words nor the timing reveal which addresses are buyers.

use super::HttpState;
use app::server::ClientIp;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use backend::services::{LinkRefusal, LinkRequest};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Every answer waits until at least this long after the request arrived; the work for a
/// known address (a write transaction, a few mails queued) takes a few milliseconds.
const ANSWER_AFTER: Duration = Duration::from_millis(400);

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
}

pub async fn request_links(
    State(state): State<HttpState>,
    client_ip: Option<axum::Extension<ClientIp>>,
    Form(form): Form<ResendForm>,
) -> Response {
    let deadline = tokio::time::Instant::now() + ANSWER_AFTER;
    let client = client_ip.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0);
    let outcome = state
        .self_service
        .request(
            LinkRequest {
                email: form.email,
                order_id: form.order_id,
                honeypot: form.website,
                form_stamp: form.shown,
                client,
            },
            backend::clock::now(),
        )
        .await;
    tokio::time::sleep_until(deadline).await;
    Redirect::to(&format!("/resend?{}", outcome_query(&outcome))).into_response()
}

/// The page's query for an outcome; the page turns it into words (see `app::buyer`).
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

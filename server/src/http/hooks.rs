//! `POST /hooks/{provider}`: payment notifications in. The handler hands the raw body and
//! headers to the payment service (which verifies against those exact bytes) and answers
//! with the status the provider's retry logic understands: 2xx stop, 5xx try again later,
//! 4xx not acceptable.

use super::HttpState;
use super::api::ApiError;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use backend::services::Incoming;
use bytes::Bytes;
use domain::payment::Provider;
use http::{HeaderMap, StatusCode, header};

/// One route per provider, at the paths of DESIGN.md §3.
pub fn routes() -> Router<HttpState> {
    let mut router = Router::new();
    for provider in Provider::ALL {
        router = router.route(
            provider.hook_path(),
            post(
                move |state: State<HttpState>, headers: HeaderMap, body: Bytes| {
                    receive(provider, state, headers, body)
                },
            ),
        );
    }
    router
}

async fn receive(
    provider: Provider,
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let incoming = Incoming {
        provider,
        // HeaderMap names are lower case already.
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    match state
        .payments
        .receive(incoming, backend::clock::now())
        .await
    {
        Ok(receipt) => {
            let status = StatusCode::from_u16(receipt.status).unwrap_or(StatusCode::OK);
            // PayPal expects an empty 200 (PITFALLS.md); everyone else gets the receipt,
            // which their dashboards show beside the delivery.
            if provider == Provider::Paypal && status.is_success() {
                return status.into_response();
            }
            (
                status,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(receipt.receipt),
            )
                .into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

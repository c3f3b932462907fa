//! The buyer's pages, rendered on the server as plain HTML in the buyer's language:
//! `/d/{password}` (the download page), `/resend` (new links, or a sign-in link to the
//! library) and `/library` (every purchase of one address). They load no WASM and work
//! without JavaScript; forms post back here and answer with redirects (post/redirect/get).

pub mod forms;
mod layout;
mod pages;

use super::HttpState;
use axum::Router;
use axum::routing::{get, post};
use domain::Language;
use http::{HeaderMap, header};
pub use layout::PageContext;

/// The routes of the buyer's pages and forms.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/d/{password}", get(pages::download_page))
        .route(
            "/resend",
            get(pages::resend_page).post(forms::request_links),
        )
        .route("/library", get(pages::library_page))
        .route(
            "/library/sign-in",
            get(pages::sign_in_page).post(forms::sign_in),
        )
        .route("/library/open", post(forms::open_purchase))
        .route("/library/sign-out", post(forms::sign_out))
}

/// The browser's language among the shipped ones, if it names one.
pub fn browser_language(headers: &HeaderMap) -> Option<Language> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Language::negotiate)
}

/// The context of a page: the order's language if it has one, else the browser's, else
/// the store's default.
pub fn context(
    state: &HttpState,
    headers: &HeaderMap,
    order_language: Option<Language>,
) -> PageContext {
    let settings = state.settings.current();
    PageContext {
        language: order_language
            .or_else(|| browser_language(headers))
            .unwrap_or(settings.default_language),
        store_name: settings.store_name,
        zone: state.settings.zone(),
        now: backend::clock::now(),
    }
}

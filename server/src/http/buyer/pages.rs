//! The buyer pages' `GET` handlers: each loads its facts from a service and renders them.

use super::layout::{PageContext, downloads_left, page};
use super::{HttpState, context};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use backend::services::{BuyerPage, LibraryPurchase};
use domain::{Denied, OrderStatus};
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};

/// `GET /d/{password}`: the product, each file with its size, SHA-256 and downloads left,
/// and until when — or, in plain words, why not.
pub async fn download_page(
    State(state): State<HttpState>,
    Path(password): Path<String>,
    headers: HeaderMap,
) -> Response {
    let found = state
        .downloads
        .buyer_page(&password, backend::clock::now())
        .await;
    let (found, language) = match found {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "the download page could not be loaded");
            return error_page(&context(&state, &headers, None));
        }
    };
    let ctx = context(&state, &headers, language);
    match found {
        BuyerPage::Ready(ready) => {
            let link_base = format!("/d/{password}");
            let until = if let Some(at) = ready.valid_until {
                html! { p { (ctx.t_markup("download-until", "date", &ctx.when(at))) } }
            } else {
                html! { p { (ctx.t("download-no-expiry")) } }
            };
            let body = html! {
                section.card {
                    h1 { (ready.product_name) }
                    (until)
                    ul.files {
                        @for f in &ready.files {
                            li.file {
                                a.download href={ (link_base) "/" (f.file_id) } download=(f.name) {
                                    (ctx.t_with("download-file", &[("name", f.name.as_str().into())]))
                                }
                                span.muted {
                                    " " (app::format::bytes(f.size)) " · "
                                    @match f.downloads_left {
                                        Some(left) => (ctx.t_with("downloads-left", &[
                                            ("left", downloads_left(left).into()),
                                            ("max", ready.max_downloads.into()),
                                        ])),
                                        None => (ctx.t("downloads-unlimited")),
                                    }
                                }
                                div.checksum { span.muted { "SHA-256 " } code { (f.sha256) } }
                                @if let Some(at) = f.updated_at {
                                    p.file-updated {
                                        strong { (ctx.t_markup("file-updated", "date", &ctx.date(at))) }
                                        @if !f.changelog.is_empty() { br; span { (f.changelog) } }
                                    }
                                }
                            }
                        }
                    }
                    p.muted { (ctx.t("download-resume")) }
                    (ctx.zone_note())
                }
                p.muted.small {
                    (ctx.t("lost-link")) " " a href="/resend" { (ctx.t("get-new-links")) }
                    " · " a href="/resend#library" { (ctx.t("library-ask-title")) }
                }
            };
            page(&ctx, StatusCode::OK, &ready.product_name, &body)
        }
        BuyerPage::Refused {
            product_name,
            reason,
            ..
        } => {
            let body = html! {
                section.card {
                    h1 { (product_name) }
                    p.notice.error role="alert" { (refusal(&ctx, &reason)) }
                }
                p.muted.small { a href="/resend" { (ctx.t("get-new-links")) } }
            };
            page(&ctx, StatusCode::OK, &product_name, &body)
        }
        BuyerPage::Unknown => {
            let title = ctx.t("link-invalid-title");
            let body = html! {
                section.card {
                    h1 { (title) }
                    p { (ctx.t("link-invalid-body")) }
                    p { a href="/resend" { (ctx.t("get-new-links")) } }
                }
            };
            page(&ctx, StatusCode::NOT_FOUND, &title, &body)
        }
    }
}

/// "Something went wrong on our side", as a 503 page (the store could not be read).
fn error_page(ctx: &PageContext) -> Response {
    let body = html! { section.card { p.notice.error role="alert" { (ctx.t("page-error")) } } };
    page(
        ctx,
        StatusCode::SERVICE_UNAVAILABLE,
        &ctx.t("page-error"),
        &body,
    )
}

/// Why a purchase cannot be downloaded, in the page's language.
fn refusal(ctx: &PageContext, reason: &Denied) -> Markup {
    let key = match reason {
        Denied::OrderNotConfirmed {
            status: OrderStatus::OnHold,
        } => "refused-on-hold",
        Denied::OrderNotConfirmed {
            status: OrderStatus::Cancelled,
        } => "refused-cancelled",
        Denied::OrderNotConfirmed { .. } => "refused-unconfirmed",
        Denied::Refunded => "refused-refunded",
        Denied::Revoked => "refused-revoked",
        Denied::Blocked | Denied::CountryChanged { .. } => "refused-blocked",
        Denied::Expired { at } => return ctx.t_markup("refused-expired", "date", &ctx.date(*at)),
        Denied::LimitReached { max_downloads } => {
            return html! { (ctx.t_with("refused-limit", &[("max", (*max_downloads).into())])) };
        }
    };
    html! { (ctx.t(key)) }
}

/// What `POST /resend` and the library's forms put into the query of `/resend`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ResendQuery {
    #[serde(default)]
    sent: Option<String>,
    #[serde(default)]
    error: Option<String>,
    /// `sent`, `invalid` (a used or expired sign-in link) or `ended` (the session).
    #[serde(default)]
    library: Option<String>,
}

/// `GET /resend`: new links for every purchase, or a sign-in link to the library.
pub async fn resend_page(
    State(state): State<HttpState>,
    Query(query): Query<ResendQuery>,
    headers: HeaderMap,
) -> Response {
    let ctx = context(&state, &headers, None);
    let stamp = state.self_service.form_stamp(ctx.now);
    let outcome: Option<(&str, String)> =
        match (&query.sent, &query.error, query.library.as_deref()) {
            (Some(_), _, _) => Some(("notice ok", ctx.t("resend-sent"))),
            (_, Some(error), _) => Some((
                "notice error",
                ctx.t(match error.as_str() {
                    "email" => "resend-error-email",
                    "order" => "resend-error-order",
                    "quick" => "resend-error-quick",
                    "stale" => "resend-error-stale",
                    "busy" => "resend-error-busy",
                    _ => "page-error",
                }),
            )),
            (_, _, Some("sent")) => Some(("notice ok", ctx.t("library-sent"))),
            (_, _, Some("invalid")) => Some(("notice error", ctx.t("library-signin-invalid"))),
            (_, _, Some("ended")) => Some(("notice error", ctx.t("library-ended"))),
            _ => None,
        };
    let title = ctx.t("resend-title");
    let body = html! {
        section.card {
            h1 { (title) }
            p { (ctx.t("resend-intro")) }
            @if let Some((class, text)) = &outcome {
                p class=(class) role="status" { (text) }
            }
            form.resend-form method="post" action="/resend" {
                label for="resend-email" { (ctx.t("email-label")) }
                input #resend-email name="email" type="email" required autocomplete="email" inputmode="email";
                label for="resend-order" { (ctx.t("order-label")) " " span.optional { (ctx.t("optional")) } }
                input #resend-order name="order_id" type="text" inputmode="numeric" pattern="[0-9]{7}" maxlength="7" autocomplete="off" aria-describedby="resend-order-hint";
                p #resend-order-hint .hint { (ctx.t("order-hint")) }
                div.honeypot aria-hidden="true" {
                    label for="resend-website" { (ctx.t("honeypot-label")) }
                    input #resend-website name="website" type="text" tabindex="-1" autocomplete="off";
                }
                input type="hidden" name="shown" value=(stamp);
                div.form-actions {
                    button type="submit" name="want" value="links" { (ctx.t("resend-submit")) }
                }
                h2 #library { (ctx.t("library-ask-title")) }
                p { (ctx.t("library-ask-intro")) }
                div.form-actions {
                    button type="submit" name="want" value="library" { (ctx.t("library-ask-submit")) }
                }
            }
        }
    };
    page(&ctx, StatusCode::OK, &title, &body)
}

/// The sign-in link's query.
#[derive(Debug, serde::Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    token: String,
}

/// `GET /library/sign-in?token=…`: a button that uses the link. Following the link alone
/// spends nothing, so a mail scanner that opens links does not use the buyer's up.
pub async fn sign_in_page(
    State(state): State<HttpState>,
    Query(query): Query<SignInQuery>,
    headers: HeaderMap,
) -> Response {
    let ctx = context(&state, &headers, None);
    let valid = state
        .self_service
        .library()
        .sign_in_is_valid(&query.token, ctx.now)
        .await
        .unwrap_or(false);
    if !valid {
        return Redirect::to("/resend?library=invalid").into_response();
    }
    let title = ctx.t("library-signin-title");
    let body = html! {
        section.card {
            h1 { (title) }
            p { (ctx.t("library-signin-body")) }
            form method="post" action="/library/sign-in" {
                input type="hidden" name="token" value=(query.token);
                button type="submit" { (ctx.t("library-signin-submit")) }
            }
        }
    };
    page(&ctx, StatusCode::OK, &title, &body)
}

/// `GET /library`: every purchase of the signed-in address.
pub async fn library_page(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let ctx = context(&state, &headers, None);
    let library = state.self_service.library();
    let Some(email) = super::forms::session_email(&state, &headers, ctx.now).await else {
        return Redirect::to("/resend?library=ended").into_response();
    };
    let purchases = match library.purchases(&email, ctx.now).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "the library could not be loaded");
            return error_page(&ctx);
        }
    };
    let title = ctx.t("library-title");
    let body = html! {
        section.card {
            h1 { (title) }
            p.muted { (ctx.t_with("library-signed-in", &[("email", email.as_str().into())])) }
            @if purchases.is_empty() {
                p { (ctx.t("library-none")) }
            } @else {
                p.muted.small { (ctx.t("library-open-note")) }
                ul.library {
                    @for p in &purchases { li.purchase { (purchase(&ctx, p)) } }
                }
            }
            (ctx.zone_note())
            form method="post" action="/library/sign-out" {
                button type="submit" { (ctx.t("library-sign-out")) }
            }
        }
    };
    page(&ctx, StatusCode::OK, &title, &body)
}

/// One purchase in the library: what, when, its files and terms, and the way to it.
fn purchase(ctx: &PageContext, p: &LibraryPurchase) -> Markup {
    let heading = ctx.t_with(
        "library-order",
        &[
            ("order", p.order_id.to_string().into()),
            ("date", "\u{E000}".into()),
        ],
    );
    let (before, after) = heading.split_once('\u{E000}').unwrap_or((&heading, ""));
    html! {
        h2 { (p.product_name) }
        p.muted.small { (before) (ctx.date(p.ordered_at)) (after) }
        ul.files {
            @for f in &p.files {
                li {
                    (f.name) span.muted {
                        " " (app::format::bytes(f.size)) " · "
                        @match f.downloads_left {
                            Some(left) => (ctx.t_with("downloads-left", &[
                                ("left", downloads_left(left).into()),
                                ("max", p.max_downloads.into()),
                            ])),
                            None => (ctx.t("downloads-unlimited")),
                        }
                    }
                }
            }
        }
        @match &p.refusal {
            Some(reason) => p.notice.error { (refusal(ctx, reason)) },
            None => {
                @match p.valid_until {
                    Some(at) => p { (ctx.t_markup("download-until", "date", &ctx.when(at))) },
                    None => p { (ctx.t("download-no-expiry")) },
                }
                form method="post" action="/library/open" {
                    input type="hidden" name="grant" value=(p.grant_id);
                    button type="submit" aria-label={ (ctx.t("library-open")) ": " (p.product_name) } {
                        (ctx.t("library-open"))
                    }
                }
            }
        }
    }
}

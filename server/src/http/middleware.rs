//! Cross-cutting request handling: metrics, client IP, security headers, the same-origin
//! rule for server functions and the session gate of admin pages.

use super::HttpState;
use super::serve::peer_of;
use app::server::{ClientIp, session_cookie_in};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

/// Every request passes through here once: the client IP is resolved, cross-site calls to
/// server functions and signed-out visits to admin pages are answered early, the security
/// headers are added, and the request is counted under its route pattern.
///
/// One middleware rather than five: axum clones the rest of a route's middleware stack in
/// each layer on every request, which with five layers cost about a tenth of the CPU of a
/// 1 KiB download.
pub async fn edge(State(state): State<HttpState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let ip = client_ip_of(&state, &request);
    request.extensions_mut().insert(ClientIp(ip));
    let body_timed_out = request
        .extensions()
        .get::<super::serve::BodyTimedOut>()
        .cloned();
    let mut response = if let Err(too_fast) = state.download_limits.check(request.uri().path(), ip)
    {
        too_many_requests(too_fast.retry_after)
    } else if refuses_cross_site(&request) {
        (StatusCode::FORBIDDEN, "Cross-site requests are refused.").into_response()
    } else if let Some(visit) = admin_page_visit(&request, state.https)
        && let Some(redirect) = admin_session_gate(&state, visit).await
    {
        redirect
    } else {
        answer_or_500(&method, route.as_ref(), next, request).await
    };
    if body_timed_out.is_some_and(|flag| flag.is_set()) {
        // Whatever the handler made of the failed read, the client was too slow.
        response = (
            StatusCode::REQUEST_TIMEOUT,
            [(http::header::CONNECTION, "close")],
            "The request took too long to arrive.",
        )
            .into_response();
    }
    add_security_headers(&state, &mut response);
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    state
        .metrics
        .record(method.as_str(), route, status, elapsed);
    tracing::debug!(%method, %route, status, ?elapsed, "request");
    response
}

/// The answer to a `/d/` request past its rate: 429, and when to try again (whole seconds,
/// at least one).
fn too_many_requests(retry_after: std::time::Duration) -> Response {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, seconds.max(1).to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        "Too many requests for this download link. Please wait a moment and try again.",
    )
        .into_response()
}

/// Runs the rest of the stack; a panic in it costs this request a 500 and nothing else.
/// Tokio would contain the panic to this connection anyway; catching it here also answers
/// the client and logs the route. (Page renders catch their own panics, on their render
/// thread: see `render`.) Nothing of ours holds a lock across this point, and the futures
/// below share no state that a half-finished request could leave inconsistent, which is
/// what makes `AssertUnwindSafe` sound here.
async fn answer_or_500(
    method: &Method,
    route: Option<&MatchedPath>,
    next: Next,
    request: Request,
) -> Response {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            // The route pattern the request matched (known before the handler ran, so the
            // download path allocates nothing for this).
            let route = route.map_or("unmatched", MatchedPath::as_str);
            tracing::error!(
                %method,
                %route,
                panic = super::render::panic_message(panic.as_ref()),
                "a request panicked and was answered 500"
            );
            crate::http::api::internal_error_response()
        }
    }
}

/// The client's IP: the TCP peer, or what a trusted proxy says it forwarded.
fn client_ip_of(state: &HttpState, request: &Request) -> IpAddr {
    let peer = peer_of(request).map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
    let forwarded = request.headers().get_all("x-forwarded-for");
    if state.trusted_proxies.is_empty()
        && forwarded.iter().next().is_some()
        && domain::net::is_internal(peer)
    {
        // A proxy on this host or network forwards clients, but none is trusted: every
        // client then has the proxy's address, so the country lock never locks and all
        // clients share one throttle. Said once per run.
        state.untrusted_proxy_warning.call_once(|| {
            tracing::warn!(
                %peer,
                "requests from a proxy carry X-Forwarded-For but no --trusted-proxy is set: buyers' addresses (and countries) are not known, so the country lock is off and every client shares the proxy's limits; set --trusted-proxy to the proxy's address"
            );
        });
    }
    let forwarded = forwarded.iter().filter_map(|v| v.to_str().ok());
    domain::net::client_ip(peer, forwarded, &state.trusted_proxies)
}

/// Adds the security headers every response carries, unless the handler set its own (the
/// Leptos shell sets a Content-Security-Policy with its script nonce).
fn add_security_headers(state: &HttpState, response: &mut Response) {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = response.headers_mut();
    let defaults: [(HeaderName, &'static str); 6] = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=()",
        ),
    ];
    for (name, value) in defaults {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if is_html {
        // Pages carry per-request nonces and personal data: never cache them.
        h.entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    if state.https {
        h.entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static("max-age=31536000"));
    }
}

/// Server functions change state with the session cookie. SameSite=Strict already keeps
/// the cookie off cross-site requests; this refuses them outright as a second line, by
/// comparing the browser-set `Origin` (and `Sec-Fetch-Site`) with the request's host.
fn refuses_cross_site(request: &Request) -> bool {
    let path = request.uri().path();
    request.method() != Method::GET
        && (path.starts_with("/rpc/") || path == "/resend" || path.starts_with("/library"))
        && is_cross_site(request.headers())
}

/// Whether the browser says the request comes from another site. `Sec-Fetch-Site` decides
/// when the browser sends it: with `Referrer-Policy: no-referrer` a same-origin form post
/// carries `Origin: null`, so the origin alone would refuse it. Without that header, an
/// `Origin` naming another host than the one the request was sent to is cross-site.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        // A sibling subdomain ("same-site") is another site for a shop's own host.
        return site != "same-origin" && site != "none";
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            Some(origin_host) != host
        })
}

/// Admin pages are only rendered for a valid session: the server decides, not the UI.
/// Signed-out visitors are sent to the sign-in page; signed-in ones skip it. `None` lets
/// the request through.
async fn admin_session_gate(
    state: &HttpState,
    (is_login, cookie): (bool, Option<String>),
) -> Option<Response> {
    let signed_in = match cookie {
        Some(cookie) => matches!(
            state
                .access
                .session_user(cookie, backend::clock::now())
                .await,
            Ok(Some(_))
        ),
        None => false,
    };
    match (signed_in, is_login) {
        (false, false) => Some(Redirect::to("/admin/login").into_response()),
        (true, true) => Some(Redirect::to("/admin").into_response()),
        _ => None,
    }
}

/// For a visit to a gated admin page: whether it is the sign-in page, and the session
/// cookie. Taken out before any await, because a future holding `&Request` is not `Send`.
fn admin_page_visit(request: &Request, https: bool) -> Option<(bool, Option<String>)> {
    let path = request.uri().path();
    let is_admin_page =
        request.method() == Method::GET && (path == "/admin" || path.starts_with("/admin/"));
    if !is_admin_page || path == "/admin/setup" {
        return None;
    }
    Some((
        path == "/admin/login",
        session_cookie_in(request.headers(), https),
    ))
}

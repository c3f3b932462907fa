//! The HTTP surface: the router with every route, its middleware, and the accept loop.

pub mod api;
pub mod api_payments;
mod api_records;
pub mod assets;
pub mod buyer;
pub mod download;
pub mod download_limits;
pub mod hooks;
pub mod metrics;
pub mod middleware;
pub mod render;
pub mod sendfile;
pub mod serve;

use app::server::UiState;
use axum::Router;
use axum::extract::State;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use backend::geo::GeoLookup;
use backend::services::{CatalogService, DeskService, DownloadService, OrderService, SelfService};
use backend::{AccessService, Store};
use domain::net::IpNet;
use http::{HeaderMap, StatusCode, header};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use metrics::Metrics;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;

/// What plain (non-Leptos) handlers and middleware need. Every middleware layer and handler
/// takes its own copy per request, so this is one shared pointer: cloning the services one
/// by one (a dozen reference counts each) showed up at ~8 % of CPU in the download profile.
#[derive(Clone, Debug)]
pub struct HttpState(Arc<HttpServices>);

impl HttpState {
    pub fn new(services: HttpServices) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for HttpState {
    type Target = HttpServices;

    fn deref(&self) -> &HttpServices {
        &self.0
    }
}

/// The services of records in and out.
#[derive(Debug)]
pub struct RecordServices {
    pub imports: backend::services::ImportService,
    pub exports: backend::services::ExportService,
    pub backups: backend::services::BackupService,
    pub customers: backend::services::CustomerService,
}

/// The services behind [`HttpState`].
#[derive(Debug)]
pub struct HttpServices {
    pub store: Store,
    pub access: AccessService,
    pub catalog: CatalogService,
    pub orders: OrderService,
    pub downloads: DownloadService,
    pub desk: DeskService,
    pub announcements: backend::services::AnnouncementService,
    pub self_service: SelfService,
    /// The store's name, language and time zone, for the buyer pages.
    pub settings: backend::services::SettingsService,
    pub payments: backend::services::PaymentService,
    pub webhooks: backend::services::WebhookService,
    /// Imports, exports and backups.
    pub records: RecordServices,
    pub blobs: backend::blobs::FileStores,
    pub geo: Arc<dyn GeoLookup>,
    pub metrics: Arc<Metrics>,
    pub trusted_proxies: Arc<[IpNet]>,
    /// Request rates on `/d/` per link and per client.
    pub download_limits: Arc<download_limits::DownloadLimits>,
    /// A Bearer token that opens `/metrics` to clients outside this host's network.
    pub metrics_token: Option<Arc<str>>,
    /// Warns once when a local proxy forwards clients but is not trusted.
    pub untrusted_proxy_warning: Arc<std::sync::Once>,
    pub https: bool,
}

/// Builds the complete router.
pub fn router(
    state: HttpState,
    ui: UiState,
    leptos_options: LeptosOptions,
    render_threads: Arc<render::RenderThreads>,
    max_body_bytes: usize,
) -> Router {
    let provide_ui = move || provide_context(ui.clone());
    let routes = generate_route_list(app::App);
    let not_found = leptos_axum::render_app_to_stream_with_context(provide_ui.clone(), {
        let options = leptos_options.clone();
        move || app::shell(options.clone())
    });
    let site = Router::new()
        .leptos_routes_with_context(&leptos_options, routes, provide_ui, {
            let options = leptos_options.clone();
            move || app::shell(options.clone())
        })
        .merge(panic_test::page_routes())
        .fallback(not_found)
        .with_state(leptos_options)
        // Each page request renders wholly on one thread (see `render`).
        .layer(render::OnRenderThreads(render_threads));

    let mut operations = Router::new()
        .merge(panic_test::plain_routes())
        .route("/", get(|| async { Redirect::to("/admin") }))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/favicon.svg") }),
        );
    for asset in &assets::ASSETS {
        operations = operations.route(
            asset.url,
            get(move |headers: HeaderMap| async move { assets::respond(asset, &headers) }),
        );
    }

    // The document is public: it describes the API, it grants nothing.
    let openapi = bytes::Bytes::from(
        api::document()
            .to_pretty_json()
            .expect("the OpenAPI document serialises"),
    );
    let api = Router::from(api::routes())
        .route_layer(from_fn_with_state(state.clone(), api::require_token))
        .route(
            "/api/v1/openapi.json",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    openapi.clone(),
                )
            }),
        )
        .route("/api/{*rest}", any(api::not_found));
    let uploads = Router::from(api::upload_routes().merge(api_records::routes())).route_layer(
        from_fn_with_state(state.clone(), api::require_token_or_session),
    );
    let buyer = Router::new()
        .route("/d/{password}/{file_id}", get(download::file))
        .merge(buyer::routes());
    let hooks = hooks::routes();

    operations
        .merge(api)
        .merge(buyer)
        .merge(hooks)
        .with_state(state.clone())
        .merge(site)
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        // Uploads stream without the whole-body limit; the service limits them as they stream.
        .merge(uploads.with_state(state.clone()))
        .layer(from_fn_with_state(state, middleware::edge))
}

/// Liveness and readiness: the store answers a read and accepts writes.
async fn healthz(State(state): State<HttpState>) -> Response {
    let readable = state.store.run(|s| s.read(|_| Ok(()))).await.is_ok();
    let healthy = readable && !state.store.is_poisoned();
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "version": env!("CARGO_PKG_VERSION"),
        "store": if healthy { "ok" } else { "failing: restart Dropgate and check the disk" },
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// `/metrics` shows sales volume, so it answers only clients on this host or network (a
/// Prometheus beside it), or anyone with `--metrics-token` as a Bearer token; everyone else
/// gets the 404 of a path that does not exist. The client is the one the trusted proxies
/// name, so a public client behind the shop's own reverse proxy is refused too.
async fn metrics_text(
    State(state): State<HttpState>,
    client: Option<axum::Extension<app::server::ClientIp>>,
    headers: HeaderMap,
) -> Response {
    let internal = client.is_some_and(|c| domain::net::is_internal(c.0.0));
    let token_matches = state.metrics_token.as_deref().is_some_and(|expected| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    given.as_bytes(),
                    expected.as_bytes(),
                ))
            })
    });
    if !internal && !token_matches {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        state.metrics.render(&state.store.write_stats()),
    )
        .into_response()
}

/// Routes that panic on purpose, in test builds only (feature `panic-test-routes`): one
/// plain route on the main runtime, and two served like pages, on a render thread (one
/// panics before its head, one halfway through its body).
mod panic_test {
    use axum::Router;

    #[cfg(feature = "panic-test-routes")]
    async fn panic_on_purpose(uri: http::Uri) -> &'static str {
        panic!("on purpose: the test route {uri}")
    }

    #[cfg(feature = "panic-test-routes")]
    pub fn plain_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
        use axum::routing::get;
        Router::new().route("/__test/panic", get(panic_on_purpose))
    }

    #[cfg(feature = "panic-test-routes")]
    pub fn page_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
        use axum::body::Body;
        use axum::routing::get;
        use futures::StreamExt;
        Router::new()
            .route("/__test/panic-page", get(panic_on_purpose))
            .route(
                "/__test/panic-mid-page",
                get(|| async {
                    let chunks = futures::stream::iter(0..3).map(|n| {
                        assert!(n < 1, "on purpose: halfway through the page test route");
                        Ok::<_, std::convert::Infallible>(bytes::Bytes::from("<p>part</p>"))
                    });
                    Body::from_stream(chunks)
                }),
            )
    }

    #[cfg(not(feature = "panic-test-routes"))]
    pub fn plain_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
        Router::new()
    }

    #[cfg(not(feature = "panic-test-routes"))]
    pub fn page_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
        Router::new()
    }
}

//! The REST API under `/api/v1` (Bearer API token). Handlers parse, call a service and map
//! its error; every error is `{"error":{"code","message"}}` with the right status.
//!
//! Each handler carries its OpenAPI description (`#[utoipa::path]`), and the router is built
//! from those same declarations (`utoipa_axum::routes!`), so the document served at
//! `/api/v1/openapi.json` cannot list a route that does not exist or miss one that does.

use super::HttpState;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use backend::ServiceError;
use backend::services::audit::{AuditEntry, read_audit};
use backend::services::{Actor, FileUpload, GrantAction, OrderQuery};
use backend::store::orders::OrderSource;
use domain::wire::{
    AddDownloads, AnnouncementView, AttachFile, CreatedOrder, FileView, GrantDetail, GrantLookup,
    IssuedGrant, NewAnnouncement, NewOrder, NewProduct, OrderPatch, OrderView, ProductPatch,
    ProductView, SendPassword, StoragePage,
};
use domain::{FileId, GrantId, OrderId, ProductId};
use futures::TryStreamExt;
use http::{StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The document's frame; the paths and schemas come from the handlers below.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Dropgate REST API",
        description = "Products and files, orders, download passwords and the password desk. \
            Every request needs `Authorization: Bearer <API token>` (create one with \
            `dropgate token create` or in the admin). Errors are `{\"error\":{\"code\",\"message\"}}`."
    ),
    modifiers(&BearerToken),
    security(("api_token" = [])),
    tags(
        (name = "catalog", description = "Products, their rules and files"),
        (name = "orders", description = "Orders and their grants"),
        (name = "desk", description = "The password desk: look up, reset, unblock, expire, resend"),
        (name = "audit", description = "Who did what, with before and after"),
        (name = "payments", description = "Payment providers, product mappings and the notifications received"),
        (name = "webhooks", description = "Outgoing webhook endpoints (Standard Webhooks) and their deliveries"),
        (name = "records", description = "Imports of sale records, CSV exports and online backups")
    )
)]
struct ApiDoc;

struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// An error answer.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // only describes the JSON that `ApiError` writes
pub(super) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// Machine-readable: `invalid`, `not_found`, `conflict`, `unauthorized`, `too_large`, ...
    code: String,
    /// For a person.
    message: String,
}

/// An API error as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// A 404 with a message for a person.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            ServiceError::Internal(_) => {
                "internal error; the details are in the server log".to_owned()
            }
            ServiceError::Invalid { field, message } => format!("{field}: {message}"),
            other => other.to_string(),
        };
        Self {
            status,
            code: e.code(),
            message,
        }
    }
}

/// The opaque 500 of a request that failed inside the server (the log has the details),
/// in the API's error shape, which also reads fine on its own in a browser.
pub fn internal_error_response() -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; the details are in the server log",
    )
    .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(body),
        )
            .into_response()
    }
}

/// JSON body whose rejections (bad JSON, unknown fields, wrong types, oversize) are API errors.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "invalid"
    };
    ApiError::new(status, code, rejection.body_text())
}

/// Path parameters with API-shaped rejections.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|e: PathRejection| {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.body_text())
            })
    }
}

/// Query parameters with API-shaped rejections.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e: QueryRejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.body_text())
            })
    }
}

/// Requires `Authorization: Bearer <api token>` and records the caller as the actor.
pub async fn require_token(
    State(state): State<HttpState>,
    mut request: Request,
    next: Next,
) -> Response {
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let Some(secret) = secret else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an API token: Authorization: Bearer <token>",
        )
        .into_response();
    };
    match state
        .access
        .authenticate_api_token(secret, backend::clock::now())
        .await
    {
        Ok(Some(id)) => {
            request.extensions_mut().insert(Actor::ApiToken(id));
            next.run(request).await
        }
        Ok(None) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this API token is unknown or revoked",
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Uploads come from API clients (Bearer token) and from the admin's browser, which sends
/// its session cookie instead. A cookie counts only on a same-origin request that says
/// where it comes from (`Origin`, which browsers always send with a PUT), so another site
/// cannot make a signed-in admin's browser upload.
pub async fn require_token_or_session(
    State(state): State<HttpState>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.headers().contains_key(header::AUTHORIZATION) {
        return require_token(State(state), request, next).await;
    }
    // A read (an export or a backup the admin downloads through a link) carries no
    // `Origin`; it changes nothing, and the browser still says where it comes from.
    let reads = matches!(*request.method(), http::Method::GET | http::Method::HEAD);
    let headers = request.headers();
    let cookie = app::server::session_cookie_in(headers, state.https).filter(|_| {
        (reads || headers.contains_key(header::ORIGIN))
            && !super::middleware::is_cross_site(headers)
    });
    let Some(cookie) = cookie else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an API token (Authorization: Bearer <token>) or upload from the admin",
        )
        .into_response();
    };
    match state
        .access
        .session_user(cookie, backend::clock::now())
        .await
    {
        Ok(Some(user)) => {
            request.extensions_mut().insert(Actor::Admin {
                id: user.admin_id,
                email: user.email.to_string(),
            });
            next.run(request).await
        }
        Ok(None) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "your admin session has ended; sign in again",
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn product_id(text: &str) -> ApiResult<ProductId> {
    ProductId::parse(text).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no product with the id {text}"),
        )
    })
}

fn order_id(text: &str) -> ApiResult<OrderId> {
    OrderId::parse(text).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no order with the ID {text}"),
        )
    })
}

/// The API routes except the streamed upload (which has its own body limit), with their
/// OpenAPI description.
pub fn routes() -> OpenApiRouter<HttpState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_product, list_products))
        .routes(routes!(get_product, update_product, delete_product))
        .routes(routes!(create_order, search_orders))
        .routes(routes!(get_order, update_order))
        .routes(routes!(refund_order))
        .routes(routes!(exchange_order))
        .routes(routes!(audit))
        .routes(routes!(lookup_grants))
        .routes(routes!(get_grant))
        .routes(routes!(reset_grant))
        .routes(routes!(unblock_grant))
        .routes(routes!(expire_grant))
        .routes(routes!(reset_grant_counts))
        .routes(routes!(add_grant_downloads))
        .routes(routes!(resend_grant))
        .routes(routes!(send_password))
        .routes(routes!(create_announcement, list_announcements))
        .routes(routes!(stop_announcement))
        .routes(routes!(storage_objects))
        .routes(routes!(attach_file))
        .merge(super::api_payments::routes())
}

/// The file routes: `PUT` streams an upload (no whole-body limit: the service enforces the
/// upload limit while streaming; `{file}` is the new file's name) and `DELETE` removes a
/// file (`{file}` is its id). One path, so one router.
pub fn upload_routes() -> OpenApiRouter<HttpState> {
    OpenApiRouter::new().routes(routes!(upload_file, delete_file))
}

/// The whole document: both routers' paths and the shared frame.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = routes().split_for_parts();
    let (_, uploads) = upload_routes().split_for_parts();
    doc.merge(uploads);
    let (_, records) = super::api_records::routes().split_for_parts();
    doc.merge(records);
    doc
}

#[utoipa::path(post, path = "/api/v1/products", tag = "catalog",
    request_body = NewProduct,
    responses(
        (status = 201, description = "Created", body = ProductView),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
        (status = 422, description = "A field is missing, unknown or invalid", body = ErrorBody)))]
async fn create_product(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiJson(input): ApiJson<NewProduct>,
) -> ApiResult<Response> {
    let view = s
        .catalog
        .create(input, actor, backend::clock::now())
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(get, path = "/api/v1/products", tag = "catalog",
    responses((status = 200, description = "Every product with its files", body = Vec<ProductView>), (status = 401, description = "No or an unknown API token", body = ErrorBody),))]
async fn list_products(State(s): State<HttpState>) -> ApiResult<Response> {
    Ok(Json(s.catalog.list().await?).into_response())
}

#[utoipa::path(get, path = "/api/v1/products/{product_id}", tag = "catalog",
    params(("product_id" = String, Path, description = "The product's slug")),
    responses((status = 200, body = ProductView), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody)))]
async fn get_product(
    State(s): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(s.catalog.get(product_id(&id)?).await?).into_response())
}

#[utoipa::path(patch, path = "/api/v1/products/{product_id}", tag = "catalog",
    params(("product_id" = String, Path, description = "The product's slug")),
    request_body = ProductPatch,
    responses((status = 200, body = ProductView), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 422, description = "A field is unknown or invalid", body = ErrorBody)))]
async fn update_product(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<ProductPatch>,
) -> ApiResult<Response> {
    Ok(Json(
        s.catalog
            .update(product_id(&id)?, patch, actor, backend::clock::now())
            .await?,
    )
    .into_response())
}

/// `?force=true` deletes even when buyers can still download.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Force {
    /// Delete even when buyers can still download it.
    #[serde(default)]
    force: bool,
}

/// `?changelog=` on an upload: what changed in a new version.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UploadNotes {
    /// What changed, for a new version of a file (at most 2000 characters; buyers see it).
    changelog: Option<String>,
    /// The file store to keep it in (`default` unless given; see `--store`).
    store: Option<String>,
}

#[utoipa::path(delete, path = "/api/v1/products/{product_id}", tag = "catalog",
    params(("product_id" = String, Path, description = "The product's slug"), Force),
    responses((status = 204, description = "Deleted with its files"), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "Buyers can still download it; repeat with force=true", body = ErrorBody)))]
async fn delete_product(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(force): ApiQuery<Force>,
) -> ApiResult<Response> {
    s.catalog
        .delete(product_id(&id)?, force.force, actor, backend::clock::now())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(put, path = "/api/v1/products/{product_id}/files/{file}", tag = "catalog",
    params(
        ("product_id" = String, Path, description = "The product's slug"),
        ("file" = String, Path, description = "The file's name as buyers will see it"),
        UploadNotes),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The raw file, streamed (never held in memory)"),
    responses((status = 201, description = "A new file, stored, with its size and SHA-256", body = FileView),
        (status = 200, description = "The product had a file of that name: this is its new version, which every link serves from now on; the earlier ones are listed in `earlier`", body = FileView),
        (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 413, description = "Larger than the upload limit", body = ErrorBody),
        (status = 422, description = "A bad file name or changelog", body = ErrorBody)))]
async fn upload_file(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath((id, file_name)): ApiPath<(String, String)>,
    ApiQuery(notes): ApiQuery<UploadNotes>,
    request: Request<Body>,
) -> ApiResult<Response> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = request
        .into_body()
        .into_data_stream()
        .map_err(|e| e.to_string());
    let upload = FileUpload {
        name: &file_name,
        content_type: content_type.as_deref(),
        changelog: notes.changelog.as_deref(),
        store: notes.store.as_deref(),
    };
    let done = s
        .catalog
        .upload(product_id(&id)?, upload, body, actor, backend::clock::now())
        .await?;
    Ok(uploaded(done))
}

#[utoipa::path(delete, path = "/api/v1/products/{product_id}/files/{file}", tag = "catalog",
    params(
        ("product_id" = String, Path, description = "The product's slug"),
        ("file" = u64, Path, description = "The file's id"),
        Force),
    responses((status = 204, description = "Deleted, bytes included"), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such product or file", body = ErrorBody),
        (status = 409, description = "Buyers can still download it; repeat with force=true", body = ErrorBody)))]
async fn delete_file(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath((id, file)): ApiPath<(String, String)>,
    ApiQuery(force): ApiQuery<Force>,
) -> ApiResult<Response> {
    let file = file.parse::<u64>().map(FileId::new).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no file {file}"),
        )
    })?;
    s.catalog
        .delete_file(
            product_id(&id)?,
            file,
            force.force,
            actor,
            backend::clock::now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/api/v1/orders", tag = "orders",
    request_body = NewOrder,
    responses(
        (status = 201, description = "Created; each grant's password and link are shown only here", body = CreatedOrder),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 409, description = "The transaction ID is already used", body = ErrorBody),
        (status = 422, description = "A field is missing, unknown or invalid", body = ErrorBody)))]
async fn create_order(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiJson(input): ApiJson<NewOrder>,
) -> ApiResult<Response> {
    let created = s
        .orders
        .create(input, OrderSource::Api, actor, backend::clock::now())
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Orders matching every given criterion (all orders when none is given).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    /// The buyer's email address (any case).
    email: Option<String>,
    /// The 7-digit order ID.
    order_id: Option<String>,
    /// The full timestamp order number, e.g. 20261122143005123.
    order_number: Option<String>,
    /// The payment provider's transaction ID.
    transaction_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orders", tag = "orders",
    params(SearchParams),
    responses((status = 200, description = "Matching orders, newest first", body = Vec<OrderView>), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 422, description = "A value is not valid", body = ErrorBody)))]
async fn search_orders(
    State(s): State<HttpState>,
    ApiQuery(q): ApiQuery<SearchParams>,
) -> ApiResult<Response> {
    let query = OrderQuery {
        email: q.email,
        order_id: q.order_id,
        order_number: q.order_number,
        transaction_id: q.transaction_id,
    };
    Ok(Json(s.orders.search(query).await?).into_response())
}

#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders",
    params(("order_id" = u32, Path, description = "The 7-digit order ID")),
    responses((status = 200, body = OrderView), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody)))]
async fn get_order(
    State(s): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(s.orders.get(order_id(&id)?).await?).into_response())
}

#[utoipa::path(patch, path = "/api/v1/orders/{order_id}", tag = "orders",
    params(("order_id" = u32, Path, description = "The 7-digit order ID")),
    request_body = OrderPatch,
    responses((status = 200, body = OrderView), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "The status change is not allowed", body = ErrorBody),
        (status = 422, description = "A field is unknown or invalid", body = ErrorBody)))]
async fn update_order(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<OrderPatch>,
) -> ApiResult<Response> {
    Ok(Json(
        s.orders
            .update(order_id(&id)?, patch, actor, backend::clock::now())
            .await?,
    )
    .into_response())
}

#[utoipa::path(post, path = "/api/v1/orders/{order_id}/refund", tag = "orders",
    params(("order_id" = u32, Path, description = "The 7-digit order ID")),
    responses((status = 200, description = "Refunded; every grant is revoked", body = OrderView), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Already refunded or cancelled", body = ErrorBody)))]
async fn refund_order(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(
        s.orders
            .refund(order_id(&id)?, actor, backend::clock::now())
            .await?,
    )
    .into_response())
}

/// Which product of the order to swap for which.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Exchange {
    from_product_id: String,
    to_product_id: String,
}

#[utoipa::path(post, path = "/api/v1/orders/{order_id}/exchange", tag = "orders",
    params(("order_id" = u32, Path, description = "The 7-digit order ID")),
    request_body = Exchange,
    responses((status = 200, description = "The grant now gives the new product", body = OrderView), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such order or product", body = ErrorBody),
        (status = 409, description = "The order has no such product, or already has the new one", body = ErrorBody)))]
async fn exchange_order(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Exchange>,
) -> ApiResult<Response> {
    let view = s
        .orders
        .exchange(
            order_id(&id)?,
            &body.from_product_id,
            &body.to_product_id,
            actor,
            backend::clock::now(),
        )
        .await?;
    Ok(Json(view).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    /// At most this many entries (default 100, at most 1000).
    limit: Option<usize>,
    /// Only entries about this target, e.g. `grant:42`.
    target: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(AuditParams),
    responses((status = 200, description = "Newest first", body = Vec<AuditEntry>), (status = 401, description = "No or an unknown API token", body = ErrorBody),))]
async fn audit(
    State(s): State<HttpState>,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> ApiResult<Response> {
    let entries = read_audit(&s.store, q.limit.unwrap_or(100).min(1000), q.target).await?;
    Ok(Json(entries).into_response())
}

#[utoipa::path(post, path = "/api/v1/grants/lookup", tag = "desk",
    request_body = GrantLookup,
    responses((status = 200, description = "Every matching grant with its uses", body = Vec<GrantDetail>), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 422, description = "Give exactly one way to search", body = ErrorBody)))]
async fn lookup_grants(
    State(s): State<HttpState>,
    ApiJson(query): ApiJson<GrantLookup>,
) -> ApiResult<Response> {
    Ok(Json(s.desk.lookup(query, backend::clock::now()).await?).into_response())
}

fn grant_id(text: &str) -> ApiResult<GrantId> {
    text.parse::<u64>().map(GrantId::new).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no grant {text}"),
        )
    })
}

#[utoipa::path(get, path = "/api/v1/grants/{grant_id}", tag = "desk",
    params(("grant_id" = u64, Path, description = "The grant's id")),
    responses((status = 200, body = GrantDetail), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such grant", body = ErrorBody)))]
async fn get_grant(
    State(s): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(s.desk.grant(grant_id(&id)?, backend::clock::now()).await?).into_response())
}

/// The body of the grant-action endpoints: the action, audited, and the grant after it.
async fn act_on_grant(
    s: &HttpState,
    actor: Actor,
    id: &str,
    action: GrantAction,
) -> ApiResult<Json<GrantDetail>> {
    let grant = s
        .desk
        .act(grant_id(id)?, action, actor, backend::clock::now())
        .await?;
    Ok(Json(grant))
}

#[utoipa::path(post, path = "/api/v1/grants/{grant_id}/reset", tag = "desk",
    params(("grant_id" = u64, Path, description = "The grant's id")),
    responses((status = 200, description = "A new window from now (31 days by default; no end for a product without a time limit); the byte ledger, country lock and block are cleared", body = GrantDetail), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such grant", body = ErrorBody)))]
async fn reset_grant(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<GrantDetail>> {
    act_on_grant(&s, actor, &id, GrantAction::Reset).await
}

#[utoipa::path(post, path = "/api/v1/grants/{grant_id}/unblock", tag = "desk",
    params(("grant_id" = u64, Path, description = "The grant's id")),
    responses((status = 200, description = "Block and country lock cleared; the original window and budget are kept", body = GrantDetail), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such grant", body = ErrorBody)))]
async fn unblock_grant(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<GrantDetail>> {
    act_on_grant(&s, actor, &id, GrantAction::Unblock).await
}

#[utoipa::path(post, path = "/api/v1/grants/{grant_id}/expire", tag = "desk",
    params(("grant_id" = u64, Path, description = "The grant's id")),
    responses((status = 200, description = "The window ends now", body = GrantDetail), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such grant", body = ErrorBody)))]
async fn expire_grant(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<GrantDetail>> {
    act_on_grant(&s, actor, &id, GrantAction::Expire).await
}

#[utoipa::path(post, path = "/api/v1/grants/{grant_id}/reset-counts", tag = "desk",
    params(("grant_id" = u64, Path, description = "The grant's id")),
    responses((status = 200, description = "Every file's downloads start again from zero; the window, country lock and any block stay", body = GrantDetail), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such grant", body = ErrorBody)))]
async fn reset_grant_counts(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<GrantDetail>> {
    act_on_grant(&s, actor, &id, GrantAction::ResetCounts).await
}

#[utoipa::path(post, path = "/api/v1/grants/{grant_id}/add-downloads", tag = "desk",
    params(("grant_id" = u64, Path, description = "The grant's id")),
    request_body = AddDownloads,
    responses((status = 200, description = "The link's budget grows by this many downloads of each file; window, counts and lock stay", body = GrantDetail), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such grant", body = ErrorBody),
        (status = 409, description = "The link already has unlimited downloads", body = ErrorBody),
        (status = 422, description = "`downloads` is not between 1 and 1000", body = ErrorBody)))]
async fn add_grant_downloads(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<AddDownloads>,
) -> ApiResult<Json<GrantDetail>> {
    let action = GrantAction::add_downloads(Some(body.downloads))?;
    act_on_grant(&s, actor, &id, action).await
}

#[utoipa::path(post, path = "/api/v1/grants/{grant_id}/resend", tag = "desk",
    params(("grant_id" = u64, Path, description = "The grant's id")),
    responses((status = 200, description = "A new password replaces the old one (which stops working); counts are kept. The new password and link are shown only here.", body = IssuedGrant), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such grant", body = ErrorBody)))]
async fn resend_grant(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<IssuedGrant>> {
    Ok(Json(
        s.desk
            .resend(grant_id(&id)?, actor, backend::clock::now())
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/products/{product_id}/send-password", tag = "desk",
    params(("product_id" = String, Path, description = "The product's slug")),
    request_body = SendPassword,
    responses((status = 201, description = "A complimentary confirmed order with a fresh password", body = CreatedOrder), (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody)))]
async fn send_password(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SendPassword>,
) -> ApiResult<Response> {
    let created = s
        .desk
        .send_password(&id, body, actor, backend::clock::now())
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(post, path = "/api/v1/products/{product_id}/announcements", tag = "catalog",
    params(("product_id" = String, Path, description = "The product's slug")),
    request_body = NewAnnouncement,
    responses((status = 201, description = "Started: one mail per past buyer (confirmed, not refunded) with the message and fresh links (their old links stop working), queued at `per_minute`", body = AnnouncementView),
        (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "Nobody has bought the product yet", body = ErrorBody),
        (status = 422, description = "An empty or too long message, or a rate outside 1 to 10 000", body = ErrorBody)))]
async fn create_announcement(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewAnnouncement>,
) -> ApiResult<Response> {
    let created = s
        .announcements
        .create(&id, body, actor, backend::clock::now())
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(get, path = "/api/v1/products/{product_id}/announcements", tag = "catalog",
    params(("product_id" = String, Path, description = "The product's slug")),
    responses((status = 200, description = "The product's announcements, newest first, with their progress", body = Vec<AnnouncementView>),
        (status = 401, description = "No or an unknown API token", body = ErrorBody)))]
async fn list_announcements(
    State(s): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<AnnouncementView>>> {
    Ok(Json(s.announcements.list(Some(&id)).await?))
}

#[utoipa::path(post, path = "/api/v1/announcements/{announcement_id}/stop", tag = "catalog",
    params(("announcement_id" = u64, Path, description = "The announcement's id")),
    responses((status = 200, description = "Stopped: buyers not written to yet get nothing; mails already queued still go", body = AnnouncementView),
        (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such announcement", body = ErrorBody),
        (status = 409, description = "It is not sending any more", body = ErrorBody)))]
async fn stop_announcement(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AnnouncementView>> {
    let id = id.parse::<u64>().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no announcement {id}"),
        )
    })?;
    Ok(Json(
        s.announcements
            .stop(id, actor, backend::clock::now())
            .await?,
    ))
}

/// `?prefix=&cursor=` of the store listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StorageQuery {
    /// The file store to list (`default` unless given; see `--store`).
    store: Option<String>,
    /// Keys that start with this text (any text, not only whole folders).
    #[serde(default)]
    prefix: String,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/storage/objects", tag = "catalog",
    params(StorageQuery),
    responses((status = 200, description = "Up to 100 objects in key order, with size and date; Dropgate's own uploads are not listed", body = StoragePage),
        (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 502, description = "The file store did not answer", body = ErrorBody)))]
async fn storage_objects(
    State(s): State<HttpState>,
    ApiQuery(query): ApiQuery<StorageQuery>,
) -> ApiResult<Json<StoragePage>> {
    Ok(Json(
        s.catalog
            .storage_objects(
                query.store.as_deref(),
                &query.prefix,
                query.cursor.as_deref(),
            )
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/products/{product_id}/files/attach", tag = "catalog",
    params(("product_id" = String, Path, description = "The product's slug")),
    request_body = AttachFile,
    responses((status = 201, description = "Attached: read once for its size and SHA-256, never copied; deleting the file later leaves the object in the store", body = FileView),
        (status = 200, description = "The product had a file of that name: the object is its new version", body = FileView),
        (status = 401, description = "No or an unknown API token", body = ErrorBody),
        (status = 404, description = "No such product, or no such object", body = ErrorBody),
        (status = 422, description = "Not an object key, one of Dropgate's own uploads, or a bad name", body = ErrorBody),
        (status = 502, description = "The file store did not answer", body = ErrorBody)))]
async fn attach_file(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<AttachFile>,
) -> ApiResult<Response> {
    let done = s
        .catalog
        .attach(product_id(&id)?, body, actor, backend::clock::now())
        .await?;
    Ok(uploaded(done))
}

/// The answer to an upload or attach: 201 for a new file, 200 for a new version.
fn uploaded(done: backend::services::Uploaded) -> Response {
    let status = if done.new_version {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, Json(done.file)).into_response()
}

/// Unknown `/api/…` paths answer in JSON too.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "there is no such API endpoint",
    )
}

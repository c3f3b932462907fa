//! The REST API under `/api/v1` (Bearer API token). Handlers parse, call a service and map
//! its error; every error is `{"error":{"code","message"}}` with the right status.

use super::HttpState;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use backend::ServiceError;
use backend::services::audit::read_audit;
use backend::services::{Actor, OrderQuery};
use backend::store::delivery::OrderSource;
use domain::wire::{GrantLookup, NewOrder, NewProduct, OrderPatch, ProductPatch, SendPassword};
use domain::{FileId, GrantId, OrderId, ProductId};
use futures::TryStreamExt;
use http::{StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// An API error as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
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

/// The API routes except the streamed upload (which has its own body limit).
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/products", post(create_product).get(list_products))
        .route(
            "/api/v1/products/{product_id}",
            get(get_product)
                .patch(update_product)
                .delete(delete_product),
        )
        .route("/api/v1/orders", post(create_order).get(search_orders))
        .route(
            "/api/v1/orders/{order_id}",
            get(get_order).patch(update_order),
        )
        .route("/api/v1/orders/{order_id}/refund", post(refund_order))
        .route("/api/v1/orders/{order_id}/exchange", post(exchange_order))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/grants/lookup", post(lookup_grants))
        .route("/api/v1/grants/{grant_id}", get(get_grant))
        .route("/api/v1/grants/{grant_id}/{action}", post(grant_action))
        .route(
            "/api/v1/products/{product_id}/send-password",
            post(send_password),
        )
}

/// The file routes: `PUT` streams an upload (no whole-body limit: the service enforces the
/// upload limit while streaming; `{file}` is the new file's name) and `DELETE` removes a
/// file (`{file}` is its id). One path, so one router.
pub fn upload_routes() -> Router<HttpState> {
    Router::new().route(
        "/api/v1/products/{product_id}/files/{file}",
        put(upload_file).delete(delete_file),
    )
}

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

async fn list_products(State(s): State<HttpState>) -> ApiResult<Response> {
    Ok(Json(s.catalog.list().await?).into_response())
}

async fn get_product(
    State(s): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(s.catalog.get(product_id(&id)?).await?).into_response())
}

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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Force {
    #[serde(default)]
    force: bool,
}

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

async fn upload_file(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath((id, file_name)): ApiPath<(String, String)>,
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
    let view = s
        .catalog
        .upload(
            product_id(&id)?,
            &file_name,
            content_type.as_deref(),
            body,
            actor,
            backend::clock::now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    email: Option<String>,
    order_id: Option<String>,
    order_number: Option<String>,
    transaction_id: Option<String>,
}

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

async fn get_order(
    State(s): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(s.orders.get(order_id(&id)?).await?).into_response())
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Exchange {
    from_product_id: String,
    to_product_id: String,
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    limit: Option<usize>,
    target: Option<String>,
}

async fn audit(
    State(s): State<HttpState>,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> ApiResult<Response> {
    let entries = read_audit(&s.store, q.limit.unwrap_or(100).min(1000), q.target).await?;
    Ok(Json(entries).into_response())
}

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

async fn get_grant(
    State(s): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(s.desk.grant(grant_id(&id)?, backend::clock::now()).await?).into_response())
}

async fn grant_action(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath((id, action)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let id = grant_id(&id)?;
    let now = backend::clock::now();
    Ok(match action.as_str() {
        "reset" => Json(s.desk.reset(id, actor, now).await?).into_response(),
        "unblock" => Json(s.desk.unblock(id, actor, now).await?).into_response(),
        "expire" => Json(s.desk.expire(id, actor, now).await?).into_response(),
        "resend" => Json(s.desk.resend(id, actor, now).await?).into_response(),
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("there is no grant action '{other}' (reset, unblock, expire, resend)"),
            ));
        }
    })
}

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

/// Unknown `/api/…` paths answer in JSON too.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "there is no such API endpoint",
    )
}

//! The REST API of payments in and events out: each provider's settings, product
//! mappings, received notifications with Reprocess, and outgoing webhook endpoints with
//! their deliveries and Resend. Same conventions as `api.rs`.

use super::HttpState;
use super::api::{ApiError, ApiJson, ApiPath, ApiQuery};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use backend::services::Actor;
use domain::payment::{
    DeliveryPage, HookReceipt, IntegrationUpdate, IntegrationView, NewWebhookEndpoint,
    NotificationPage, ProductMappings, Provider, WebhookEndpointView,
};
use http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type ApiResult<T> = Result<T, ApiError>;

pub fn routes() -> OpenApiRouter<HttpState> {
    OpenApiRouter::new()
        .routes(routes!(list_integrations))
        .routes(routes!(get_integration, put_integration))
        .routes(routes!(test_integration))
        .routes(routes!(get_mappings, put_mappings))
        .routes(routes!(list_notifications))
        .routes(routes!(reprocess_notification))
        .routes(routes!(list_webhooks, add_webhook))
        .routes(routes!(remove_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(resend_delivery))
}

fn provider(name: &str) -> ApiResult<Provider> {
    Provider::parse(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "there is no provider {name:?}; the providers are stripe, paypal, lemonsqueezy, paddle, shopify and generic"
        ))
    })
}

#[utoipa::path(get, path = "/api/v1/integrations", tag = "payments",
    responses((status = 200, description = "Every provider's settings (secrets shown by their last 4 characters)", body = Vec<IntegrationView>)))]
async fn list_integrations(State(s): State<HttpState>) -> ApiResult<Response> {
    Ok(Json(s.payments.integrations().await?).into_response())
}

#[utoipa::path(get, path = "/api/v1/integrations/{provider}", tag = "payments",
    params(("provider" = String, Path, description = "stripe, paypal, lemonsqueezy, paddle, shopify or generic")),
    responses((status = 200, body = IntegrationView), (status = 404, description = "No such provider", body = super::api::ErrorBody)))]
async fn get_integration(
    State(s): State<HttpState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(s.payments.integration(provider(&name)?).await?).into_response())
}

#[utoipa::path(put, path = "/api/v1/integrations/{provider}", tag = "payments",
    params(("provider" = String, Path, description = "stripe, paypal, lemonsqueezy, paddle, shopify or generic")),
    request_body = IntegrationUpdate,
    responses((status = 200, body = IntegrationView),
        (status = 404, description = "No such provider", body = super::api::ErrorBody),
        (status = 422, description = "An option or secret is invalid", body = super::api::ErrorBody)))]
async fn put_integration(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(name): ApiPath<String>,
    ApiJson(update): ApiJson<IntegrationUpdate>,
) -> ApiResult<Response> {
    let view = s
        .payments
        .update_integration(provider(&name)?, update, actor, backend::clock::now())
        .await?;
    Ok(Json(view).into_response())
}

/// What the Test button found.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct TestResult {
    message: String,
}

#[utoipa::path(post, path = "/api/v1/integrations/{provider}/test", tag = "payments",
    params(("provider" = String, Path, description = "stripe, paypal, lemonsqueezy, paddle, shopify or generic")),
    responses((status = 200, description = "The set-up works: a signed test notification reached the public webhook URL (PayPal: its verification endpoint answers; Stripe: the API key works too)", body = TestResult),
        (status = 404, description = "No such provider", body = super::api::ErrorBody),
        (status = 409, description = "It does not work, and why", body = super::api::ErrorBody)))]
async fn test_integration(
    State(s): State<HttpState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    let message = s
        .payments
        .test(provider(&name)?, backend::clock::now())
        .await?;
    Ok(Json(TestResult { message }).into_response())
}

#[utoipa::path(get, path = "/api/v1/products/{product_id}/mappings", tag = "payments",
    params(("product_id" = String, Path, description = "The product's slug")),
    responses((status = 200, body = ProductMappings), (status = 404, description = "No such product", body = super::api::ErrorBody)))]
async fn get_mappings(
    State(s): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(s.payments.mappings(&id).await?).into_response())
}

#[utoipa::path(put, path = "/api/v1/products/{product_id}/mappings", tag = "payments",
    params(("product_id" = String, Path, description = "The product's slug")),
    request_body = ProductMappings,
    responses((status = 200, body = ProductMappings),
        (status = 404, description = "No such product", body = super::api::ErrorBody),
        (status = 409, description = "An id already sells another product", body = super::api::ErrorBody),
        (status = 422, description = "An id or the price is invalid", body = super::api::ErrorBody)))]
async fn put_mappings(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiJson(mappings): ApiJson<ProductMappings>,
) -> ApiResult<Response> {
    let saved = s
        .payments
        .set_mappings(&id, mappings, actor, backend::clock::now())
        .await?;
    Ok(Json(saved).into_response())
}

/// A page of a newest-first list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PageParams {
    /// Only entries older than this id (the previous page's `next_before`).
    before: Option<u64>,
    /// At most this many (default 50, at most 200).
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "payments",
    params(PageParams),
    responses((status = 200, description = "Received notifications, newest first, with their outcome and raw payload", body = NotificationPage)))]
async fn list_notifications(
    State(s): State<HttpState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<Response> {
    let page = s
        .payments
        .notifications(page.before, page.limit.unwrap_or(50))
        .await?;
    Ok(Json(page).into_response())
}

#[utoipa::path(post, path = "/api/v1/notifications/{id}/reprocess", tag = "payments",
    params(("id" = u64, Path, description = "The notification's id")),
    responses((status = 200, description = "What processing it again came to", body = HookReceipt),
        (status = 404, description = "No such notification", body = super::api::ErrorBody),
        (status = 409, description = "Nothing to reprocess (it was applied, or is a duplicate)", body = super::api::ErrorBody)))]
async fn reprocess_notification(
    State(s): State<HttpState>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Response> {
    Ok(Json(s.payments.reprocess(id, backend::clock::now()).await?).into_response())
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Every endpoint (secrets shown by their last 4 characters)", body = Vec<WebhookEndpointView>)))]
async fn list_webhooks(State(s): State<HttpState>) -> ApiResult<Response> {
    Ok(Json(s.webhooks.endpoints().await?).into_response())
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = NewWebhookEndpoint,
    responses((status = 201, description = "Created; the only answer that shows the whole secret", body = WebhookEndpointView),
        (status = 422, description = "The URL, an event or the secret is invalid", body = super::api::ErrorBody)))]
async fn add_webhook(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiJson(input): ApiJson<NewWebhookEndpoint>,
) -> ApiResult<Response> {
    let view = s
        .webhooks
        .add_endpoint(input, actor, backend::clock::now())
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = u64, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Removed; its pending deliveries are given up"),
        (status = 404, description = "No such endpoint", body = super::api::ErrorBody)))]
async fn remove_webhook(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Response> {
    s.webhooks
        .remove_endpoint(id, actor, backend::clock::now())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/v1/webhooks/deliveries", tag = "webhooks",
    params(PageParams),
    responses((status = 200, description = "Deliveries newest first, with their attempts and the receiver's answers", body = DeliveryPage)))]
async fn list_deliveries(
    State(s): State<HttpState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<Response> {
    let page = s
        .webhooks
        .deliveries(page.before, page.limit.unwrap_or(50))
        .await?;
    Ok(Json(page).into_response())
}

#[utoipa::path(post, path = "/api/v1/webhooks/deliveries/{id}/resend", tag = "webhooks",
    params(("id" = u64, Path, description = "The delivery's id")),
    responses((status = 202, description = "Queued to be sent again now"),
        (status = 404, description = "No such delivery", body = super::api::ErrorBody),
        (status = 409, description = "Its endpoint was removed", body = super::api::ErrorBody)))]
async fn resend_delivery(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Response> {
    s.webhooks.resend(id, actor, backend::clock::now()).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

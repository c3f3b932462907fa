//! Server functions of the Payments screen: providers, product mappings, received
//! notifications with Reprocess, and outgoing webhook endpoints with their deliveries.

use crate::error::AppError;
use domain::payment::{
    DeliveryPage, HookReceipt, IntegrationUpdate, IntegrationView, NewWebhookEndpoint,
    NotificationPage, ProductMappings, Provider, WebhookEndpointView,
};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// Rows per page of notifications and deliveries.
pub const PAYMENTS_PAGE: usize = 25;

/// Every provider's settings.
#[server(prefix = "/rpc", endpoint = "integrations")]
pub async fn load_integrations() -> Result<Vec<IntegrationView>, AppError> {
    crate::server::as_user(|ui| async move { Ok(ui.payments.integrations().await?) }).await
}

/// Saves a provider's settings (fields left out keep their values).
#[server(prefix = "/rpc", endpoint = "integration-save", input = Json)]
pub async fn save_integration(
    provider: Provider,
    update: IntegrationUpdate,
) -> Result<IntegrationView, AppError> {
    crate::server::as_admin(|ui, actor| async move {
        Ok(ui
            .payments
            .update_integration(provider, update, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Tests a provider's set-up from end to end; says what was found.
#[server(prefix = "/rpc", endpoint = "integration-test")]
pub async fn test_integration(provider: Provider) -> Result<String, AppError> {
    crate::server::as_admin(|ui, _actor| async move {
        Ok(ui.payments.test(provider, backend::clock::now()).await?)
    })
    .await
}

/// Received notifications, newest first.
#[server(prefix = "/rpc", endpoint = "notifications")]
pub async fn load_notifications(before: Option<u64>) -> Result<NotificationPage, AppError> {
    crate::server::as_user(|ui| async move {
        Ok(ui.payments.notifications(before, PAYMENTS_PAGE).await?)
    })
    .await
}

/// Processes a kept notification again.
#[server(prefix = "/rpc", endpoint = "notification-reprocess")]
pub async fn reprocess_notification(id: u64) -> Result<HookReceipt, AppError> {
    crate::server::as_admin(|ui, _actor| async move {
        Ok(ui.payments.reprocess(id, backend::clock::now()).await?)
    })
    .await
}

/// A product's provider ids and price.
#[server(prefix = "/rpc", endpoint = "mappings")]
pub async fn load_mappings(product: String) -> Result<ProductMappings, AppError> {
    crate::server::as_user(|ui| async move { Ok(ui.payments.mappings(&product).await?) }).await
}

/// Saves a product's provider ids and price.
#[server(prefix = "/rpc", endpoint = "mappings-save", input = Json)]
pub async fn save_mappings(
    product: String,
    mappings: ProductMappings,
) -> Result<ProductMappings, AppError> {
    crate::server::as_admin(|ui, actor| async move {
        Ok(ui
            .payments
            .set_mappings(&product, mappings, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Every outgoing webhook endpoint.
#[server(prefix = "/rpc", endpoint = "webhooks")]
pub async fn load_webhooks() -> Result<Vec<WebhookEndpointView>, AppError> {
    crate::server::as_user(|ui| async move { Ok(ui.webhooks.endpoints().await?) }).await
}

/// Adds an endpoint; the answer shows its whole secret, once.
#[server(prefix = "/rpc", endpoint = "webhook-add", input = Json)]
pub async fn add_webhook(endpoint: NewWebhookEndpoint) -> Result<WebhookEndpointView, AppError> {
    crate::server::as_admin(|ui, actor| async move {
        Ok(ui
            .webhooks
            .add_endpoint(endpoint, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Removes an endpoint.
#[server(prefix = "/rpc", endpoint = "webhook-remove")]
pub async fn remove_webhook(id: u64) -> Result<(), AppError> {
    crate::server::as_admin(|ui, actor| async move {
        Ok(ui
            .webhooks
            .remove_endpoint(id, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Deliveries, newest first.
#[server(prefix = "/rpc", endpoint = "deliveries")]
pub async fn load_deliveries(before: Option<u64>) -> Result<DeliveryPage, AppError> {
    crate::server::as_user(
        |ui| async move { Ok(ui.webhooks.deliveries(before, PAYMENTS_PAGE).await?) },
    )
    .await
}

/// Sends a delivery again now.
#[server(prefix = "/rpc", endpoint = "delivery-resend")]
pub async fn resend_delivery(id: u64) -> Result<(), AppError> {
    crate::server::as_admin(|ui, actor| async move {
        Ok(ui.webhooks.resend(id, actor, backend::clock::now()).await?)
    })
    .await
}

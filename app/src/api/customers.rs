//! Server functions of the customer page: everything held about a buyer's address, and
//! erasing it.

use crate::error::AppError;
use domain::records::{CustomerData, ErasureReport};
use leptos::prelude::*;

/// Everything held about `email`.
#[server(prefix = "/rpc", endpoint = "customer")]
pub async fn load_customer(email: String) -> Result<CustomerData, AppError> {
    crate::server::as_user(|state| async move {
        Ok(state.customers.data(&email, backend::clock::now()).await?)
    })
    .await
}

/// Erases the buyer behind `email` (their links stop working; the sales stay, anonymous).
#[server(prefix = "/rpc", endpoint = "customer-erase")]
pub async fn erase_customer(email: String) -> Result<ErasureReport, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .customers
            .erase(&email, actor, backend::clock::now())
            .await?)
    })
    .await
}

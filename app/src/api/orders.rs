//! Server functions of the order screens: the list with search and paging, one order,
//! edits, refunds, exchanges and orders made by hand.

use crate::error::AppError;
use domain::wire::{CreatedOrder, NewOrder, OrderPage, OrderPatch, OrderView};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// Orders per page of the list.
pub const ORDERS_PER_PAGE: usize = 50;

/// What a search box entry looks for, decided by its shape: 7 digits are an order ID, a
/// longer run of digits an order number, anything with `@` an email, the rest a
/// transaction ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchKind {
    OrderId,
    OrderNumber,
    Email,
    TransactionId,
}

impl SearchKind {
    pub fn of(text: &str) -> Self {
        let text = text.trim();
        let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        if digits && text.len() == 7 {
            Self::OrderId
        } else if digits && text.len() > 7 {
            Self::OrderNumber
        } else if text.contains('@') {
            Self::Email
        } else {
            Self::TransactionId
        }
    }

    /// What the admin is told the search looked for.
    pub fn label(self) -> &'static str {
        match self {
            Self::OrderId => "order ID",
            Self::OrderNumber => "order number",
            Self::Email => "email",
            Self::TransactionId => "transaction ID",
        }
    }
}

/// One page of orders (newest first, older than `before`), or the orders matching `search`.
#[server(prefix = "/rpc", endpoint = "orders")]
pub async fn list_orders(search: String, before: Option<String>) -> Result<OrderPage, AppError> {
    crate::server::as_user(|state| async move {
        let orders = state.orders;
        let search = search.trim().to_owned();
        if search.is_empty() {
            return Ok(orders.page(before, ORDERS_PER_PAGE).await?);
        }
        let mut query = backend::services::OrderQuery::default();
        match SearchKind::of(&search) {
            SearchKind::OrderId => query.order_id = Some(search),
            SearchKind::OrderNumber => query.order_number = Some(search),
            SearchKind::Email => query.email = Some(search),
            SearchKind::TransactionId => query.transaction_id = Some(search),
        }
        let found = orders
            .search(query)
            .await
            .map_err(|e| match AppError::from(e) {
                // The search box is the one field; say so in its terms.
                AppError::Invalid { message, .. } => AppError::Invalid {
                    field: "search".into(),
                    message,
                },
                other => other,
            })?;
        Ok(OrderPage {
            total: found.len() as u64,
            orders: found,
            next_before: None,
        })
    })
    .await
}

#[cfg(feature = "ssr")]
fn parse_order_id(text: &str) -> Result<domain::OrderId, AppError> {
    domain::OrderId::parse(text).ok_or_else(|| AppError::Refused {
        status: 404,
        message: format!("There is no order {text}: an order ID has 7 digits."),
    })
}

/// One order with its grants.
#[server(prefix = "/rpc", endpoint = "order")]
pub async fn get_order(order_id: String) -> Result<OrderView, AppError> {
    crate::server::as_user(|state| async move {
        Ok(state.orders.get(parse_order_id(&order_id)?).await?)
    })
    .await
}

/// Creates an order by hand; its links are shown once.
#[server(prefix = "/rpc", endpoint = "order-create", input = Json)]
pub async fn create_order(input: NewOrder) -> Result<CreatedOrder, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .orders
            .create(
                input,
                backend::store::orders::OrderSource::Admin,
                actor,
                backend::clock::now(),
            )
            .await?)
    })
    .await
}

/// Edits email, name or status (a refund revokes every grant).
#[server(prefix = "/rpc", endpoint = "order-update", input = Json)]
pub async fn update_order(order_id: String, patch: OrderPatch) -> Result<OrderView, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .orders
            .update(
                parse_order_id(&order_id)?,
                patch,
                actor,
                backend::clock::now(),
            )
            .await?)
    })
    .await
}

/// Moves the order's grant for `from` to the product `to`.
#[server(prefix = "/rpc", endpoint = "order-exchange")]
pub async fn exchange_product(
    order_id: String,
    from: String,
    to: String,
) -> Result<OrderView, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .orders
            .exchange(
                parse_order_id(&order_id)?,
                &from,
                &to,
                actor,
                backend::clock::now(),
            )
            .await?)
    })
    .await
}

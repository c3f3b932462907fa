//! Server functions of the password desk: find grants, act on them, send a product to
//! any address.

use crate::error::AppError;
use domain::wire::{CreatedOrder, GrantDetail, IssuedGrant};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the desk searches by.
pub const SEARCH_BY: [(&str, &str); 5] = [
    ("password", "Download password"),
    ("order_id", "Order ID (7 digits)"),
    ("order_number", "Order number"),
    ("transaction_id", "Transaction ID"),
    ("email", "Email"),
];

/// Grants matching `value` searched `by` one key, only of `product` unless it is empty.
#[server(prefix = "/rpc", endpoint = "desk-lookup")]
pub async fn desk_lookup(
    by: String,
    value: String,
    product: String,
) -> Result<Vec<GrantDetail>, AppError> {
    crate::server::as_user(|state| async move {
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err(AppError::Invalid {
                field: "value".into(),
                message: "Type what to search for.".into(),
            });
        }
        let mut query = domain::wire::GrantLookup::default();
        match by.as_str() {
            "password" => query.password = Some(value),
            "order_id" => query.order_id = Some(value),
            "order_number" => query.order_number = Some(value),
            "transaction_id" => query.transaction_id = Some(value),
            "email" => query.email = Some(value),
            _ => {
                return Err(AppError::Invalid {
                    field: "by".into(),
                    message: "Choose what to search by.".into(),
                });
            }
        }
        let found = state
            .desk
            .lookup(query, backend::clock::now())
            .await
            .map_err(|e| match AppError::from(e) {
                AppError::Invalid { message, .. } => AppError::Invalid {
                    field: "value".into(),
                    message,
                },
                other => other,
            })?;
        let product = product.trim();
        Ok(found
            .into_iter()
            .filter(|g| product.is_empty() || g.product_id.as_str() == product)
            .collect())
    })
    .await
}

/// What a desk action produced: the grant as it is now, and for a resend the new link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantActionDone {
    pub grant: GrantDetail,
    pub issued: Option<IssuedGrant>,
}

/// `reset`, `reset-counts`, `add-downloads` (with `downloads`), `unblock`, `expire` or
/// `resend` on one grant.
#[server(prefix = "/rpc", endpoint = "desk-action")]
pub async fn grant_action(
    grant_id: u64,
    action: String,
    #[server(default)] downloads: Option<u32>,
) -> Result<GrantActionDone, AppError> {
    crate::server::as_admin(|state, actor| async move {
        let desk = state.desk;
        let id = domain::GrantId::new(grant_id);
        let now = backend::clock::now();
        if action == "resend" {
            let issued = desk.resend(id, actor, now).await?;
            let grant = desk.grant(id, now).await?;
            return Ok(GrantActionDone {
                grant,
                issued: Some(issued),
            });
        }
        let action = backend::services::GrantAction::parse(&action, downloads)?;
        let grant = desk.act(id, action, actor, now).await?;
        let issued = None;
        Ok(GrantActionDone { grant, issued })
    })
    .await
}

/// A complimentary confirmed order of one product for any address.
#[server(prefix = "/rpc", endpoint = "desk-send")]
pub async fn send_new_password(
    product_id: String,
    email: String,
    name: String,
) -> Result<CreatedOrder, AppError> {
    crate::server::as_admin(|state, actor| async move {
        if product_id.trim().is_empty() {
            return Err(AppError::Invalid {
                field: "product_id".into(),
                message: "Choose the product to send.".into(),
            });
        }
        Ok(state
            .desk
            .send_password(
                product_id.trim(),
                domain::wire::SendPassword { email, name },
                actor,
                backend::clock::now(),
            )
            .await?)
    })
    .await
}

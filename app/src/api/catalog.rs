//! Server functions of the catalog screens: products, their rules and files. Uploads do
//! not pass through here: the browser streams them to the upload endpoint (see
//! `admin::upload`), which checks the same session.

use crate::error::AppError;
use domain::wire::{AnnouncementView, NewAnnouncement, NewProduct, ProductPatch, ProductView};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// Every product with its files.
#[server(prefix = "/rpc", endpoint = "products")]
pub async fn list_products() -> Result<Vec<ProductView>, AppError> {
    crate::server::as_user(|state| async move { Ok(state.catalog.list().await?) }).await
}

/// One product.
#[server(prefix = "/rpc", endpoint = "product")]
pub async fn get_product(product_id: String) -> Result<ProductView, AppError> {
    crate::server::as_user(|state| async move {
        let id = domain::ProductId::parse(&product_id).map_err(|_| AppError::Refused {
            status: 404,
            message: format!("There is no product {product_id}."),
        })?;
        Ok(state.catalog.get(id).await?)
    })
    .await
}

/// Creates a product.
#[server(prefix = "/rpc", endpoint = "product-create", input = Json)]
pub async fn create_product(input: NewProduct) -> Result<ProductView, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .catalog
            .create(input, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Changes a product's name or rules.
#[server(prefix = "/rpc", endpoint = "product-update", input = Json)]
pub async fn update_product(
    product_id: String,
    patch: ProductPatch,
) -> Result<ProductView, AppError> {
    crate::server::as_admin(|state, actor| async move {
        let id = parse_product_id(&product_id)?;
        Ok(state
            .catalog
            .update(id, patch, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Deletes a product and its files; refused while buyers can download it unless `force`.
#[server(prefix = "/rpc", endpoint = "product-delete")]
pub async fn delete_product(product_id: String, force: bool) -> Result<(), AppError> {
    crate::server::as_admin(|state, actor| async move {
        let id = parse_product_id(&product_id)?;
        Ok(state
            .catalog
            .delete(id, force, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Deletes one file of a product; refused while buyers can download it unless `force`.
#[server(prefix = "/rpc", endpoint = "file-delete")]
pub async fn delete_product_file(
    product_id: String,
    file_id: u64,
    force: bool,
) -> Result<(), AppError> {
    crate::server::as_admin(|state, actor| async move {
        let id = parse_product_id(&product_id)?;
        Ok(state
            .catalog
            .delete_file(
                id,
                domain::FileId::new(file_id),
                force,
                actor,
                backend::clock::now(),
            )
            .await?)
    })
    .await
}

/// A product slug from a form, or the field's error.
#[cfg(feature = "ssr")]
fn parse_product_id(text: &str) -> Result<domain::ProductId, AppError> {
    domain::ProductId::parse(text).map_err(|message| AppError::Invalid {
        field: "product_id".into(),
        message,
    })
}

/// A product's announcements to past buyers, newest first.
#[server(prefix = "/rpc", endpoint = "announcements")]
pub async fn list_announcements(product_id: String) -> Result<Vec<AnnouncementView>, AppError> {
    crate::server::as_user(
        |state| async move { Ok(state.announcements.list(Some(&product_id)).await?) },
    )
    .await
}

/// Tells every past buyer of a product about an update, with fresh links.
#[server(prefix = "/rpc", endpoint = "announcement-create", input = Json)]
pub async fn create_announcement(
    product_id: String,
    input: NewAnnouncement,
) -> Result<AnnouncementView, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .announcements
            .create(&product_id, input, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Stops an announcement that is still sending.
#[server(prefix = "/rpc", endpoint = "announcement-stop")]
pub async fn stop_announcement(announcement_id: u64) -> Result<AnnouncementView, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .announcements
            .stop(announcement_id, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// One page of the file store's objects (Dropgate's own uploads are never listed).
#[server(prefix = "/rpc", endpoint = "storage-objects")]
pub async fn storage_objects(
    store: String,
    prefix: String,
    cursor: Option<String>,
) -> Result<domain::wire::StoragePage, AppError> {
    crate::server::as_user(|state| async move {
        Ok(state
            .catalog
            .storage_objects(Some(&store), &prefix, cursor.as_deref())
            .await?)
    })
    .await
}

/// The names of the file stores besides the default one (`--store NAME=URL`).
#[server(prefix = "/rpc", endpoint = "stores")]
pub async fn list_stores() -> Result<Vec<String>, AppError> {
    crate::server::as_user(|state| async move { Ok(state.catalog.store_names()) }).await
}

/// Attaches an object already in the store to a product (read once, never copied).
#[server(prefix = "/rpc", endpoint = "storage-attach", input = Json)]
pub async fn attach_object(
    product_id: String,
    input: domain::wire::AttachFile,
) -> Result<domain::wire::FileView, AppError> {
    crate::server::as_admin(|state, actor| async move {
        let id = parse_product_id(&product_id)?;
        Ok(state
            .catalog
            .attach(id, input, actor, backend::clock::now())
            .await?
            .file)
    })
    .await
}

//! Wire types of records in and out: the report of an import of sale records (its dry run
//! and its real run answer alike), shared by the REST API, the CLI and the admin.

use crate::{OrderStatus, Timestamp};
use serde::{Deserialize, Serialize};

/// Which kind of sale-record file.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportFormat {
    /// The legacy download script: download ID, product ID, email, transaction ID, name.
    Legacy,
    /// A header row naming the columns (email, name, product, transaction ID, date, status).
    Csv,
}

/// Where an imported grant's download window starts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowStart {
    /// At the import: past buyers keep access for the product's full window.
    #[default]
    Import,
    /// At the sale date, as the legacy script counted it (old sales may be expired).
    Sale,
}

/// A row the import leaves out, and why.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRow {
    /// 1-based line of the file.
    pub line: u64,
    pub reason: String,
}

/// One order an import makes (or would make).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedOrderView {
    /// The file's lines this order comes from (one per product).
    pub lines: Vec<u64>,
    pub email: String,
    pub name: String,
    pub transaction_id: Option<String>,
    /// Product IDs after mapping.
    pub product_ids: Vec<String>,
    pub status: OrderStatus,
    /// The sale date the order keeps.
    pub sold_at: Timestamp,
    /// When the grants' windows end (none: unlimited); the same for every grant of the
    /// order unless its products' rules differ, so the first is shown.
    pub valid_until: Option<Timestamp>,
    /// The order's ID (real run only).
    pub order_id: Option<u32>,
}

/// What an import did, or in a dry run would do.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub dry_run: bool,
    pub format: ImportFormat,
    /// The field separator found in the file.
    pub separator: String,
    /// Sale rows read (guard, blank and header lines not counted).
    pub rows: u64,
    /// Orders created (or that would be).
    pub orders: u64,
    /// Grants (download links) created (or that would be).
    pub grants: u64,
    /// Rows left out because an earlier import already holds them.
    pub already_imported: u64,
    pub rejected: Vec<RejectedRow>,
    /// Product IDs of the file that match no product: map them to one.
    pub unknown_products: Vec<String>,
    /// The first orders (at most 200) with their lines, for the seller to check.
    pub preview: Vec<ImportedOrderView>,
    /// Whether mail went (or would go) to the imported buyers.
    pub notify: bool,
    pub window: WindowStart,
}

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

/// Everything Dropgate holds about one buyer's address, as one document (a buyer's data
/// request), and what the admin's customer page shows.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerData {
    pub email: String,
    /// Their orders, newest first.
    pub orders: Vec<crate::wire::OrderView>,
    /// Their links with every use (time, IP address, country, file, bytes, outcome).
    pub grants: Vec<crate::wire::GrantDetail>,
    /// Mails sent (or waiting) to the address, or about their orders.
    pub mails: Vec<CustomerMail>,
    /// Payment notifications that name the address.
    pub notifications: Vec<CustomerNotification>,
}

/// A mail to or about a buyer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerMail {
    pub mail_id: u64,
    /// `purchase`, `resend`, `vendor_notice`, …
    pub kind: String,
    pub to: String,
    pub subject: String,
    /// `queued`, `sent`, `failed`, …
    pub state: String,
    pub queued_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub order_id: Option<u32>,
}

/// A payment notification that names a buyer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerNotification {
    pub notification_id: u64,
    pub provider: String,
    pub received_at: Timestamp,
    pub event_type: Option<String>,
    pub order_id: Option<u32>,
    /// The body as the provider sent it.
    pub body: String,
}

/// What an erasure changed. The orders stay (their numbers, dates, products, amounts and
/// download counts), without the person: their address and name, IP addresses and browsers
/// are gone, and their links no longer work.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    pub orders: u64,
    pub grants: u64,
    pub events: u64,
    pub mails: u64,
    pub notifications: u64,
    pub webhook_deliveries: u64,
    pub audit_entries: u64,
    /// Bytes of free space overwritten in the data file, so no copy lingers there either.
    pub scrubbed_bytes: u64,
}

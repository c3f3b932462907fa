//! Data sent between the server and the admin SPA. Plain serde structs: the server fills them
//! from the store, the WASM UI renders them; neither side adds rules here.

use crate::{AdminId, ApiTokenId, Email, Timestamp};
use serde::{Deserialize, Serialize};

/// The signed-in staff member, as the admin shell shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionUser {
    pub admin_id: AdminId,
    pub email: Email,
    pub name: String,
}

/// The figures on the dashboard, all read from the store at request time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DashboardFigures {
    pub admins: u64,
    pub active_sessions: u64,
    pub api_tokens_active: u64,
    pub database_bytes: u64,
    pub server_started_at: Timestamp,
    pub version: String,
    /// The IP → country database in use, in words ("none" when there is none).
    pub geoip_database: String,
    /// The credit its licence asks for, shown wherever countries are displayed.
    pub geoip_credit: Option<Credit>,
    /// Mails the outbox gave up on.
    pub mails_failed: u64,
    /// Mails not sent yet (waiting, retrying or being sent).
    pub mails_waiting: u64,
    /// Whether an SMTP server is configured (otherwise mail waits in the outbox).
    pub smtp_configured: bool,
}

/// A licence credit: words and a link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Credit {
    pub text: String,
    pub url: String,
}

/// One staff account in the access overview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminSummary {
    pub id: AdminId,
    pub email: Email,
    pub name: String,
    pub created_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
}

/// One API token in the access overview; the secret is never sent after creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiTokenSummary {
    pub id: ApiTokenId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// Who can reach the store: staff accounts and API tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessOverview {
    pub admins: Vec<AdminSummary>,
    pub api_tokens: Vec<ApiTokenSummary>,
}

// ---- catalog ----

/// A product as the API and the admin show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductView {
    pub product_id: crate::ProductId,
    pub name: String,
    /// Downloads per file per grant; 0 = unlimited.
    pub max_downloads: u32,
    /// Days a grant can download after issue; 0 = unlimited.
    pub download_days: u32,
    pub country_lock: bool,
    /// Whether a new version of a file gives every buyer its downloads of it again.
    #[serde(default)]
    pub refresh_on_update: bool,
    pub files: Vec<FileView>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A product file's public metadata (never its storage key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileView {
    pub file_id: crate::FileId,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// When the version links serve now was uploaded.
    pub uploaded_at: Timestamp,
    /// The current version: 1 for the first upload, one more for each `PUT` of the same name.
    #[serde(default = "first_version")]
    pub version: u32,
    /// What changed in the current version ("" for nothing said).
    #[serde(default)]
    pub changelog: String,
    /// The earlier versions, newest first.
    #[serde(default)]
    pub earlier: Vec<FileVersionView>,
    /// The file store its bytes are in: `default`, or a store named with `--store`.
    #[serde(default = "default_store")]
    pub store: String,
}

fn default_store() -> String {
    "default".to_owned()
}

fn first_version() -> u32 {
    1
}

/// An earlier version of a file, kept for the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileVersionView {
    pub version: u32,
    pub size: u64,
    /// Hex SHA-256 of that version's content.
    pub sha256: String,
    pub uploaded_at: Timestamp,
    pub changelog: String,
}

/// Creating a product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// The product's slug: lower-case letters, digits and inner hyphens.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$",
            min_length = 1,
            max_length = 64
        )
    )]
    pub product_id: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub name: String,
    /// Downloads per file; 0 for unlimited.
    #[serde(default)]
    pub max_downloads: u32,
    /// Days the links work; 0 for unlimited.
    #[serde(default)]
    pub download_days: u32,
    #[serde(default = "default_true")]
    pub country_lock: bool,
}

/// Changing a product's name or rules; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub name: Option<String>,
    pub max_downloads: Option<u32>,
    pub download_days: Option<u32>,
    pub country_lock: Option<bool>,
    /// Whether a new version of a file gives every buyer its downloads of it again.
    #[serde(default)]
    pub refresh_on_update: Option<bool>,
}

fn default_true() -> bool {
    true
}

// ---- orders ----

/// Creating an order (REST API and admin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    #[serde(default)]
    pub name: String,
    /// Product slugs, at least one.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub product_ids: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// `pending`, `on_hold` or `confirmed` (default).
    #[cfg_attr(feature = "openapi", schema(pattern = "^(pending|on_hold|confirmed)$"))]
    #[serde(default)]
    pub status: Option<String>,
    /// The buyer's language for their pages and mails (`en`, `de`, `fr`, `es`; a regional
    /// tag such as `de-AT` counts as its language). Absent: the browser's, else the store's.
    #[cfg_attr(feature = "openapi", schema(example = "de"))]
    #[serde(default)]
    pub language: Option<String>,
    /// What the buyer paid, when known (`{"value": "19.99", "currency": "EUR"}`).
    #[serde(default)]
    pub amount: Option<crate::Amount>,
}

/// An order as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderView {
    pub order_id: crate::OrderId,
    pub order_number: String,
    pub transaction_id: Option<String>,
    pub email: Email,
    pub name: String,
    pub status: crate::OrderStatus,
    pub source: String,
    pub grants: Vec<GrantSummary>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The buyer's language, when the order names one.
    #[serde(default)]
    pub language: Option<crate::Language>,
    /// What was paid; `null`: unknown (an order from before amounts were kept, or a source
    /// that did not say).
    #[serde(default)]
    pub amount: Option<crate::Amount>,
    /// The sum refunded so far; `null`: nothing.
    #[serde(default)]
    pub refunded: Option<crate::Amount>,
    /// When the order first became confirmed (its links' windows start then).
    #[serde(default)]
    pub confirmed_at: Option<Timestamp>,
}

/// A grant of an order, without secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantSummary {
    pub grant_id: crate::GrantId,
    pub product_id: crate::ProductId,
    pub valid_until: Option<Timestamp>,
    pub revoked: bool,
}

/// A freshly issued password: the only time it exists in clear outside the mails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedGrant {
    pub grant_id: crate::GrantId,
    pub product_id: crate::ProductId,
    pub password: String,
    pub url: String,
}

/// The answer to creating an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedOrder {
    #[serde(flatten)]
    pub order: OrderView,
    pub issued: Vec<IssuedGrant>,
}

/// Changing an order; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OrderPatch {
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub email: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub name: Option<String>,
    /// The next status, as the state machine allows it.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^(pending|on_hold|confirmed|refunded|cancelled)$")
    )]
    pub status: Option<String>,
    /// The payment's transaction ID, as the desk finds the order by it; `""` removes it.
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    #[serde(default)]
    pub transaction_id: Option<String>,
}

// ---- password desk ----

/// Find grants by exactly one of these.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GrantLookup {
    /// A download password as mailed (dashes and case do not matter).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub password: Option<String>,
    /// The 7-digit order ID, as a string or as the number orders carry (`4033421`).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[1-9][0-9]{6}$"))]
    #[serde(default, deserialize_with = "string_or_number")]
    pub order_id: Option<String>,
    /// The 17-digit order number (`YYYYMMDDHHMMSSmmm`).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{17}$"))]
    pub order_number: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub transaction_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub email: Option<String>,
}

/// An optional field that takes a JSON string or a whole number (kept as its digits).
fn string_or_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        Number(u64),
    }
    Ok(
        Option::<Given>::deserialize(deserializer)?.map(|given| match given {
            Given::Text(text) => text,
            Given::Number(number) => number.to_string(),
        }),
    )
}

/// Where a grant was used from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SightingView {
    pub at: Timestamp,
    pub ip: String,
    pub country: Option<String>,
}

/// One use (or refused attempt) of a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UseView {
    pub at: Timestamp,
    pub ip: String,
    pub country: Option<String>,
    pub file: Option<String>,
    pub bytes: u64,
    /// `allowed` or the refusal code (`second_country`, `limit_reached`, …).
    pub outcome: crate::AttemptOutcome,
    /// Attempts this entry stands for: repeated refusals (same file, address and reason,
    /// minutes apart) are folded into one entry.
    #[serde(default = "one")]
    pub count: u32,
    /// When the last of them was made (`at` for a single attempt).
    pub last_at: Timestamp,
}

fn one() -> u32 {
    1
}

/// Usage of one file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileUsage {
    pub file_id: crate::FileId,
    pub name: String,
    /// Delivered bytes ÷ file size.
    pub downloads_used: f64,
}

/// Everything the desk shows about a grant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantDetail {
    pub grant_id: crate::GrantId,
    pub order_id: crate::OrderId,
    pub order_number: String,
    pub transaction_id: Option<String>,
    pub email: Email,
    pub name: String,
    pub product_id: crate::ProductId,
    pub status: crate::GrantState,
    /// The lookup matched a password that was since replaced by a newer one.
    pub replaced: bool,
    pub issued_at: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub max_downloads: u32,
    pub files: Vec<FileUsage>,
    pub locked: Option<SightingView>,
    pub blocked_by: Option<SightingView>,
    pub uses: Vec<UseView>,
}

/// Sending a product to any address (complimentary).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendPassword {
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    #[serde(default)]
    pub name: String,
}

/// More downloads for one link, on top of its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddDownloads {
    /// How many more downloads of each file (1 to 1000).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub downloads: u32,
}

// ---- buyer page ----

/// What the buyer page shows for a password.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BuyerPage {
    /// The password matches nothing (or was replaced by a newer link).
    Unknown,
    Ready(GrantPage),
    Refused {
        product_name: String,
        reason: crate::Denied,
        explanation: String,
    },
}

/// A usable grant, for the buyer page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantPage {
    pub product_name: String,
    pub valid_until: Option<Timestamp>,
    pub max_downloads: u32,
    pub files: Vec<FileOffer>,
}

/// One file on the buyer page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileOffer {
    pub file_id: crate::FileId,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// Downloads left (fractional after partial downloads); `None` when unlimited.
    pub downloads_left: Option<f64>,
    /// When the file was last replaced by a new version (`None` while it is the first).
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// The seller's notes on the newest version ("" for none).
    #[serde(default)]
    pub changelog: String,
}

// ---- admin lists ----

/// One page of the order list, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderPage {
    pub orders: Vec<OrderView>,
    /// Orders in the store.
    pub total: u64,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<String>,
}

/// Which download attempts the activity list shows; empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityFilter {
    pub product_id: Option<String>,
    /// `allowed`, `refused`, or one refusal code (`second_country`, `limit_reached`, …).
    pub outcome: Option<String>,
    /// Two-letter country code.
    pub country: Option<String>,
    /// Only attempts older than this event (the `next_before` of the previous page).
    pub before: Option<u64>,
}

/// One download attempt, allowed or refused, in the activity list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityRow {
    pub event: u64,
    pub at: Timestamp,
    pub grant_id: crate::GrantId,
    pub order_id: Option<crate::OrderId>,
    pub product_id: Option<crate::ProductId>,
    pub file: Option<String>,
    pub ip: String,
    pub country: Option<String>,
    pub bytes: u64,
    /// `allowed` or the refusal code.
    pub outcome: crate::AttemptOutcome,
    /// Attempts this entry stands for (see [`UseView::count`]).
    #[serde(default = "one")]
    pub count: u32,
    /// When the last of them was made.
    pub last_at: Timestamp,
}

/// A grant blocked by a second country, waiting for the seller's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockedGrant {
    pub grant_id: crate::GrantId,
    pub order_id: crate::OrderId,
    pub product_id: crate::ProductId,
    pub email: Email,
    /// The first country, locked on first use.
    pub first: Option<SightingView>,
    /// The attempt from another country that blocked it.
    pub blocked_by: SightingView,
}

/// The activity list: recent attempts and the blocked grants needing attention.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityPage {
    pub rows: Vec<ActivityRow>,
    /// Pass as `before` for older attempts; `None` when there are no more.
    pub next_before: Option<u64>,
    pub blocked: Vec<BlockedGrant>,
}

/// Download attempts on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DailyDownloads {
    /// `2026-11-22`.
    pub day: String,
    pub allowed: u64,
    pub refused: u64,
}

/// One audit entry for the admin: JSON snapshots as indented text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditView {
    pub id: u64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: String,
    pub after: String,
}

/// One mail of the outbox, as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MailSummary {
    pub id: u64,
    pub kind: crate::mail::MailKind,
    pub to: String,
    pub subject: String,
    /// `queued`, `sending`, `retrying`, `sent`, `failed`, or `not_configured` for mail that
    /// waits because no SMTP server is configured.
    pub state: String,
    pub attempts: u32,
    pub queued_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
    pub sent_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub order_id: Option<crate::OrderId>,
}

/// One mail as it was (or will be) sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MailDetail {
    pub summary: MailSummary,
    pub from: String,
    pub message_id: String,
    pub server_reply: Option<String>,
    pub text: String,
    pub html: String,
}

/// A page of the outbox with the counts per state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxPage {
    pub mails: Vec<MailSummary>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<u64>,
    /// (state, count) for every state.
    pub counts: Vec<(String, u64)>,
    /// The SMTP server in words, or `None` when mail is not configured.
    pub smtp: Option<String>,
}

/// One kind of mail's template for the editor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MailTemplateView {
    pub kind: crate::mail::MailKind,
    /// The language of this variant (buyers get the variant of their language).
    #[serde(default)]
    pub language: crate::Language,
    pub label: String,
    pub source: crate::mail::TemplateSource,
    /// Whether the seller changed it (false: the shipped default).
    pub customised: bool,
}

// ---- announcements to past buyers ----

/// A message about a product update, for every past buyer, with fresh links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAnnouncement {
    /// What changed, in a few lines (at most 2000 characters).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 2000))]
    pub message: String,
    /// Mails per minute at most (1 to 10 000), so a launch keeps within the mail
    /// provider's limits; 60 unless given.
    #[serde(default = "default_per_minute")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
    pub per_minute: u32,
}

fn default_per_minute() -> u32 {
    60
}

/// An announcement and how far it got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnnouncementView {
    pub announcement_id: u64,
    pub product_id: crate::ProductId,
    pub message: String,
    pub per_minute: u32,
    /// Past buyers (one mail each) when it was made.
    pub buyers: u32,
    /// Mails queued in the outbox so far.
    pub sent: u32,
    /// Buyers left out: refunded since, or not written to because it was stopped.
    pub skipped: u32,
    /// `sending`, `stopped` or `done`.
    pub state: String,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

// ---- the object store ----

/// An object in the store that a product file can be attached to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageObject {
    /// Its key in the store (below the configured prefix).
    pub key: String,
    pub size: u64,
    pub last_modified: Timestamp,
}

/// One page of the store's objects, in key order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoragePage {
    pub objects: Vec<StorageObject>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Attaching an object that is already in the store to a product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AttachFile {
    /// The object's key, as the listing shows it.
    pub key: String,
    /// The name buyers save it as; the key's last part unless given.
    #[serde(default)]
    pub name: Option<String>,
    /// What changed, when it becomes a new version of a file of the same name.
    #[serde(default)]
    pub changelog: Option<String>,
    /// The file store the object is in (`default` unless given).
    #[serde(default)]
    pub store: Option<String>,
}

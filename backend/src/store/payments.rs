//! Payments in: each provider's integration (secrets, API key, options), the mapping of
//! provider product ids to Dropgate products, every notification received (raw, with its
//! outcome), and what is remembered about each payment.
//!
//! The notification, its deduplication key, the payment's status and the order it creates
//! or changes are written in one transaction (see `services::payments`), so a notification
//! is never half-applied, never applied twice and never lost once acknowledged.
//! `Provider` values are stored by their position in the enum: new providers go last.

use super::codec::{self, Record};
use super::meta;
use super::orders::MoneyRecord;
use super::{Reader, StoreError};
use domain::payment::{PaymentKind, PaymentStatus, Provider};
use domain::{OrderId, ProductId, Timestamp};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// key: provider name; value: [`IntegrationRecord`].
const INTEGRATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("integrations-1");
/// key: product id; value: [`MappingRecord`].
const MAPPINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("mappings-1");
/// key: provider name, 0x00, the provider's id; value: product id.
const MAPPING_IDS: TableDefinition<&[u8], &str> = TableDefinition::new("mapping_ids-1");
/// key: notification id; value: [`NotificationRecord`].
const NOTIFICATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("notifications-1");
/// key: provider name, 0x00, the provider's event id; value: notification id of the first
/// notification that carried it (deduplication).
const NOTIFICATION_EVENTS: TableDefinition<&[u8], u64> =
    TableDefinition::new("notification_events-1");
/// key: provider name, 0x00, payment id; value: [`PaymentRecord`].
const PAYMENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("payments-1");
/// key: id of a notification that failed verification; value: empty. Only the newest
/// [`UNVERIFIED_KEPT`] are kept (schema step 9): a stranger's posts cannot fill the disk.
const UNVERIFIED: TableDefinition<u64, ()> = TableDefinition::new("unverified_notifications-1");

/// How many unverified notifications are kept, newest first.
pub const UNVERIFIED_KEPT: u64 = 1000;

/// Creates the ring of unverified notifications (schema step 9).
pub(super) fn create_unverified_ring(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(UNVERIFIED)?;
    Ok(())
}

/// Stores a notification that failed verification in the capped ring: the oldest one
/// beyond [`UNVERIFIED_KEPT`] is removed.
pub fn insert_unverified(
    tx: &WriteTransaction,
    record: &NotificationRecord,
) -> Result<u64, StoreError> {
    use redb::ReadableTableMetadata;
    let id = insert_notification(tx, record)?;
    let mut ring = tx.open_table(UNVERIFIED)?;
    ring.insert(id, ())?;
    let mut notifications = tx.open_table(NOTIFICATIONS)?;
    while ring.len()? > UNVERIFIED_KEPT {
        let Some((oldest, ())) = ring.pop_first()?.map(|(k, v)| (k.value(), v.value())) else {
            break;
        };
        notifications.remove(oldest)?;
    }
    Ok(id)
}

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(INTEGRATIONS)?;
    tx.open_table(MAPPINGS)?;
    tx.open_table(MAPPING_IDS)?;
    tx.open_table(NOTIFICATIONS)?;
    tx.open_table(NOTIFICATION_EVENTS)?;
    tx.open_table(PAYMENTS)?;
    Ok(())
}

fn provider_key(provider: Provider, id: &str) -> Vec<u8> {
    let mut key = provider.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

/// A provider's settings. Secrets are kept whole (they are needed to check signatures)
/// and shown only by their last four characters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IntegrationRecord {
    pub enabled: bool,
    pub secrets: Vec<String>,
    pub api_key: Option<String>,
    pub options: BTreeMap<String, String>,
    pub updated_at: Option<Timestamp>,
}
impl Record for IntegrationRecord {
    const KIND: &'static str = "integration";
    const VERSION: u8 = 1;
}

pub fn integration(
    tx: &impl Reader,
    provider: Provider,
) -> Result<Option<IntegrationRecord>, StoreError> {
    codec::get(&tx.table(INTEGRATIONS)?, provider.as_str())
}

pub fn put_integration(
    tx: &WriteTransaction,
    provider: Provider,
    record: &IntegrationRecord,
) -> Result<(), StoreError> {
    tx.open_table(INTEGRATIONS)?
        .insert(provider.as_str(), codec::encode(record).as_slice())?;
    Ok(())
}

/// Which provider ids sell a product, and what it costs (checked when a provider says
/// what was paid).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MappingRecord {
    pub ids: BTreeMap<Provider, Vec<String>>,
    /// Hundredths and currency.
    pub price: Option<(i64, String)>,
}
impl Record for MappingRecord {
    const KIND: &'static str = "product mapping";
    const VERSION: u8 = 1;
}

pub fn mapping(tx: &impl Reader, product: &ProductId) -> Result<Option<MappingRecord>, StoreError> {
    let table = tx.table(MAPPINGS)?;
    table
        .get(product.as_str())?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

/// The product a provider id is mapped to.
pub fn mapped_product(
    tx: &impl Reader,
    provider: Provider,
    id: &str,
) -> Result<Option<ProductId>, StoreError> {
    let table = tx.table(MAPPING_IDS)?;
    let Some(row) = table.get(provider_key(provider, id).as_slice())? else {
        return Ok(None);
    };
    ProductId::parse(row.value())
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            kind: "product mapping",
            detail: e.clone(),
        })
}

/// Which product already holds a provider id, if another than `product`.
pub fn mapping_owner(
    tx: &impl Reader,
    provider: Provider,
    id: &str,
    product: &ProductId,
) -> Result<Option<ProductId>, StoreError> {
    Ok(mapped_product(tx, provider, id)?.filter(|p| p != product))
}

/// Replaces a product's mapping and its reverse index.
pub fn put_mapping(
    tx: &WriteTransaction,
    product: &ProductId,
    record: &MappingRecord,
) -> Result<(), StoreError> {
    let before = mapping(tx, product)?.unwrap_or_default();
    let mut index = tx.open_table(MAPPING_IDS)?;
    for (provider, ids) in &before.ids {
        for id in ids {
            index.remove(provider_key(*provider, id).as_slice())?;
        }
    }
    for (provider, ids) in &record.ids {
        for id in ids {
            index.insert(provider_key(*provider, id).as_slice(), product.as_str())?;
        }
    }
    drop(index);
    tx.open_table(MAPPINGS)?
        .insert(product.as_str(), codec::encode(record).as_slice())?;
    Ok(())
}

/// What became of a notification.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationOutcome {
    /// It created an order.
    OrderCreated,
    /// It changed an order's status (confirmed, held, refunded, …).
    OrderChanged,
    /// It only changed what is remembered about the payment (a refund before its payment).
    Recorded,
    /// The same event arrived before; nothing was done again.
    Duplicate,
    /// A product in it is not mapped to a Dropgate product; map it and reprocess.
    NeedsMapping,
    /// Read and understood, nothing to do (another event type, a repeat state).
    Ignored,
    /// Verified but refused: another receiver, a price mismatch, no email…
    Rejected,
    /// The signature or the provider's verification failed; nothing was done.
    Unverified,
    /// Could not be completed (the provider's API did not answer); retried by the provider
    /// or by Reprocess.
    Failed,
    /// A provider's test notification (Shopify's "Send test notification", Paddle's
    /// simulator): stored and shown, never an order. Last: outcomes are stored by position.
    Test,
}

impl NotificationOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderCreated => "order_created",
            Self::OrderChanged => "order_changed",
            Self::Recorded => "recorded",
            Self::Duplicate => "duplicate",
            Self::NeedsMapping => "needs_mapping",
            Self::Ignored => "ignored",
            Self::Rejected => "rejected",
            Self::Unverified => "unverified",
            Self::Failed => "failed",
            Self::Test => "test",
        }
    }

    /// Whether Reprocess can change something.
    pub fn can_reprocess(self) -> bool {
        matches!(self, Self::NeedsMapping | Self::Failed | Self::Rejected)
    }
}

/// One notification as received, with what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationRecord {
    pub provider: Provider,
    pub received_at: Timestamp,
    pub verified: bool,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub kind: Option<PaymentKind>,
    pub payment_id: Option<String>,
    pub outcome: NotificationOutcome,
    /// Why it was not verified, not applied, or what it did, for a person.
    pub detail: String,
    pub order: Option<OrderId>,
    /// Headers the adapter reads besides the body (Shopify's topic, a delivery id), so
    /// Reprocess reads the notification exactly as it arrived.
    pub topic: Option<String>,
    pub delivery_id: Option<String>,
    /// The raw body (cut to 4 KiB when unverified: a stranger's post is kept only as
    /// evidence).
    pub body: Vec<u8>,
    pub processed_at: Timestamp,
    /// How many times it was processed (1 + reprocessings).
    pub runs: u32,
}
impl Record for NotificationRecord {
    const KIND: &'static str = "notification";
    const VERSION: u8 = 1;
}

pub fn insert_notification(
    tx: &WriteTransaction,
    record: &NotificationRecord,
) -> Result<u64, StoreError> {
    let id = meta::next_id(tx, "notification")?;
    put_notification(tx, id, record)?;
    Ok(id)
}

pub fn put_notification(
    tx: &WriteTransaction,
    id: u64,
    record: &NotificationRecord,
) -> Result<(), StoreError> {
    tx.open_table(NOTIFICATIONS)?
        .insert(id, codec::encode(record).as_slice())?;
    Ok(())
}

pub fn notification(tx: &impl Reader, id: u64) -> Result<Option<NotificationRecord>, StoreError> {
    codec::get(&tx.table(NOTIFICATIONS)?, id)
}

/// Notifications newest first below `before`, at most `limit`, and where the next page
/// starts.
pub fn notifications(
    tx: &impl Reader,
    before: Option<u64>,
    limit: usize,
) -> Result<codec::Page<NotificationRecord>, StoreError> {
    codec::newest_first(&tx.table(NOTIFICATIONS)?, before, limit)
}

/// The notification that first carried this event id, if any.
pub fn event_seen(
    tx: &impl Reader,
    provider: Provider,
    event_id: &str,
) -> Result<Option<u64>, StoreError> {
    Ok(tx
        .table(NOTIFICATION_EVENTS)?
        .get(provider_key(provider, event_id).as_slice())?
        .map(|v| v.value()))
}

/// Marks an event id as applied by `notification`.
pub fn mark_event(
    tx: &WriteTransaction,
    provider: Provider,
    event_id: &str,
    notification: u64,
) -> Result<(), StoreError> {
    tx.open_table(NOTIFICATION_EVENTS)?
        .insert(provider_key(provider, event_id).as_slice(), notification)?;
    Ok(())
}

/// What is remembered about one payment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// `None`: only a partial refund has been heard of.
    pub status: Option<PaymentStatus>,
    pub order: Option<OrderId>,
    /// The sum refunded so far (version 2).
    pub refunded: Option<MoneyRecord>,
    /// The provider's ids of the refunds counted in `refunded`, so a refund that arrives
    /// again (under another event id) is not counted twice (version 2).
    pub refund_ids: Vec<String>,
}
impl Record for PaymentRecord {
    const KIND: &'static str = "payment";
    const VERSION: u8 = 2;

    /// Version 1 was a status and an order.
    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, StoreError> {
        #[derive(Deserialize)]
        struct V1 {
            status: PaymentStatus,
            order: Option<OrderId>,
        }
        if version != 1 {
            return Err(StoreError::Corrupt {
                kind: Self::KIND,
                detail: format!("unknown record version {version}"),
            });
        }
        let old: V1 = postcard::from_bytes(payload).map_err(|e| StoreError::Corrupt {
            kind: Self::KIND,
            detail: e.to_string(),
        })?;
        Ok(Self {
            status: Some(old.status),
            order: old.order,
            ..Self::default()
        })
    }
}

pub fn payment(
    tx: &impl Reader,
    provider: Provider,
    payment_id: &str,
) -> Result<Option<PaymentRecord>, StoreError> {
    let table = tx.table(PAYMENTS)?;
    table
        .get(provider_key(provider, payment_id).as_slice())?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

pub fn put_payment(
    tx: &WriteTransaction,
    provider: Provider,
    payment_id: &str,
    record: &PaymentRecord,
) -> Result<(), StoreError> {
    tx.open_table(PAYMENTS)?.insert(
        provider_key(provider, payment_id).as_slice(),
        codec::encode(record).as_slice(),
    )?;
    Ok(())
}

/// Rewrites the notifications `edit` changes (their bodies: the outcome stays).
pub fn rewrite_notifications(
    tx: &WriteTransaction,
    edit: impl FnMut(u64, &mut NotificationRecord) -> bool,
) -> Result<u64, StoreError> {
    codec::rewrite(tx, NOTIFICATIONS, edit)
}

/// Every notification `pick` chooses, oldest first (a full scan: for a buyer's data request).
pub fn notifications_matching(
    tx: &impl Reader,
    pick: impl FnMut(&NotificationRecord) -> bool,
) -> Result<Vec<(u64, NotificationRecord)>, StoreError> {
    codec::matching(tx, NOTIFICATIONS, pick)
}

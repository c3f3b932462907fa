//! Announcements: a seller's message about a product update, mailed with fresh links to
//! every past buyer of the product at a rate the seller sets. The record holds the
//! progress; the buyers still to write to wait in a queue table, one row per address, so
//! a batch takes the next rows and removes them in the same transaction as their mails.

use super::codec::{self, Record, get};
use super::grants::{GRANTS, Grant};
use super::meta;
use super::orders::{ORDERS, OrderRecord};
use super::{Reader, StoreError};
use domain::{GrantId, OrderStatus, ProductId, Timestamp};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// key: announcement id; value: [`AnnouncementRecord`].
pub(super) const ANNOUNCEMENTS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("announcements-1");
/// key: announcement id (8 bytes, big-endian) + the buyer's address; value: [`Recipient`].
/// Rows leave as their mail is queued (or when the announcement is stopped).
pub(super) const ANNOUNCEMENT_QUEUE: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("announcement_queue-1");

/// Creates this part's tables (schema step 7).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(ANNOUNCEMENTS)?;
    tx.open_table(ANNOUNCEMENT_QUEUE)?;
    Ok(())
}

/// Where an announcement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnnouncementState {
    /// Mails go out at the announcement's rate.
    Sending,
    /// The seller stopped it; the buyers not written to yet were dropped.
    Stopped,
    /// Every buyer has a mail in the outbox.
    Done,
}

/// One announcement and how far it got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnnouncementRecord {
    pub product_id: ProductId,
    pub message: String,
    /// Mails per minute, at most.
    pub per_minute: u32,
    /// Buyers when it was made.
    pub buyers: u32,
    /// Mails queued so far.
    pub sent: u32,
    /// Buyers left out: refunded or revoked since, or never written to because stopped.
    pub skipped: u32,
    pub state: AnnouncementState,
    pub created_at: Timestamp,
    /// When the next mail may be queued.
    pub next_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}
impl Record for AnnouncementRecord {
    const KIND: &'static str = "announcement";
    const VERSION: u8 = 1;
}

/// A buyer still to write to: their grants of the product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub grants: Vec<GrantId>,
}
impl Record for Recipient {
    const KIND: &'static str = "announcement recipient";
    const VERSION: u8 = 1;
}

fn queue_key(announcement: u64, email: &str) -> Vec<u8> {
    let mut key = announcement.to_be_bytes().to_vec();
    key.extend_from_slice(email.as_bytes());
    key
}

fn queue_range(announcement: u64) -> std::ops::Range<[u8; 8]> {
    announcement.to_be_bytes()..(announcement + 1).to_be_bytes()
}

/// Every buyer of `product` whose order is confirmed and whose grant is not revoked, by
/// address (one mail each, however many times they bought it). A full scan of the grants:
/// an announcement is a rare, seller-started act.
pub fn past_buyers(
    tx: &impl Reader,
    product: &ProductId,
) -> Result<BTreeMap<String, Vec<GrantId>>, StoreError> {
    let orders = tx.table(ORDERS)?;
    let mut buyers: BTreeMap<String, Vec<GrantId>> = BTreeMap::new();
    for row in tx.table(GRANTS)?.iter()? {
        let (id, value) = row?;
        let grant: Grant = codec::decode(value.value())?;
        if &grant.product_id != product || grant.revoked_at.is_some() {
            continue;
        }
        let Some(order) = get::<u32, OrderRecord>(&orders, grant.order_id.get())? else {
            continue;
        };
        if order.status == OrderStatus::Confirmed {
            buyers
                .entry(order.email.to_string())
                .or_default()
                .push(GrantId::new(id.value()));
        }
    }
    Ok(buyers)
}

/// Stores a new announcement with its queue of buyers; returns its id.
pub fn insert(
    tx: &WriteTransaction,
    record: &AnnouncementRecord,
    buyers: BTreeMap<String, Vec<GrantId>>,
) -> Result<u64, StoreError> {
    let id = meta::next_id(tx, "announcement")?;
    tx.open_table(ANNOUNCEMENTS)?
        .insert(id, codec::encode(record).as_slice())?;
    let mut queue = tx.open_table(ANNOUNCEMENT_QUEUE)?;
    for (email, grants) in buyers {
        queue.insert(
            queue_key(id, &email).as_slice(),
            codec::encode(&Recipient { grants }).as_slice(),
        )?;
    }
    Ok(id)
}

pub fn announcement(tx: &impl Reader, id: u64) -> Result<Option<AnnouncementRecord>, StoreError> {
    get(&tx.table(ANNOUNCEMENTS)?, id)
}

pub fn put(tx: &WriteTransaction, id: u64, record: &AnnouncementRecord) -> Result<(), StoreError> {
    tx.open_table(ANNOUNCEMENTS)?
        .insert(id, codec::encode(record).as_slice())?;
    Ok(())
}

/// Every announcement, newest first, optionally of one product.
pub fn list(
    tx: &impl Reader,
    product: Option<&ProductId>,
) -> Result<Vec<(u64, AnnouncementRecord)>, StoreError> {
    let mut out = Vec::new();
    for row in tx.table(ANNOUNCEMENTS)?.iter()?.rev() {
        let (id, value) = row?;
        let record: AnnouncementRecord = codec::decode(value.value())?;
        if product.is_none_or(|p| *p == record.product_id) {
            out.push((id.value(), record));
        }
    }
    Ok(out)
}

/// The ids of the announcements still sending.
pub fn sending(tx: &impl Reader) -> Result<Vec<(u64, AnnouncementRecord)>, StoreError> {
    Ok(list(tx, None)?
        .into_iter()
        .filter(|(_, r)| r.state == AnnouncementState::Sending)
        .collect())
}

/// Takes the next buyer off an announcement's queue (removing the row).
pub fn pop_recipient(
    tx: &WriteTransaction,
    announcement: u64,
) -> Result<Option<(String, Recipient)>, StoreError> {
    let mut queue = tx.open_table(ANNOUNCEMENT_QUEUE)?;
    let range = queue_range(announcement);
    let first = queue
        .range(range.start.as_slice()..range.end.as_slice())?
        .next()
        .transpose()?
        .map(|(k, v)| (k.value().to_vec(), v.value().to_vec()));
    let Some((key, value)) = first else {
        return Ok(None);
    };
    queue.remove(key.as_slice())?;
    let email = String::from_utf8(key[8..].to_vec()).map_err(|e| StoreError::Corrupt {
        kind: "announcement recipient",
        detail: e.to_string(),
    })?;
    Ok(Some((email, codec::decode(&value)?)))
}

/// Drops every buyer still queued; returns how many there were.
pub fn drop_queue(tx: &WriteTransaction, announcement: u64) -> Result<u32, StoreError> {
    let mut queue = tx.open_table(ANNOUNCEMENT_QUEUE)?;
    let range = queue_range(announcement);
    let removed = queue
        .extract_from_if(range.start.as_slice()..range.end.as_slice(), |_, _| true)?
        .count();
    Ok(u32::try_from(removed).unwrap_or(u32::MAX))
}

/// Whether no buyer is left to write to.
pub fn queue_is_empty(tx: &WriteTransaction, announcement: u64) -> Result<bool, StoreError> {
    let queue = tx.open_table(ANNOUNCEMENT_QUEUE)?;
    let range = queue_range(announcement);
    Ok(queue
        .range(range.start.as_slice()..range.end.as_slice())?
        .next()
        .is_none())
}

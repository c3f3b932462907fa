//! The mail outbox: every mail Dropgate sends, written in the same transaction as the
//! change that causes it, with its fate (attempts, last error, the server's reply).
//!
//! A due index keyed by (next attempt, mail id) lets the worker find what to send without
//! reading sent mail; per-state counters keep the dashboard's counts O(1); an order index
//! lists an order's mails.

use super::codec::{self, Record};
use super::due_index;
use super::meta;
use super::{Reader, StoreError};
use domain::mail::{MailKind, MailState};
use domain::{GrantId, OrderId, Timestamp};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// key: mail id; value: [`MailRecord`].
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox-1");
/// key: next attempt (unix ms, u64 BE) then mail id (u64 BE); value: empty. Holds exactly
/// the mails in a pending state (see `due_index`).
const OUTBOX_DUE: due_index::DueTable = TableDefinition::new("outbox_due-1");
/// key: order id (u32 BE) then mail id (u64 BE); value: empty.
const OUTBOX_ORDERS: TableDefinition<&[u8], ()> = TableDefinition::new("outbox_orders-1");
/// key: state name; value: how many mails are in that state.
const OUTBOX_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("outbox_counts-1");

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(OUTBOX)?;
    tx.open_table(OUTBOX_DUE)?;
    tx.open_table(OUTBOX_ORDERS)?;
    tx.open_table(OUTBOX_COUNTS)?;
    Ok(())
}

/// One mail and its fate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailRecord {
    pub kind: MailKind,
    pub to_email: String,
    /// Header-safe (no control characters).
    pub to_name: String,
    /// Header-safe; the store's sender name at the time it was queued.
    pub from_name: String,
    /// Empty: the SMTP `from` address of the server configuration.
    pub from_email: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `<random@host>`, fixed when queued, so a retry after a crash carries the same id.
    pub message_id: String,
    pub order: Option<OrderId>,
    pub queued_at: Timestamp,
    /// Where the retry schedule's give-up time counts from: when queued, or when the seller
    /// last pressed "retry now".
    pub retry_from: Timestamp,
    pub state: MailState,
    pub attempts: u32,
    /// When the worker tries next (pending states only).
    pub next_attempt_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// What the SMTP server answered when it accepted the mail.
    pub server_reply: Option<String>,
    pub sent_at: Option<Timestamp>,
    /// The grants whose links this mail carries to the buyer. Once the mail is settled its
    /// stored links are cut short (see `domain::mail::redact_links`), so sending a failed
    /// one again gives these grants fresh links. Last, so version 1 rows read as "none".
    pub links: Vec<GrantId>,
    /// The seller's own words the mail carries (a product update's message), kept so that
    /// a failed mail composed again still says them. Last, so older rows read as "none".
    pub message: String,
    /// The language it is written in, so a mail composed again stays in it.
    pub language: domain::Language,
}
impl Record for MailRecord {
    const KIND: &'static str = "mail";
    const VERSION: u8 = 4;

    /// Each version added one field at the end: `links` (version 2), `message` (version
    /// 3), both empty for older rows, and `language` (version 4), English for older rows
    /// (one zero byte each in postcard).
    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, StoreError> {
        match version {
            1 => codec::upgrade_by_appending(1, 1, payload, &[0, 0, 0]),
            2 => codec::upgrade_by_appending(2, 2, payload, &[0, 0]),
            other => codec::upgrade_by_appending(other, 3, payload, &[0]),
        }
    }
}

fn order_key(order: OrderId, id: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&order.get().to_be_bytes());
    key[4..].copy_from_slice(&id.to_be_bytes());
    key
}

fn bump_count(tx: &WriteTransaction, state: MailState, up: bool) -> Result<(), StoreError> {
    let mut counts = tx.open_table(OUTBOX_COUNTS)?;
    let current = counts.get(state.as_str())?.map_or(0, |v| v.value());
    let next = if up {
        current + 1
    } else {
        current.saturating_sub(1)
    };
    counts.insert(state.as_str(), next)?;
    Ok(())
}

/// Queues a new mail; returns its id.
pub fn insert(tx: &WriteTransaction, record: &MailRecord) -> Result<u64, StoreError> {
    let id = meta::next_id(tx, "mail")?;
    put(tx, id, record, None)?;
    if let Some(order) = record.order {
        tx.open_table(OUTBOX_ORDERS)?
            .insert(order_key(order, id).as_slice(), ())?;
    }
    Ok(id)
}

/// Writes a mail and keeps the due index and the counters in step with its state
/// (`previous` is the record being replaced).
pub fn put(
    tx: &WriteTransaction,
    id: u64,
    record: &MailRecord,
    previous: Option<&MailRecord>,
) -> Result<(), StoreError> {
    let mut due = tx.open_table(OUTBOX_DUE)?;
    if let Some(old) = previous
        && let Some(at) = old.next_attempt_at.filter(|_| old.state.is_pending())
    {
        due.remove(due_index::key(at, id).as_slice())?;
    }
    if let Some(at) = record.next_attempt_at.filter(|_| record.state.is_pending()) {
        due.insert(due_index::key(at, id).as_slice(), ())?;
    }
    drop(due);
    if previous.map(|p| p.state) != Some(record.state) {
        if let Some(old) = previous {
            bump_count(tx, old.state, false)?;
        }
        bump_count(tx, record.state, true)?;
    }
    tx.open_table(OUTBOX)?
        .insert(id, codec::encode(record).as_slice())?;
    Ok(())
}

pub fn mail(tx: &impl Reader, id: u64) -> Result<Option<MailRecord>, StoreError> {
    tx.table(OUTBOX)?
        .get(id)?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

/// Ids of pending mails due at or before `now`, earliest first, at most `limit`.
pub fn due(tx: &impl Reader, now: Timestamp, limit: usize) -> Result<Vec<u64>, StoreError> {
    due_index::due(tx, OUTBOX_DUE, now, limit)
}

/// When the earliest pending mail is due, if any.
pub fn next_due(tx: &impl Reader) -> Result<Option<Timestamp>, StoreError> {
    due_index::next_due(tx, OUTBOX_DUE)
}

/// Every pending mail (for recovery at start: mails left "sending" by a crash).
pub fn pending(tx: &impl Reader) -> Result<Vec<(u64, MailRecord)>, StoreError> {
    let keys = due_index::all(tx, OUTBOX_DUE)?;
    let mut out = Vec::with_capacity(keys.len());
    for id in keys {
        if let Some(m) = mail(tx, id)? {
            out.push((id, m));
        }
    }
    Ok(out)
}

fn short(index: &str) -> StoreError {
    StoreError::Corrupt {
        kind: "outbox index",
        detail: format!("short {index} key"),
    }
}

/// A page of mails with their ids, and where the next page starts.
pub type MailPage = (Vec<(u64, MailRecord)>, Option<u64>);

/// Mails newest first below `before` (from the newest when `None`) in one of `states`
/// (all when empty), reading at most `scan` rows; also where to resume.
pub fn page(
    tx: &impl Reader,
    states: &[MailState],
    before: Option<u64>,
    limit: usize,
    scan: usize,
) -> Result<MailPage, StoreError> {
    let table = tx.table(OUTBOX)?;
    let rows = match before {
        Some(b) => table.range(..b)?,
        None => table.iter()?,
    };
    let mut out = Vec::new();
    for (read, row) in rows.rev().enumerate() {
        let (k, v) = row?;
        let id = k.value();
        if out.len() == limit || read == scan {
            return Ok((out, Some(id + 1)));
        }
        let record: MailRecord = codec::decode(v.value())?;
        if states.is_empty() || states.contains(&record.state) {
            out.push((id, record));
        }
    }
    Ok((out, None))
}

/// An order's mails, oldest first.
pub fn for_order(tx: &impl Reader, order: OrderId) -> Result<Vec<(u64, MailRecord)>, StoreError> {
    let start = order_key(order, 0);
    let end = order_key(order, u64::MAX);
    let index = tx.table(OUTBOX_ORDERS)?;
    let mut out = Vec::new();
    for row in index.range(start.as_slice()..=end.as_slice())? {
        let key = row?.0.value().to_vec();
        let id = u64::from_be_bytes(key[4..12].try_into().map_err(|_| short("order"))?);
        if let Some(m) = mail(tx, id)? {
            out.push((id, m));
        }
    }
    Ok(out)
}

/// Whether an order already has a mail of this kind (written in this transaction or before).
pub fn order_has_mail(
    tx: &impl Reader,
    order: OrderId,
    kind: MailKind,
) -> Result<bool, StoreError> {
    let start = order_key(order, 0);
    let end = order_key(order, u64::MAX);
    let ids: Vec<u64> = {
        let index = tx.table(OUTBOX_ORDERS)?;
        index
            .range(start.as_slice()..=end.as_slice())?
            .map(|row| {
                let key = row?.0.value().to_vec();
                Ok(u64::from_be_bytes(
                    key[4..12].try_into().map_err(|_| short("order"))?,
                ))
            })
            .collect::<Result<_, StoreError>>()?
    };
    for id in ids {
        if mail(tx, id)?.is_some_and(|m| m.kind == kind) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How many mails are in each state.
pub fn counts(tx: &impl Reader) -> Result<Vec<(MailState, u64)>, StoreError> {
    let table = tx.table(OUTBOX_COUNTS)?;
    MailState::ALL
        .into_iter()
        .map(|s| Ok((s, table.get(s.as_str())?.map_or(0, |v| v.value()))))
        .collect()
}

/// The seller's own templates (kinds not present use the defaults).
pub fn templates(tx: &impl Reader) -> Result<domain::mail::TemplateOverrides, StoreError> {
    meta::mail_templates(tx)
}

/// Every mail `pick` chooses, oldest first (a full scan: for a buyer's data request).
pub fn mails_matching(
    tx: &impl Reader,
    pick: impl FnMut(&MailRecord) -> bool,
) -> Result<Vec<(u64, MailRecord)>, StoreError> {
    codec::matching(tx, OUTBOX, pick)
}

/// Rewrites the mails `edit` changes (text only: state and schedule stay as they are).
pub fn rewrite_mails(
    tx: &WriteTransaction,
    edit: impl FnMut(u64, &mut MailRecord) -> bool,
) -> Result<u64, StoreError> {
    codec::rewrite(tx, OUTBOX, edit)
}

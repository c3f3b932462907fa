//! Products, their files, orders, grants, the download event log and the audit log.
//!
//! Keys are plain integers or strings; composite index keys are our own big-endian bytes.
//! Every value is a versioned [`Record`].

use super::StoreError;
use super::codec::{self, Record};
use super::journal::JournalOp;
use super::meta;
pub use domain::grant::{FileLedger, Grant, GrantRules, Sighting};
use domain::settings::truncated_ip;
use domain::{
    AttemptOutcome, CountryCode, Email, FileId, GrantId, OrderId, OrderStatus, ProductId, Timestamp,
};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// key: product id (slug); value: [`ProductRecord`].
const PRODUCTS: TableDefinition<&str, &[u8]> = TableDefinition::new("products-1");
/// key: file id; value: [`FileRecord`].
const FILES: TableDefinition<u64, &[u8]> = TableDefinition::new("files-1");
/// key: 7-digit order id; value: [`OrderRecord`].
const ORDERS: TableDefinition<u32, &[u8]> = TableDefinition::new("orders-1");
/// key: order number (17 digits); value: order id.
const ORDER_NUMBERS: TableDefinition<&str, u32> = TableDefinition::new("order_numbers-1");
/// key: payment transaction id; value: order id.
const ORDER_TRANSACTIONS: TableDefinition<&str, u32> = TableDefinition::new("order_transactions-1");
/// key: normalised email, 0x00, order id (u32 BE); value: empty. Prefix scans find an
/// address's orders.
const ORDER_EMAILS: TableDefinition<&[u8], ()> = TableDefinition::new("order_emails-1");
/// key: grant id; value: [`Grant`].
const GRANTS: TableDefinition<u64, &[u8]> = TableDefinition::new("grants-1");
/// key: HMAC of a password (current or replaced); value: grant id.
const GRANT_PASSWORDS: TableDefinition<&[u8], u64> = TableDefinition::new("grant_passwords-1");
/// key: event sequence number; value: [`EventRecord`].
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events-1");
/// key: grant id (u64 BE) then event sequence (u64 BE); value: empty.
const GRANT_EVENTS: TableDefinition<&[u8], ()> = TableDefinition::new("grant_events-1");
/// key: audit sequence number; value: [`AuditRecord`].
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit-1");

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(PRODUCTS)?;
    tx.open_table(FILES)?;
    tx.open_table(ORDERS)?;
    tx.open_table(ORDER_NUMBERS)?;
    tx.open_table(ORDER_TRANSACTIONS)?;
    tx.open_table(ORDER_EMAILS)?;
    tx.open_table(GRANTS)?;
    tx.open_table(GRANT_PASSWORDS)?;
    tx.open_table(EVENTS)?;
    tx.open_table(GRANT_EVENTS)?;
    tx.open_table(AUDIT)?;
    Ok(())
}

/// A product and its delivery rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRecord {
    pub name: String,
    /// 0 = unlimited.
    pub max_downloads: u32,
    /// 0 = unlimited.
    pub download_days: u32,
    pub country_lock: bool,
    pub files: Vec<FileId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
impl Record for ProductRecord {
    const KIND: &'static str = "product";
    const VERSION: u8 = 1;
}

impl ProductRecord {
    /// The rules a new grant of this product copies.
    pub fn rules(&self) -> GrantRules {
        GrantRules {
            download_days: self.download_days,
            max_downloads: self.max_downloads,
            country_lock: self.country_lock,
        }
    }
}

/// A stored file: metadata only; the bytes are in the object store under `storage_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub product_id: ProductId,
    /// The real name, used only for `Content-Disposition`.
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: [u8; 32],
    /// 128 random bits, hex; never shown anywhere.
    pub storage_key: String,
    pub uploaded_at: Timestamp,
}
impl Record for FileRecord {
    const KIND: &'static str = "file";
    const VERSION: u8 = 1;
}

/// Where an order came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderSource {
    Webhook,
    Api,
    Admin,
    Import,
    Complimentary,
}

/// A sale record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order_number: String,
    pub transaction_id: Option<String>,
    pub email: Email,
    pub name: String,
    pub status: OrderStatus,
    pub source: OrderSource,
    pub grants: Vec<GrantId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
impl Record for OrderRecord {
    const KIND: &'static str = "order";
    const VERSION: u8 = 1;
}

impl Record for Grant {
    const KIND: &'static str = "grant";
    const VERSION: u8 = 1;
}

/// What happened to one download attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Allowed and started; `bytes` is updated when the connection ends.
    Allowed,
    /// Refused, with the reason code.
    Refused(String),
}

impl Outcome {
    /// The stored form of an outcome (refusals keep their code as text, as always stored).
    pub fn of(outcome: AttemptOutcome) -> Self {
        if outcome.is_allowed() {
            Self::Allowed
        } else {
            Self::Refused(outcome.as_str().to_owned())
        }
    }

    /// The outcome this stored form names.
    pub fn attempt(&self) -> AttemptOutcome {
        match self {
            Self::Allowed => AttemptOutcome::Allowed,
            Self::Refused(code) => AttemptOutcome::from_code(code),
        }
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub at: Timestamp,
    pub grant: GrantId,
    pub file: Option<FileId>,
    pub ip: IpAddr,
    pub country: Option<CountryCode>,
    pub user_agent: String,
    pub bytes: u64,
    pub outcome: Outcome,
}
impl Record for EventRecord {
    const KIND: &'static str = "event";
    const VERSION: u8 = 1;
}

/// One vendor action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: Timestamp,
    /// "admin:owner@example.com" or "api-token:3".
    pub actor: String,
    pub action: String,
    pub target: String,
    /// JSON snapshots.
    pub before: String,
    pub after: String,
}
impl Record for AuditRecord {
    const KIND: &'static str = "audit entry";
    const VERSION: u8 = 1;
}

fn get<K: redb::Key + 'static, R: Record>(
    table: &impl ReadableTable<K, &'static [u8]>,
    key: impl std::borrow::Borrow<K::SelfType<'static>>,
) -> Result<Option<R>, StoreError> {
    table
        .get(key)?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

// ---- products and files ----

pub fn product(tx: &ReadTransaction, id: &ProductId) -> Result<Option<ProductRecord>, StoreError> {
    let table = tx.open_table(PRODUCTS)?;
    table
        .get(id.as_str())?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

pub fn product_in(
    tx: &WriteTransaction,
    id: &ProductId,
) -> Result<Option<ProductRecord>, StoreError> {
    let table = tx.open_table(PRODUCTS)?;
    table
        .get(id.as_str())?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

pub fn put_product(
    tx: &WriteTransaction,
    id: &ProductId,
    record: &ProductRecord,
) -> Result<(), StoreError> {
    tx.open_table(PRODUCTS)?
        .insert(id.as_str(), codec::encode(record).as_slice())?;
    Ok(())
}

pub fn remove_product(tx: &WriteTransaction, id: &ProductId) -> Result<(), StoreError> {
    tx.open_table(PRODUCTS)?.remove(id.as_str())?;
    Ok(())
}

pub fn products(tx: &ReadTransaction) -> Result<Vec<(ProductId, ProductRecord)>, StoreError> {
    let table = tx.open_table(PRODUCTS)?;
    table
        .iter()?
        .map(|row| {
            let (k, v) = row?;
            let id = ProductId::parse(k.value()).map_err(|detail| StoreError::Corrupt {
                kind: "product id",
                detail,
            })?;
            Ok((id, codec::decode(v.value())?))
        })
        .collect()
}

pub fn insert_file(tx: &WriteTransaction, record: &FileRecord) -> Result<FileId, StoreError> {
    let id = meta::next_id(tx, "file")?;
    tx.open_table(FILES)?
        .insert(id, codec::encode(record).as_slice())?;
    Ok(FileId::new(id))
}

pub fn file(tx: &ReadTransaction, id: FileId) -> Result<Option<FileRecord>, StoreError> {
    get(&tx.open_table(FILES)?, id.get())
}

pub fn file_in(tx: &WriteTransaction, id: FileId) -> Result<Option<FileRecord>, StoreError> {
    get(&tx.open_table(FILES)?, id.get())
}

pub fn remove_file(tx: &WriteTransaction, id: FileId) -> Result<(), StoreError> {
    tx.open_table(FILES)?.remove(id.get())?;
    Ok(())
}

/// Every storage key the store refers to (for removing orphaned objects).
pub fn storage_keys(tx: &ReadTransaction) -> Result<Vec<String>, StoreError> {
    let table = tx.open_table(FILES)?;
    table
        .iter()?
        .map(|row| Ok(codec::decode::<FileRecord>(row?.1.value())?.storage_key))
        .collect()
}

// ---- orders ----

fn email_key(email: &Email, order: OrderId) -> Vec<u8> {
    let mut key = email.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&order.get().to_be_bytes());
    key
}

pub fn order_exists(tx: &WriteTransaction, id: OrderId) -> Result<bool, StoreError> {
    Ok(tx.open_table(ORDERS)?.get(id.get())?.is_some())
}

pub fn order_by_transaction_in(
    tx: &WriteTransaction,
    transaction_id: &str,
) -> Result<Option<OrderId>, StoreError> {
    Ok(tx
        .open_table(ORDER_TRANSACTIONS)?
        .get(transaction_id)?
        .and_then(|g| OrderId::new(g.value())))
}

pub fn order_number_taken(tx: &WriteTransaction, number: &str) -> Result<bool, StoreError> {
    Ok(tx.open_table(ORDER_NUMBERS)?.get(number)?.is_some())
}

/// Writes an order and keeps its indexes in step (`previous` is the record being replaced).
pub fn put_order(
    tx: &WriteTransaction,
    id: OrderId,
    record: &OrderRecord,
    previous: Option<&OrderRecord>,
) -> Result<(), StoreError> {
    let mut emails = tx.open_table(ORDER_EMAILS)?;
    if let Some(old) = previous {
        if old.email != record.email {
            emails.remove(email_key(&old.email, id).as_slice())?;
        }
    } else {
        tx.open_table(ORDER_NUMBERS)?
            .insert(record.order_number.as_str(), id.get())?;
        if let Some(t) = &record.transaction_id {
            tx.open_table(ORDER_TRANSACTIONS)?
                .insert(t.as_str(), id.get())?;
        }
    }
    emails.insert(email_key(&record.email, id).as_slice(), ())?;
    tx.open_table(ORDERS)?
        .insert(id.get(), codec::encode(record).as_slice())?;
    Ok(())
}

pub fn order(tx: &ReadTransaction, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
    get(&tx.open_table(ORDERS)?, id.get())
}

pub fn order_in(tx: &WriteTransaction, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
    get(&tx.open_table(ORDERS)?, id.get())
}

pub fn order_by_number(tx: &ReadTransaction, number: &str) -> Result<Option<OrderId>, StoreError> {
    Ok(tx
        .open_table(ORDER_NUMBERS)?
        .get(number)?
        .and_then(|g| OrderId::new(g.value())))
}

pub fn order_by_transaction(
    tx: &ReadTransaction,
    transaction_id: &str,
) -> Result<Option<OrderId>, StoreError> {
    Ok(tx
        .open_table(ORDER_TRANSACTIONS)?
        .get(transaction_id)?
        .and_then(|g| OrderId::new(g.value())))
}

pub fn orders_by_email(tx: &ReadTransaction, email: &Email) -> Result<Vec<OrderId>, StoreError> {
    orders_by_email_from(&tx.open_table(ORDER_EMAILS)?, email)
}

/// [`orders_by_email`] inside a write transaction.
pub fn orders_by_email_in(
    tx: &WriteTransaction,
    email: &Email,
) -> Result<Vec<OrderId>, StoreError> {
    orders_by_email_from(&tx.open_table(ORDER_EMAILS)?, email)
}

fn orders_by_email_from(
    table: &impl ReadableTable<&'static [u8], ()>,
    email: &Email,
) -> Result<Vec<OrderId>, StoreError> {
    let mut prefix = email.as_str().as_bytes().to_vec();
    prefix.push(0);
    let mut end = prefix.clone();
    *end.last_mut().expect("non-empty") = 1;
    let mut ids = Vec::new();
    for row in table.range(prefix.as_slice()..end.as_slice())? {
        let key = row?.0.value().to_vec();
        let raw: [u8; 4] = key[key.len() - 4..]
            .try_into()
            .map_err(|_| StoreError::Corrupt {
                kind: "email index",
                detail: "short key".into(),
            })?;
        ids.extend(OrderId::new(u32::from_be_bytes(raw)));
    }
    Ok(ids)
}

/// The keys orders are found by; every key given must match.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrderKeys<'a> {
    pub email: Option<&'a Email>,
    pub order_id: Option<OrderId>,
    pub order_number: Option<&'a str>,
    pub transaction_id: Option<&'a str>,
}

impl OrderKeys<'_> {
    /// Whether no key is given.
    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.order_id.is_none()
            && self.order_number.is_none()
            && self.transaction_id.is_none()
    }
}

/// Orders matching every given key; none when no key is given.
pub fn orders_matching(
    tx: &ReadTransaction,
    keys: &OrderKeys<'_>,
) -> Result<Vec<OrderId>, StoreError> {
    let mut sets: Vec<Vec<OrderId>> = Vec::new();
    if let Some(email) = keys.email {
        sets.push(orders_by_email(tx, email)?);
    }
    if let Some(id) = keys.order_id {
        sets.push(order(tx, id)?.map(|_| id).into_iter().collect());
    }
    if let Some(number) = keys.order_number {
        sets.push(order_by_number(tx, number.trim())?.into_iter().collect());
    }
    if let Some(transaction) = keys.transaction_id {
        sets.push(
            order_by_transaction(tx, transaction.trim())?
                .into_iter()
                .collect(),
        );
    }
    let Some(first) = sets.pop() else {
        return Ok(Vec::new());
    };
    Ok(first
        .into_iter()
        .filter(|id| sets.iter().all(|set| set.contains(id)))
        .collect())
}

/// The most recent orders first, at most `limit`.
pub fn recent_orders(
    tx: &ReadTransaction,
    limit: usize,
) -> Result<Vec<(OrderId, OrderRecord)>, StoreError> {
    let table = tx.open_table(ORDERS)?;
    let mut all = table
        .iter()?
        .map(|row| {
            let (k, v) = row?;
            Ok((
                OrderId::new(k.value()),
                codec::decode::<OrderRecord>(v.value())?,
            ))
        })
        .filter_map(|r: Result<(Option<OrderId>, OrderRecord), StoreError>| {
            r.map(|(id, o)| id.map(|id| (id, o))).transpose()
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    all.sort_by_key(|(_, order)| std::cmp::Reverse(order.created_at));
    all.truncate(limit);
    Ok(all)
}

// ---- grants ----

pub fn insert_grant(tx: &WriteTransaction, record: &Grant) -> Result<GrantId, StoreError> {
    let id = meta::next_id(tx, "grant")?;
    tx.open_table(GRANT_PASSWORDS)?
        .insert(record.password_digest.as_slice(), id)?;
    tx.open_table(GRANTS)?
        .insert(id, codec::encode(record).as_slice())?;
    Ok(GrantId::new(id))
}

/// Overwrites a grant; indexes a new password digest if it changed.
pub fn put_grant(tx: &WriteTransaction, id: GrantId, record: &Grant) -> Result<(), StoreError> {
    tx.open_table(GRANT_PASSWORDS)?
        .insert(record.password_digest.as_slice(), id.get())?;
    tx.open_table(GRANTS)?
        .insert(id.get(), codec::encode(record).as_slice())?;
    Ok(())
}

pub fn grant(tx: &ReadTransaction, id: GrantId) -> Result<Option<Grant>, StoreError> {
    get(&tx.open_table(GRANTS)?, id.get())
}

pub fn grant_in(tx: &WriteTransaction, id: GrantId) -> Result<Option<Grant>, StoreError> {
    get(&tx.open_table(GRANTS)?, id.get())
}

pub fn grant_by_digest(
    tx: &ReadTransaction,
    digest: &[u8; 32],
) -> Result<Option<GrantId>, StoreError> {
    Ok(tx
        .open_table(GRANT_PASSWORDS)?
        .get(digest.as_slice())?
        .map(|g| GrantId::new(g.value())))
}

/// Gives back every reservation (after a restart no download is in progress).
pub fn release_all_reservations(tx: &WriteTransaction) -> Result<u64, StoreError> {
    let mut table = tx.open_table(GRANTS)?;
    let mut changed = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        let mut g: Grant = codec::decode(v.value())?;
        if g.ledger.iter().any(|l| l.reserved > 0) {
            for l in &mut g.ledger {
                l.reserved = 0;
            }
            changed.push((k.value(), g));
        }
    }
    for (id, g) in &changed {
        table.insert(*id, codec::encode(g).as_slice())?;
    }
    Ok(changed.len() as u64)
}

/// Shortens the IP of every first-country and blocking sighting older than `cutoff` to its
/// network; the country and time stay, so the lock and the block keep working. Returns how
/// many grants changed.
pub fn shorten_sighting_ips_before(
    tx: &WriteTransaction,
    cutoff: Timestamp,
) -> Result<u64, StoreError> {
    let expired = |s: &Option<Sighting>| {
        s.as_ref()
            .is_some_and(|s| s.at < cutoff && truncated_ip(s.ip) != s.ip)
    };
    let mut table = tx.open_table(GRANTS)?;
    let mut changed = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        let mut g: Grant = codec::decode(v.value())?;
        if expired(&g.locked) || expired(&g.blocked_by) {
            for sighting in [&mut g.locked, &mut g.blocked_by].into_iter().flatten() {
                if sighting.at < cutoff {
                    sighting.ip = truncated_ip(sighting.ip);
                }
            }
            changed.push((k.value(), g));
        }
    }
    for (id, g) in &changed {
        table.insert(*id, codec::encode(g).as_slice())?;
    }
    Ok(changed.len() as u64)
}

/// Shortens the IP of events older than `cutoff` to its network, walking at most `limit` events from the
/// cursor the last run left. Returns the new cursor, how many events changed, and whether
/// the walk reached events that are still within the retention period (the job is done).
pub fn shorten_event_ips_before(
    tx: &WriteTransaction,
    cutoff: Timestamp,
    limit: usize,
) -> Result<(u64, u64, bool), StoreError> {
    let mut cursor = meta::ip_retention_cursor(tx)?;
    let mut table = tx.open_table(EVENTS)?;
    let mut changed = Vec::new();
    let mut reached_recent = true;
    for (walked, row) in table.range(cursor.saturating_add(1)..)?.enumerate() {
        if walked == limit {
            reached_recent = false;
            break;
        }
        let (k, v) = row?;
        let mut event: EventRecord = codec::decode(v.value())?;
        // Events are numbered in the order they were written, so the first recent one
        // ends the walk; the few written out of time order are caught on a later run.
        if event.at >= cutoff {
            break;
        }
        cursor = k.value();
        if truncated_ip(event.ip) != event.ip {
            event.ip = truncated_ip(event.ip);
            changed.push((cursor, event));
        }
    }
    for (seq, event) in &changed {
        table.insert(*seq, codec::encode(event).as_slice())?;
    }
    drop(table);
    meta::set_ip_retention_cursor(tx, cursor)?;
    Ok((cursor, changed.len() as u64, reached_recent))
}

// ---- the download path ----

/// The tables a download reads and writes, opened once for a whole group-commit batch
/// (see `Batch::downloads`) rather than once per lookup. Every row written through them is
/// also kept as a [`JournalOp`], so the batch can be made durable by the download journal.
pub struct DownloadTables<'tx> {
    journal: Vec<JournalOp>,
    passwords: redb::Table<'tx, &'static [u8], u64>,
    grants: redb::Table<'tx, u64, &'static [u8]>,
    products: redb::Table<'tx, &'static str, &'static [u8]>,
    files: redb::Table<'tx, u64, &'static [u8]>,
    orders: redb::Table<'tx, u32, &'static [u8]>,
    events: redb::Table<'tx, u64, &'static [u8]>,
    grant_events: redb::Table<'tx, &'static [u8], ()>,
}

impl<'tx> DownloadTables<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            journal: Vec::new(),
            passwords: tx.open_table(GRANT_PASSWORDS)?,
            grants: tx.open_table(GRANTS)?,
            products: tx.open_table(PRODUCTS)?,
            files: tx.open_table(FILES)?,
            orders: tx.open_table(ORDERS)?,
            events: tx.open_table(EVENTS)?,
            grant_events: tx.open_table(GRANT_EVENTS)?,
        })
    }

    /// The grant a password digest (current or replaced) belongs to.
    pub fn grant_by_digest(&self, digest: &[u8; 32]) -> Result<Option<GrantId>, StoreError> {
        Ok(self
            .passwords
            .get(digest.as_slice())?
            .map(|g| GrantId::new(g.value())))
    }

    pub fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        get(&self.grants, id.get())
    }

    /// Overwrites a grant whose password did not change (the download path never changes
    /// it), so the password index is left alone.
    pub fn update_grant(&mut self, id: GrantId, record: &Grant) -> Result<(), StoreError> {
        let record = codec::encode(record);
        self.grants.insert(id.get(), record.as_slice())?;
        self.journal.push(JournalOp::Grant {
            id: id.get(),
            record,
        });
        Ok(())
    }

    pub fn product(&self, id: &ProductId) -> Result<Option<ProductRecord>, StoreError> {
        self.products
            .get(id.as_str())?
            .map(|row| codec::decode(row.value()))
            .transpose()
    }

    pub fn file(&self, id: FileId) -> Result<Option<FileRecord>, StoreError> {
        get(&self.files, id.get())
    }

    pub fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        get(&self.orders, id.get())
    }

    /// Appends an event; returns its sequence number.
    pub fn insert_event(&mut self, record: &EventRecord) -> Result<u64, StoreError> {
        let (seq, key, record) = append_event(&mut self.events, &mut self.grant_events, record)?;
        self.journal.push(JournalOp::Event { seq, record });
        self.journal.push(JournalOp::GrantEvent { key });
        Ok(seq)
    }

    pub fn event(&self, seq: u64) -> Result<Option<EventRecord>, StoreError> {
        get(&self.events, seq)
    }

    pub fn put_event(&mut self, seq: u64, record: &EventRecord) -> Result<(), StoreError> {
        let record = codec::encode(record);
        self.events.insert(seq, record.as_slice())?;
        self.journal.push(JournalOp::Event { seq, record });
        Ok(())
    }

    /// The rows written through these tables so far, in order, for the journal.
    pub(super) fn take_journal(&mut self) -> Vec<JournalOp> {
        std::mem::take(&mut self.journal)
    }
}

/// What the download path reads: one trait over the batch's open tables (a GET, which
/// then writes) and a read transaction (a HEAD and the buyer page, which write nothing),
/// so both decide from the same lookups.
pub trait DeliveryReads {
    /// The grant a password digest (current or replaced) belongs to.
    fn grant_by_digest(&self, digest: &[u8; 32]) -> Result<Option<GrantId>, StoreError>;
    fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError>;
    fn product(&self, id: &ProductId) -> Result<Option<ProductRecord>, StoreError>;
    fn file(&self, id: FileId) -> Result<Option<FileRecord>, StoreError>;
    fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError>;
}

impl DeliveryReads for DownloadTables<'_> {
    fn grant_by_digest(&self, digest: &[u8; 32]) -> Result<Option<GrantId>, StoreError> {
        Self::grant_by_digest(self, digest)
    }
    fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        Self::grant(self, id)
    }
    fn product(&self, id: &ProductId) -> Result<Option<ProductRecord>, StoreError> {
        Self::product(self, id)
    }
    fn file(&self, id: FileId) -> Result<Option<FileRecord>, StoreError> {
        Self::file(self, id)
    }
    fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        Self::order(self, id)
    }
}

impl DeliveryReads for ReadTransaction {
    fn grant_by_digest(&self, digest: &[u8; 32]) -> Result<Option<GrantId>, StoreError> {
        grant_by_digest(self, digest)
    }
    fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        grant(self, id)
    }
    fn product(&self, id: &ProductId) -> Result<Option<ProductRecord>, StoreError> {
        product(self, id)
    }
    fn file(&self, id: FileId) -> Result<Option<FileRecord>, StoreError> {
        file(self, id)
    }
    fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        order(self, id)
    }
}

/// Writes a journaled batch's rows again (crash recovery). The values are absolute, so
/// applying a batch that is already in the file changes nothing.
pub(super) fn replay(tx: &WriteTransaction, ops: &[JournalOp]) -> Result<(), StoreError> {
    let mut grants = tx.open_table(GRANTS)?;
    let mut events = tx.open_table(EVENTS)?;
    let mut grant_events = tx.open_table(GRANT_EVENTS)?;
    for op in ops {
        match op {
            JournalOp::Grant { id, record } => {
                grants.insert(*id, record.as_slice())?;
            }
            JournalOp::Event { seq, record } => {
                events.insert(*seq, record.as_slice())?;
            }
            JournalOp::GrantEvent { key } => {
                grant_events.insert(key.as_slice(), ())?;
            }
        }
    }
    Ok(())
}

// ---- events and audit ----

pub fn insert_event(tx: &WriteTransaction, record: &EventRecord) -> Result<u64, StoreError> {
    append_event(
        &mut tx.open_table(EVENTS)?,
        &mut tx.open_table(GRANT_EVENTS)?,
        record,
    )
    .map(|(seq, _, _)| seq)
}

/// Appends an event under the next sequence number and indexes it by grant. Events are
/// never removed, so the next number is one past the last key: no counter to keep (and
/// no `meta` page to copy on every download). Returns the number, the index key and the
/// encoded record.
fn append_event(
    events: &mut redb::Table<'_, u64, &'static [u8]>,
    grant_events: &mut redb::Table<'_, &'static [u8], ()>,
    record: &EventRecord,
) -> Result<(u64, [u8; 16], Vec<u8>), StoreError> {
    let seq = events.last()?.map_or(0, |(seq, _)| seq.value()) + 1;
    let encoded = codec::encode(record);
    events.insert(seq, encoded.as_slice())?;
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&record.grant.get().to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    grant_events.insert(key.as_slice(), ())?;
    Ok((seq, key, encoded))
}

/// A grant's events, oldest first.
pub fn grant_events(tx: &ReadTransaction, grant: GrantId) -> Result<Vec<EventRecord>, StoreError> {
    let start = grant.get().to_be_bytes();
    let end = (grant.get() + 1).to_be_bytes();
    let index = tx.open_table(GRANT_EVENTS)?;
    let events = tx.open_table(EVENTS)?;
    let mut out = Vec::new();
    for row in index.range(start.as_slice()..end.as_slice())? {
        let key = row?.0.value().to_vec();
        let seq = u64::from_be_bytes(key[8..16].try_into().map_err(|_| StoreError::Corrupt {
            kind: "event index",
            detail: "short key".into(),
        })?);
        if let Some(e) = get::<u64, EventRecord>(&events, seq)? {
            out.push(e);
        }
    }
    Ok(out)
}

pub fn insert_audit(tx: &WriteTransaction, record: &AuditRecord) -> Result<u64, StoreError> {
    let seq = meta::next_id(tx, "audit")?;
    tx.open_table(AUDIT)?
        .insert(seq, codec::encode(record).as_slice())?;
    Ok(seq)
}

/// Newest audit entries first.
pub fn audit(tx: &ReadTransaction, limit: usize) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
    let table = tx.open_table(AUDIT)?;
    table
        .iter()?
        .rev()
        .take(limit)
        .map(|row| {
            let (k, v) = row?;
            Ok((k.value(), codec::decode(v.value())?))
        })
        .collect()
}

/// How many grants for `product` could still download at `now` (not revoked, window open,
/// order confirmed). A full scan: deletions are rare and vendor-initiated.
pub fn live_grants_for_product(
    tx: &WriteTransaction,
    product: &ProductId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let grants = tx.open_table(GRANTS)?;
    let orders = tx.open_table(ORDERS)?;
    let mut live = 0;
    for row in grants.iter()? {
        let g: Grant = codec::decode(row?.1.value())?;
        if &g.product_id != product {
            continue;
        }
        let status = match orders.get(g.order_id.get())? {
            Some(o) => codec::decode::<OrderRecord>(o.value())?.status,
            None => continue,
        };
        live += u64::from(g.is_live(status, now));
    }
    Ok(live)
}

// ---- listing pages for the admin ----

/// Orders newest first whose order number sorts before `before` (from the newest when
/// `None`), at most `limit`. Order numbers are timestamps, so their index is the
/// chronological index: a page costs `limit` lookups however many orders there are.
pub fn order_page(
    tx: &ReadTransaction,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<(OrderId, OrderRecord)>, StoreError> {
    let numbers = tx.open_table(ORDER_NUMBERS)?;
    let orders = tx.open_table(ORDERS)?;
    let rows = match before {
        Some(b) => numbers.range::<&str>(..b)?,
        None => numbers.iter()?,
    };
    let mut out = Vec::with_capacity(limit);
    for row in rows.rev() {
        if out.len() == limit {
            break;
        }
        let Some(id) = OrderId::new(row?.1.value()) else {
            continue;
        };
        if let Some(record) = get::<u32, OrderRecord>(&orders, id.get())? {
            out.push((id, record));
        }
    }
    Ok(out)
}

/// How many orders there are.
pub fn order_count(tx: &ReadTransaction) -> Result<u64, StoreError> {
    use redb::ReadableTableMetadata;
    Ok(tx.open_table(ORDERS)?.len()?)
}

/// Events kept by a walk with their sequence numbers, and where to resume.
pub type EventWalk = (Vec<(u64, EventRecord)>, Option<u64>);

/// Events newest first with their sequence numbers, starting below `before` (from the
/// newest when `None`), reading at most `scan` rows; `keep` picks the ones returned,
/// `stop` ends the walk before an event (e.g. one older than a chart's first day, or
/// when a page is full). Also returns where to resume (`before` for the next walk) when
/// the walk ended before the oldest event.
pub fn walk_events(
    tx: &ReadTransaction,
    before: Option<u64>,
    scan: usize,
    mut keep: impl FnMut(&EventRecord) -> bool,
    mut stop: impl FnMut(&EventRecord, usize) -> bool,
) -> Result<EventWalk, StoreError> {
    let events = tx.open_table(EVENTS)?;
    let rows = match before {
        Some(b) => events.range(..b)?,
        None => events.iter()?,
    };
    let mut out = Vec::new();
    let mut last_read = None;
    for (read, row) in rows.rev().enumerate() {
        let (k, v) = row?;
        let seq = k.value();
        if read == scan {
            return Ok((out, last_read));
        }
        let event: EventRecord = codec::decode(v.value())?;
        if stop(&event, out.len()) {
            return Ok((out, Some(seq + 1)));
        }
        last_read = Some(seq);
        if keep(&event) {
            out.push((seq, event));
        }
    }
    Ok((out, None))
}

/// Grants that are blocked now, from the grant ids given (callers pass the grants of
/// recent second-country refusals, so this never scans every grant).
pub fn still_blocked(
    tx: &ReadTransaction,
    candidates: impl IntoIterator<Item = GrantId>,
) -> Result<Vec<(GrantId, Grant)>, StoreError> {
    let grants = tx.open_table(GRANTS)?;
    let mut out = Vec::new();
    for id in candidates {
        if let Some(g) = get::<u64, Grant>(&grants, id.get())?
            && g.blocked_by.is_some()
            && g.revoked_at.is_none()
        {
            out.push((id, g));
        }
    }
    Ok(out)
}

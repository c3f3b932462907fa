//! Events out: the seller's webhook endpoints and the durable outbox of deliveries to
//! them. A delivery is written in the same transaction as the change it reports (see
//! [`emit`]), so an acknowledged change always reaches its endpoints, however often the
//! process restarts; a due index keyed by (next attempt, id) lets the worker find work
//! without reading delivered rows.

use super::codec::{self, Record};
use super::due_index;
use super::meta;
use super::{Reader, StoreError};
use domain::Timestamp;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// key: endpoint id; value: [`EndpointRecord`].
const ENDPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("webhook_endpoints-1");
/// key: delivery id; value: [`DeliveryRecord`].
const DELIVERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("webhook_deliveries-1");
/// key: next attempt (unix ms, u64 BE) then delivery id (u64 BE); value: empty. Holds
/// exactly the pending deliveries.
const DUE: due_index::DueTable = TableDefinition::new("webhook_due-1");
/// key: a fixed name; value: a number. `blocked_cursor`: the download event up to which
/// blocks have been announced as `grant.blocked`.
const STATE: TableDefinition<&str, u64> = TableDefinition::new("webhook_state-1");
const BLOCKED_CURSOR: &str = "blocked_cursor";

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(ENDPOINTS)?;
    tx.open_table(DELIVERIES)?;
    tx.open_table(DUE)?;
    tx.open_table(STATE)?;
    Ok(())
}

/// Whether any endpoint subscribes to `event_type`.
pub fn subscribed(tx: &impl Reader, event_type: &str) -> Result<bool, StoreError> {
    Ok(endpoints(tx)?
        .iter()
        .any(|(_, e)| e.events.iter().any(|t| t == event_type)))
}

/// The download event up to which blocks were announced.
pub fn blocked_cursor(tx: &impl Reader) -> Result<u64, StoreError> {
    Ok(tx
        .table(STATE)?
        .get(BLOCKED_CURSOR)?
        .map_or(0, |v| v.value()))
}

pub fn set_blocked_cursor(tx: &WriteTransaction, seq: u64) -> Result<(), StoreError> {
    tx.open_table(STATE)?.insert(BLOCKED_CURSOR, seq)?;
    Ok(())
}

/// The events an endpoint can subscribe to.
pub const EVENT_TYPES: [&str; 6] = [
    "order.confirmed",
    "order.refunded",
    "order.on_hold",
    "grant.blocked",
    "download.completed",
    "mail.failed",
];

/// A receiver of the seller's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub url: String,
    pub events: Vec<String>,
    /// `whsec_…`, kept whole: every delivery is signed with it.
    pub secret: String,
    pub created_at: Timestamp,
}
impl Record for EndpointRecord {
    const KIND: &'static str = "webhook endpoint";
    const VERSION: u8 = 1;
}

pub fn insert_endpoint(tx: &WriteTransaction, record: &EndpointRecord) -> Result<u64, StoreError> {
    let id = meta::next_id(tx, "webhook_endpoint")?;
    tx.open_table(ENDPOINTS)?
        .insert(id, codec::encode(record).as_slice())?;
    Ok(id)
}

/// Removes an endpoint; its pending deliveries are given up (their rows stay visible).
pub fn remove_endpoint(tx: &WriteTransaction, id: u64, now: Timestamp) -> Result<bool, StoreError> {
    if tx.open_table(ENDPOINTS)?.remove(id)?.is_none() {
        return Ok(false);
    }
    for (delivery_id, mut record) in pending(tx)? {
        if record.endpoint == id {
            let before = record.clone();
            record.state = DeliveryState::Failed;
            record.next_attempt_at = None;
            record.attempts.push(DeliveryAttempt {
                at: now,
                status: None,
                answer: String::new(),
                error: Some("the endpoint was removed".into()),
            });
            put_delivery(tx, delivery_id, &record, Some(&before))?;
        }
    }
    Ok(true)
}

pub fn endpoints(tx: &impl Reader) -> Result<Vec<(u64, EndpointRecord)>, StoreError> {
    let table = tx.table(ENDPOINTS)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        out.push((k.value(), codec::decode(v.value())?));
    }
    Ok(out)
}

pub fn endpoint(tx: &impl Reader, id: u64) -> Result<Option<EndpointRecord>, StoreError> {
    codec::get(&tx.table(ENDPOINTS)?, id)
}

/// Where a delivery stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up after the retry period (or the endpoint was removed); Resend tries again.
    Failed,
}

/// One try at delivering.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// The start of the receiver's answer (at most 500 characters).
    pub answer: String,
    /// What went wrong, if it did (a timeout, a refused connection, a non-2xx status).
    pub error: Option<String>,
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub endpoint: u64,
    pub event_type: String,
    /// The JSON body, fixed when queued: every retry sends the same bytes and the same
    /// `webhook-id`, so the receiver can recognise a repeat.
    pub payload: Vec<u8>,
    pub created_at: Timestamp,
    /// Where the give-up time counts from: when queued, or the last Resend.
    pub retry_from: Timestamp,
    pub state: DeliveryState,
    /// The latest attempts (the last 20).
    pub attempts: Vec<DeliveryAttempt>,
    pub next_attempt_at: Option<Timestamp>,
}
impl Record for DeliveryRecord {
    const KIND: &'static str = "webhook delivery";
    const VERSION: u8 = 1;
}

impl DeliveryRecord {
    /// The Standard Webhooks message id.
    pub fn message_id(id: u64) -> String {
        format!("msg_dropgate_{id}")
    }
}

/// Queues `event_type` with `data` for every endpoint that subscribes to it, in the
/// caller's transaction. The body follows Standard Webhooks: `{type, timestamp, data}`.
pub fn emit(
    tx: &WriteTransaction,
    event_type: &str,
    data: &serde_json::Value,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let subscribed: Vec<u64> = endpoints(tx)?
        .into_iter()
        .filter(|(_, e)| e.events.iter().any(|t| t == event_type))
        .map(|(id, _)| id)
        .collect();
    if subscribed.is_empty() {
        return Ok(0);
    }
    let payload = serde_json::to_vec(&serde_json::json!({
        "type": event_type,
        "timestamp": now.to_string(),
        "data": data,
    }))
    .expect("JSON values serialise");
    for endpoint in &subscribed {
        let id = meta::next_id(tx, "webhook_delivery")?;
        let record = DeliveryRecord {
            endpoint: *endpoint,
            event_type: event_type.to_owned(),
            payload: payload.clone(),
            created_at: now,
            retry_from: now,
            state: DeliveryState::Pending,
            attempts: Vec::new(),
            next_attempt_at: Some(now),
        };
        put_delivery(tx, id, &record, None)?;
    }
    Ok(subscribed.len())
}

/// Writes a delivery and keeps the due index in step (`previous` is the row replaced).
pub fn put_delivery(
    tx: &WriteTransaction,
    id: u64,
    record: &DeliveryRecord,
    previous: Option<&DeliveryRecord>,
) -> Result<(), StoreError> {
    let mut due = tx.open_table(DUE)?;
    if let Some(at) = previous
        .filter(|p| p.state == DeliveryState::Pending)
        .and_then(|p| p.next_attempt_at)
    {
        due.remove(due_index::key(at, id).as_slice())?;
    }
    if let Some(at) = record
        .next_attempt_at
        .filter(|_| record.state == DeliveryState::Pending)
    {
        due.insert(due_index::key(at, id).as_slice(), ())?;
    }
    drop(due);
    tx.open_table(DELIVERIES)?
        .insert(id, codec::encode(record).as_slice())?;
    Ok(())
}

pub fn delivery(tx: &impl Reader, id: u64) -> Result<Option<DeliveryRecord>, StoreError> {
    codec::get(&tx.table(DELIVERIES)?, id)
}

/// Ids of pending deliveries due at or before `now`, earliest first.
pub fn due(tx: &impl Reader, now: Timestamp, limit: usize) -> Result<Vec<u64>, StoreError> {
    due_index::due(tx, DUE, now, limit)
}

fn pending(tx: &impl Reader) -> Result<Vec<(u64, DeliveryRecord)>, StoreError> {
    let ids = due_index::all(tx, DUE)?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(d) = delivery(tx, id)? {
            out.push((id, d));
        }
    }
    Ok(out)
}

/// Deliveries newest first below `before`, at most `limit`, and where the next page starts.
pub fn deliveries(
    tx: &impl Reader,
    before: Option<u64>,
    limit: usize,
) -> Result<codec::Page<DeliveryRecord>, StoreError> {
    codec::newest_first(&tx.table(DELIVERIES)?, before, limit)
}

/// Rewrites the deliveries `edit` changes (their bodies: state and schedule stay).
pub fn rewrite_deliveries(
    tx: &WriteTransaction,
    edit: impl FnMut(u64, &mut DeliveryRecord) -> bool,
) -> Result<u64, StoreError> {
    codec::rewrite(tx, DELIVERIES, edit)
}

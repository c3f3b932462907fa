//! The download event log (every attempt, allowed or refused) and its index by grant.

use super::Reader;
use super::StoreError;
use super::codec::{self, Record, get};
use super::meta;
use domain::settings::truncated_ip;
use domain::{AttemptOutcome, CountryCode, FileId, GrantId, Timestamp};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// key: event sequence number; value: [`EventRecord`].
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events-1");
/// key: grant id (u64 BE) then event sequence (u64 BE); value: empty.
pub(super) const GRANT_EVENTS: TableDefinition<&[u8], ()> = TableDefinition::new("grant_events-1");

/// Creates this part's tables (schema step 2).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(EVENTS)?;
    tx.open_table(GRANT_EVENTS)?;
    Ok(())
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

/// Appends an event in an ordinary write transaction (the download path appends through
/// `DownloadTables`); returns its sequence number.
pub fn insert_event(tx: &WriteTransaction, record: &EventRecord) -> Result<u64, StoreError> {
    let mut events = tx.open_table(EVENTS)?;
    let seq = events.last()?.map_or(0, |(seq, _)| seq.value()) + 1;
    events.insert(seq, codec::encode(record).as_slice())?;
    tx.open_table(GRANT_EVENTS)?
        .insert(grant_event_key(record.grant, seq).as_slice(), ())?;
    Ok(seq)
}

/// The key of an event in the per-grant index: grant id then event sequence, big-endian,
/// so a prefix range finds a grant's events in order.
pub(super) fn grant_event_key(grant: GrantId, seq: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&grant.get().to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// A grant's events, oldest first.
pub fn grant_events(tx: &impl Reader, grant: GrantId) -> Result<Vec<EventRecord>, StoreError> {
    let start = grant.get().to_be_bytes();
    let end = (grant.get() + 1).to_be_bytes();
    let index = tx.table(GRANT_EVENTS)?;
    let events = tx.table(EVENTS)?;
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

/// Events kept by a walk with their sequence numbers, and where to resume.
pub type EventWalk = (Vec<(u64, EventRecord)>, Option<u64>);

/// Events newest first with their sequence numbers, starting below `before` (from the
/// newest when `None`), reading at most `scan` rows; `keep` picks the ones returned,
/// `stop` ends the walk before an event (e.g. one older than a chart's first day, or
/// when a page is full). Also returns where to resume (`before` for the next walk) when
/// the walk ended before the oldest event.
pub fn walk_events(
    tx: &impl Reader,
    before: Option<u64>,
    scan: usize,
    mut keep: impl FnMut(&EventRecord) -> bool,
    mut stop: impl FnMut(&EventRecord, usize) -> bool,
) -> Result<EventWalk, StoreError> {
    let events = tx.table(EVENTS)?;
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

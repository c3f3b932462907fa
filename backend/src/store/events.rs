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

/// Refusals of the same kind closer together than this fold into one entry.
pub const FOLD_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// One entry of the event log: one attempt, or a run of refused attempts folded together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// When the (first) attempt was made.
    pub at: Timestamp,
    pub grant: GrantId,
    pub file: Option<FileId>,
    pub ip: IpAddr,
    pub country: Option<CountryCode>,
    pub user_agent: String,
    pub bytes: u64,
    pub outcome: Outcome,
    /// Attempts this entry stands for (1 unless refusals were folded into it).
    pub count: u32,
    /// When the last of them was made (`at` for a single attempt).
    pub last_at: Timestamp,
}
/// Version 1 of [`EventRecord`]: one entry per attempt, no count.
#[derive(Serialize, Deserialize)]
struct EventV1 {
    at: Timestamp,
    grant: GrantId,
    file: Option<FileId>,
    ip: IpAddr,
    country: Option<CountryCode>,
    user_agent: String,
    bytes: u64,
    outcome: Outcome,
}

impl Record for EventRecord {
    const KIND: &'static str = "event";
    const VERSION: u8 = 2;

    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, StoreError> {
        if version != 1 {
            return Err(StoreError::Corrupt {
                kind: Self::KIND,
                detail: format!("unknown record version {version} (this build writes 2)"),
            });
        }
        let v1: EventV1 = postcard::from_bytes(payload).map_err(|e| StoreError::Corrupt {
            kind: Self::KIND,
            detail: e.to_string(),
        })?;
        Ok(Self {
            at: v1.at,
            grant: v1.grant,
            file: v1.file,
            ip: v1.ip,
            country: v1.country,
            user_agent: v1.user_agent,
            bytes: v1.bytes,
            outcome: v1.outcome,
            count: 1,
            last_at: v1.at,
        })
    }
}

impl EventRecord {
    /// A single attempt at `at`.
    pub fn attempt(
        at: Timestamp,
        grant: GrantId,
        file: Option<FileId>,
        ip: IpAddr,
        country: Option<CountryCode>,
        user_agent: &str,
    ) -> Self {
        Self {
            at,
            grant,
            file,
            ip,
            country,
            user_agent: user_agent.chars().take(300).collect(),
            bytes: 0,
            outcome: Outcome::Allowed,
            count: 1,
            last_at: at,
        }
    }

    /// Folds a repeated refusal into this entry, if it is one: the same refusal of the same
    /// file to the same address within [`FOLD_WINDOW`] of the last one. A script
    /// retrying an expired link then leaves one entry with a count, not thousands. Allowed
    /// downloads are never folded: each is a charge the seller sees with its own bytes.
    pub fn fold(&mut self, next: &EventRecord) -> bool {
        let repeats = matches!(self.outcome, Outcome::Refused(_))
            && self.outcome == next.outcome
            && self.grant == next.grant
            && self.file == next.file
            && self.ip == next.ip
            && next.at >= self.last_at
            && next.at.since(self.last_at) <= FOLD_WINDOW
            && self.count < u32::MAX;
        if repeats {
            self.count += 1;
            self.last_at = next.at;
        }
        repeats
    }
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

/// Removes events whose last attempt is older than `cutoff`, oldest first, at most `limit`
/// per call. The newest event is always kept, so the next one is numbered on from it and
/// sequence numbers are never reused (the IP job's cursor and the activity pages rely on
/// that). Returns how many were removed and whether the walk reached events to keep.
pub fn remove_events_before(
    tx: &WriteTransaction,
    cutoff: Timestamp,
    limit: usize,
) -> Result<(u64, bool), StoreError> {
    let mut table = tx.open_table(EVENTS)?;
    let newest = table.last()?.map(|(k, _)| k.value());
    let mut doomed = Vec::new();
    let mut reached_recent = true;
    for row in table.iter()? {
        let (k, v) = row?;
        if Some(k.value()) == newest {
            break;
        }
        if doomed.len() == limit {
            reached_recent = false;
            break;
        }
        let event: EventRecord = codec::decode(v.value())?;
        // In the order written, so the first recent one ends the walk (as for IPs).
        if event.last_at >= cutoff {
            break;
        }
        doomed.push((k.value(), event.grant));
    }
    let mut index = tx.open_table(GRANT_EVENTS)?;
    for (seq, grant) in &doomed {
        table.remove(*seq)?;
        index.remove(grant_event_key(*grant, *seq).as_slice())?;
    }
    Ok((doomed.len() as u64, reached_recent))
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

/// Events after sequence number `after`, oldest first, at most `limit`.
pub fn events_after(
    tx: &impl Reader,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, EventRecord)>, StoreError> {
    let events = tx.table(EVENTS)?;
    let mut out = Vec::new();
    for row in events.range(after.saturating_add(1)..)?.take(limit) {
        let (k, v) = row?;
        out.push((k.value(), codec::decode(v.value())?));
    }
    Ok(out)
}

/// The sequence number of the newest event (0 when there is none).
pub fn last_seq(tx: &impl Reader) -> Result<u64, StoreError> {
    Ok(tx.table(EVENTS)?.last()?.map_or(0, |(k, _)| k.value()))
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

/// Calls `each` for every event, oldest first (streaming exports: nothing is collected).
pub fn each_event<E: From<StoreError>>(
    tx: &impl Reader,
    mut each: impl FnMut(u64, EventRecord) -> Result<(), E>,
) -> Result<(), E> {
    for row in tx.table(EVENTS)?.iter().map_err(StoreError::from)? {
        let (k, v) = row.map_err(StoreError::from)?;
        each(k.value(), codec::decode(v.value())?)?;
    }
    Ok(())
}

/// Rewrites a grant's events that `edit` changes (an erasure takes the IP addresses and
/// browsers out; times, bytes, countries and outcomes stay, so the counts do).
pub fn rewrite_grant_events(
    tx: &WriteTransaction,
    grant: GrantId,
    mut edit: impl FnMut(&mut EventRecord) -> bool,
) -> Result<u64, StoreError> {
    let start = grant.get().to_be_bytes();
    let end = (grant.get() + 1).to_be_bytes();
    let mut seqs = Vec::new();
    for row in tx
        .open_table(GRANT_EVENTS)?
        .range(start.as_slice()..end.as_slice())?
    {
        let key = row?.0.value().to_vec();
        if let Ok(seq) = <[u8; 8]>::try_from(&key[8..]) {
            seqs.push(u64::from_be_bytes(seq));
        }
    }
    let mut events = tx.open_table(EVENTS)?;
    let mut changed = 0;
    for seq in seqs {
        let Some(mut event) = get::<u64, EventRecord>(&events, seq)? else {
            continue;
        };
        if edit(&mut event) {
            events.insert(seq, codec::encode(&event).as_slice())?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(at_secs: i64, ip: [u8; 4], code: &str) -> EventRecord {
        let mut e = EventRecord::attempt(
            Timestamp::from_unix_millis(1_800_000_000_000 + at_secs * 1000),
            GrantId::new(7),
            Some(FileId::new(3)),
            IpAddr::from(ip),
            None,
            "curl",
        );
        e.outcome = Outcome::Refused(code.into());
        e
    }

    #[test]
    fn only_the_same_refusal_from_the_same_address_soon_after_folds() {
        let mut entry = refused(0, [192, 0, 2, 1], "expired");
        assert!(entry.fold(&refused(30, [192, 0, 2, 1], "expired")));
        assert!(
            entry.fold(&refused(630, [192, 0, 2, 1], "expired")),
            "10 min after the last"
        );
        assert_eq!(entry.count, 3);
        assert_eq!(entry.last_at, refused(630, [192, 0, 2, 1], "expired").at);
        assert!(
            !entry.fold(&refused(1300, [192, 0, 2, 1], "expired")),
            "too late"
        );
        assert!(
            !entry.fold(&refused(640, [192, 0, 2, 2], "expired")),
            "another address"
        );
        assert!(
            !entry.fold(&refused(640, [192, 0, 2, 1], "limit_reached")),
            "another reason"
        );
        let mut other_file = refused(640, [192, 0, 2, 1], "expired");
        other_file.file = Some(FileId::new(4));
        assert!(!entry.fold(&other_file));
        assert_eq!(entry.count, 3);

        let mut allowed = refused(0, [192, 0, 2, 1], "x");
        allowed.outcome = Outcome::Allowed;
        let mut again = allowed.clone();
        again.at = allowed.at.plus(std::time::Duration::from_secs(1));
        assert!(!allowed.fold(&again), "each download is its own entry");
    }

    #[test]
    fn version_1_entries_read_as_single_attempts() {
        let at = Timestamp::from_unix_millis(1_800_000_000_000);
        let mut row = vec![1u8];
        row.extend(
            postcard::to_stdvec(&EventV1 {
                at,
                grant: GrantId::new(2),
                file: None,
                ip: IpAddr::from([192, 0, 2, 9]),
                country: None,
                user_agent: "old".into(),
                bytes: 42,
                outcome: Outcome::Allowed,
            })
            .unwrap(),
        );
        let e: EventRecord = codec::decode(&row).unwrap();
        assert_eq!((e.count, e.last_at, e.bytes), (1, at, 42));
    }
}

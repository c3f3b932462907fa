//! Due indexes of the outboxes (mail, webhook deliveries): a table whose keys are
//! (next attempt as unix ms, row id), both big-endian, with empty values. Key order is time
//! order, so "what is due now" is one range scan that never reads settled rows.

use super::{Reader, StoreError};
use domain::Timestamp;
use redb::{ReadableTable, TableDefinition};

/// The table type of a due index.
pub(super) type DueTable = TableDefinition<'static, &'static [u8], ()>;

/// The key of row `id` due at `at`.
pub(super) fn key(at: Timestamp, id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    // Times before 1970 never occur; clamping keeps the byte order equal to time order.
    let millis = u64::try_from(at.unix_millis()).unwrap_or(0);
    key[..8].copy_from_slice(&millis.to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

/// The row id of a key.
pub(super) fn id_of(key: &[u8]) -> Result<u64, StoreError> {
    key.get(8..16)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            kind: "due index",
            detail: "short key".into(),
        })
}

/// Ids of the rows due at or before `now`, earliest first, at most `limit`.
pub(super) fn due(
    tx: &impl Reader,
    table: DueTable,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<u64>, StoreError> {
    let end = key(now, u64::MAX);
    let index = tx.table(table)?;
    let mut ids = Vec::new();
    for row in index.range(..=end.as_slice())?.take(limit) {
        ids.push(id_of(row?.0.value())?);
    }
    Ok(ids)
}

/// When the earliest row is due, if any.
pub(super) fn next_due(tx: &impl Reader, table: DueTable) -> Result<Option<Timestamp>, StoreError> {
    let index = tx.table(table)?;
    let Some(row) = index.first()? else {
        return Ok(None);
    };
    let millis = row
        .0
        .value()
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_be_bytes);
    Ok(Some(Timestamp::from_unix_millis(
        i64::try_from(millis).unwrap_or(i64::MAX),
    )))
}

/// Every id in the index, earliest first.
pub(super) fn all(tx: &impl Reader, table: DueTable) -> Result<Vec<u64>, StoreError> {
    let index = tx.table(table)?;
    index.iter()?.map(|row| id_of(row?.0.value())).collect()
}

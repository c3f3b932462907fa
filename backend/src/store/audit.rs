//! The audit log of vendor actions.

use super::Reader;
use super::StoreError;
use super::codec::{self, Record};
use super::meta;
use domain::Timestamp;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// key: audit sequence number; value: [`AuditRecord`].
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit-1");

/// Creates this part's tables (schema step 2).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(AUDIT)?;
    Ok(())
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

pub fn insert_audit(tx: &WriteTransaction, record: &AuditRecord) -> Result<u64, StoreError> {
    let seq = meta::next_id(tx, "audit")?;
    tx.open_table(AUDIT)?
        .insert(seq, codec::encode(record).as_slice())?;
    Ok(seq)
}

/// Newest audit entries first.
pub fn audit(tx: &impl Reader, limit: usize) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
    let table = tx.table(AUDIT)?;
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

/// Rewrites the audit entries `edit` changes (an erasure takes a buyer's address and name
/// out of the snapshots; who did what, and when, stays).
pub fn rewrite_audit(
    tx: &WriteTransaction,
    edit: impl FnMut(u64, &mut AuditRecord) -> bool,
) -> Result<u64, StoreError> {
    codec::rewrite(tx, AUDIT, edit)
}

//! The `meta` table: schema version, the server secret and id counters.

use super::StoreError;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// key: a fixed name (see the constants below); value: raw bytes whose layout the key defines.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta-1");

/// The schema version this build writes; see `migrations.rs` for the history.
pub const SCHEMA_VERSION: u32 = 2;

/// Big-endian u32: the schema version of the file.
pub(super) const KEY_SCHEMA_VERSION: &str = "schema_version";
/// 32 random bytes: the key for password HMACs and other server-side secrets.
pub(super) const KEY_SERVER_SECRET: &str = "server_secret";
/// Prefix of big-endian u64 id counters, e.g. `next_id:admin`.
const NEXT_ID_PREFIX: &str = "next_id:";

/// Reads the schema version of the file (0 for a new, empty file).
pub(super) fn schema_version(tx: &WriteTransaction) -> Result<u32, StoreError> {
    let table = tx.open_table(META)?;
    let Some(raw) = table.get(KEY_SCHEMA_VERSION)? else {
        return Ok(0);
    };
    let bytes: [u8; 4] = raw.value().try_into().map_err(|_| StoreError::Corrupt {
        kind: "schema version",
        detail: "not 4 bytes".into(),
    })?;
    Ok(u32::from_be_bytes(bytes))
}

pub(super) fn set_schema_version(tx: &WriteTransaction, version: u32) -> Result<(), StoreError> {
    tx.open_table(META)?
        .insert(KEY_SCHEMA_VERSION, version.to_be_bytes().as_slice())?;
    Ok(())
}

/// The 32-byte server secret created by the first migration.
pub fn server_secret(tx: &redb::ReadTransaction) -> Result<[u8; 32], StoreError> {
    let table = tx.open_table(META)?;
    let raw = table
        .get(KEY_SERVER_SECRET)?
        .ok_or_else(|| StoreError::Corrupt {
            kind: "server secret",
            detail: "missing".into(),
        })?;
    raw.value().try_into().map_err(|_| StoreError::Corrupt {
        kind: "server secret",
        detail: "not 32 bytes".into(),
    })
}

/// Allocates the next id of a kind (1, 2, 3, …) inside the caller's transaction.
pub(super) fn next_id(tx: &WriteTransaction, kind: &str) -> Result<u64, StoreError> {
    let key = format!("{NEXT_ID_PREFIX}{kind}");
    let mut table = tx.open_table(META)?;
    let current = match table.get(key.as_str())? {
        Some(raw) => {
            u64::from_be_bytes(raw.value().try_into().map_err(|_| StoreError::Corrupt {
                kind: "id counter",
                detail: key.clone(),
            })?)
        }
        None => 0,
    };
    let next = current + 1;
    table.insert(key.as_str(), next.to_be_bytes().as_slice())?;
    Ok(next)
}

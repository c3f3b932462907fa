//! What earlier imports brought in, so that importing the same file again creates nothing.

use super::Reader;
use super::StoreError;
use domain::OrderId;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// key: SHA-256 of an imported row's identity (see `services::imports`); value: the order
/// it became.
const IMPORT_ROWS: TableDefinition<&[u8], u32> = TableDefinition::new("import_rows-1");

/// Creates this part's tables (schema step 6).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(IMPORT_ROWS)?;
    Ok(())
}

/// The order an earlier import made of this row, if any.
pub fn imported_row(
    tx: &impl Reader,
    fingerprint: &[u8; 32],
) -> Result<Option<OrderId>, StoreError> {
    Ok(tx
        .table(IMPORT_ROWS)?
        .get(fingerprint.as_slice())?
        .and_then(|g| OrderId::new(g.value())))
}

/// Remembers that this row became `order`.
pub fn remember_row(
    tx: &WriteTransaction,
    fingerprint: &[u8; 32],
    order: OrderId,
) -> Result<(), StoreError> {
    tx.open_table(IMPORT_ROWS)?
        .insert(fingerprint.as_slice(), order.get())?;
    Ok(())
}

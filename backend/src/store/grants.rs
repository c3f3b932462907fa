//! Grants (the record is `domain::grant::Grant`) and the index of their passwords.

use super::Reader;
use super::StoreError;
use super::codec::{self, Record, get};
use super::meta;
use super::orders::{ORDERS, OrderRecord};
pub use domain::grant::{FileLedger, Grant, GrantRules, Sighting};
use domain::settings::truncated_ip;
use domain::{FileId, GrantId, ProductId, Timestamp};
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// key: grant id; value: [`Grant`].
pub(super) const GRANTS: TableDefinition<u64, &[u8]> = TableDefinition::new("grants-1");
/// key: HMAC of a password (current or replaced); value: grant id.
pub(super) const GRANT_PASSWORDS: TableDefinition<&[u8], u64> =
    TableDefinition::new("grant_passwords-1");

/// Creates this part's tables (schema step 2).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(GRANTS)?;
    tx.open_table(GRANT_PASSWORDS)?;
    Ok(())
}

impl Record for Grant {
    const KIND: &'static str = "grant";
    const VERSION: u8 = 1;
}

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

pub fn grant(tx: &impl Reader, id: GrantId) -> Result<Option<Grant>, StoreError> {
    get(&tx.table(GRANTS)?, id.get())
}

pub fn grant_by_digest(tx: &impl Reader, digest: &[u8; 32]) -> Result<Option<GrantId>, StoreError> {
    Ok(tx
        .table(GRANT_PASSWORDS)?
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

/// Forgets what every grant of `product` has downloaded of `file` (a new version that
/// gives buyers their downloads again); returns how many grants changed. A full scan, as
/// for every rare catalog-wide change.
pub fn forget_file_counts(
    tx: &WriteTransaction,
    product: &ProductId,
    file: FileId,
) -> Result<u64, StoreError> {
    codec::rewrite::<Grant>(tx, GRANTS, |_, g| {
        let before = g.ledger.len();
        if &g.product_id == product {
            g.ledger.retain(|l| l.file != file);
        }
        g.ledger.len() != before
    })
}

/// Grants that are blocked now, from the grant ids given (callers pass the grants of
/// recent second-country refusals, so this never scans every grant).
pub fn still_blocked(
    tx: &impl Reader,
    candidates: impl IntoIterator<Item = GrantId>,
) -> Result<Vec<(GrantId, Grant)>, StoreError> {
    let grants = tx.table(GRANTS)?;
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

/// Calls `each` for every grant, oldest first (streaming exports: nothing is collected).
pub fn each_grant<E: From<StoreError>>(
    tx: &impl Reader,
    mut each: impl FnMut(GrantId, Grant) -> Result<(), E>,
) -> Result<(), E> {
    for row in tx.table(GRANTS)?.iter().map_err(StoreError::from)? {
        let (k, v) = row.map_err(StoreError::from)?;
        each(GrantId::new(k.value()), codec::decode(v.value())?)?;
    }
    Ok(())
}

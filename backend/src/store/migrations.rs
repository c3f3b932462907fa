//! Numbered schema migrations, run in order at open, each in its own write transaction
//! together with the version bump, so a crash mid-way re-runs only the unfinished one.
//! Every migration must be idempotent (opening a table that exists is a no-op).
//!
//! History:
//! 1. meta, admins, admin emails, sessions, API tokens; a fresh 32-byte server secret.
//! 2. products, files, orders (+ number, transaction and email indexes), grants (+ password
//!    index), download events (+ per-grant index), audit log.
//! 3. the mail outbox (+ due, order and per-state count indexes).
//! 4. no new table: gives back the bytes that builds before the journal kept apart as
//!    `reserved` for downloads in progress (they charge downloads up front now); grant
//!    records keep the field, always 0 from here on.
//! 5. payments in (integrations, product mappings, notifications + event index, payments)
//!    and events out (webhook endpoints, deliveries + due index).
//! 6. imported sale records (a digest per row, for idempotent imports).
//! 7. announcements to past buyers (+ their queue of buyers). File and product records
//!    gained fields at version 2 in the same release (versions, `refresh_on_update`);
//!    they upgrade as they are read, so no step rewrites them.
//! 8. the buyer library's sign-in links and sessions. Order, mail and store-settings
//!    records gained the buyer's language (and the store's time zone) in the same release;
//!    they upgrade as they are read.
//! 9. the capped ring of unverified payment notifications. Order records gained money, the
//!    confirmation time and the provider, payment records the refunds so far (version 3
//!    and 2); they upgrade as they are read.

use super::meta::{self, KEY_SERVER_SECRET, META, SCHEMA_VERSION};
use super::{
    Store, StoreError, access, announcements, audit, catalog, events, grants, imports, library,
    orders, outbox, payments, webhooks,
};
use rand::TryRngCore;
use redb::{ReadableTable, WriteTransaction};

type Migration = fn(&WriteTransaction) -> Result<(), StoreError>;

const MIGRATIONS: [(u32, Migration); 9] = [
    (1, initial_schema),
    (2, delivery_tables),
    (3, outbox::create_tables),
    (4, release_reservations),
    (5, payment_tables),
    (6, imports::create_tables),
    (7, announcements::create_tables),
    (8, library::create_tables),
    (9, payments::create_unverified_ring),
];

/// Step 5: see the history above.
fn payment_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    payments::create_tables(tx)?;
    webhooks::create_tables(tx)
}

/// Step 2: the tables of the catalog, orders, grants, events and audit log.
fn delivery_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    catalog::create_tables(tx)?;
    orders::create_tables(tx)?;
    grants::create_tables(tx)?;
    events::create_tables(tx)?;
    audit::create_tables(tx)
}

/// Step 4: see the history above.
fn release_reservations(tx: &WriteTransaction) -> Result<(), StoreError> {
    let released = grants::release_all_reservations(tx)?;
    if released > 0 {
        tracing::info!(
            grants = released,
            "gave back download reservations kept by an earlier build"
        );
    }
    Ok(())
}

pub(super) fn run(store: &Store) -> Result<(), StoreError> {
    let path = store
        .path()
        .map_or_else(|| "(memory)".into(), |p| p.display().to_string());
    store.write(|tx| {
        let found = meta::schema_version(tx)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(())
    })?;
    for (version, migrate) in MIGRATIONS {
        store.write(|tx| {
            if meta::schema_version(tx)? >= version {
                return Ok(());
            }
            migrate(tx)?;
            meta::set_schema_version(tx, version)?;
            tracing::info!(version, "store schema migrated");
            Ok::<_, StoreError>(())
        })?;
    }
    Ok(())
}

fn initial_schema(tx: &WriteTransaction) -> Result<(), StoreError> {
    access::create_tables(tx)?;
    let mut table = tx.open_table(META)?;
    if table.get(KEY_SERVER_SECRET)?.is_none() {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut secret)
            .map_err(|e| StoreError::Corrupt {
                kind: "server secret",
                detail: e.to_string(),
            })?;
        table.insert(KEY_SERVER_SECRET, secret.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_from_a_newer_build_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let store = Store::open(&path).unwrap();
        store
            .write(|tx| meta::set_schema_version(tx, SCHEMA_VERSION + 1))
            .unwrap();
        drop(store);
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found, .. } if found == SCHEMA_VERSION + 1));
        assert!(err.to_string().contains("newer Dropgate"), "{err}");
    }

    #[test]
    fn reopening_keeps_version_and_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let secret = |s: &Store| {
            s.read(|tx| {
                let t = tx.open_table(META)?;
                Ok(t.get(KEY_SERVER_SECRET)?.unwrap().value().to_vec())
            })
            .unwrap()
        };
        let first = secret(&Store::open(&path).unwrap());
        let store = Store::open(&path).unwrap();
        assert_eq!(secret(&store), first);
        assert_eq!(first.len(), 32);
        assert_eq!(store.write(meta::schema_version).unwrap(), SCHEMA_VERSION);
    }

    /// A data file of schema 3 with bytes kept apart as `reserved` (as builds before the
    /// journal did for downloads in progress) opens with them given back, once.
    #[test]
    fn migration_4_gives_back_old_reservations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let file = domain::FileId::new(3);
        let id = domain::GrantId::new(8);
        let store = Store::open(&path).unwrap();
        store
            .write(|tx| {
                let mut grant = domain::grant::Grant::issue(
                    domain::OrderId::new(1_234_567).unwrap(),
                    domain::ProductId::parse("book").unwrap(),
                    domain::grant::GrantRules {
                        download_days: 0,
                        max_downloads: 2,
                        country_lock: false,
                    },
                    [1; 32],
                    domain::Timestamp::from_unix_millis(1_800_000_000_000),
                );
                grant.ledger.push(domain::grant::FileLedger {
                    file,
                    delivered: 100,
                    reserved: 900,
                });
                grants::put_grant(tx, id, &grant)?;
                meta::set_schema_version(tx, 3)
            })
            .unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let grant = store.read(|tx| grants::grant(tx, id)).unwrap().unwrap();
        assert_eq!((grant.counted(file), grant.ledger[0].reserved), (100, 0));
        assert_eq!(store.write(meta::schema_version).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_second_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let _first = Store::open(&path).unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::AlreadyOpen { .. })
        ));
    }
}

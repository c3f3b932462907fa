//! Consistent copies of the store while it serves, and the checks a restore makes first.
//!
//! A backup reads every table in one read transaction and writes it into a fresh redb file.
//! The read transaction is a snapshot of everything committed when it began, including the
//! download batches whose durability the journal holds (redb sees them; they are only not
//! flushed yet), so the copy is one self-contained file: it needs no journal beside it.
//! Readers never wait for writers in redb, so downloads and orders go on while it runs.

use super::meta::{KEY_SCHEMA_VERSION, KEY_SERVER_SECRET, META, SCHEMA_VERSION};
use super::{Store, StoreError, orders};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle,
};
use std::path::Path;

/// What a backup holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BackupSummary {
    pub schema_version: u32,
    pub tables: u64,
    pub rows: u64,
    pub orders: u64,
}

/// Rows copied per write transaction of the copy: bounds the copy's memory however large a
/// table is.
const ROWS_PER_COMMIT: u64 = 50_000;

impl Store {
    /// Writes a consistent copy of the whole store to `path` (a new file).
    pub fn backup_to(&self, path: &Path) -> Result<BackupSummary, StoreError> {
        let snapshot = self.db.begin_read()?;
        copy_snapshot(&snapshot, path)
    }
}

fn copy_snapshot(snapshot: &ReadTransaction, path: &Path) -> Result<BackupSummary, StoreError> {
    // redb's `create` would open an existing database and copy into it.
    if path.exists() {
        return Err(StoreError::Io(format!(
            "backup: {} exists; a backup is written to a new file",
            path.display()
        )));
    }
    let target = Database::builder().create(path)?;
    let mut summary = BackupSummary {
        schema_version: 0,
        tables: 0,
        rows: 0,
        orders: 0,
    };
    if snapshot.list_multimap_tables()?.next().is_some() {
        return Err(StoreError::Corrupt {
            kind: "backup",
            detail: "the store has a multimap table, which backups do not copy".into(),
        });
    }
    for handle in snapshot.list_tables()? {
        summary.rows += copy_table(snapshot, &target, handle.name())?;
        summary.tables += 1;
    }
    // The copies above committed without a flush; this makes all of them durable at once.
    let mut last = target.begin_write()?;
    last.set_durability(Durability::Immediate)?;
    last.commit()
        .map_err(|e| StoreError::Commit(e.to_string()))?;
    drop(target);
    let checked = verify_backup(path)?;
    summary.schema_version = checked.schema_version;
    summary.orders = checked.orders;
    Ok(summary)
}

/// Copies one table, whatever its key and value types: the store's tables use a handful of
/// them, and opening a table with the wrong types is refused by redb, so each is tried.
fn copy_table(
    snapshot: &ReadTransaction,
    target: &Database,
    name: &str,
) -> Result<u64, StoreError> {
    macro_rules! copy_as {
        ($(($k:ty, $v:ty)),* $(,)?) => {$(
            let definition: TableDefinition<$k, $v> = TableDefinition::new(name);
            match snapshot.open_table(definition) {
                Ok(source) => {
                    let mut rows = source.iter()?;
                    let mut copied = 0u64;
                    loop {
                        let mut tx = target.begin_write()?;
                        tx.set_durability(Durability::None)?;
                        let mut done = true;
                        {
                            // Created even when empty, so the copy has every table.
                            let mut table = tx.open_table(definition)?;
                            for row in rows.by_ref() {
                                let (key, value) = row?;
                                table.insert(key.value(), value.value())?;
                                copied += 1;
                                if copied % ROWS_PER_COMMIT == 0 {
                                    done = false;
                                    break;
                                }
                            }
                        }
                        tx.commit().map_err(|e| StoreError::Commit(e.to_string()))?;
                        if done {
                            return Ok(copied);
                        }
                    }
                }
                Err(redb::TableError::TableTypeMismatch { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        )*};
    }
    copy_as!(
        (u64, &[u8]),
        (u32, &[u8]),
        (&str, &[u8]),
        (&[u8], &[u8]),
        (&[u8], ()),
        (&[u8], u64),
        (&[u8], u32),
        (&[u8], &str),
        (&str, u64),
        (&str, u32),
        (u64, u64),
        (u64, ()),
    );
    Err(StoreError::Corrupt {
        kind: "backup",
        detail: format!("the table {name} has key or value types the backup does not know"),
    })
}

/// Opens a backup file, checks redb's integrity and that it is a Dropgate store this
/// build can open (schema version, server secret), and says what it holds.
pub fn verify_backup(path: &Path) -> Result<BackupSummary, StoreError> {
    let mut db = Database::builder().open(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
            path: path.display().to_string(),
        },
        other => StoreError::Corrupt {
            kind: "backup",
            detail: format!("{} is not a Dropgate data file: {other}", path.display()),
        },
    })?;
    if !db.check_integrity().map_err(|e| StoreError::Corrupt {
        kind: "backup",
        detail: format!("{} failed redb's integrity check: {e}", path.display()),
    })? {
        return Err(StoreError::Corrupt {
            kind: "backup",
            detail: format!("{} needed repairs: it is not a clean copy", path.display()),
        });
    }
    let tx = db.begin_read()?;
    let meta_table = tx.open_table(META).map_err(|_| StoreError::Corrupt {
        kind: "backup",
        detail: format!("{} has no Dropgate meta table", path.display()),
    })?;
    let version = meta_table
        .get(KEY_SCHEMA_VERSION)?
        .and_then(|raw| <[u8; 4]>::try_from(raw.value()).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            kind: "backup",
            detail: format!("{} has no schema version", path.display()),
        })?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if meta_table
        .get(KEY_SERVER_SECRET)?
        .is_none_or(|s| s.value().len() != 32)
    {
        return Err(StoreError::Corrupt {
            kind: "backup",
            detail: format!(
                "{} has no server secret: its download links could not work",
                path.display()
            ),
        });
    }
    drop(meta_table);
    let orders = if version >= 2 {
        orders::order_count(&tx)?
    } else {
        0
    };
    let mut rows = 0;
    let mut tables = 0;
    for handle in tx.list_tables()? {
        tables += 1;
        rows += tx.open_untyped_table(handle)?.len()?;
    }
    Ok(BackupSummary {
        schema_version: version,
        tables,
        rows,
        orders,
    })
}

/// What a restore did.
#[derive(Clone, Debug)]
pub struct Restored {
    pub summary: BackupSummary,
    /// Where the replaced data file (and its journal) were moved, if there was one.
    pub kept: Vec<std::path::PathBuf>,
}

/// Installs a backup as the data file `database` of a stopped server: checks the copy,
/// refuses if a server has the data file open, moves the current file and its journal
/// aside (`….before-restore-STAMP`, never deleted), and puts the copy in place atomically
/// (written beside it, synced, renamed). The old journal must go with the old file: its
/// batches belong to that file, not to the copy.
pub fn install(backup: &Path, database: &Path, stamp: &str) -> Result<Restored, StoreError> {
    let summary = verify_backup(backup)?;
    if database.exists() {
        // redb locks an open file: opening it here fails while a server holds it.
        match Database::builder().open(database) {
            Ok(db) => drop(db),
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::AlreadyOpen {
                    path: database.display().to_string(),
                });
            }
            // A damaged current file is what a restore is for: it is moved aside below.
            Err(_) => {}
        }
    }
    let dir = database.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_error)?;
    let staged = dir.join(format!(".restore-{stamp}.redb"));
    std::fs::copy(backup, &staged).map_err(io_error)?;
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(io_error)?;
    let mut kept = Vec::new();
    for current in [database.to_path_buf(), super::journal_path(database)] {
        if current.exists() {
            let mut aside = current.clone().into_os_string();
            aside.push(format!(".before-restore-{stamp}"));
            std::fs::rename(&current, &aside).map_err(io_error)?;
            kept.push(aside.into());
        }
    }
    std::fs::rename(&staged, database).map_err(io_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(database, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error)?;
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error)?;
    Ok(Restored { summary, kept })
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::Io(format!("restore: {e}"))
}

#[cfg(test)]
mod tests {
    use super::super::meta;
    use super::*;

    /// Every table of a store that has been used (tables of every migration) copies, and the
    /// copy opens as a store with the same contents.
    #[test]
    fn a_backup_holds_every_table_and_row_and_opens_as_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.redb")).unwrap();
        let secret = store.read(meta::server_secret).unwrap();
        let copy = dir.path().join("copy.redb");
        let summary = store.backup_to(&copy).unwrap();
        assert_eq!(summary.schema_version, SCHEMA_VERSION);
        let live_tables = store
            .read(|tx| Ok(tx.list_tables()?.count() as u64))
            .unwrap();
        assert_eq!(summary.tables, live_tables);
        assert!(summary.rows > 0);
        // Never into an existing file (redb would merge into it).
        assert!(matches!(store.backup_to(&copy), Err(StoreError::Io(_))));
        drop(store);
        let restored = Store::open(&copy).unwrap();
        assert_eq!(restored.read(meta::server_secret).unwrap(), secret);
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.redb");
        std::fs::write(&junk, b"not a database at all").unwrap();
        assert!(verify_backup(&junk).is_err());
        let empty = dir.path().join("empty.redb");
        drop(Database::create(&empty).unwrap());
        let error = verify_backup(&empty).unwrap_err();
        assert!(error.to_string().contains("meta"), "{error}");
    }
}

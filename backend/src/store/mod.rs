//! The redb store: one file holds every record of the shop. This module owns opening, the
//! schema version gate, migrations and the transaction helpers; the submodules own one
//! table family each and expose plain functions over a transaction.
//!
//! Rules that keep the file safe for years (see PITFALLS.md):
//! - every value is our own versioned postcard record (`codec`), never redb's tuple encoding;
//! - every write transaction has quick-repair on, so a crash recovers in milliseconds;
//! - redb is synchronous: async callers go through [`Store::run`], which uses a blocking thread;
//! - after a failed commit redb refuses further writes, so the store marks itself poisoned and
//!   `/healthz` reports it, for the supervisor to restart the process.

pub mod access;
pub mod announcements;
pub mod audit;
pub mod backup;
pub mod catalog;
pub(crate) mod codec;
#[cfg(test)]
mod crash_tests;
pub mod download_tables;
mod due_index;
pub mod events;
pub mod grants;
mod group_commit;
pub mod imports;
mod journal;
pub mod library;
pub mod meta;
mod migrations;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod webhooks;

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, Value,
    WriteTransaction,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use codec::Record;
use group_commit::WritePoint;
pub use group_commit::{Batch, WriteStats};
pub use meta::SCHEMA_VERSION;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the data file {path} was written by a newer Dropgate (schema {found}, this binary knows up to {supported}); upgrade Dropgate or restore a backup"
    )]
    TooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("the data file {path} is in use by another Dropgate process")]
    AlreadyOpen { path: String },
    #[error("a {kind} record could not be decoded: {detail}")]
    Corrupt { kind: &'static str, detail: String },
    #[error("the store refused a write after an earlier failed commit; restart Dropgate")]
    Poisoned,
    #[error("storage error: {0}")]
    Redb(#[from] redb::Error),
    #[error("the blocking store task failed: {0}")]
    Join(String),
    #[error("download journal: {0}")]
    Journal(String),
    /// A commit failed: nothing of its transaction was kept, and the store refuses
    /// writes until the process restarts (see [`Store::is_poisoned`]).
    #[error("a write could not be committed: {0}")]
    Commit(String),
    /// A file operation around the database (backup, restore) failed.
    #[error("{0}")]
    Io(String),
}

macro_rules! redb_error_into_store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Redb(e.into()) }
        }
    )*};
}
redb_error_into_store_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::SetDurabilityError
);

/// The download journal's file beside a database file (`shop.redb` → `shop.redb.journal`).
pub fn journal_path(database: &Path) -> PathBuf {
    journal::path_for(database)
}

/// Reads tables in a read transaction and in a write transaction alike, so that every
/// lookup is written once and works wherever it is needed (a write that must decide from
/// what it reads reads in its own transaction).
pub trait Reader {
    /// Opens a table for reading.
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<'_, K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_, StoreError>;
}

impl Reader for ReadTransaction {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<'_, K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_, StoreError> {
        Ok(self.open_table(definition)?)
    }
}

impl Reader for WriteTransaction {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<'_, K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_, StoreError> {
        Ok(self.open_table(definition)?)
    }
}

/// A handle to the open database; cheap to clone and shared by every service.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: Option<PathBuf>,
    poisoned: Arc<AtomicBool>,
    queue: Arc<group_commit::Queue>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::builder().create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
                path: path.display().to_string(),
            },
            other => other.into(),
        })?;
        let store = Self::init(db, Some(path.to_path_buf()))?;
        store.open_journal(&journal::path_for(path))?;
        Ok(store)
    }

    /// Opens the download journal beside the file, applies the batches a crash kept out of
    /// redb (see `journal.rs`), makes them durable, and starts an empty log.
    fn open_journal(&self, path: &Path) -> Result<(), StoreError> {
        let (mut journal, batches) = journal::Journal::open(path)?;
        let (replayed, last) = self.write(|tx| {
            let held = meta::journal_seq(tx)?;
            let mut last = held;
            let mut replayed = 0u64;
            for batch in batches.iter().filter(|b| b.seq > held) {
                if batch.seq != last + 1 {
                    // Only possible if the database file was swapped for an older copy
                    // beside a newer journal: the gap cannot be filled, so stop here.
                    tracing::warn!(
                        expected = last + 1,
                        found = batch.seq,
                        "download journal does not continue the database; its later batches are skipped"
                    );
                    break;
                }
                download_tables::replay(tx, &batch.ops)?;
                last = batch.seq;
                replayed += 1;
            }
            meta::set_journal_seq(tx, last)?;
            Ok::<_, StoreError>((replayed, last))
        })?;
        if replayed > 0 {
            tracing::info!(
                batches = replayed,
                "download journal replayed after an unclean stop"
            );
        }
        journal.start_epoch(last)?;
        journal.scrub()?;
        self.install_journal(journal);
        Ok(())
    }

    /// A store that lives in memory only, for service tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db, None)
    }

    fn init(db: Database, path: Option<PathBuf>) -> Result<Self, StoreError> {
        let store = Self {
            db: Arc::new(db),
            path,
            poisoned: Arc::new(AtomicBool::new(false)),
            queue: Arc::default(),
        };
        migrations::run(&store)?;
        Ok(store)
    }

    /// Where the file lives, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Size of the database file in bytes (0 in memory).
    pub fn file_size(&self) -> u64 {
        self.path
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }

    /// The key download passwords are hashed with.
    pub fn download_key(&self) -> Result<crate::auth::download_key::DownloadKey, StoreError> {
        self.read(meta::server_secret)
            .map(crate::auth::download_key::DownloadKey::new)
    }

    /// Whether a commit has failed since open (the process must restart to write again).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    /// Runs `f` in a read transaction (a consistent snapshot).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.db.begin_read()?;
        f(&tx)
    }

    /// Runs `f` in one write transaction and commits when it returns `Ok`. redb allows one
    /// writer at a time, so everything `f` reads and writes is decided atomically; an `Err`
    /// aborts and leaves the file untouched.
    pub fn write<T, E>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self.begin_checked()?;
        let value = f(&tx)?;
        self.commit_checked(tx)?;
        Ok(value)
    }

    /// A write transaction with quick-repair on, unless the store is poisoned.
    fn begin_checked(&self) -> Result<WriteTransaction, StoreError> {
        if self.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        let mut tx = self.db.begin_write()?;
        tx.set_quick_repair(true);
        Ok(tx)
    }

    /// Commits; a failure poisons the store (redb refuses writes until reopened).
    fn commit_checked(&self, tx: WriteTransaction) -> Result<(), StoreError> {
        self.at(WritePoint::BeforeCommit);
        tx.commit().map_err(|e| {
            let e = StoreError::Commit(e.to_string());
            self.poison(&e);
            e
        })?;
        self.count_commit();
        self.at(WritePoint::Committed);
        Ok(())
    }

    /// Refuses every later write: after a failed commit (or journal write) the state in
    /// memory may differ from what is durable, and only a restart brings them together.
    fn poison(&self, error: &StoreError) {
        self.poisoned.store(true, Ordering::Relaxed);
        tracing::error!(error = %error, "a store write failed; refusing further writes until restart");
    }

    /// Overwrites the file's free pages with zeros, so that what an erasure replaced is gone
    /// from the file and not only from the tables: redb reuses freed pages without clearing
    /// them. A scratch table grows over the free space in transactions of a few MiB (writes
    /// of the shop go on between them) and is dropped; its pages are fresh zeroed buffers.
    /// Pages freed by one round become reusable only after it commits, hence a second.
    /// Returns the bytes written.
    pub fn scrub_free_space(&self) -> Result<u64, StoreError> {
        const SCRATCH: TableDefinition<u64, &[u8]> = TableDefinition::new("scrub-0");
        const VALUE: usize = 1024;
        const PER_COMMIT: u64 = 4096;
        let filler = vec![0u8; VALUE];
        let mut written = 0u64;
        for _ in 0..2 {
            let free = self.write(|tx| Ok::<_, StoreError>(tx.stats()?.fragmented_bytes()))?;
            // A value per quarter page, with room for the tree's own pages.
            let values = free / VALUE as u64 + 256;
            let mut next = 0u64;
            while next < values {
                self.write(|tx| {
                    let mut table = tx.open_table(SCRATCH)?;
                    for key in next..values.min(next + PER_COMMIT) {
                        table.insert(key, filler.as_slice())?;
                    }
                    Ok::<_, StoreError>(())
                })?;
                next += PER_COMMIT;
            }
            written += values * VALUE as u64;
            self.write(|tx| {
                tx.delete_table(SCRATCH)?;
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(written)
    }

    /// Runs blocking store work on a blocking thread, so async tasks never wait on disk I/O.
    pub async fn run<T, E>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| E::from(StoreError::Join(e.to_string())))?
    }
}

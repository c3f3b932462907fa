//! Online backups: a consistent copy of the running store, made beside the data file and
//! handed to the caller as an open file (already unlinked, so nothing is left behind
//! whether the client takes it all or goes away).

use super::ServiceError;
use super::audit::{Actor, record_audit};
use crate::store::Store;
use crate::store::backup::BackupSummary;
use domain::Timestamp;
use rand::Rng;
use std::path::PathBuf;

/// Backups of the store.
#[derive(Clone, Debug)]
pub struct BackupService {
    store: Store,
    /// Where copies are made (the data directory: the same disk, and private to Dropgate).
    scratch: PathBuf,
}

impl BackupService {
    pub fn new(store: Store, scratch: PathBuf) -> Self {
        Self { store, scratch }
    }

    /// Makes a copy and returns it open for reading, with what it holds. The audit log
    /// records who took it.
    pub async fn make(
        &self,
        actor: Actor,
        now: Timestamp,
    ) -> Result<(tokio::fs::File, BackupSummary), ServiceError> {
        let path = self
            .scratch
            .join(format!(".backup-{:016x}.redb", rand::rng().random::<u64>()));
        let copy = path.clone();
        let summary = self
            .store
            .run(move |s| {
                let summary = s.backup_to(&copy);
                if summary.is_err() {
                    let _ = std::fs::remove_file(&copy);
                }
                summary
            })
            .await?;
        let file = tokio::fs::File::open(&path).await;
        // Unlinked at once: the open file keeps its bytes until the answer is sent.
        let _ = tokio::fs::remove_file(&path).await;
        let file = file.map_err(|e| ServiceError::Internal(format!("open the backup: {e}")))?;
        let logged = summary.clone();
        self.store
            .run(move |s| {
                s.write(|tx| {
                    record_audit(
                        tx,
                        &actor,
                        "store.backup",
                        "store",
                        None::<&()>,
                        Some(&logged),
                        now,
                    )
                })
            })
            .await?;
        Ok((file, summary))
    }
}

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

/// Daily backups kept in a directory: where, and how many.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyBackups {
    pub dir: PathBuf,
    /// The newest this many are kept; older ones are removed.
    pub keep: usize,
}

/// How often the daily job looks whether today's backup is there.
const DAILY_CHECK: std::time::Duration = std::time::Duration::from_secs(3600);

impl BackupService {
    /// Makes today's backup in `daily.dir` (`dropgate-YYYYMMDD.redb`) unless it is there,
    /// then removes all but the newest `daily.keep`. The copy is written under a temporary
    /// name and renamed once it verified, so a file with a backup's name is a whole backup.
    /// Returns the file it made, if any.
    pub async fn daily(
        &self,
        daily: &DailyBackups,
        now: Timestamp,
    ) -> Result<Option<PathBuf>, ServiceError> {
        let c = now.civil();
        let name = format!("dropgate-{:04}{:02}{:02}.redb", c.year, c.month, c.day);
        let target = daily.dir.join(&name);
        let made = if target.exists() {
            None
        } else {
            let staged = daily.dir.join(format!(".{name}.partial"));
            let (from, to) = (staged.clone(), target.clone());
            self.store
                .run(move |s| {
                    std::fs::create_dir_all(from.parent().unwrap_or(&from))
                        .and_then(|()| match std::fs::remove_file(&from) {
                            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                            _ => Ok(()),
                        })
                        .map_err(|e| crate::StoreError::Io(format!("daily backup: {e}")))?;
                    s.backup_to(&from)?;
                    std::fs::rename(&from, &to)
                        .map_err(|e| crate::StoreError::Io(format!("daily backup: {e}")))
                })
                .await?;
            Some(target)
        };
        prune(daily).map_err(|e| ServiceError::Internal(format!("pruning daily backups: {e}")))?;
        Ok(made)
    }

    /// Runs [`Self::daily`] now and then every hour until `stopped` turns true.
    pub fn spawn_daily(
        self,
        daily: DailyBackups,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.daily(&daily, crate::clock::now()).await {
                    Ok(Some(file)) => tracing::info!(file = %file.display(), "daily backup made"),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, dir = %daily.dir.display(), "daily backup failed; retrying in an hour");
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(DAILY_CHECK) => {}
                    _ = stopped.changed() => {}
                }
                if *stopped.borrow() {
                    return;
                }
            }
        })
    }
}

/// Removes all but the newest `keep` daily backups (only files named as this job names them).
fn prune(daily: &DailyBackups) -> std::io::Result<()> {
    let mut backups: Vec<String> = std::fs::read_dir(&daily.dir)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix("dropgate-")
                .and_then(|rest| rest.strip_suffix(".redb"))
                .is_some_and(|date| date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    backups.sort_unstable_by(|a, b| b.cmp(a));
    for old in backups.iter().skip(daily.keep) {
        std::fs::remove_file(daily.dir.join(old))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_daily_backup_is_made_once_a_day_and_only_the_newest_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let store = Store::open(&data.path().join("dropgate.redb")).unwrap();
        let service = BackupService::new(store, data.path().to_path_buf());
        let daily = DailyBackups {
            dir: dir.path().join("backups"),
            keep: 3,
        };
        std::fs::create_dir_all(&daily.dir).unwrap();
        for day in ["20250101", "20250102", "20250103", "20250104"] {
            std::fs::write(daily.dir.join(format!("dropgate-{day}.redb")), b"old").unwrap();
        }
        std::fs::write(daily.dir.join("notes.txt"), b"the seller's own file").unwrap();
        let now = Timestamp::from_unix_millis(1_795_357_812_417); // 2026-11-22
        let made = service.daily(&daily, now).await.unwrap().unwrap();
        assert_eq!(made, daily.dir.join("dropgate-20261122.redb"));
        assert!(crate::store::backup::verify_backup(&made).is_ok());
        // The same day again makes nothing new.
        assert_eq!(service.daily(&daily, now).await.unwrap(), None);
        let mut left: Vec<String> = std::fs::read_dir(&daily.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "dropgate-20250103.redb",
                "dropgate-20250104.redb",
                "dropgate-20261122.redb",
                "notes.txt"
            ]
        );
    }
}

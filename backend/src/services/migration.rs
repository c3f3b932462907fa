//! Moving every product file to another file store (disk → S3 and back): each object is
//! copied under its key and its SHA-256 checked against the recorded one, then one
//! transaction switches every file to the new store, and only after that commit are the
//! old objects removed. An interrupted run is simply run again: objects already copied are
//! checked (read and hashed) instead of copied, and a clean-up the last run did not finish
//! is finished first. Runs with the server stopped (the store's lock makes sure).

use super::ServiceError;
use super::audit::{Actor, record_audit};
use crate::blobs::{BlobError, FileStores};
use crate::store::meta::ObjectsToRemove;
use crate::store::{self, Store};
use domain::{FileId, Timestamp};
use futures::TryStreamExt;

/// What happened to one object, for the progress lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationStep {
    /// Copied and its SHA-256 checked.
    Copied {
        file: String,
        version: u32,
        bytes: u64,
    },
    /// Already in the target from an interrupted run: read again and its SHA-256 checked.
    Verified {
        file: String,
        version: u32,
        bytes: u64,
    },
    /// Every file points at the target now.
    Switched { files: usize },
    /// An old object removed after the switch.
    Removed { key_count: usize },
}

/// The outcome of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub copied: usize,
    pub verified: usize,
    pub bytes: u64,
    pub files_switched: usize,
    pub removed: usize,
}

/// One object to move: the file, the version, where it is.
struct Move {
    /// The key in the target: the same as `key` for Dropgate's own objects; for an attached
    /// one (a seller's key such as `releases/app.zip`, which may name another object in
    /// the target) a key of Dropgate's own, derived from the key and the content so that a
    /// second run finds the copy the first made.
    target_key: String,
    file: FileId,
    name: String,
    version: u32,
    store: String,
    key: String,
    size: u64,
    sha256: [u8; 32],
    attached: bool,
}

/// Moves files between the stores of a [`FileStores`].
#[derive(Clone, Debug)]
pub struct StoreMigration {
    store: Store,
    stores: FileStores,
}

impl StoreMigration {
    pub fn new(store: Store, stores: FileStores) -> Self {
        Self { store, stores }
    }

    /// Moves every file (every version) into the store named `to` (`""`: the default).
    /// `stop_after` copies at most that many objects and returns before the switch, as an
    /// interruption would (for tests of a second run).
    pub async fn run(
        &self,
        to: &str,
        stop_after: Option<usize>,
        actor: Actor,
        now: impl Fn() -> Timestamp,
        mut progress: impl FnMut(&MigrationStep),
    ) -> Result<MigrationReport, ServiceError> {
        let target = self
            .stores
            .get(to)
            .map_err(|e| ServiceError::invalid("to", e.to_string()))?
            .clone();
        let mut report = MigrationReport::default();
        report.removed += self.finish_cleanup(&mut progress).await?;
        let moves = self.to_move(to).await?;
        for (done, m) in moves.iter().enumerate() {
            if stop_after.is_some_and(|n| done >= n) {
                return Ok(report);
            }
            let source = self.stores.get(&m.store).map_err(unreadable)?;
            let (step, bytes) =
                if target.size_of(&m.target_key).await.map_err(unreadable)? == Some(m.size) {
                    let measured = target.measure(&m.target_key).await.map_err(unreadable)?;
                    check(m, measured.sha256, "the copy already in the target")?;
                    report.verified += 1;
                    (
                        MigrationStep::Verified {
                            file: m.name.clone(),
                            version: m.version,
                            bytes: m.size,
                        },
                        m.size,
                    )
                } else {
                    let body = source
                        .read(&m.key, 0..m.size)
                        .await
                        .map_err(unreadable)?
                        .map_err(|e| std::io::Error::other(e.to_string()));
                    let copied = target
                        .upload_as(m.target_key.clone(), body, m.size)
                        .await
                        .map_err(unreadable)?;
                    if copied.size != m.size {
                        let _ = target.delete(&m.target_key).await;
                        return Err(ServiceError::Conflict(format!(
                            "{} v{}: read {} bytes where {} are recorded; nothing was switched",
                            m.name, m.version, copied.size, m.size
                        )));
                    }
                    if let Err(e) = check(m, copied.sha256, "the copy") {
                        let _ = target.delete(&m.target_key).await;
                        return Err(e);
                    }
                    report.copied += 1;
                    (
                        MigrationStep::Copied {
                            file: m.name.clone(),
                            version: m.version,
                            bytes: m.size,
                        },
                        m.size,
                    )
                };
            report.bytes += bytes;
            progress(&step);
        }
        if moves.is_empty() {
            return Ok(report);
        }
        report.files_switched = self.switch(to, &moves, &actor, now()).await?;
        progress(&MigrationStep::Switched {
            files: report.files_switched,
        });
        report.removed += self.finish_cleanup(&mut progress).await?;
        Ok(report)
    }

    /// Every object not in `to` yet, file by file.
    async fn to_move(&self, to: &str) -> Result<Vec<Move>, ServiceError> {
        let to = to.to_owned();
        let files = self
            .store
            .run(|s| s.read(store::catalog::all_files))
            .await?;
        let mut moves = Vec::new();
        for (file, record) in files {
            let current = Move {
                file,
                name: record.name.clone(),
                version: record.version,
                store: record.store.clone(),
                target_key: target_key(&record.storage_key, record.sha256, record.attached),
                key: record.storage_key.clone(),
                size: record.size,
                sha256: record.sha256,
                attached: record.attached,
            };
            let earlier = record.previous.iter().map(|v| Move {
                file,
                name: record.name.clone(),
                version: v.version,
                store: v.store.clone(),
                target_key: target_key(&v.storage_key, v.sha256, v.attached),
                key: v.storage_key.clone(),
                size: v.size,
                sha256: v.sha256,
                attached: v.attached,
            });
            moves.extend(
                std::iter::once(current)
                    .chain(earlier)
                    .filter(|m| m.store != to),
            );
        }
        Ok(moves)
    }

    /// One transaction: every moved object's version now points at `to` (a copy Dropgate
    /// made is Dropgate's, even of an attached object), and the old objects Dropgate owned
    /// are listed for removal.
    async fn switch(
        &self,
        to: &str,
        moves: &[Move],
        actor: &Actor,
        now: Timestamp,
    ) -> Result<usize, ServiceError> {
        let to = to.to_owned();
        let copied_objects: Vec<(FileId, String, String, String)> = moves
            .iter()
            .map(|m| (m.file, m.store.clone(), m.key.clone(), m.target_key.clone()))
            .collect();
        let old: Vec<(String, String)> = moves
            .iter()
            .filter(|m| !m.attached)
            .map(|m| (m.store.clone(), m.key.clone()))
            .collect();
        let actor = actor.clone();
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let mut files: Vec<FileId> =
                        copied_objects.iter().map(|(f, _, _, _)| *f).collect();
                    files.dedup();
                    for file in &files {
                        let Some(mut record) = store::catalog::file(tx, *file)? else {
                            continue;
                        };
                        // The key in the target of an object that was copied, if it was.
                        let moved_to = |store: &str, key: &str| {
                            copied_objects
                                .iter()
                                .find(|(f, s, k, _)| f == file && s == store && k == key)
                                .map(|(_, _, _, target)| target.clone())
                        };
                        if let Some(key) = moved_to(&record.store, &record.storage_key) {
                            record.store.clone_from(&to);
                            record.storage_key = key;
                            record.attached = false;
                        }
                        for v in &mut record.previous {
                            if let Some(key) = moved_to(&v.store, &v.storage_key) {
                                v.store.clone_from(&to);
                                v.storage_key = key;
                                v.attached = false;
                            }
                        }
                        store::catalog::put_file(tx, *file, &record)?;
                    }
                    let mut pending = store::meta::objects_to_remove(tx)?;
                    pending.objects.extend(old);
                    store::meta::set_objects_to_remove(tx, &pending)?;
                    record_audit(
                        tx,
                        &actor,
                        "storage.migrate",
                        if to.is_empty() {
                            "default"
                        } else {
                            to.as_str()
                        },
                        None::<&()>,
                        Some(&serde_json::json!({ "files": files.len(), "objects": copied_objects.len() })),
                        now,
                    )?;
                    Ok::<_, ServiceError>(files.len())
                })
            })
            .await
    }

    /// Removes the old objects a committed switch listed, then clears the list.
    async fn finish_cleanup(
        &self,
        progress: &mut impl FnMut(&MigrationStep),
    ) -> Result<usize, ServiceError> {
        let pending: ObjectsToRemove = self
            .store
            .run(|s| s.read(store::meta::objects_to_remove))
            .await?;
        if pending.objects.is_empty() {
            return Ok(0);
        }
        for (store, key) in &pending.objects {
            self.stores
                .get(store)
                .map_err(unreadable)?
                .delete(key)
                .await
                .map_err(unreadable)?;
        }
        self.store
            .run(|s| {
                s.write(|tx| store::meta::set_objects_to_remove(tx, &ObjectsToRemove::default()))
            })
            .await?;
        progress(&MigrationStep::Removed {
            key_count: pending.objects.len(),
        });
        Ok(pending.objects.len())
    }
}

/// Where an object goes in the target store: see [`Move::target_key`].
fn target_key(key: &str, sha256: [u8; 32], attached: bool) -> String {
    use sha2::{Digest, Sha256};
    if !attached {
        return key.to_owned();
    }
    let digest = Sha256::new()
        .chain_update(b"dropgate migrated attachment\0")
        .chain_update(key.as_bytes())
        .chain_update(sha256)
        .finalize();
    hex::encode(&digest[..16])
}

fn check(m: &Move, sha256: [u8; 32], what: &str) -> Result<(), ServiceError> {
    if sha256 == m.sha256 {
        Ok(())
    } else {
        Err(ServiceError::Conflict(format!(
            "{} v{}: the SHA-256 of {what} is {}, not the recorded {}; nothing was switched",
            m.name,
            m.version,
            hex::encode(sha256),
            hex::encode(m.sha256)
        )))
    }
}

fn unreadable(e: BlobError) -> ServiceError {
    ServiceError::Unavailable(format!("a file store failed: {e}"))
}

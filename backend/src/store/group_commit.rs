//! Group commit: many small write jobs share one redb write transaction and one fsync.
//!
//! Every download reserves its bytes before sending and settles them after, each a durable
//! write. One transaction per write held a 1 KiB download to a few hundred per second, all
//! of it waiting on fsync. Here callers queue a job and wait; one blocking task drains the
//! queue, runs every queued job in a single transaction and commits once, so a burst of
//! requests costs one fsync, and each caller is answered only after that commit (nothing
//! is acknowledged before it is durable).
//!
//! A job may ask only for atomicity, not durability ([`Durability::None`]): a batch made of
//! such jobs alone commits without an fsync, and its writes become durable with the next
//! durable commit or when the store closes. Download settlements are such jobs: losing one
//! in a crash leaves the bytes reserved, which only errs in the seller's favour.
//!
//! Jobs stay isolated: if any job in a batch returns `Err`, the batch is abandoned and
//! every job is run again in its own transaction, so the outcome is exactly that of
//! running them one by one. That costs a commit per job, so `Err` is for failures only: a
//! job that decides to write nothing (a download with an unknown password) returns `Ok`
//! with that decision and stays in the shared batch. [`Store::split_batches`] counts splits.
//!
//! Jobs see the transaction through a [`Batch`], which also keeps the download tables open
//! from one job to the next: opening a redb table costs a lookup and a few allocations,
//! and a download touched seven of them, a sixth of the writer's time at 1 KiB downloads.

use super::delivery::DownloadTables;
use super::{Store, StoreError};
use futures::channel::oneshot;
use redb::{Durability, WriteTransaction};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// What a grouped job writes through: the batch's transaction, and the download tables
/// opened once for every job of the batch that asks for them.
pub struct Batch<'tx> {
    tx: &'tx WriteTransaction,
    downloads: Option<DownloadTables<'tx>>,
}

impl<'tx> Batch<'tx> {
    fn new(tx: &'tx WriteTransaction) -> Self {
        Self {
            tx,
            downloads: None,
        }
    }

    /// The transaction itself, for a job that opens its own tables. The shared download
    /// tables are closed first (redb refuses to open a table twice).
    pub fn tx(&mut self) -> &'tx WriteTransaction {
        self.downloads = None;
        self.tx
    }

    /// The download tables, opened on first use and kept open for the next job. A job
    /// must not hold a table of its own from [`Self::tx`] while it uses these.
    pub fn downloads(&mut self) -> Result<&mut DownloadTables<'tx>, StoreError> {
        if self.downloads.is_none() {
            self.downloads = Some(DownloadTables::open(self.tx)?);
        }
        Ok(self
            .downloads
            .as_mut()
            .expect("the download tables were opened just above"))
    }
}

/// Most jobs committed together; bounds the latency a batch adds to its first job.
const MAX_BATCH: usize = 512;

/// A queued job, with its result slot and the caller's reply channel.
trait Pending: Send {
    /// Runs the job in the batch's transaction; whether it succeeded.
    fn apply(&mut self, batch: &mut Batch<'_>) -> bool;
    /// Replaces the result with a failure (the commit failed).
    fn fail(&mut self, error: StoreError);
    /// Sends the result to the caller.
    fn deliver(self: Box<Self>);
    /// Whether the caller must be answered only after an fsync.
    fn durable(&self) -> bool;
}

struct Job<T, E, F> {
    run: F,
    durable: bool,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Pending for Job<T, E, F>
where
    T: Send,
    E: From<StoreError> + Send,
    F: Fn(&mut Batch<'_>) -> Result<T, E> + Send,
{
    fn apply(&mut self, batch: &mut Batch<'_>) -> bool {
        let result = (self.run)(batch);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn fail(&mut self, error: StoreError) {
        self.result = Some(Err(error.into()));
    }

    fn deliver(self: Box<Self>) {
        let result = self
            .result
            .unwrap_or_else(|| Err(StoreError::Join("a write job was never run".into()).into()));
        let _ = self.reply.send(result);
    }

    fn durable(&self) -> bool {
        self.durable
    }
}

fn deliver_all(jobs: Vec<Box<dyn Pending>>) {
    for job in jobs {
        job.deliver();
    }
}

/// The queue and whether a drain task is running.
#[derive(Default)]
pub(super) struct Queue {
    inner: Mutex<QueueState>,
    /// Batches abandoned because a job failed, each job then rerun alone (one fsync each).
    split_batches: AtomicU64,
}

#[derive(Default)]
struct QueueState {
    jobs: Vec<Box<dyn Pending>>,
    draining: bool,
}

impl Store {
    /// Runs `job` in a write transaction shared with other queued jobs, and answers after
    /// the commit. `job` may run twice (see the module docs), so it must only depend on the
    /// transaction and what it captured.
    pub async fn write_grouped<T, E, F>(&self, job: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Fn(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
    {
        self.queue_job(job, Durability::Immediate).await
    }

    /// [`Self::write_grouped`] for a write that must be atomic but need not survive a crash
    /// (see the module docs): it is answered after a commit that may skip the fsync.
    pub async fn write_grouped_lazily<T, E, F>(&self, job: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Fn(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
    {
        self.queue_job(job, Durability::None).await
    }

    async fn queue_job<T, E, F>(&self, job: F, durability: Durability) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Fn(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let start_drain = {
            let mut state = self.lock_queue();
            state.jobs.push(Box::new(Job {
                run: job,
                durable: matches!(durability, Durability::Immediate),
                result: None,
                reply,
            }));
            !std::mem::replace(&mut state.draining, true)
        };
        if start_drain {
            let store = self.clone();
            tokio::task::spawn_blocking(move || store.drain());
        }
        answer
            .await
            .map_err(|_| E::from(StoreError::Join("the store writer stopped".into())))?
    }

    /// How many grouped batches were split because a job failed (see the module docs):
    /// each costs one commit per job, so a busy store should see few.
    pub fn split_batches(&self) -> u64 {
        self.queue.split_batches.load(Ordering::Relaxed)
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.queue
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Commits batches until the queue is empty. The last batch is answered only after this
    /// handle is dropped, so a caller that closes the store after its last write can reopen
    /// the file at once.
    fn drain(self) {
        let mut batch = take_batch(&mut self.lock_queue());
        loop {
            let done = self.commit_batch(batch);
            let next = {
                let mut state = self.lock_queue();
                if state.jobs.is_empty() {
                    state.draining = false;
                    None
                } else {
                    Some(take_batch(&mut state))
                }
            };
            let Some(more) = next else {
                drop(self);
                deliver_all(done);
                return;
            };
            deliver_all(done);
            batch = more;
        }
    }

    /// Runs a batch and returns its jobs with their results, not yet delivered.
    fn commit_batch(&self, mut batch: Vec<Box<dyn Pending>>) -> Vec<Box<dyn Pending>> {
        if batch.len() > 1 {
            let durable = batch.iter().any(|job| job.durable());
            match self.begin_grouped(durable) {
                Ok(tx) => {
                    let mut shared = Batch::new(&tx);
                    let all_applied = batch.iter_mut().all(|job| job.apply(&mut shared));
                    // Close the shared tables before the commit or the abort.
                    drop(shared);
                    if all_applied {
                        if let Err(e) = self.commit_checked(tx) {
                            for job in &mut batch {
                                job.fail(StoreError::Join(format!("commit failed: {e}")));
                            }
                        }
                        return batch;
                    }
                    // A job declined: drop (abort) the shared transaction and run each alone.
                    drop(tx);
                    self.queue.split_batches.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    for job in &mut batch {
                        job.fail(StoreError::Join(e.to_string()));
                    }
                    return batch;
                }
            }
        }
        for job in &mut batch {
            match self.begin_grouped(job.durable()) {
                Ok(tx) => {
                    let mut alone = Batch::new(&tx);
                    let applied = job.apply(&mut alone);
                    drop(alone);
                    if applied && let Err(e) = self.commit_checked(tx) {
                        job.fail(e);
                    }
                }
                Err(e) => job.fail(e),
            }
        }
        batch
    }

    /// A write transaction that syncs on commit only when `durable`.
    fn begin_grouped(&self, durable: bool) -> Result<WriteTransaction, StoreError> {
        let mut tx = self.begin_checked()?;
        if !durable {
            // Only fails when the transaction touched persistent savepoints; ours never do.
            tx.set_durability(Durability::None)?;
        }
        Ok(tx)
    }
}

/// The next batch from the queue, oldest first.
fn take_batch(state: &mut QueueState) -> Vec<Box<dyn Pending>> {
    let take = state.jobs.len().min(MAX_BATCH);
    state.jobs.drain(..take).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

    const COUNTS: TableDefinition<u64, u64> = TableDefinition::new("test_group_commit");

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_jobs_share_commits_and_a_failing_job_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let jobs = (0..300u64).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write_grouped(move |batch| {
                        let mut table = batch.tx().open_table(COUNTS).map_err(StoreError::from)?;
                        // Every job bumps a shared counter and writes its own key...
                        let total = table.get(u64::MAX)?.map_or(0, |v| v.value());
                        table.insert(u64::MAX, total + 1)?;
                        table.insert(i, i)?;
                        // ...and every seventh then declines: its writes must vanish.
                        if i % 7 == 0 {
                            return Err(StoreError::Join(format!("job {i} declines")));
                        }
                        Ok(i)
                    })
                    .await
            })
        });
        let results = futures::future::join_all(jobs).await;
        for (i, result) in results.into_iter().enumerate() {
            let result = result.unwrap();
            if i % 7 == 0 {
                assert!(result.is_err(), "job {i}");
            } else {
                assert_eq!(result.unwrap(), i as u64);
            }
        }
        let declined = (0..300).filter(|i| i % 7 == 0).count() as u64;
        store
            .read(|tx| {
                let table = tx.open_table(COUNTS)?;
                assert_eq!(table.get(u64::MAX)?.unwrap().value(), 300 - declined);
                assert_eq!(table.len()?, 300 - declined + 1);
                assert!(table.get(7)?.is_none());
                assert_eq!(table.get(8)?.unwrap().value(), 8);
                Ok(())
            })
            .unwrap();
        // Durable: a reopened file has every acknowledged write.
        drop(store);
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        store
            .read(|tx| {
                let table = tx.open_table(COUNTS)?;
                assert_eq!(table.get(u64::MAX)?.unwrap().value(), 300 - declined);
                Ok(())
            })
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn jobs_on_the_shared_download_tables_and_on_the_raw_transaction_mix_in_a_batch() {
        use crate::store::delivery::{self, EventRecord, Outcome};
        use domain::{GrantId, Timestamp};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let grant = GrantId::new(9);
        let event = move |bytes: u64| EventRecord {
            at: Timestamp::from_unix_millis(1_800_000_000_000),
            grant,
            file: None,
            ip: std::net::IpAddr::from([192, 0, 2, 1]),
            country: None,
            user_agent: String::new(),
            bytes,
            outcome: Outcome::Allowed,
        };
        let jobs = (0..200u64).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write_grouped(move |batch| {
                        // Alternate the two ways in: the shared tables must be closed before
                        // a job opens the same tables on the transaction, and reopened after.
                        if i % 2 == 0 {
                            batch.downloads()?.insert_event(&event(i))
                        } else {
                            delivery::insert_event(batch.tx(), &event(i))
                        }
                    })
                    .await
            })
        });
        let mut seqs: Vec<u64> = futures::future::join_all(jobs)
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (1..=200).collect::<Vec<_>>(),
            "one sequence number each"
        );
        let mut logged: Vec<u64> = store
            .read(|tx| delivery::grant_events(tx, grant))
            .unwrap()
            .into_iter()
            .map(|e| e.bytes)
            .collect();
        logged.sort_unstable();
        assert_eq!(
            logged,
            (0..200).collect::<Vec<_>>(),
            "every event kept once"
        );
    }
}

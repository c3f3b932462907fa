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
//! Jobs stay isolated: if any job in a batch returns `Err` (which normally means "nothing
//! to write", e.g. an unknown password), the batch is abandoned and every job is run again
//! in its own transaction, so the outcome is exactly that of running them one by one.

use super::{Store, StoreError};
use futures::channel::oneshot;
use redb::{Durability, WriteTransaction};
use std::sync::Mutex;

/// Most jobs committed together; bounds the latency a batch adds to its first job.
const MAX_BATCH: usize = 512;

/// A queued job, with its result slot and the caller's reply channel.
trait Pending: Send {
    /// Runs the job in `tx`; whether it succeeded.
    fn apply(&mut self, tx: &WriteTransaction) -> bool;
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
    F: Fn(&WriteTransaction) -> Result<T, E> + Send,
{
    fn apply(&mut self, tx: &WriteTransaction) -> bool {
        let result = (self.run)(tx);
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
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.queue_job(job, Durability::Immediate).await
    }

    /// [`Self::write_grouped`] for a write that must be atomic but need not survive a crash
    /// (see the module docs): it is answered after a commit that may skip the fsync.
    pub async fn write_grouped_lazily<T, E, F>(&self, job: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.queue_job(job, Durability::None).await
    }

    async fn queue_job<T, E, F>(&self, job: F, durability: Durability) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
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

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.queue
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
                    if batch.iter_mut().all(|job| job.apply(&tx)) {
                        if let Err(e) = self.commit_checked(tx) {
                            for job in &mut batch {
                                job.fail(StoreError::Join(format!("commit failed: {e}")));
                            }
                        }
                        return batch;
                    }
                    // A job declined: drop (abort) the shared transaction and run each alone.
                    drop(tx);
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
                    if job.apply(&tx)
                        && let Err(e) = self.commit_checked(tx)
                    {
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
                    .write_grouped(move |tx| {
                        let mut table = tx.open_table(COUNTS).map_err(StoreError::from)?;
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
}

//! Group commit: many small write jobs share one redb write transaction and one fsync.
//!
//! Every download reserves its bytes before sending and settles them after, each a durable
//! write. One transaction per write held a 1 KiB download to a few hundred per second, all
//! of it waiting on fsync. Here callers queue a job and wait; one blocking task drains the
//! queue, runs every queued job in a single transaction and commits once, so a burst of
//! requests costs one fsync, and each caller is answered only after that commit (nothing
//! is acknowledged before it is durable).
//!
//! On disk, a batch whose jobs wrote only through the download tables is made durable by
//! the download journal instead (`journal.rs`): redb commits it without a flush and its rows
//! are appended to the journal with one `fdatasync`. A job that writes through the raw
//! transaction makes its batch commit to redb durably, as before.
//!
//! A job may ask only for atomicity, not durability ([`Durability::None`]): a batch made of
//! such jobs alone commits without an fsync (its journal record is written but not
//! flushed), and its writes become durable with the next flush or durable commit, or when
//! the store closes. Download settlements are such jobs: losing one
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

use super::download_tables::DownloadTables;
use super::journal::{Journal, JournalOp};
use super::{Store, StoreError, meta};
use futures::channel::oneshot;
use redb::{Durability, WriteTransaction};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Counters of the grouped writes (see [`Store::write_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Commits of grouped jobs (jobs ÷ commits is the mean batch).
    pub commits: u64,
    /// Grouped jobs committed.
    pub jobs: u64,
    /// Of the commits, those made durable by the download journal.
    pub journaled: u64,
    /// Journal checkpoints: durable redb commits that let the journal start again.
    pub checkpoints: u64,
    /// Batches split because a job failed.
    pub split_batches: u64,
    /// Every redb commit since open, grouped or not.
    pub redb_commits: u64,
}

/// What a grouped job writes through: the batch's transaction, and the download tables
/// opened once for every job of the batch that asks for them.
pub struct Batch<'tx> {
    tx: &'tx WriteTransaction,
    downloads: Option<DownloadTables<'tx>>,
    /// Rows written through the download tables, kept for the journal.
    journal: Vec<JournalOp>,
    /// Whether a job used the raw transaction: its writes are unknown to the journal, so
    /// the batch commits to redb the classic way.
    raw: bool,
}

impl<'tx> Batch<'tx> {
    fn new(tx: &'tx WriteTransaction) -> Self {
        Self {
            tx,
            downloads: None,
            journal: Vec::new(),
            raw: false,
        }
    }

    /// The transaction itself, for a job that opens its own tables. The shared download
    /// tables are closed first (redb refuses to open a table twice).
    pub fn tx(&mut self) -> &'tx WriteTransaction {
        self.close_downloads();
        self.raw = true;
        self.tx
    }

    fn close_downloads(&mut self) {
        if let Some(mut tables) = self.downloads.take() {
            self.journal.append(&mut tables.take_journal());
        }
    }

    /// Closes the tables and returns what the journal needs: the rows written, or `None`
    /// when a job wrote through the raw transaction.
    fn finish(mut self) -> Option<Vec<JournalOp>> {
        self.close_downloads();
        (!self.raw).then_some(self.journal)
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
    /// Commits of grouped jobs, and the jobs they held.
    commits: AtomicU64,
    jobs: AtomicU64,
    /// Commits made durable by the journal rather than by redb, and journal checkpoints.
    journaled: AtomicU64,
    checkpoints: AtomicU64,
    /// Every redb commit (see [`Store::count_commit`]).
    redb_commits: AtomicU64,
    /// The download journal of an on-disk store. Only the drain task locks it (one runs at
    /// a time), while it holds a write transaction or runs a checkpoint.
    journal: Mutex<Option<JournalState>>,
    #[cfg(test)]
    write_points: Mutex<Option<WritePointHook>>,
}

/// The places between the writes of a batch where a crash leaves the files in a state of
/// their own; the fault-injection tests take a copy of the files at each of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum WritePoint {
    /// A transaction is about to commit.
    BeforeCommit,
    /// It committed: durably, or (a download batch) visible but relying on the journal.
    Committed,
    /// A batch's rows are in the journal (flushed unless lazily durable); its callers are
    /// answered next.
    JournalWritten,
    /// After a checkpoint: a new journal epoch, the old records scrubbed.
    EpochStarted,
}

/// What the fault-injection tests run at each [`WritePoint`].
#[cfg(test)]
pub(super) type WritePointHook = Box<dyn FnMut(WritePoint) + Send>;

/// The journal and when its current epoch got its first record.
pub(super) struct JournalState {
    journal: Journal,
    first_record_at: Option<Instant>,
    /// [`CHECKPOINT_AGE`], shorter in tests.
    checkpoint_age: Duration,
}

/// A journal whose oldest record is this old is checkpointed when the writer goes idle, so
/// a quiet shop's journal stays short and the next start replays little.
const CHECKPOINT_AGE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct QueueState {
    jobs: Vec<Box<dyn Pending>>,
    draining: bool,
}

impl Store {
    /// Counts a redb commit (see [`WriteStats::redb_commits`]).
    pub(super) fn count_commit(&self) {
        self.queue.redb_commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks a [`WritePoint`]: the fault-injection tests copy the files here.
    #[cfg(test)]
    pub(super) fn at(&self, point: WritePoint) {
        let mut hook = self
            .queue
            .write_points
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(hook) = hook.as_mut() {
            hook(point);
        }
    }

    #[cfg(not(test))]
    #[inline]
    #[allow(clippy::unused_self)] // the test build's twin reads the hook from `self`
    pub(super) fn at(&self, _point: WritePoint) {}

    /// Runs `hook` at every [`WritePoint`] from now on.
    #[cfg(test)]
    pub(super) fn on_write_points(&self, hook: WritePointHook) {
        *self
            .queue
            .write_points
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(hook);
    }

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

    /// Counters of the grouped writes since open, for metrics.
    pub fn write_stats(&self) -> WriteStats {
        let q = &self.queue;
        WriteStats {
            commits: q.commits.load(Ordering::Relaxed),
            jobs: q.jobs.load(Ordering::Relaxed),
            journaled: q.journaled.load(Ordering::Relaxed),
            checkpoints: q.checkpoints.load(Ordering::Relaxed),
            split_batches: q.split_batches.load(Ordering::Relaxed),
            redb_commits: q.redb_commits.load(Ordering::Relaxed),
        }
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
            let mut next = self.next_batch(false);
            if next.is_none() {
                if self.checkpoint_is_due() {
                    // Idle with an old journal: checkpoint while this task still owns the
                    // journal (no other drain task can start yet). The last callers wait
                    // for it (once per quiet period), so that they are still answered
                    // only after this handle is gone.
                    self.checkpoint();
                }
                next = self.next_batch(true);
            }
            let Some(more) = next else {
                drop(self);
                deliver_all(done);
                return;
            };
            deliver_all(done);
            batch = more;
        }
    }

    /// The next batch, if any job is queued. When none is and `stop`, the queue is marked
    /// as not drained, so the next job starts a new drain task (the caller must return).
    fn next_batch(&self, stop: bool) -> Option<Vec<Box<dyn Pending>>> {
        let mut state = self.lock_queue();
        if state.jobs.is_empty() {
            if stop {
                state.draining = false;
            }
            None
        } else {
            Some(take_batch(&mut state))
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
                    let journal = shared.finish();
                    if all_applied {
                        let jobs = batch.len() as u64;
                        if let Err(e) = self.commit_jobs(tx, journal, durable, jobs) {
                            for job in &mut batch {
                                job.fail(StoreError::Commit(e.to_string()));
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
                    let journal = alone.finish();
                    if applied && let Err(e) = self.commit_jobs(tx, journal, job.durable(), 1) {
                        job.fail(e);
                    }
                }
                Err(e) => job.fail(e),
            }
        }
        batch
    }

    /// Commits a batch's transaction (of `jobs` jobs). With a journal and rows written only through the
    /// download tables, redb commits without a flush and the rows go to the journal, which
    /// is flushed when `durable`; otherwise redb commits as the transaction was begun.
    fn commit_jobs(
        &self,
        mut tx: WriteTransaction,
        journal: Option<Vec<JournalOp>>,
        durable: bool,
        jobs: u64,
    ) -> Result<(), StoreError> {
        self.queue.commits.fetch_add(1, Ordering::Relaxed);
        self.queue.jobs.fetch_add(jobs, Ordering::Relaxed);
        let mut guard = self.lock_journal();
        let (Some(state), Some(ops)) = (guard.as_mut(), journal) else {
            drop(guard);
            return self.commit_checked(tx);
        };
        if ops.is_empty() {
            // Every job declined before writing (unknown passwords): nothing to keep.
            return Ok(tx.abort()?);
        }
        if !state.journal.fits(&ops) {
            // The journal is full (or the batch alone would not fit): this batch commits
            // durably, which checkpoints every journaled batch before it too.
            let started = Instant::now();
            tx.set_durability(Durability::Immediate)?;
            self.commit_checked(tx)?;
            state.restart();
            self.queue.checkpoints.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(took = ?started.elapsed(), "download journal full: checkpointed");
            return Ok(());
        }
        let seq = state.journal.last_seq() + 1;
        meta::set_journal_seq(&tx, seq)?;
        tx.set_durability(Durability::None)?;
        self.commit_checked(tx)?;
        if let Err(e) = state.journal.append(seq, &ops, durable) {
            // redb now holds a batch the journal could not keep; stop writing, as after
            // a failed commit, and let the supervisor restart the process.
            self.poison(&e);
            return Err(e);
        }
        self.at(WritePoint::JournalWritten);
        state.first_record_at.get_or_insert_with(Instant::now);
        self.queue.journaled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn lock_journal(&self) -> std::sync::MutexGuard<'_, Option<JournalState>> {
        self.queue
            .journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the journal has held records for [`CHECKPOINT_AGE`].
    fn checkpoint_is_due(&self) -> bool {
        self.lock_journal().as_ref().is_some_and(|state| {
            state
                .first_record_at
                .is_some_and(|at| at.elapsed() >= state.checkpoint_age)
        })
    }

    /// Makes every journaled batch durable in redb (one durable commit) and empties the
    /// journal. A failure leaves the journal as it was, to be tried again.
    pub(super) fn checkpoint(&self) {
        let mut guard = self.lock_journal();
        let Some(state) = guard.as_mut() else {
            return;
        };
        let last = state.journal.last_seq();
        let committed = self.begin_checked().and_then(|tx| {
            meta::set_journal_seq(&tx, last)?;
            self.commit_checked(tx)
        });
        match committed {
            Ok(()) => {
                state.restart();
                if let Err(e) = state.journal.scrub() {
                    tracing::warn!(error = %e, "download journal could not be scrubbed");
                }
                self.queue.checkpoints.fetch_add(1, Ordering::Relaxed);
                self.at(WritePoint::EpochStarted);
            }
            Err(e) => tracing::warn!(error = %e, "download journal checkpoint failed"),
        }
    }

    /// Puts the journal opened at start-up in place, after its batches were replayed.
    pub(super) fn install_journal(&self, journal: Journal) {
        *self.lock_journal() = Some(JournalState {
            journal,
            first_record_at: None,
            checkpoint_age: CHECKPOINT_AGE,
        });
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

impl JournalState {
    /// Starts a new epoch once redb durably holds every journaled batch. On failure the
    /// old epoch goes on (its records are still valid) and a later batch tries again.
    fn restart(&mut self) {
        let last = self.journal.last_seq();
        match self.journal.start_epoch(last) {
            Ok(()) => self.first_record_at = None,
            Err(e) => tracing::warn!(error = %e, "download journal could not start a new epoch"),
        }
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
        use crate::store::events;
        use crate::store::events::EventRecord;
        use crate::store::events::Outcome;
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
            count: 1,
            last_at: Timestamp::from_unix_millis(1_800_000_000_000),
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
                            events::insert_event(batch.tx(), &event(i))
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
            .read(|tx| events::grant_events(tx, grant))
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_writer_checkpoints_an_old_journal_into_redb() {
        let live = tempfile::tempdir().unwrap();
        let store = Store::open(&live.path().join("t.redb")).unwrap();
        store
            .lock_journal()
            .as_mut()
            .expect("an on-disk store has a journal")
            .checkpoint_age = Duration::from_millis(50);
        store
            .write_grouped(|batch| batch.downloads()?.insert_event(&event(4, 1, String::new())))
            .await
            .unwrap();
        assert_eq!(
            store.write_stats().checkpoints,
            0,
            "too young to checkpoint"
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        store
            .write_grouped(|batch| batch.downloads()?.insert_event(&event(4, 2, String::new())))
            .await
            .unwrap();
        // The writer checkpoints as it goes idle, before it answers the last write.
        let stats = store.write_stats();
        assert_eq!(stats.checkpoints, 1);
        assert_eq!((stats.commits, stats.journaled), (2, 2));
        // redb alone now holds both writes.
        let redb_only = tempfile::tempdir().unwrap();
        crash_image(live.path(), redb_only.path(), false);
        let reopened = Store::open(&redb_only.path().join("t.redb")).unwrap();
        assert_eq!(logged_bytes(&reopened, 4), [1, 2]);
        drop(reopened);
        drop(store);
    }

    /// What a crash would leave: the files as they are on disk now, copied while the store
    /// is open (redb's header there still names the last durable commit).
    fn crash_image(from: &std::path::Path, to: &std::path::Path, with_journal: bool) {
        std::fs::copy(from.join("t.redb"), to.join("t.redb")).unwrap();
        if with_journal {
            std::fs::copy(from.join("t.redb.journal"), to.join("t.redb.journal")).unwrap();
        }
    }

    fn event(grant: u64, bytes: u64, user_agent: String) -> crate::store::events::EventRecord {
        crate::store::events::EventRecord {
            at: domain::Timestamp::from_unix_millis(1_800_000_000_000),
            grant: domain::GrantId::new(grant),
            file: None,
            ip: std::net::IpAddr::from([192, 0, 2, 1]),
            country: None,
            user_agent,
            bytes,
            outcome: crate::store::events::Outcome::Allowed,
            count: 1,
            last_at: domain::Timestamp::from_unix_millis(1_800_000_000_000),
        }
    }

    fn logged_bytes(store: &Store, grant: u64) -> Vec<u64> {
        let mut bytes: Vec<u64> = store
            .read(|tx| crate::store::events::grant_events(tx, domain::GrantId::new(grant)))
            .unwrap()
            .into_iter()
            .map(|e| e.bytes)
            .collect();
        bytes.sort_unstable();
        bytes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn acknowledged_download_writes_survive_a_crash_through_the_journal() {
        let live = tempfile::tempdir().unwrap();
        let store = Store::open(&live.path().join("t.redb")).unwrap();
        let jobs = (0..200u64).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write_grouped(move |batch| {
                        batch.downloads()?.insert_event(&event(9, i, String::new()))
                    })
                    .await
            })
        });
        for job in futures::future::join_all(jobs).await {
            job.unwrap().unwrap();
        }
        // A lazily durable write after them rides on the journal too.
        store
            .write_grouped_lazily(|batch| {
                batch
                    .downloads()?
                    .insert_event(&event(9, 1000, String::new()))
            })
            .await
            .unwrap();
        store
            .write_grouped(|batch| {
                batch
                    .downloads()?
                    .insert_event(&event(9, 1001, String::new()))
            })
            .await
            .unwrap();

        // redb alone does not have them: the download batches committed without a flush.
        let redb_only = tempfile::tempdir().unwrap();
        crash_image(live.path(), redb_only.path(), false);
        let reopened = Store::open(&redb_only.path().join("t.redb")).unwrap();
        assert_eq!(logged_bytes(&reopened, 9), Vec::<u64>::new());
        drop(reopened);

        // With the journal beside it, every acknowledged write is back, once.
        let crashed = tempfile::tempdir().unwrap();
        crash_image(live.path(), crashed.path(), true);
        let reopened = Store::open(&crashed.path().join("t.redb")).unwrap();
        let mut expected: Vec<u64> = (0..200).collect();
        expected.extend([1000, 1001]);
        assert_eq!(logged_bytes(&reopened, 9), expected);
        // The replay was made durable and the journal emptied: a second crash and open
        // finds the same, not twice as much.
        drop(reopened);
        let again = Store::open(&crashed.path().join("t.redb")).unwrap();
        assert_eq!(logged_bytes(&again, 9), expected);
        drop(again);
        drop(store);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replay_never_puts_back_what_a_later_durable_commit_changed() {
        use crate::store::grants;
        use crate::store::grants::Grant;
        let live = tempfile::tempdir().unwrap();
        let store = Store::open(&live.path().join("t.redb")).unwrap();
        let grant = |max_downloads: u32| Grant {
            order_id: domain::OrderId::new(1_234_567).unwrap(),
            product_id: domain::ProductId::parse("book").unwrap(),
            password_digest: [7; 32],
            replaced_digests: Vec::new(),
            issued_at: domain::Timestamp::from_unix_millis(1_800_000_000_000),
            valid_until: None,
            max_downloads,
            country_lock: true,
            locked: None,
            blocked_by: None,
            revoked_at: None,
            ledger: Vec::new(),
        };
        let id = domain::GrantId::new(5);
        // A journaled download batch writes the grant...
        store
            .write_grouped(move |batch| batch.downloads()?.update_grant(id, &grant(1)))
            .await
            .unwrap();
        // ...the seller then changes it in an ordinary, durable transaction...
        store
            .write(|tx| grants::put_grant(tx, id, &grant(2)))
            .unwrap();
        // ...and another download batch is journaled after that.
        store
            .write_grouped(|batch| {
                batch
                    .downloads()?
                    .insert_event(&event(5, 77, String::new()))
            })
            .await
            .unwrap();

        let crashed = tempfile::tempdir().unwrap();
        crash_image(live.path(), crashed.path(), true);
        let reopened = Store::open(&crashed.path().join("t.redb")).unwrap();
        let after = reopened.read(|tx| grants::grant(tx, id)).unwrap().unwrap();
        assert_eq!(after.max_downloads, 2, "the seller's change stands");
        assert_eq!(
            logged_bytes(&reopened, 5),
            [77],
            "the later batch was replayed"
        );
        drop(reopened);
        drop(store);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_journal_is_checkpointed_into_redb_and_starts_again() {
        let live = tempfile::tempdir().unwrap();
        let store = Store::open(&live.path().join("t.redb")).unwrap();
        // Three writes of 3 MiB each: the third does not fit the 8 MiB journal.
        let big = || "x".repeat(3 << 20);
        for bytes in 1..=3u64 {
            store
                .write_grouped(move |batch| {
                    batch.downloads()?.insert_event(&event(3, bytes, big()))
                })
                .await
                .unwrap();
        }
        // One more, small: journaled in the new epoch.
        store
            .write_grouped(|batch| batch.downloads()?.insert_event(&event(3, 4, String::new())))
            .await
            .unwrap();

        // The third write committed durably, holding the first two with it.
        let redb_only = tempfile::tempdir().unwrap();
        crash_image(live.path(), redb_only.path(), false);
        let reopened = Store::open(&redb_only.path().join("t.redb")).unwrap();
        assert_eq!(logged_bytes(&reopened, 3), [1, 2, 3]);
        drop(reopened);

        let crashed = tempfile::tempdir().unwrap();
        crash_image(live.path(), crashed.path(), true);
        let reopened = Store::open(&crashed.path().join("t.redb")).unwrap();
        assert_eq!(logged_bytes(&reopened, 3), [1, 2, 3, 4]);
        drop(reopened);
        drop(store);
    }
}

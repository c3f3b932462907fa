//! Fault injection for the download journal: a copy of the files (a crash image) is taken
//! at every write point of every batch (see `WritePoint`), and each image, opened as after
//! a crash, must hold exactly the steps acknowledged before it, plus at most the whole of
//! the step in progress: nothing acknowledged lost, nothing half applied, nothing twice.
//! A scripted run covers every write point of every kind of step; a property test runs
//! random sequences of steps and checkpoints against the same model.

use super::group_commit::WritePoint;
use super::{Store, StoreError, events, grants};
use domain::grant::{Grant, GrantRules};
use domain::{FileId, GrantId, OrderId, ProductId, Timestamp};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const FILE: FileId = FileId::new(1);

/// One step of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// A download: the grant is charged and the attempt logged, in a journaled batch.
    Download { grant: u64, bytes: u64 },
    /// A settlement giving bytes back, lazily durable, in a journaled batch.
    Settle { grant: u64, bytes: u64 },
    /// The seller changes the grant's limit in an ordinary durable transaction.
    SellerChange { grant: u64, max: u32 },
    /// A journal checkpoint.
    Checkpoint,
}

/// What the steps are about, per grant: the limit, the bytes counted, the events' bytes.
type State = BTreeMap<u64, (u32, u64, Vec<u64>)>;

fn at() -> Timestamp {
    Timestamp::from_unix_millis(1_800_000_000_000)
}

fn new_grant() -> Grant {
    Grant::issue(
        OrderId::new(1_234_567).expect("a valid order id"),
        ProductId::parse("book").expect("a valid product id"),
        GrantRules {
            download_days: 0,
            max_downloads: 3,
            country_lock: false,
        },
        [7; 32],
        at(),
    )
}

fn event(grant: u64, bytes: u64) -> events::EventRecord {
    events::EventRecord {
        at: at(),
        grant: GrantId::new(grant),
        file: Some(FILE),
        ip: std::net::IpAddr::from([192, 0, 2, 1]),
        country: None,
        user_agent: String::new(),
        bytes,
        outcome: events::Outcome::Allowed,
        count: 1,
        last_at: at(),
    }
}

/// The state after `steps`, as the model says.
fn model(steps: &[Step]) -> State {
    let mut state = State::new();
    for step in steps {
        match *step {
            Step::Download { grant, bytes } => {
                let entry = state.entry(grant).or_insert((3, 0, Vec::new()));
                entry.1 += bytes;
                entry.2.push(bytes);
            }
            Step::Settle { grant, bytes } => {
                let entry = state.entry(grant).or_insert((3, 0, Vec::new()));
                entry.1 = entry.1.saturating_sub(bytes);
            }
            Step::SellerChange { grant, max } => {
                state.entry(grant).or_insert((3, 0, Vec::new())).0 = max;
            }
            Step::Checkpoint => {}
        }
    }
    state
}

/// Runs one step against the store.
async fn apply(store: &Store, step: Step) -> Result<(), StoreError> {
    match step {
        Step::Download { grant, bytes } => {
            store
                .write_grouped(move |batch| {
                    let tables = batch.downloads()?;
                    let id = GrantId::new(grant);
                    let mut record = tables.grant(id)?.unwrap_or_else(new_grant);
                    record.charge(FILE, bytes);
                    tables.update_grant(id, &record)?;
                    tables.insert_event(&event(grant, bytes))?;
                    Ok(())
                })
                .await
        }
        Step::Settle { grant, bytes } => {
            store
                .write_grouped_lazily(move |batch| {
                    let tables = batch.downloads()?;
                    let id = GrantId::new(grant);
                    let mut record = tables.grant(id)?.unwrap_or_else(new_grant);
                    record.settle(FILE, bytes);
                    tables.update_grant(id, &record)
                })
                .await
        }
        Step::SellerChange { grant, max } => store.write(|tx| {
            let id = GrantId::new(grant);
            let mut record = grants::grant(tx, id)?.unwrap_or_else(new_grant);
            record.max_downloads = max;
            grants::put_grant(tx, id, &record)
        }),
        Step::Checkpoint => {
            store.checkpoint();
            Ok(())
        }
    }
}

/// The state a store holds for the grants the model knows of (and any other).
fn state_of(store: &Store, grants_seen: impl IntoIterator<Item = u64>) -> State {
    let mut state = State::new();
    for grant in grants_seen {
        let id = GrantId::new(grant);
        let record = store
            .read(|tx| grants::grant(tx, id))
            .expect("the image reads");
        let logged: Vec<u64> = store
            .read(|tx| events::grant_events(tx, id))
            .expect("the image reads")
            .into_iter()
            .map(|e| e.bytes)
            .collect();
        match record {
            Some(g) => {
                state.insert(grant, (g.max_downloads, g.counted(FILE), logged));
            }
            None => assert!(logged.is_empty(), "events of grant {grant} without it"),
        }
    }
    state
}

/// A crash image: the files as they were at one write point of one step.
struct Image {
    step: usize,
    point: WritePoint,
    dir: PathBuf,
}

/// Runs `steps` on a fresh store under `root`, taking an image at each write point for
/// which `keep(step, point)` says so.
async fn run(
    root: &Path,
    steps: &[Step],
    keep: impl Fn(usize, WritePoint) -> bool + Send + 'static,
) -> Vec<Image> {
    let live = root.join("live");
    std::fs::create_dir_all(&live).expect("a live dir");
    let store = Store::open(&live.join("t.redb")).expect("the store opens");
    let current = Arc::new(AtomicUsize::new(0));
    let images = Arc::new(Mutex::new(Vec::new()));
    {
        let (current, images, live, root) = (
            Arc::clone(&current),
            Arc::clone(&images),
            live.clone(),
            root.to_path_buf(),
        );
        let taken = AtomicUsize::new(0);
        store.on_write_points(Box::new(move |point| {
            let step = current.load(Ordering::SeqCst);
            if !keep(step, point) {
                return;
            }
            let dir = root.join(format!("image-{}", taken.fetch_add(1, Ordering::SeqCst)));
            std::fs::create_dir_all(&dir).expect("an image dir");
            for name in ["t.redb", "t.redb.journal"] {
                // Read and written, not `fs::copy`: a process crash keeps what was written
                // but not flushed (it is in the page cache), and `copy_file_range` may
                // clone the blocks on disk instead.
                let bytes = std::fs::read(live.join(name)).expect("the live file reads");
                std::fs::write(dir.join(name), bytes).expect("the image file writes");
            }
            images
                .lock()
                .expect("the image list")
                .push(Image { step, point, dir });
        }));
    }
    for (index, step) in steps.iter().enumerate() {
        current.store(index, Ordering::SeqCst);
        apply(&store, *step).await.expect("the step is applied");
    }
    drop(store);
    std::mem::take(&mut *images.lock().expect("the image list"))
}

/// Opens an image as after a crash and checks it against the model.
fn check(image: &Image, steps: &[Step]) {
    let grants_seen: Vec<u64> = model(steps).keys().copied().collect();
    let store = Store::open(&image.dir.join("t.redb")).expect("the image opens");
    let found = state_of(&store, grants_seen.iter().copied());
    let before = model(&steps[..image.step]);
    let after = model(&steps[..=image.step]);
    let durable_step = matches!(
        steps[image.step],
        Step::SellerChange { .. } | Step::Checkpoint
    );
    // A journaled batch is committed to redb without a flush: only the journal, written
    // next, keeps it; a durable commit keeps its step at once.
    let kept = match image.point {
        WritePoint::BeforeCommit => false,
        WritePoint::Committed => durable_step,
        WritePoint::JournalWritten | WritePoint::EpochStarted => true,
    };
    let expected: &[&State] = if kept { &[&after] } else { &[&before] };
    assert!(
        expected.contains(&&found),
        "step {} ({:?}) at {:?}: found {found:?}, expected one of {expected:?}",
        image.step,
        steps[image.step],
        image.point
    );
    // Opening made the replay durable: a second crash right after finds the same.
    drop(store);
    let again = Store::open(&image.dir.join("t.redb")).expect("the image opens again");
    assert_eq!(
        state_of(&again, grants_seen),
        found,
        "a second open changed it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_point_of_every_kind_of_step_recovers_to_the_acknowledged_state() {
    let root = tempfile::tempdir().expect("a temp dir");
    let steps = [
        Step::Download {
            grant: 1,
            bytes: 100,
        },
        Step::Download {
            grant: 2,
            bytes: 40,
        },
        Step::Settle {
            grant: 1,
            bytes: 30,
        },
        Step::SellerChange { grant: 1, max: 5 },
        Step::Download {
            grant: 1,
            bytes: 70,
        },
        Step::Checkpoint,
        Step::Download {
            grant: 2,
            bytes: 60,
        },
        Step::Settle {
            grant: 2,
            bytes: 10,
        },
        Step::SellerChange { grant: 2, max: 1 },
        Step::Download { grant: 1, bytes: 5 },
    ];
    let images = run(root.path(), &steps, |_, _| true).await;
    // Each journaled step passes three points, a durable one two, a checkpoint three.
    let seen: std::collections::BTreeSet<_> = images.iter().map(|i| (i.step, i.point)).collect();
    for (index, step) in steps.iter().enumerate() {
        let wanted: &[WritePoint] = match step {
            Step::Download { .. } | Step::Settle { .. } => &[
                WritePoint::BeforeCommit,
                WritePoint::Committed,
                WritePoint::JournalWritten,
            ],
            Step::SellerChange { .. } => &[WritePoint::BeforeCommit, WritePoint::Committed],
            Step::Checkpoint => &[
                WritePoint::BeforeCommit,
                WritePoint::Committed,
                WritePoint::EpochStarted,
            ],
        };
        for point in wanted {
            assert!(
                seen.contains(&(index, *point)),
                "no image at {point:?} of step {index}"
            );
        }
    }
    for image in &images {
        check(image, &steps);
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u64..4, 1u64..500).prop_map(|(grant, bytes)| Step::Download { grant, bytes }),
        2 => (1u64..4, 1u64..500).prop_map(|(grant, bytes)| Step::Settle { grant, bytes }),
        1 => (1u64..4, 0u32..9).prop_map(|(grant, max)| Step::SellerChange { grant, max }),
        1 => Just(Step::Checkpoint),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random steps and checkpoints, a crash at one random write point.
    #[test]
    fn a_crash_anywhere_recovers_to_the_acknowledged_state(
        steps in proptest::collection::vec(step(), 1..14),
        crash_at in any::<proptest::sample::Index>(),
        point in 0usize..3,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let root = tempfile::tempdir().expect("a temp dir");
        let crash_step = crash_at.index(steps.len());
        let images = runtime.block_on(run(root.path(), &steps, move |index, _| index == crash_step));
        prop_assert!(!images.is_empty(), "no write point in step {crash_step}");
        let image = &images[point.min(images.len() - 1)];
        check(image, &steps);
    }
}

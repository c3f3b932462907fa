//! The download journal: a redo log that makes a download batch durable with one small
//! write and one `fdatasync`, where a durable redb commit (two-phase, as quick-repair
//! requires) costs two flushes and the page writes between them.
//!
//! A batch of download jobs commits to redb *without* durability, which makes it visible
//! to every later transaction at once, and then appends the rows it wrote (grant records,
//! events, event index keys: absolute values, so replaying one twice is harmless) to this
//! file and flushes it. Only then are the callers answered, so nothing acknowledged is
//! lost: after a crash redb comes back at its last durable commit and [`replay`] applies
//! the journal's batches that commit does not hold yet.
//!
//! Which batches redb holds is written into redb itself: every journaled batch stores its
//! sequence number in `meta` in the same transaction (`meta::journal_seq`). A later durable
//! commit of any kind (an order, a checkpoint, the close) persists that number together
//! with the rows, so replay skips exactly the batches the file already has and never puts
//! back an old grant record over a newer change.
//!
//! Layout: one file beside the database, [`CAPACITY`] bytes, allocated when created so that
//! appends never change the file's size (nor run out of space).
//! - bytes 0..16: the header: a random epoch and its CRC-32;
//! - from [`FIRST_RECORD`]: records, each `[magic][epoch][seq][len][crc][payload]`.
//!
//! When the file fills, the writer checkpoints: a durable redb commit (which holds every
//! journaled batch), then a new epoch in the header. Records of an older epoch, or of an
//! earlier life of the process, are never read again, so a torn write can only end the
//! log, never splice an old record into it.

use super::StoreError;
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Size of the journal file. A download journals its grant record, its event and an index
/// key: about 230 bytes with a browser's user agent, so a full file holds some 36 000
/// downloads between checkpoints (a test measures it); with the benchmark's short `wrk`
/// agent and no country, about 130 bytes and 65 000 (bench/README.md).
pub(super) const CAPACITY: usize = 8 << 20;
/// Where the first record starts; the header sector stays alone.
const FIRST_RECORD: usize = 4096;
/// Bytes before a record's payload: magic, epoch, seq, payload length, CRC-32.
const RECORD_HEADER: usize = 4 + 8 + 8 + 4 + 4;
const MAGIC: u32 = 0x4447_4a31; // "DGJ1"

/// One row a journaled batch wrote, with the bytes exactly as stored in redb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalOp {
    /// `grants-1[id] = record`.
    Grant { id: u64, record: Vec<u8> },
    /// `events-1[seq] = record`.
    Event { seq: u64, record: Vec<u8> },
    /// `grant_events-1[key] = ()`.
    GrantEvent { key: [u8; 16] },
}

/// A batch read back from the file.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct JournalBatch {
    pub seq: u64,
    pub ops: Vec<JournalOp>,
}

/// The open journal file and where the next record goes.
pub(super) struct Journal {
    file: File,
    path: PathBuf,
    epoch: u64,
    /// Where the next record is written.
    end: u64,
    /// Sequence number of the last record written (0 before any).
    last_seq: u64,
    /// End of the bytes any record may still occupy, of this epoch or an older one (see
    /// [`Self::scrub`]).
    high_water: u64,
    /// Reused for encoding records.
    buffer: Vec<u8>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("end", &self.end)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

/// The journal path that belongs to a database file: `shop.redb` → `shop.redb.journal`.
pub(super) fn path_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

fn io(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Journal(format!("{what} {}: {e}", path.display()))
}

impl Journal {
    /// Opens the journal, creating it (allocated, reading as zeros) when missing, and returns it with the
    /// batches of its current epoch in order. Nothing is written to an existing file: the
    /// caller replays, checkpoints, and then calls [`Self::start_epoch`].
    pub(super) fn open(path: &Path) -> Result<(Self, Vec<JournalBatch>), StoreError> {
        let exists = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io(path, "cannot open the download journal", e))?;
        let len = file
            .metadata()
            .map_err(|e| io(path, "cannot read the size of", e))?
            .len();
        if len < CAPACITY as u64 {
            allocate(&file, len, CAPACITY as u64).map_err(|e| io(path, "cannot allocate", e))?;
            if !exists && let Some(dir) = path.parent() {
                // The new name must survive a crash too.
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io(dir, "cannot flush the directory", e))?;
            }
        }
        // After a quiet stop only the header holds anything, and only it is read. Else the
        // whole file is: the last non-zero byte is not the end of the records, as a record
        // may end in zeros (a ledger's zero counts, an event number that is a multiple of
        // 256), and cutting it there lost that record, acknowledged, in a crash.
        let high_water = written_end(&file).map_err(|e| io(path, "cannot read", e))?;
        let readable = if high_water > FIRST_RECORD {
            CAPACITY.max(high_water)
        } else {
            high_water
        };
        let mut contents = vec![0; readable];
        file.read_exact_at(&mut contents, 0)
            .map_err(|e| io(path, "cannot read", e))?;
        let batches = parse(&contents);
        drop(contents);
        let journal = Self {
            file,
            path: path.to_path_buf(),
            epoch: 0,
            end: FIRST_RECORD as u64,
            last_seq: batches.last().map_or(0, |b| b.seq),
            high_water: high_water as u64,
            buffer: Vec::new(),
        };
        Ok((journal, batches))
    }

    /// Starts an empty log under a fresh random epoch, after which records continue from
    /// `last_seq + 1`. Call only when redb durably holds every batch written so far.
    pub(super) fn start_epoch(&mut self, last_seq: u64) -> Result<(), StoreError> {
        let mut epoch = 0u64;
        while epoch == 0 {
            let mut bytes = [0u8; 8];
            rand::rngs::OsRng
                .try_fill_bytes(&mut bytes)
                .map_err(|e| StoreError::Journal(format!("no randomness for an epoch: {e}")))?;
            epoch = u64::from_le_bytes(bytes);
        }
        let mut header = [0u8; 16];
        header[..8].copy_from_slice(&epoch.to_le_bytes());
        let crc = crc32fast::hash(&header[..8]);
        header[8..12].copy_from_slice(&crc.to_le_bytes());
        self.file
            .write_all_at(&header, 0)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io(&self.path, "cannot write the header of", e))?;
        self.epoch = epoch;
        self.end = FIRST_RECORD as u64;
        self.last_seq = last_seq;
        Ok(())
    }

    /// Sequence number of the last record written.
    pub(super) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Whether a batch of `ops` fits in the space left; when not, the writer checkpoints
    /// (and a batch too big for an empty log commits to redb durably instead).
    pub(super) fn fits(&self, ops: &[JournalOp]) -> bool {
        self.end + record_len(ops) <= CAPACITY as u64
    }

    /// Appends the record of batch `seq` (which must be `last_seq + 1`) and, when `flush`,
    /// waits until it is on disk. An unflushed record becomes durable with the next flush.
    pub(super) fn append(
        &mut self,
        seq: u64,
        ops: &[JournalOp],
        flush: bool,
    ) -> Result<(), StoreError> {
        debug_assert_eq!(seq, self.last_seq + 1);
        let payload = postcard::to_stdvec(ops).expect("postcard serialisation of journal ops");
        let buffer = &mut self.buffer;
        buffer.clear();
        buffer.extend_from_slice(&MAGIC.to_le_bytes());
        buffer.extend_from_slice(&self.epoch.to_le_bytes());
        buffer.extend_from_slice(&seq.to_le_bytes());
        let len = u32::try_from(payload.len()).expect("a journal record fits the file");
        buffer.extend_from_slice(&len.to_le_bytes());
        let crc = record_crc(self.epoch, seq, len, &payload);
        buffer.extend_from_slice(&crc.to_le_bytes());
        buffer.extend_from_slice(&payload);
        self.file
            .write_all_at(buffer, self.end)
            .map_err(|e| io(&self.path, "cannot append to", e))?;
        if flush {
            self.file
                .sync_data()
                .map_err(|e| io(&self.path, "cannot flush", e))?;
        }
        self.end += buffer.len() as u64;
        self.high_water = self.high_water.max(self.end);
        self.last_seq = seq;
        Ok(())
    }

    /// Overwrites with zeros everything past the current epoch's records: after
    /// [`Self::start_epoch`], every record of older epochs, so buyers' IPs and user agents
    /// do not linger in the file once redb has them (the IP retention setting applies to
    /// redb). Not flushed, as nothing depends on it being on disk.
    pub(super) fn scrub(&mut self) -> Result<(), StoreError> {
        if self.high_water > self.end {
            let from = self.end;
            write_zeros(&self.file, from, self.high_water)
                .map_err(|e| io(&self.path, "cannot scrub", e))?;
            self.high_water = from;
        }
        Ok(())
    }
}

/// Bytes a record of `ops` takes (header included).
fn record_len(ops: &[JournalOp]) -> u64 {
    // postcard: a varint length, then per op a varint tag, varint ids and length-prefixed
    // bytes. 10 bytes per varint is the most it can take.
    let payload: usize = 10
        + ops
            .iter()
            .map(|op| match op {
                JournalOp::Grant { record, .. } | JournalOp::Event { record, .. } => {
                    1 + 10 + 10 + record.len()
                }
                JournalOp::GrantEvent { .. } => 1 + 16,
            })
            .sum::<usize>();
    (RECORD_HEADER + payload) as u64
}

fn record_crc(epoch: u64, seq: u64, len: u32, payload: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&epoch.to_le_bytes());
    crc.update(&seq.to_le_bytes());
    crc.update(&len.to_le_bytes());
    crc.update(payload);
    crc.finalize()
}

/// One past the last non-zero byte of the file, at least [`FIRST_RECORD`]; read in chunks
/// so that opening never holds the whole file in memory.
fn written_end(file: &File) -> std::io::Result<usize> {
    let mut chunk = vec![0u8; 64 << 10];
    let mut at = 0usize;
    let mut end = FIRST_RECORD;
    loop {
        let n = file.read_at(&mut chunk, at as u64)?;
        if n == 0 {
            return Ok(end);
        }
        if let Some(last) = chunk[..n].iter().rposition(|&b| b != 0) {
            end = end.max(at + last + 1);
        }
        at += n;
    }
}

/// Reserves `from..to` on disk (reading as zeros) and flushes the new size, so appends
/// never run out of space. Where the filesystem cannot reserve, zeros are written instead.
fn allocate(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    if fallocate(file, FallocateFlags::empty(), from, to - from).is_err() {
        write_zeros(file, from, to)?;
    }
    file.sync_all()
}

/// Writes zeros over `from..to`.
fn write_zeros(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    const CHUNK: usize = 64 << 10;
    let zeros = vec![0u8; CHUNK];
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).map_or(CHUNK, |left| left.min(CHUNK));
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// The records of the file's current epoch, in order, up to the first one that is torn,
/// of another epoch, or out of sequence. A missing or damaged header means no records:
/// the header is only rewritten after a checkpoint, when redb holds every batch.
fn parse(contents: &[u8]) -> Vec<JournalBatch> {
    let mut batches = Vec::new();
    let Some(header) = contents.get(..16) else {
        return batches;
    };
    let epoch = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
    let header_crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if epoch == 0 || crc32fast::hash(&header[..8]) != header_crc {
        return batches;
    }
    let mut at = FIRST_RECORD;
    let mut previous: Option<u64> = None;
    while let Some(head) = contents.get(at..at + RECORD_HEADER) {
        let word = |range: std::ops::Range<usize>| &head[range];
        let magic = u32::from_le_bytes(word(0..4).try_into().expect("4 bytes"));
        let record_epoch = u64::from_le_bytes(word(4..12).try_into().expect("8 bytes"));
        let seq = u64::from_le_bytes(word(12..20).try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(word(20..24).try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(word(24..28).try_into().expect("4 bytes"));
        if magic != MAGIC || record_epoch != epoch || previous.is_some_and(|p| seq != p + 1) {
            break;
        }
        let start = at + RECORD_HEADER;
        let Some(payload) = contents.get(start..start + len as usize) else {
            break;
        };
        if record_crc(epoch, seq, len, payload) != crc {
            break;
        }
        let Ok(ops) = postcard::from_bytes::<Vec<JournalOp>>(payload) else {
            break;
        };
        batches.push(JournalBatch { seq, ops });
        previous = Some(seq);
        at = start + len as usize;
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(n: u8) -> Vec<JournalOp> {
        vec![
            JournalOp::Grant {
                id: u64::from(n),
                record: vec![n; 200],
            },
            JournalOp::Event {
                seq: u64::from(n) * 10,
                record: vec![n; 120],
            },
            JournalOp::GrantEvent { key: [n; 16] },
        ]
    }

    #[test]
    fn records_read_back_in_order_and_a_new_epoch_hides_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb.journal");
        let (mut journal, found) = Journal::open(&path).unwrap();
        assert!(found.is_empty(), "a new file holds no batches");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), CAPACITY as u64);
        journal.start_epoch(0).unwrap();
        journal.append(1, &ops(1), true).unwrap();
        journal.append(2, &ops(2), false).unwrap();
        journal.append(3, &ops(3), true).unwrap();
        drop(journal);

        let (mut journal, found) = Journal::open(&path).unwrap();
        assert_eq!(
            found,
            (1..=3)
                .map(|n| JournalBatch {
                    seq: u64::from(n),
                    ops: ops(n)
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(journal.last_seq(), 3);
        // After a checkpoint the old records are still in the file, under the old epoch.
        journal.start_epoch(3).unwrap();
        journal.append(4, &ops(4), true).unwrap();
        drop(journal);
        let (_, found) = Journal::open(&path).unwrap();
        assert_eq!(found.iter().map(|b| b.seq).collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn a_scrub_after_a_new_epoch_leaves_no_old_record_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb.journal");
        let (mut journal, _) = Journal::open(&path).unwrap();
        journal.start_epoch(0).unwrap();
        for n in 1..=20 {
            journal.append(u64::from(n), &ops(n), true).unwrap();
        }
        drop(journal);
        // A new life finds where the old records end, even without parsing them.
        let (mut journal, found) = Journal::open(&path).unwrap();
        assert_eq!(found.len(), 20);
        journal.start_epoch(20).unwrap();
        journal.scrub().unwrap();
        let contents = std::fs::read(&path).unwrap();
        assert!(contents[FIRST_RECORD..].iter().all(|&b| b == 0));
        assert!(contents[..16].iter().any(|&b| b != 0), "the header stays");
        // A record of the new epoch is kept, and scrubbed by the next epoch in turn.
        journal.append(21, &ops(1), true).unwrap();
        journal.start_epoch(21).unwrap();
        journal.scrub().unwrap();
        let contents = std::fs::read(&path).unwrap();
        assert!(contents[FIRST_RECORD..].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_torn_record_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb.journal");
        let (mut journal, _) = Journal::open(&path).unwrap();
        journal.start_epoch(0).unwrap();
        for n in 1..=3 {
            journal.append(u64::from(n), &ops(n), true).unwrap();
        }
        let second = FIRST_RECORD as u64 + record_len_exact(&ops(1));
        drop(journal);
        // Damage one payload byte of the second record: the third, intact, must not be read.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xff], second + RECORD_HEADER as u64 + 5)
            .unwrap();
        let (_, found) = Journal::open(&path).unwrap();
        assert_eq!(found.iter().map(|b| b.seq).collect::<Vec<_>>(), [1]);
        // A damaged header hides every record.
        file.write_all_at(&[0xff], 3).unwrap();
        let (_, found) = Journal::open(&path).unwrap();
        assert!(found.is_empty());
    }

    /// The last record may end in zero bytes: the grant-event key of event 256 does, and
    /// a settlement's grant record ends in its ledger's zero counts. Reading only up to the
    /// last non-zero byte of the file lost such a record (found by `crash_tests`).
    #[test]
    fn a_last_record_that_ends_in_zeros_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb.journal");
        let (mut journal, _) = Journal::open(&path).unwrap();
        journal.start_epoch(0).unwrap();
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&7u64.to_be_bytes());
        key[8..].copy_from_slice(&256u64.to_be_bytes());
        let ending_in_zeros = vec![
            JournalOp::Grant {
                id: 7,
                record: vec![1, 0, 0, 0, 0],
            },
            JournalOp::GrantEvent { key },
        ];
        journal.append(1, &ops(1), true).unwrap();
        journal.append(2, &ending_in_zeros, false).unwrap();
        drop(journal);
        let (_, found) = Journal::open(&path).unwrap();
        assert_eq!(found.iter().map(|b| b.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(found[1].ops, ending_in_zeros);
    }

    /// What the module docs and bench/README say: with a browser's user agent a download
    /// journals about 230 bytes, so a full journal holds about 36 000 (batches of 12, as
    /// measured at 1 KiB downloads).
    #[test]
    fn a_full_journal_holds_about_thirty_six_thousand_browser_downloads() {
        use super::super::codec::encode;
        use super::super::events::{EventRecord, Outcome};
        let mut grant = domain::grant::Grant::issue(
            domain::OrderId::new(4_033_421).unwrap(),
            domain::ProductId::parse("the-book").unwrap(),
            domain::grant::GrantRules {
                download_days: 31,
                max_downloads: 3,
                country_lock: true,
            },
            [9; 32],
            domain::Timestamp::from_unix_millis(1_800_000_000_000),
        );
        let seen = domain::grant::Sighting {
            at: domain::Timestamp::from_unix_millis(1_800_000_000_000),
            ip: std::net::IpAddr::from([81, 2, 69, 142]),
            country: domain::CountryCode::parse("GB"),
        };
        grant.charge(domain::FileId::new(3), 1024);
        grant.locked = Some(seen.clone());
        let event = EventRecord {
            at: seen.at,
            grant: domain::GrantId::new(41),
            file: Some(domain::FileId::new(3)),
            ip: seen.ip,
            country: seen.country,
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36".into(),
            bytes: 1024,
            outcome: Outcome::Allowed,
            count: 1,
            last_at: seen.at,
        };
        let batch: Vec<JournalOp> = (0..12u64)
            .flat_map(|i| {
                [
                    JournalOp::Grant {
                        id: 41 + i,
                        record: encode(&grant),
                    },
                    JournalOp::Event {
                        seq: 90_000 + i,
                        record: encode(&event),
                    },
                    JournalOp::GrantEvent { key: [7; 16] },
                ]
            })
            .collect();
        let per_download = record_len_exact(&batch) / 12;
        let fit = (CAPACITY - FIRST_RECORD) as u64 / per_download;
        assert!(
            (30_000..=45_000).contains(&fit),
            "{per_download} bytes a download: {fit} fit"
        );
    }

    #[test]
    fn the_space_estimate_never_falls_short() {
        for n in [0u8, 1, 200, 255] {
            let ops = ops(n);
            assert!(record_len(&ops) >= record_len_exact(&ops));
        }
    }

    fn record_len_exact(ops: &[JournalOp]) -> u64 {
        (RECORD_HEADER + postcard::to_stdvec(ops).unwrap().len()) as u64
    }
}

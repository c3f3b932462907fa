//! Small product files kept in memory, so the most frequent downloads of a shop (licence
//! keys, fonts, small PDFs) need no file open, no blocking-pool hop and no `sendfile`.
//!
//! Entries are keyed by storage key. A key is random and never reused, and an object under
//! a key never changes (a new upload gets a new key), so an entry can never be stale; a
//! deleted file's entry is dropped by [`SmallFiles::forget`] and would only waste memory.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Largest file kept in memory.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Memory the cache may hold in all.
const BUDGET_BYTES: usize = 32 * 1024 * 1024;

/// A size-bounded cache; the oldest entries leave first.
#[derive(Debug, Default)]
pub struct SmallFiles {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_key: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

impl SmallFiles {
    /// The bytes of a cached file.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.lock().by_key.get(key).cloned()
    }

    /// Keeps a file's bytes, evicting the oldest entries beyond the budget.
    pub fn insert(&self, key: &str, bytes: Bytes) {
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return;
        }
        let mut entries = self.lock();
        if entries.by_key.contains_key(key) {
            return;
        }
        entries.bytes += bytes.len();
        entries.by_key.insert(key.to_owned(), bytes);
        entries.order.push_back(key.to_owned());
        while entries.bytes > BUDGET_BYTES {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some(gone) = entries.by_key.remove(&oldest) {
                entries.bytes -= gone.len();
            }
        }
    }

    /// Drops a deleted file's entry.
    pub fn forget(&self, key: &str) {
        let mut entries = self.lock();
        if let Some(gone) = entries.by_key.remove(key) {
            entries.bytes -= gone.len();
            entries.order.retain(|k| k != key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_small_files_within_the_budget_oldest_out_first() {
        let cache = SmallFiles::default();
        let chunk = Bytes::from(vec![7u8; 64 * 1024]);
        cache.insert("too-big", Bytes::from(vec![0u8; 64 * 1024 + 1]));
        assert!(cache.get("too-big").is_none());
        for i in 0..600 {
            cache.insert(&format!("k{i}"), chunk.clone());
        }
        // 32 MiB hold 512 files of 64 KiB: the first 88 were evicted.
        assert!(cache.get("k87").is_none());
        assert_eq!(cache.get("k88").unwrap(), chunk);
        assert_eq!(cache.get("k599").unwrap().len(), 64 * 1024);
        cache.forget("k599");
        assert!(cache.get("k599").is_none());
        assert_eq!(cache.lock().bytes, 511 * 64 * 1024);
    }
}

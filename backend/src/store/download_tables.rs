//! The tables a download batch works on, fenced by types.
//!
//! A download batch is made durable by the download journal (`journal.rs`), not by redb:
//! a row it writes that is not in the journal is lost in a crash. So the batch gets no
//! writable redb table at all. The tables it only reads are [`ReadOnly`] handles, and the
//! only way to write is a [`Journaled`] handle whose one write method records the row as a
//! [`JournalOp`] as it writes it. Neither type lets its table out (the field is private
//! to the `fence` module), so a write that skips the journal cannot be written here.

use super::catalog::{FILES, FileRecord, PRODUCTS, ProductRecord};
use super::codec::{self, get};
use super::events::{EVENTS, EventRecord, GRANT_EVENTS, grant_event_key};
use super::grants::{GRANT_PASSWORDS, GRANTS, Grant};
use super::journal::JournalOp;
use super::orders::{ORDERS, OrderRecord};
use super::{StoreError, catalog, grants, orders};
use domain::{FileId, GrantId, OrderId, ProductId};
use fence::{Journaled, ReadOnly};
use redb::{ReadTransaction, WriteTransaction};

mod fence {
    //! The two kinds of handle; their tables never leave this module.

    use super::super::StoreError;
    use super::super::journal::JournalOp;
    use redb::{AccessGuard, Key, ReadableTable, Table, TableDefinition, Value};
    use std::borrow::Borrow;

    /// A table of the batch that can only be read.
    pub struct ReadOnly<'tx, K: Key + 'static, V: Value + 'static>(Table<'tx, K, V>);

    impl<'tx, K: Key + 'static, V: Value + 'static> ReadOnly<'tx, K, V> {
        pub fn open(
            tx: &'tx redb::WriteTransaction,
            definition: TableDefinition<'_, K, V>,
        ) -> Result<Self, StoreError> {
            Ok(Self(tx.open_table(definition)?))
        }

        pub fn get<'a>(
            &self,
            key: impl Borrow<K::SelfType<'a>>,
        ) -> Result<Option<AccessGuard<'_, V>>, StoreError> {
            Ok(self.0.get(key)?)
        }

        /// The table for a reader that takes any readable table (the codec's `get`).
        pub fn readable(&self) -> &impl ReadableTable<K, V> {
            &self.0
        }
    }

    /// How a row of a journaled table is kept in the journal.
    pub type ToOp<K, V> = fn(&<K as Value>::SelfType<'_>, &<V as Value>::SelfType<'_>) -> JournalOp;

    /// A table of the batch whose every write is kept for the journal, in order.
    pub struct Journaled<'tx, K: Key + 'static, V: Value + 'static> {
        table: Table<'tx, K, V>,
        to_op: ToOp<K, V>,
        ops: Vec<JournalOp>,
    }

    impl<'tx, K: Key + 'static, V: Value + 'static> Journaled<'tx, K, V> {
        pub fn open(
            tx: &'tx redb::WriteTransaction,
            definition: TableDefinition<'_, K, V>,
            to_op: ToOp<K, V>,
        ) -> Result<Self, StoreError> {
            Ok(Self {
                table: tx.open_table(definition)?,
                to_op,
                ops: Vec::new(),
            })
        }

        /// Writes a row and keeps it for the journal: the only write there is.
        pub fn insert(
            &mut self,
            key: &K::SelfType<'_>,
            value: &V::SelfType<'_>,
        ) -> Result<(), StoreError> {
            self.table.insert(key, value)?;
            self.ops.push((self.to_op)(key, value));
            Ok(())
        }

        /// The table for reading (writes go through [`Self::insert`] only).
        pub fn readable(&self) -> &impl ReadableTable<K, V> {
            &self.table
        }

        /// The rows written so far, in order; the list starts again empty.
        pub fn take_ops(&mut self) -> Vec<JournalOp> {
            std::mem::take(&mut self.ops)
        }
    }
}

/// The tables a download reads and writes, opened once for a whole group-commit batch
/// (see `Batch::downloads`) rather than once per lookup.
pub struct DownloadTables<'tx> {
    passwords: ReadOnly<'tx, &'static [u8], u64>,
    products: ReadOnly<'tx, &'static str, &'static [u8]>,
    files: ReadOnly<'tx, u64, &'static [u8]>,
    orders: ReadOnly<'tx, u32, &'static [u8]>,
    grants: Journaled<'tx, u64, &'static [u8]>,
    events: Journaled<'tx, u64, &'static [u8]>,
    grant_events: Journaled<'tx, &'static [u8], ()>,
}

impl<'tx> DownloadTables<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            passwords: ReadOnly::open(tx, GRANT_PASSWORDS)?,
            products: ReadOnly::open(tx, PRODUCTS)?,
            files: ReadOnly::open(tx, FILES)?,
            orders: ReadOnly::open(tx, ORDERS)?,
            grants: Journaled::open(tx, GRANTS, |id, record| JournalOp::Grant {
                id: *id,
                record: record.to_vec(),
            })?,
            events: Journaled::open(tx, EVENTS, |seq, record| JournalOp::Event {
                seq: *seq,
                record: record.to_vec(),
            })?,
            grant_events: Journaled::open(tx, GRANT_EVENTS, |key, ()| JournalOp::GrantEvent {
                key: (*key)
                    .try_into()
                    .expect("grant event keys are 16 bytes (grant_event_key)"),
            })?,
        })
    }

    /// The grant a password digest (current or replaced) belongs to.
    pub fn grant_by_digest(&self, digest: &[u8; 32]) -> Result<Option<GrantId>, StoreError> {
        Ok(self
            .passwords
            .get(digest.as_slice())?
            .map(|g| GrantId::new(g.value())))
    }

    pub fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        get(self.grants.readable(), id.get())
    }

    /// Overwrites a grant whose password did not change (the download path never changes
    /// it), so the password index is left alone.
    pub fn update_grant(&mut self, id: GrantId, record: &Grant) -> Result<(), StoreError> {
        self.grants
            .insert(&id.get(), &codec::encode(record).as_slice())
    }

    pub fn product(&self, id: &ProductId) -> Result<Option<ProductRecord>, StoreError> {
        self.products
            .get(id.as_str())?
            .map(|row| codec::decode(row.value()))
            .transpose()
    }

    pub fn file(&self, id: FileId) -> Result<Option<FileRecord>, StoreError> {
        get(self.files.readable(), id.get())
    }

    pub fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        get(self.orders.readable(), id.get())
    }

    /// Appends an event under the next sequence number (one past the last key: the
    /// retention job never removes the newest event) and indexes it by grant; returns the
    /// number.
    pub fn insert_event(&mut self, record: &EventRecord) -> Result<u64, StoreError> {
        use redb::ReadableTable as _;
        let seq = self
            .events
            .readable()
            .last()?
            .map_or(0, |(last, _)| last.value())
            + 1;
        self.events
            .insert(&seq, &codec::encode(record).as_slice())?;
        self.grant_events
            .insert(&grant_event_key(record.grant, seq).as_slice(), &())?;
        Ok(seq)
    }

    pub fn event(&self, seq: u64) -> Result<Option<EventRecord>, StoreError> {
        get(self.events.readable(), seq)
    }

    /// A grant's newest event with its sequence number.
    pub fn latest_event_of(
        &self,
        grant: GrantId,
    ) -> Result<Option<(u64, EventRecord)>, StoreError> {
        use redb::ReadableTable as _;
        let start = grant_event_key(grant, 0);
        let end = grant_event_key(grant, u64::MAX);
        let Some(row) = self
            .grant_events
            .readable()
            .range(start.as_slice()..=end.as_slice())?
            .next_back()
        else {
            return Ok(None);
        };
        let key = row?.0.value().to_vec();
        let seq = u64::from_be_bytes(key[8..16].try_into().map_err(|_| StoreError::Corrupt {
            kind: "event index",
            detail: "short key".into(),
        })?);
        Ok(self.event(seq)?.map(|event| (seq, event)))
    }

    pub fn put_event(&mut self, seq: u64, record: &EventRecord) -> Result<(), StoreError> {
        self.events.insert(&seq, &codec::encode(record).as_slice())
    }

    /// The rows written through these tables so far, for the journal. Rows of different
    /// tables are independent (each op holds a whole value), so only the order within a
    /// table matters, and that is kept.
    pub(super) fn take_journal(&mut self) -> Vec<JournalOp> {
        let mut ops = self.grants.take_ops();
        ops.append(&mut self.events.take_ops());
        ops.append(&mut self.grant_events.take_ops());
        ops
    }
}

/// What the download path reads: one trait over the batch's open tables (a GET, which
/// then writes) and a read transaction (a HEAD and the buyer page, which write nothing),
/// so both decide from the same lookups.
pub trait DeliveryReads {
    /// The grant a password digest (current or replaced) belongs to.
    fn grant_by_digest(&self, digest: &[u8; 32]) -> Result<Option<GrantId>, StoreError>;
    fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError>;
    fn product(&self, id: &ProductId) -> Result<Option<ProductRecord>, StoreError>;
    fn file(&self, id: FileId) -> Result<Option<FileRecord>, StoreError>;
    fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError>;
}

impl DeliveryReads for DownloadTables<'_> {
    fn grant_by_digest(&self, digest: &[u8; 32]) -> Result<Option<GrantId>, StoreError> {
        Self::grant_by_digest(self, digest)
    }
    fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        Self::grant(self, id)
    }
    fn product(&self, id: &ProductId) -> Result<Option<ProductRecord>, StoreError> {
        Self::product(self, id)
    }
    fn file(&self, id: FileId) -> Result<Option<FileRecord>, StoreError> {
        Self::file(self, id)
    }
    fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        Self::order(self, id)
    }
}

impl DeliveryReads for ReadTransaction {
    fn grant_by_digest(&self, digest: &[u8; 32]) -> Result<Option<GrantId>, StoreError> {
        grants::grant_by_digest(self, digest)
    }
    fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        grants::grant(self, id)
    }
    fn product(&self, id: &ProductId) -> Result<Option<ProductRecord>, StoreError> {
        catalog::product(self, id)
    }
    fn file(&self, id: FileId) -> Result<Option<FileRecord>, StoreError> {
        catalog::file(self, id)
    }
    fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        orders::order(self, id)
    }
}

/// Writes a journaled batch's rows again (crash recovery). The values are absolute, so
/// applying a batch that is already in the file changes nothing.
pub(super) fn replay(tx: &WriteTransaction, ops: &[JournalOp]) -> Result<(), StoreError> {
    let mut grants = tx.open_table(GRANTS)?;
    let mut events = tx.open_table(EVENTS)?;
    let mut grant_events = tx.open_table(GRANT_EVENTS)?;
    for op in ops {
        match op {
            JournalOp::Grant { id, record } => {
                grants.insert(*id, record.as_slice())?;
            }
            JournalOp::Event { seq, record } => {
                events.insert(*seq, record.as_slice())?;
            }
            JournalOp::GrantEvent { key } => {
                grant_events.insert(key.as_slice(), ())?;
            }
        }
    }
    Ok(())
}

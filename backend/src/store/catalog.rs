//! Products and their files: the catalog's records and tables.

use super::Reader;
use super::StoreError;
use super::codec::{self, Record, get};
use super::meta;
use domain::grant::GrantRules;
use domain::{FileId, ProductId, Timestamp};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// key: product id (slug); value: [`ProductRecord`].
pub(super) const PRODUCTS: TableDefinition<&str, &[u8]> = TableDefinition::new("products-1");
/// key: file id; value: [`FileRecord`].
pub(super) const FILES: TableDefinition<u64, &[u8]> = TableDefinition::new("files-1");

/// Creates this part's tables (schema step 2).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(PRODUCTS)?;
    tx.open_table(FILES)?;
    Ok(())
}

/// A product and its delivery rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRecord {
    pub name: String,
    /// 0 = unlimited.
    pub max_downloads: u32,
    /// 0 = unlimited.
    pub download_days: u32,
    pub country_lock: bool,
    pub files: Vec<FileId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
impl Record for ProductRecord {
    const KIND: &'static str = "product";
    const VERSION: u8 = 1;
}

impl ProductRecord {
    /// The rules a new grant of this product copies.
    pub fn rules(&self) -> GrantRules {
        GrantRules {
            download_days: self.download_days,
            max_downloads: self.max_downloads,
            country_lock: self.country_lock,
        }
    }
}

/// A stored file: metadata only; the bytes are in the object store under `storage_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub product_id: ProductId,
    /// The real name, used only for `Content-Disposition`.
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: [u8; 32],
    /// 128 random bits, hex; never shown anywhere.
    pub storage_key: String,
    pub uploaded_at: Timestamp,
}
impl Record for FileRecord {
    const KIND: &'static str = "file";
    const VERSION: u8 = 1;
}

pub fn product(tx: &impl Reader, id: &ProductId) -> Result<Option<ProductRecord>, StoreError> {
    let table = tx.table(PRODUCTS)?;
    table
        .get(id.as_str())?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

pub fn put_product(
    tx: &WriteTransaction,
    id: &ProductId,
    record: &ProductRecord,
) -> Result<(), StoreError> {
    tx.open_table(PRODUCTS)?
        .insert(id.as_str(), codec::encode(record).as_slice())?;
    Ok(())
}

pub fn remove_product(tx: &WriteTransaction, id: &ProductId) -> Result<(), StoreError> {
    tx.open_table(PRODUCTS)?.remove(id.as_str())?;
    Ok(())
}

pub fn products(tx: &impl Reader) -> Result<Vec<(ProductId, ProductRecord)>, StoreError> {
    let table = tx.table(PRODUCTS)?;
    table
        .iter()?
        .map(|row| {
            let (k, v) = row?;
            let id = ProductId::parse(k.value()).map_err(|detail| StoreError::Corrupt {
                kind: "product id",
                detail,
            })?;
            Ok((id, codec::decode(v.value())?))
        })
        .collect()
}

pub fn insert_file(tx: &WriteTransaction, record: &FileRecord) -> Result<FileId, StoreError> {
    let id = meta::next_id(tx, "file")?;
    tx.open_table(FILES)?
        .insert(id, codec::encode(record).as_slice())?;
    Ok(FileId::new(id))
}

pub fn file(tx: &impl Reader, id: FileId) -> Result<Option<FileRecord>, StoreError> {
    get(&tx.table(FILES)?, id.get())
}

pub fn remove_file(tx: &WriteTransaction, id: FileId) -> Result<(), StoreError> {
    tx.open_table(FILES)?.remove(id.get())?;
    Ok(())
}

/// Every storage key the store refers to (for removing orphaned objects).
pub fn storage_keys(tx: &impl Reader) -> Result<Vec<String>, StoreError> {
    let table = tx.table(FILES)?;
    table
        .iter()?
        .map(|row| Ok(codec::decode::<FileRecord>(row?.1.value())?.storage_key))
        .collect()
}

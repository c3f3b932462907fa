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
    /// Whether a new version of a file gives every buyer its downloads of that file again.
    /// Last, so version 1 rows read as "no".
    pub refresh_on_update: bool,
}
impl Record for ProductRecord {
    const KIND: &'static str = "product";
    const VERSION: u8 = 2;

    /// Version 1 is version 2 without `refresh_on_update` at the end: postcard's `false`
    /// (one zero byte) appended makes it a version 2 row.
    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, StoreError> {
        codec::upgrade_by_appending(version, 1, payload, &[0])
    }
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
    /// When this version (the one links serve) was uploaded.
    pub uploaded_at: Timestamp,
    /// The current version's number: 1 for the first upload, one more for each new one.
    pub version: u32,
    /// What changed in the current version, as the seller wrote it ("" for none).
    pub changelog: String,
    /// The versions before the current one, oldest first; their objects are kept until the
    /// file is deleted.
    pub previous: Vec<FileVersion>,
    /// The object was in the store before (attached, not uploaded): it is the seller's, so
    /// deleting the file leaves it where it is.
    pub attached: bool,
    /// The name of the file store it is in (`""`: the default store).
    pub store: String,
}
impl Record for FileRecord {
    const KIND: &'static str = "file";
    const VERSION: u8 = 2;

    /// Version 1 is version 2 without the last five fields: `version` 1, an empty
    /// changelog, no earlier versions, "uploaded" and the default store (bytes 1, 0, 0, 0, 0
    /// in postcard) make it one.
    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, StoreError> {
        codec::upgrade_by_appending(version, 1, payload, &[1, 0, 0, 0, 0])
    }
}

/// Where one version's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRef<'a> {
    pub store: &'a str,
    pub key: &'a str,
    pub attached: bool,
}

/// An earlier version of a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileVersion {
    pub version: u32,
    pub size: u64,
    pub sha256: [u8; 32],
    pub storage_key: String,
    pub uploaded_at: Timestamp,
    pub changelog: String,
    /// See [`FileRecord::attached`].
    pub attached: bool,
    /// See [`FileRecord::store`].
    pub store: String,
}

impl FileRecord {
    /// Makes `upload` the current version; the one it replaces joins `previous`.
    pub fn replace_with(&mut self, upload: &FileRecord) {
        let old = FileVersion {
            version: self.version,
            size: self.size,
            sha256: self.sha256,
            storage_key: std::mem::take(&mut self.storage_key),
            uploaded_at: self.uploaded_at,
            changelog: std::mem::take(&mut self.changelog),
            attached: self.attached,
            store: std::mem::take(&mut self.store),
        };
        self.previous.push(old);
        self.version += 1;
        self.size = upload.size;
        self.sha256 = upload.sha256;
        self.content_type.clone_from(&upload.content_type);
        self.storage_key.clone_from(&upload.storage_key);
        self.uploaded_at = upload.uploaded_at;
        self.changelog.clone_from(&upload.changelog);
        self.attached = upload.attached;
        self.store.clone_from(&upload.store);
    }

    /// The objects Dropgate owns for this file, as (store, key): the current version's and
    /// the earlier ones', attached objects left out. What deleting the file removes.
    pub fn owned_objects(&self) -> impl Iterator<Item = (&str, &str)> {
        self.objects()
            .filter(|o| !o.attached)
            .map(|o| (o.store, o.key))
    }

    /// Every object of every version: (store, key, attached), the current one first.
    pub fn objects(&self) -> impl Iterator<Item = ObjectRef<'_>> {
        std::iter::once(ObjectRef {
            store: &self.store,
            key: &self.storage_key,
            attached: self.attached,
        })
        .chain(self.previous.iter().map(|v| ObjectRef {
            store: &v.store,
            key: &v.storage_key,
            attached: v.attached,
        }))
    }
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

/// Replaces a file's record (a new version).
pub fn put_file(tx: &WriteTransaction, id: FileId, record: &FileRecord) -> Result<(), StoreError> {
    tx.open_table(FILES)?
        .insert(id.get(), codec::encode(record).as_slice())?;
    Ok(())
}

pub fn file(tx: &impl Reader, id: FileId) -> Result<Option<FileRecord>, StoreError> {
    get(&tx.table(FILES)?, id.get())
}

pub fn remove_file(tx: &WriteTransaction, id: FileId) -> Result<(), StoreError> {
    tx.open_table(FILES)?.remove(id.get())?;
    Ok(())
}

/// The records of a product's files, in the product's order (none for a product that is
/// gone); ids whose record is missing are skipped.
pub fn files_of(
    tx: &impl Reader,
    product: Option<&ProductRecord>,
) -> Result<Vec<(FileId, FileRecord)>, StoreError> {
    let mut files = Vec::new();
    for &id in product.iter().flat_map(|p| &p.files) {
        if let Some(record) = file(tx, id)? {
            files.push((id, record));
        }
    }
    Ok(files)
}

/// Every file's size by id, as the download rules take them.
pub fn sizes(files: &[(FileId, FileRecord)]) -> Vec<(FileId, u64)> {
    files.iter().map(|(id, f)| (*id, f.size)).collect()
}

/// Every file, by id.
pub fn all_files(tx: &impl Reader) -> Result<Vec<(FileId, FileRecord)>, StoreError> {
    let table = tx.table(FILES)?;
    table
        .iter()?
        .map(|row| {
            let (k, v) = row?;
            Ok((FileId::new(k.value()), codec::decode(v.value())?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row written before versions existed reads as version 1 with no history, and a
    /// product row before `refresh_on_update` as "no".
    #[test]
    fn rows_from_before_versions_read_as_version_one() {
        let file = FileRecord {
            product_id: ProductId::parse("ebook").unwrap(),
            name: "book.pdf".into(),
            size: 10,
            content_type: "application/pdf".into(),
            sha256: [3; 32],
            storage_key: "00ff".into(),
            uploaded_at: Timestamp::from_unix_millis(1_800_000_000_000),
            version: 1,
            changelog: String::new(),
            previous: Vec::new(),
            attached: false,
            store: String::new(),
        };
        let mut old = codec::encode(&file);
        old.truncate(old.len() - 5);
        old[0] = 1;
        assert_eq!(codec::decode::<FileRecord>(&old).unwrap(), file);
        let product = ProductRecord {
            name: "Book".into(),
            max_downloads: 3,
            download_days: 0,
            country_lock: true,
            files: vec![FileId::new(4)],
            created_at: file.uploaded_at,
            updated_at: file.uploaded_at,
            refresh_on_update: false,
        };
        let mut old = codec::encode(&product);
        old.truncate(old.len() - 1);
        old[0] = 1;
        assert_eq!(codec::decode::<ProductRecord>(&old).unwrap(), product);
        old[0] = 9;
        assert!(codec::decode::<ProductRecord>(&old).is_err());
    }

    #[test]
    fn a_new_version_keeps_the_one_it_replaces() {
        let t = |d: i64| Timestamp::from_unix_millis(1_800_000_000_000 + d);
        let mut file = FileRecord {
            product_id: ProductId::parse("ebook").unwrap(),
            name: "book.pdf".into(),
            size: 10,
            content_type: "application/pdf".into(),
            sha256: [1; 32],
            storage_key: "k1".into(),
            uploaded_at: t(0),
            version: 1,
            changelog: String::new(),
            previous: Vec::new(),
            attached: false,
            store: String::new(),
        };
        let mut upload = file.clone();
        upload.size = 20;
        upload.sha256 = [2; 32];
        upload.storage_key = "k2".into();
        upload.uploaded_at = t(5);
        upload.changelog = "Chapter 9 added".into();
        file.replace_with(&upload);
        assert_eq!(
            (
                file.version,
                file.size,
                file.storage_key.as_str(),
                file.changelog.as_str()
            ),
            (2, 20, "k2", "Chapter 9 added")
        );
        assert_eq!(file.previous.len(), 1);
        assert_eq!((file.previous[0].version, file.previous[0].size), (1, 10));
        assert_eq!(
            file.owned_objects().map(|(_, key)| key).collect::<Vec<_>>(),
            vec!["k2", "k1"]
        );
        let mut attached = upload.clone();
        attached.storage_key = "releases/v3.pdf".into();
        attached.attached = true;
        file.replace_with(&attached);
        assert_eq!(
            file.owned_objects().map(|(_, key)| key).collect::<Vec<_>>(),
            vec!["k1", "k2"],
            "the seller's own object is never Dropgate's to delete"
        );
    }
}

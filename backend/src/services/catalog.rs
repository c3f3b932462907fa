//! The catalog: products with their delivery rules, and their files.

use super::ServiceError;
use super::audit::{Actor, record_audit};
use crate::blobs::{BlobError, Blobs, FileStores};
use crate::store;
use crate::store::Store;
use crate::store::catalog::FileRecord;
use crate::store::catalog::ProductRecord;
use bytes::Bytes;
use domain::wire::{
    AttachFile, FileVersionView, FileView, NewProduct, ProductPatch, ProductView, StorageObject,
    StoragePage,
};
use domain::{FileId, ProductId, Timestamp};
use futures::Stream;

/// Largest product name, in characters.
const MAX_NAME: usize = 200;

/// Products and files.
#[derive(Clone, Debug)]
pub struct CatalogService {
    store: Store,
    stores: FileStores,
    upload_limit: u64,
}

impl CatalogService {
    pub fn new(store: Store, stores: impl Into<FileStores>, upload_limit: u64) -> Self {
        Self {
            store,
            stores: stores.into(),
            upload_limit,
        }
    }

    /// The store a seller names (`None`, `""` or `default`: the default store), with the
    /// name files record.
    fn pick_store(&self, name: Option<&str>) -> Result<(String, &Blobs), ServiceError> {
        let name = self
            .stores
            .resolve(name)
            .map_err(|m| ServiceError::invalid("store", m))?;
        let blobs = self
            .stores
            .get(&name)
            .map_err(|e| ServiceError::invalid("store", e.to_string()))?;
        Ok((name, blobs))
    }

    /// The names of the file stores besides the default one.
    pub fn store_names(&self) -> Vec<String> {
        self.stores.names().map(str::to_owned).collect()
    }

    /// Creates a product; its id must be new.
    pub async fn create(
        &self,
        input: NewProduct,
        actor: Actor,
        now: Timestamp,
    ) -> Result<ProductView, ServiceError> {
        let id = ProductId::parse(&input.product_id)
            .map_err(|m| ServiceError::invalid("product_id", m))?;
        let name = parse_name(&input.name)?;
        let record = ProductRecord {
            name,
            max_downloads: input.max_downloads,
            download_days: input.download_days,
            country_lock: input.country_lock,
            files: Vec::new(),
            created_at: now,
            updated_at: now,
            refresh_on_update: false,
        };
        self.store
            .run(move |s| {
                s.write(|tx| {
                    if store::catalog::product(tx, &id)?.is_some() {
                        return Err(ServiceError::Conflict(format!(
                            "a product with the id {id} already exists"
                        )));
                    }
                    store::catalog::put_product(tx, &id, &record)?;
                    record_audit(
                        tx,
                        &actor,
                        "product.create",
                        id.as_str(),
                        None::<&()>,
                        Some(&view(&id, &record, Vec::new())),
                        now,
                    )?;
                    Ok(view(&id, &record, Vec::new()))
                })
            })
            .await
    }

    /// One product with its files.
    pub async fn get(&self, id: ProductId) -> Result<ProductView, ServiceError> {
        self.store
            .run(move |s| {
                s.read(|tx| {
                    let Some(product) = store::catalog::product(tx, &id)? else {
                        return Ok(None);
                    };
                    let files = product
                        .files
                        .iter()
                        .filter_map(|f| {
                            store::catalog::file(tx, *f)
                                .transpose()
                                .map(|r| r.map(|r| (*f, r)))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Some(view(&id, &product, files)))
                })
                .map_err(ServiceError::from)?
                .ok_or_else(|| not_found(&id))
            })
            .await
    }

    /// Every product, by id.
    pub async fn list(&self) -> Result<Vec<ProductView>, ServiceError> {
        let ids = self.store.run(|s| s.read(store::catalog::products)).await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, _) in ids {
            out.push(self.get(id).await?);
        }
        Ok(out)
    }

    /// Changes name or rules. Grants already issued keep the rules they were issued with.
    pub async fn update(
        &self,
        id: ProductId,
        patch: ProductPatch,
        actor: Actor,
        now: Timestamp,
    ) -> Result<ProductView, ServiceError> {
        let name = patch.name.as_deref().map(parse_name).transpose()?;
        let target = id.clone();
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let before = store::catalog::product(tx, &id)?.ok_or_else(|| not_found(&id))?;
                    let mut after = before.clone();
                    if let Some(name) = name {
                        after.name = name;
                    }
                    after.max_downloads = patch.max_downloads.unwrap_or(after.max_downloads);
                    after.download_days = patch.download_days.unwrap_or(after.download_days);
                    after.country_lock = patch.country_lock.unwrap_or(after.country_lock);
                    after.refresh_on_update =
                        patch.refresh_on_update.unwrap_or(after.refresh_on_update);
                    after.updated_at = now;
                    store::catalog::put_product(tx, &id, &after)?;
                    record_audit(
                        tx,
                        &actor,
                        "product.update",
                        id.as_str(),
                        Some(&view(&id, &before, Vec::new())),
                        Some(&view(&id, &after, Vec::new())),
                        now,
                    )?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await?;
        self.get(target).await
    }

    /// Streams a file into a product: a new file, or, when the product already has a file
    /// of that name, a new version of it (its links serve the newest from then on; the
    /// earlier versions stay listed). The object is written first and the metadata
    /// committed after; if the commit fails the object is removed, so none is orphaned.
    pub async fn upload<S, E>(
        &self,
        id: ProductId,
        upload: FileUpload<'_>,
        body: S,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Uploaded, ServiceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let name = parse_file_name(upload.name)?;
        let changelog = parse_changelog(upload.changelog)?;
        let (store, blobs) = self.pick_store(upload.store)?;
        let content_type = upload
            .content_type
            .filter(|c| {
                !c.is_empty() && c.len() <= 200 && c.is_ascii() && !c.chars().any(char::is_control)
            })
            .unwrap_or("application/octet-stream")
            .to_owned();
        // Refuse early, before reading any of the body, when the product is unknown.
        self.require_product(&id).await?;
        let stored = blobs
            .upload(body, self.upload_limit)
            .await
            .map_err(|e| match e {
                BlobError::TooLarge { limit } => ServiceError::TooLarge(format!(
                    "the file is larger than the upload limit of {limit} bytes"
                )),
                BlobError::Source(m) => {
                    ServiceError::invalid("body", format!("the upload was interrupted: {m}"))
                }
                BlobError::Storage(e) => ServiceError::Internal(e.to_string()),
            })?;
        let record = FileRecord {
            product_id: id.clone(),
            name,
            size: stored.size,
            content_type,
            sha256: stored.sha256,
            storage_key: stored.key.clone(),
            uploaded_at: now,
            version: 1,
            changelog,
            previous: Vec::new(),
            attached: false,
            store,
        };
        let committed = self
            .store
            .run(move |s| s.write(|tx| commit_upload(tx, &id, &record, &actor, now)))
            .await;
        if committed.is_err() {
            let _ = blobs.delete(&stored.key).await;
        }
        committed
    }

    /// One page of the object store's objects whose keys start with `prefix`, for the
    /// seller's picker (Dropgate's own uploads are never listed).
    pub async fn storage_objects(
        &self,
        store: Option<&str>,
        prefix: &str,
        cursor: Option<&str>,
    ) -> Result<StoragePage, ServiceError> {
        let (_, blobs) = self.pick_store(store)?;
        if prefix.len() > 1024 || cursor.is_some_and(|c| c.len() > 1024) {
            return Err(ServiceError::invalid(
                "prefix",
                "a prefix or cursor has at most 1024 characters",
            ));
        }
        let (objects, next_cursor) = blobs
            .list_page(prefix, cursor, STORAGE_PAGE)
            .await
            .map_err(|e| {
                ServiceError::Unavailable(format!("the file store did not answer: {e}"))
            })?;
        Ok(StoragePage {
            objects: objects
                .into_iter()
                .map(|o| StorageObject {
                    key: o.key,
                    size: o.size,
                    last_modified: Timestamp::from_unix_millis(o.last_modified_millis),
                })
                .collect(),
            next_cursor,
        })
    }

    /// Attaches an object already in the store to a product, without uploading it again:
    /// it is read once for its size and SHA-256. A name the product has makes it that
    /// file's new version. The object stays the seller's: deleting the file leaves it.
    pub async fn attach(
        &self,
        id: ProductId,
        input: AttachFile,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Uploaded, ServiceError> {
        let key = Blobs::parse_attached_key(input.key.trim())
            .map_err(|m| ServiceError::invalid("key", m))?;
        let name = match input.name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => parse_file_name(name)?,
            _ => parse_file_name(key.rsplit('/').next().unwrap_or(&key))?,
        };
        let changelog = parse_changelog(input.changelog.as_deref())?;
        let (store, blobs) = self.pick_store(input.store.as_deref())?;
        blobs
            .check_attachable(&key)
            .map_err(|m| ServiceError::invalid("key", m))?;
        self.require_product(&id).await?;
        let measured = blobs.measure(&key).await.map_err(|e| match e {
            BlobError::Storage(object_store::Error::NotFound { .. }) => {
                ServiceError::NotFound(format!("there is no object {key} in the file store"))
            }
            other => ServiceError::Unavailable(format!("the file store did not answer: {other}")),
        })?;
        let record = FileRecord {
            product_id: id.clone(),
            name,
            size: measured.size,
            content_type: "application/octet-stream".to_owned(),
            sha256: measured.sha256,
            storage_key: key,
            uploaded_at: now,
            version: 1,
            changelog,
            previous: Vec::new(),
            attached: true,
            store,
        };
        self.store
            .run(move |s| s.write(|tx| commit_upload(tx, &id, &record, &actor, now)))
            .await
    }

    async fn require_product(&self, id: &ProductId) -> Result<(), ServiceError> {
        let lookup = id.clone();
        let exists = self
            .store
            .run(move |s| s.read(|tx| store::catalog::product(tx, &lookup)))
            .await?
            .is_some();
        if exists { Ok(()) } else { Err(not_found(id)) }
    }

    /// Deletes one file of a product.
    pub async fn delete_file(
        &self,
        id: ProductId,
        file: FileId,
        force: bool,
        actor: Actor,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        let key = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let mut product =
                        store::catalog::product(tx, &id)?.ok_or_else(|| not_found(&id))?;
                    refuse_if_live(tx, &id, force, now)?;
                    let Some(pos) = product.files.iter().position(|f| *f == file) else {
                        return Err(ServiceError::NotFound(format!(
                            "product {id} has no file {file}"
                        )));
                    };
                    let record = store::catalog::file(tx, file)?.ok_or_else(|| {
                        ServiceError::NotFound(format!("product {id} has no file {file}"))
                    })?;
                    product.files.remove(pos);
                    product.updated_at = now;
                    store::catalog::put_product(tx, &id, &product)?;
                    store::catalog::remove_file(tx, file)?;
                    record_audit(
                        tx,
                        &actor,
                        "file.delete",
                        id.as_str(),
                        Some(&file_view(file, &record)),
                        None::<&()>,
                        now,
                    )?;
                    Ok::<_, ServiceError>(owned_objects(&record))
                })
            })
            .await?;
        // The metadata is gone first: a crash here leaves an unreferenced object, never a
        // reference to a missing one.
        self.delete_objects(key).await
    }

    /// Removes objects (store, key) once their records are gone.
    async fn delete_objects(&self, objects: Vec<(String, String)>) -> Result<(), ServiceError> {
        for (store, key) in objects {
            self.stores
                .get(&store)
                .map_err(|e| ServiceError::Internal(e.to_string()))?
                .delete(&key)
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
        }
        Ok(())
    }

    /// Deletes a product and its files.
    pub async fn delete(
        &self,
        id: ProductId,
        force: bool,
        actor: Actor,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        let keys = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let product =
                        store::catalog::product(tx, &id)?.ok_or_else(|| not_found(&id))?;
                    refuse_if_live(tx, &id, force, now)?;
                    let mut keys = Vec::new();
                    for file in &product.files {
                        if let Some(record) = store::catalog::file(tx, *file)? {
                            keys.extend(owned_objects(&record));
                        }
                        store::catalog::remove_file(tx, *file)?;
                    }
                    store::catalog::remove_product(tx, &id)?;
                    record_audit(
                        tx,
                        &actor,
                        "product.delete",
                        id.as_str(),
                        Some(&view(&id, &product, Vec::new())),
                        None::<&()>,
                        now,
                    )?;
                    Ok::<_, ServiceError>(keys)
                })
            })
            .await?;
        self.delete_objects(keys).await
    }
}

/// What an upload is: the file's name as buyers save it, its type, for a new version what
/// changed, and the store it goes to (`None`: the default store).
#[derive(Clone, Copy, Debug, Default)]
pub struct FileUpload<'a> {
    pub name: &'a str,
    pub content_type: Option<&'a str>,
    pub changelog: Option<&'a str>,
    pub store: Option<&'a str>,
}

/// The objects Dropgate owns for a file, as (store, key).
fn owned_objects(record: &FileRecord) -> Vec<(String, String)> {
    record
        .owned_objects()
        .map(|(store, key)| (store.to_owned(), key.to_owned()))
        .collect()
}

/// A finished upload: the file as it is now, and whether it was a new version of a file
/// the product had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    pub file: FileView,
    pub new_version: bool,
}

/// Objects per page of the store listing.
const STORAGE_PAGE: usize = 100;

/// Longest changelog, in characters.
const MAX_CHANGELOG: usize = 2000;

fn parse_changelog(text: Option<&str>) -> Result<String, ServiceError> {
    let text = text.unwrap_or_default().trim();
    if text.chars().count() > MAX_CHANGELOG
        || text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ServiceError::invalid(
            "changelog",
            format!("a changelog has at most {MAX_CHANGELOG} characters"),
        ));
    }
    Ok(text.replace("\r\n", "\n"))
}

/// Adds an uploaded file to its product, or makes it the new version of the product's
/// file of the same name (then, if the product says so, every buyer's count of that file
/// starts again).
fn commit_upload(
    tx: &redb::WriteTransaction,
    id: &ProductId,
    upload: &FileRecord,
    actor: &Actor,
    now: Timestamp,
) -> Result<Uploaded, ServiceError> {
    let mut product = store::catalog::product(tx, id)?.ok_or_else(|| not_found(id))?;
    let mut same_name = None;
    for file_id in &product.files {
        if let Some(existing) = store::catalog::file(tx, *file_id)?
            && existing.name == upload.name
        {
            same_name = Some((*file_id, existing));
            break;
        }
    }
    product.updated_at = now;
    let Some((file_id, mut file)) = same_name else {
        let file_id = store::catalog::insert_file(tx, upload)?;
        product.files.push(file_id);
        store::catalog::put_product(tx, id, &product)?;
        let shown = file_view(file_id, upload);
        record_audit(
            tx,
            actor,
            "file.upload",
            id.as_str(),
            None::<&()>,
            Some(&shown),
            now,
        )?;
        return Ok(Uploaded {
            file: shown,
            new_version: false,
        });
    };
    let before = file_view(file_id, &file);
    file.replace_with(upload);
    store::catalog::put_file(tx, file_id, &file)?;
    store::catalog::put_product(tx, id, &product)?;
    if product.refresh_on_update {
        store::grants::forget_file_counts(tx, id, file_id)?;
    }
    let shown = file_view(file_id, &file);
    record_audit(
        tx,
        actor,
        "file.version",
        id.as_str(),
        Some(&before),
        Some(&shown),
        now,
    )?;
    Ok(Uploaded {
        file: shown,
        new_version: true,
    })
}

/// Buyers who can still download must not lose their files by accident.
fn refuse_if_live(
    tx: &redb::WriteTransaction,
    id: &ProductId,
    force: bool,
    now: Timestamp,
) -> Result<(), ServiceError> {
    if force {
        return Ok(());
    }
    let live = store::grants::live_grants_for_product(tx, id, now)?;
    if live > 0 {
        return Err(ServiceError::Conflict(format!(
            "{live} buyer{} can still download {id}; deleting would break their links. Add force=true to delete anyway",
            if live == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

fn not_found(id: &ProductId) -> ServiceError {
    ServiceError::NotFound(format!("there is no product with the id {id}"))
}

fn parse_name(name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("name", "give the product a name"));
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            format!("a product name has at most {MAX_NAME} printable characters"),
        ));
    }
    Ok(name.to_owned())
}

/// A file's real name, as the buyer will save it: no path, no control characters.
fn parse_file_name(name: &str) -> Result<String, ServiceError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 255
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ServiceError::invalid(
            "file_name",
            "a file name has 1 to 255 characters and no slashes or control characters",
        ))
    }
}

fn view(id: &ProductId, p: &ProductRecord, files: Vec<(FileId, FileRecord)>) -> ProductView {
    ProductView {
        product_id: id.clone(),
        name: p.name.clone(),
        max_downloads: p.max_downloads,
        download_days: p.download_days,
        country_lock: p.country_lock,
        refresh_on_update: p.refresh_on_update,
        files: files.iter().map(|(fid, f)| file_view(*fid, f)).collect(),
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

fn file_view(id: FileId, f: &FileRecord) -> FileView {
    FileView {
        file_id: id,
        name: f.name.clone(),
        size: f.size,
        content_type: f.content_type.clone(),
        sha256: hex::encode(f.sha256),
        uploaded_at: f.uploaded_at,
        store: if f.store.is_empty() {
            "default".to_owned()
        } else {
            f.store.clone()
        },
        version: f.version,
        changelog: f.changelog.clone(),
        earlier: f
            .previous
            .iter()
            .rev()
            .map(|v| FileVersionView {
                version: v.version,
                size: v.size,
                sha256: hex::encode(v.sha256),
                uploaded_at: v.uploaded_at,
                changelog: v.changelog.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> CatalogService {
        CatalogService::new(Store::in_memory().unwrap(), Blobs::in_memory(), 1024)
    }
    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000)
    }
    fn actor() -> Actor {
        Actor::ApiToken(domain::ApiTokenId::new(1))
    }
    fn new(id: &str) -> NewProduct {
        NewProduct {
            product_id: id.into(),
            name: "Rust e-book".into(),
            max_downloads: 3,
            download_days: 31,
            country_lock: true,
        }
    }
    fn named<'a>(name: &'a str, content_type: Option<&'a str>) -> FileUpload<'a> {
        FileUpload {
            name,
            content_type,
            changelog: None,
            store: None,
        }
    }
    fn body(bytes: &'static [u8]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures::stream::iter(vec![Ok(Bytes::from_static(bytes))])
    }

    #[tokio::test]
    async fn products_with_files() {
        let svc = service();
        let created = svc.create(new("ebook"), actor(), now()).await.unwrap();
        assert_eq!(created.max_downloads, 3);
        assert!(matches!(
            svc.create(new("ebook"), actor(), now()).await,
            Err(ServiceError::Conflict(_))
        ));
        assert!(matches!(
            svc.create(new("Bad Id"), actor(), now()).await,
            Err(ServiceError::Invalid {
                field: "product_id",
                ..
            })
        ));
        let file = svc
            .upload(
                ProductId::parse("ebook").unwrap(),
                named("rust.pdf", Some("application/pdf")),
                body(b"%PDF-1.7"),
                actor(),
                now(),
            )
            .await
            .unwrap()
            .file;
        assert_eq!(file.size, 8);
        let shown = svc.get(ProductId::parse("ebook").unwrap()).await.unwrap();
        assert_eq!(shown.files, vec![file.clone()]);
        let patched = svc
            .update(
                ProductId::parse("ebook").unwrap(),
                ProductPatch {
                    max_downloads: Some(5),
                    ..ProductPatch::default()
                },
                actor(),
                now(),
            )
            .await
            .unwrap();
        assert_eq!(
            (patched.max_downloads, patched.name.as_str()),
            (5, "Rust e-book")
        );
        svc.delete_file(
            ProductId::parse("ebook").unwrap(),
            file.file_id,
            false,
            actor(),
            now(),
        )
        .await
        .unwrap();
        assert!(
            svc.get(ProductId::parse("ebook").unwrap())
                .await
                .unwrap()
                .files
                .is_empty()
        );
        svc.delete(ProductId::parse("ebook").unwrap(), false, actor(), now())
            .await
            .unwrap();
        assert!(matches!(
            svc.get(ProductId::parse("ebook").unwrap()).await,
            Err(ServiceError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn bad_uploads_change_nothing() {
        let svc = service();
        svc.create(new("ebook"), actor(), now()).await.unwrap();
        let id = ProductId::parse("ebook").unwrap();
        for name in ["../etc/passwd", "", "a\nb", ".."] {
            assert!(
                matches!(
                    svc.upload(id.clone(), named(name, None), body(b"x"), actor(), now())
                        .await,
                    Err(ServiceError::Invalid { .. })
                ),
                "{name:?}"
            );
        }
        let too_big = svc
            .upload(
                id.clone(),
                named("big.bin", None),
                futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 2048]))]),
                actor(),
                now(),
            )
            .await;
        assert!(matches!(too_big, Err(ServiceError::TooLarge(_))));
        assert!(matches!(
            svc.upload(
                ProductId::parse("nope").unwrap(),
                named("a.pdf", None),
                body(b"x"),
                actor(),
                now()
            )
            .await,
            Err(ServiceError::NotFound(_))
        ));
        assert!(svc.get(id).await.unwrap().files.is_empty());
    }
}

//! Product file bytes in an object store (local disk by default, or S3), under random
//! 128-bit keys that never come from user input.
//!
//! Uploads are streamed (never buffered whole), hashed with SHA-256 on the way, limited in
//! size while streaming, and aborted on any error so no partial object is left behind.
//! The local backend has fsync turned on: an acknowledged upload survives a power cut.
//! On S3, downloads are not proxied: [`Blobs::presigned_get`] signs a short-lived URL
//! (with the real file name and type signed into it) that the buyer is redirected to.

mod small_files;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::sync::Arc;

/// What can go wrong with file bytes.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload was interrupted: {0}")]
    Source(String),
    #[error("file storage failed: {0}")]
    Storage(#[from] object_store::Error),
}

/// The file stores a server knows: the default one (`--storage-url`) and named ones
/// (`--store NAME=URL`), so small files can stay on disk and large ones go to S3. A file
/// records the name of its store; `""` is the default.
#[derive(Clone, Debug)]
pub struct FileStores {
    default: Blobs,
    named: Arc<std::collections::BTreeMap<String, Blobs>>,
}

impl From<Blobs> for FileStores {
    fn from(default: Blobs) -> Self {
        Self::single(default)
    }
}

impl FileStores {
    /// Only the default store.
    pub fn single(default: Blobs) -> Self {
        Self {
            default,
            named: Arc::default(),
        }
    }

    /// The default store and named ones.
    pub fn with_named(default: Blobs, named: std::collections::BTreeMap<String, Blobs>) -> Self {
        Self {
            default,
            named: Arc::new(named),
        }
    }

    /// The store a file names (`""`: the default).
    pub fn get(&self, name: &str) -> Result<&Blobs, BlobError> {
        if name.is_empty() {
            return Ok(&self.default);
        }
        self.named.get(name).ok_or_else(|| {
            BlobError::Source(format!(
                "no file store named {name} is configured (--store {name}=URL)"
            ))
        })
    }

    /// The names of the named stores.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.named.keys().map(String::as_str)
    }

    /// A store name as a seller gives it: `""` or `default` for the default store, else one
    /// that is configured. Returns the name as files record it.
    pub fn resolve(&self, name: Option<&str>) -> Result<String, String> {
        match name.map(str::trim) {
            None | Some("" | "default") => Ok(String::new()),
            Some(name) if self.named.contains_key(name) => Ok(name.to_owned()),
            Some(name) => Err(format!(
                "there is no file store named {name:?}; the stores are: {}",
                std::iter::once("default")
                    .chain(self.names())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// Checks a store's name: 1 to 32 lower-case letters, digits and hyphens, not `default`.
pub fn parse_store_name(name: &str) -> Result<String, String> {
    let ok = (1..=32).contains(&name.len())
        && name != "default"
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "store name {name:?}: 1 to 32 lower-case letters, digits and hyphens, and not \"default\""
        ))
    }
}

/// An object as the seller's bucket picker lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub last_modified_millis: i64,
}

/// Whether a key is one Dropgate made for an upload ([`Blobs::new_key`]: 32 hex digits at
/// the store's root).
fn is_own_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub key: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// Where an S3 (or S3-compatible) bucket is and how to sign in. Unset fields come from the
/// usual `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_REGION`, `AWS_ENDPOINT_URL`, ...).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix inside the bucket ("" for the root).
    pub prefix: String,
    /// For S3-compatible servers (MinIO, Garage, s3s, ...): `http(s)://host:port`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Proxy mode: downloads stream through Dropgate (exact byte counting, no redirect)
    /// instead of going to presigned URLs.
    pub proxy: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// The object store holding product files.
#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// Set for stores whose objects buyers fetch directly through presigned URLs.
    signer: Option<Arc<dyn Signer>>,
    /// The directory of the local store: reads bypass object_store there (see `read`).
    local_root: Option<Arc<std::path::Path>>,
    /// Small local files in memory (see `small_files`).
    small: Arc<small_files::SmallFiles>,
    /// Whether the store lists keys in order (S3 does), so a page can stop early.
    ordered_listing: bool,
}

/// Bytes read from a local file per step. object_store's local reader hands out 8 KiB
/// chunks, each through a blocking-pool hop, which held a 1 GiB download to about a tenth of
/// nginx's speed. Each open connection holds about one step in memory.
/// When many downloads are open at once, steps shrink so that their buffers together stay
/// within [`LOCAL_READ_BUDGET`], down to [`LOCAL_READ_MIN_CHUNK`].
const LOCAL_READ_CHUNK: u64 = 256 * 1024;
const LOCAL_READ_MIN_CHUNK: u64 = 32 * 1024;
const LOCAL_READ_BUDGET: u64 = 16 * 1024 * 1024;

/// Local reads in progress (for the chunk size).
static OPEN_LOCAL_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts one open local read while it lives.
struct OpenRead;

impl OpenRead {
    fn new() -> Self {
        OPEN_LOCAL_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self
    }
}

impl Drop for OpenRead {
    fn drop(&mut self) {
        OPEN_LOCAL_READS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn chunk_size() -> u64 {
    let open = OPEN_LOCAL_READS
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1);
    (LOCAL_READ_BUDGET / open).clamp(LOCAL_READ_MIN_CHUNK, LOCAL_READ_CHUNK)
}

/// A buffer for the next step, made on the async worker thread: the connection frees it
/// there too, and an allocator with per-thread heaps (mimalloc) then reuses it at once,
/// where a buffer made on a blocking thread and freed on a worker piled up (700 MiB at 256
/// slow downloads).
fn next_buffer(left: u64) -> Vec<u8> {
    Vec::with_capacity(usize::try_from(left.min(chunk_size())).unwrap_or(usize::MAX))
}

/// Fills `buf` (its capacity) from the file; a file shorter than recorded is an error, never
/// a silently short download.
fn read_chunk(file: &mut std::fs::File, mut buf: Vec<u8>) -> std::io::Result<Bytes> {
    use std::io::Read;
    let want = buf.capacity() as u64;
    // `read_to_end` fills the spare capacity without zeroing it first.
    file.take(want).read_to_end(&mut buf)?;
    if (buf.len() as u64) < want {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the stored file is shorter than recorded",
        ));
    }
    Ok(Bytes::from(buf))
}

impl Blobs {
    /// Files in a local directory (created if missing), written with fsync.
    pub fn local(dir: &std::path::Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BlobError::Source(format!("create {}: {e}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(dir)?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            signer: None,
            local_root: Some(Arc::from(dir.canonicalize().map_err(|e| {
                BlobError::Source(format!("resolve {}: {e}", dir.display()))
            })?)),
            small: Arc::default(),
            ordered_listing: false,
        })
    }

    /// Files in an S3 bucket; downloads are redirects to presigned URLs, or in proxy mode
    /// stream through Dropgate.
    pub fn s3(settings: &S3Settings) -> Result<Self, BlobError> {
        crate::tls::install_crypto_provider();
        // object_store's default 30 s limit covers a whole request, body included: it would
        // cut every streamed download longer than that. A read that stalls is still caught
        // (no bytes for a minute), and a body that breaks off is asked for again from where
        // it stopped as long as the object's ETag is unchanged (object_store's retry).
        let client = ClientOptions::new()
            .with_timeout_disabled()
            .with_connect_timeout(std::time::Duration::from_secs(10))
            .with_read_timeout(std::time::Duration::from_secs(60));
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&settings.bucket)
            .with_client_options(client);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = Arc::new(PrefixStore::new(
            builder.build()?,
            ObjectPath::from(settings.prefix.as_str()),
        ));
        let signer: Option<Arc<dyn Signer>> = if settings.proxy {
            None
        } else {
            Some(store.clone())
        };
        Ok(Self {
            store,
            signer,
            local_root: None,
            small: Arc::default(),
            ordered_listing: true,
        })
    }

    /// Files in memory, for tests.
    pub fn in_memory() -> Self {
        Self {
            store: Arc::new(InMemory::new()),
            signer: None,
            local_root: None,
            small: Arc::default(),
            ordered_listing: false,
        }
    }

    /// Whether downloads go to the store directly (presigned URLs) instead of through us.
    pub fn presigns(&self) -> bool {
        self.signer.is_some()
    }

    /// A GET URL for an object that works for `ttl`, with the `Content-Disposition` and
    /// `Content-Type` the store must answer with signed into it. `None` for stores that
    /// do not presign (local disk): stream with [`Blobs::read`] instead.
    pub async fn presigned_get(
        &self,
        key: &str,
        content_disposition: &str,
        content_type: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<String>, BlobError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let options = SignedUrlOptions::new().with_query([
            ("response-content-disposition", content_disposition),
            ("response-content-type", content_type),
            ("response-cache-control", "private, no-store"),
        ]);
        let url = signer
            .signed_url_opts(
                object_store::signer::Method::GET,
                &Self::path(key),
                ttl,
                &options,
            )
            .await?;
        Ok(Some(url.to_string()))
    }

    /// Checks that the store answers (at start-up, so a wrong bucket or key is found early).
    pub async fn check(&self) -> Result<(), BlobError> {
        let mut listing = self.store.list(None);
        match listing.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// A fresh random storage key: 128 bits, hex.
    pub fn new_key() -> String {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system's random number generator failed");
        hex::encode(bytes)
    }

    fn path(key: &str) -> ObjectPath {
        // Keys are made by `new_key` (hex) or checked by `parse_attached_key` (no `..`, no
        // empty segment), so this cannot leave the root.
        ObjectPath::from(key)
    }

    /// Checks the key of an object a seller attaches: a valid object path (no `.` or `..`
    /// segment, no empty segment, no control characters) that is not one of Dropgate's own.
    pub fn parse_attached_key(key: &str) -> Result<String, String> {
        let parsed = ObjectPath::parse(key).map_err(|_| {
            format!("{key:?} is not an object key: no empty, \".\" or \"..\" parts")
        })?;
        let key = parsed.to_string();
        if key.is_empty() || key.len() > 1024 || key.chars().any(char::is_control) {
            return Err("an object key has 1 to 1024 printable characters".to_owned());
        }
        if is_own_key(&key) {
            return Err("that object is one of Dropgate's own uploads".to_owned());
        }
        Ok(key)
    }

    /// Streams `body` into a new object, at most `limit` bytes. On any error the partial
    /// object is aborted.
    pub async fn upload<S, E>(&self, body: S, limit: u64) -> Result<StoredBlob, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        self.upload_as(Self::new_key(), body, limit).await
    }

    /// [`Self::upload`] under a given key (a migration copies an object under its key).
    pub async fn upload_as<S, E>(
        &self,
        key: String,
        body: S,
        limit: u64,
    ) -> Result<StoredBlob, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let upload = self.store.put_multipart(&Self::path(&key)).await?;
        let mut writer = WriteMultipart::new(upload);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let result: Result<(), BlobError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| BlobError::Source(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(BlobError::TooLarge { limit });
                }
                hasher.update(&chunk);
                writer.wait_for_capacity(4).await?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        if let Err(error) = result {
            let _ = writer.abort().await;
            return Err(error);
        }
        writer.finish().await?;
        Ok(StoredBlob {
            key,
            size,
            sha256: hasher.finalize().into(),
        })
    }

    /// Where an object lives on this machine, for stores on local disk (the download path
    /// hands such files to the kernel with `sendfile`); `None` for remote stores.
    pub fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        self.local_root
            .as_ref()
            .map(|root| root.join(Self::path(key).as_ref()))
    }

    /// Opens a local object for reading `range`, on the blocking pool; a file shorter than
    /// recorded is an error, never a silently short download.
    pub async fn open_local(
        &self,
        key: &str,
        range: &Range<u64>,
    ) -> Result<Option<std::fs::File>, BlobError> {
        let Some(path) = self.local_path(key) else {
            return Ok(None);
        };
        let end = range.end;
        Self::blocking(move || {
            let file = std::fs::File::open(&path)?;
            if file.metadata()?.len() < end {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the stored file is shorter than recorded",
                ));
            }
            Ok(file)
        })
        .await
        .map(Some)
    }

    /// The whole of a small local file (at most [`small_files::MAX_FILE_BYTES`]) from
    /// memory, read from disk on first use; `None` for larger files and other stores.
    pub async fn small_local(&self, key: &str, size: u64) -> Result<Option<Bytes>, BlobError> {
        if size > small_files::MAX_FILE_BYTES {
            return Ok(None);
        }
        if let Some(bytes) = self.small.get(key) {
            return Ok(Some(bytes));
        }
        let Some(path) = self.local_path(key) else {
            return Ok(None);
        };
        let bytes = Self::blocking(move || {
            let bytes = std::fs::read(&path)?;
            if bytes.len() as u64 != size {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the stored file's size differs from the recorded size",
                ));
            }
            Ok(Bytes::from(bytes))
        })
        .await?;
        self.small.insert(key, bytes.clone());
        Ok(Some(bytes))
    }

    /// A stream of the bytes in `range` of an object.
    pub async fn read(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        if let Some(path) = self.local_path(key) {
            return Self::read_local(path, range).await;
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let result = self.store.get_opts(&Self::path(key), options).await?;
        Ok(result.into_stream().map_err(BlobError::from).boxed())
    }

    /// A range of a local file in [`LOCAL_READ_CHUNK`] steps, each one hop to the blocking
    /// pool (the first also opens the file, so a small file costs a single hop). Buffers are
    /// filled without being zeroed first and handed to the connection without a copy.
    async fn read_local(
        path: std::path::PathBuf,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let shown = path.display().to_string();
        let open = OpenRead::new();
        let buf = next_buffer(range.end - range.start);
        let first = Self::blocking(move || {
            let mut file = std::fs::File::open(&path)?;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(range.start))?;
            let chunk = read_chunk(&mut file, buf)?;
            Ok((file, chunk))
        })
        .await
        .map_err(|e| match e {
            BlobError::Storage(object_store::Error::NotFound { source, .. }) => {
                BlobError::Storage(object_store::Error::NotFound {
                    path: shown,
                    source,
                })
            }
            other => other,
        })?;
        let (file, chunk) = first;
        let left = range.end - range.start - chunk.len() as u64;
        let rest =
            futures::stream::try_unfold((file, left, open), |(mut file, left, open)| async move {
                if left == 0 {
                    return Ok(None);
                }
                let buf = next_buffer(left);
                let (file, chunk) = Self::blocking(move || {
                    let chunk = read_chunk(&mut file, buf)?;
                    Ok((file, chunk))
                })
                .await?;
                let left = left - chunk.len() as u64;
                Ok(Some((chunk, (file, left, open))))
            });
        Ok(futures::stream::once(async move { Ok(chunk) })
            .chain(rest)
            .boxed())
    }

    async fn blocking<T: Send + 'static>(
        work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, BlobError> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| BlobError::Source(e.to_string()))?
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    BlobError::Storage(object_store::Error::NotFound {
                        path: String::new(),
                        source: e.into(),
                    })
                } else {
                    BlobError::Source(format!("read stored file: {e}"))
                }
            })
    }

    /// One page of the objects whose key starts with `prefix` (a plain text prefix, not
    /// only whole folders), in key order after `after`, at most `limit`, and the cursor of
    /// the next page. Dropgate's own objects (random hex keys) are never listed: their keys
    /// must not be shown anywhere.
    pub async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ListedObject>, Option<String>), BlobError> {
        // The store lists by whole path segments: list the folder the prefix is in, and
        // keep the keys that start with the whole prefix.
        let folder = prefix
            .rsplit_once('/')
            .map(|(dir, _)| dir)
            .unwrap_or_default();
        let folder = (!folder.is_empty()).then(|| ObjectPath::from(folder));
        let offset = after.map(ObjectPath::from);
        let mut listing = match &offset {
            Some(offset) => self.store.list_with_offset(folder.as_ref(), offset),
            None => self.store.list(folder.as_ref()),
        };
        // S3 lists in key order, so the first page is the first keys that come; other
        // stores do not promise an order, so every match is seen and the smallest kept.
        let mut page = std::collections::BTreeMap::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let key = meta.location.to_string();
            if !key.starts_with(prefix) || is_own_key(&key) {
                continue;
            }
            page.insert(key, meta);
            if page.len() > limit {
                page.pop_last();
                if self.ordered_listing {
                    break;
                }
            }
        }
        // One more than the page would have to exist for a next page; ask cheaply by
        // taking the page's last key as the cursor whenever the page is full.
        let next = (page.len() == limit)
            .then(|| page.keys().next_back().cloned())
            .flatten();
        let objects = page
            .into_values()
            .map(|meta| ListedObject {
                key: meta.location.to_string(),
                size: meta.size,
                last_modified_millis: meta.last_modified.timestamp_millis(),
            })
            .collect();
        Ok((objects, next))
    }

    /// Refuses to attach what is not a plain object of this store: on local disk, a key
    /// whose file is a symbolic link, or lies outside the store's folder once links are
    /// resolved (object_store follows links, so one could reach any file of the machine).
    pub fn check_attachable(&self, key: &str) -> Result<(), String> {
        let (Some(root), Some(path)) = (&self.local_root, self.local_path(key)) else {
            return Ok(());
        };
        let refused = || format!("{key} is not a plain file inside the store's folder");
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return Ok(()); // missing: the read that follows says so
        };
        if !meta.is_file() {
            return Err(refused());
        }
        match path.canonicalize() {
            Ok(real) if real.starts_with(root.as_ref()) => Ok(()),
            _ => Err(refused()),
        }
    }

    /// The size of an object, `None` when there is none under that key.
    pub async fn size_of(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match self.store.head(&Self::path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a whole object once to learn its size and SHA-256 (attaching an object that is
    /// already in the store).
    pub async fn measure(&self, key: &str) -> Result<StoredBlob, BlobError> {
        let mut stream = self.store.get(&Self::path(key)).await?.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok(StoredBlob {
            key: key.to_owned(),
            size,
            sha256: hasher.finalize().into(),
        })
    }

    /// Removes an object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.small.forget(key);
        match self.store.delete(&Self::path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_out_of_the_local_store_cannot_be_attached() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        let blobs = Blobs::local(&dir.path().join("files")).unwrap();
        std::fs::create_dir_all(dir.path().join("files/releases")).unwrap();
        std::fs::write(dir.path().join("files/releases/app.zip"), b"zip").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("files/releases/passwd"))
            .unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("files/releases/app.zip"),
            dir.path().join("files/inner-link"),
        )
        .unwrap();
        assert_eq!(blobs.check_attachable("releases/app.zip"), Ok(()));
        assert!(blobs.check_attachable("releases/passwd").is_err());
        assert!(
            blobs.check_attachable("inner-link").is_err(),
            "links are refused"
        );
        assert!(
            blobs.check_attachable("releases").is_err(),
            "a folder is no file"
        );
    }

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn streams_in_hashes_and_reads_ranges_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let stored = blobs
            .upload(chunks(&[b"hello ", b"world"]), 1024)
            .await
            .unwrap();
        assert_eq!(stored.size, 11);
        assert_eq!(
            hex::encode(stored.sha256),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(stored.key.len(), 32);
        let part: Vec<Bytes> = blobs
            .read(&stored.key, 6..11)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(part.concat(), b"world");
        // The real name is nowhere on disk: only the random key.
        assert!(dir.path().join(&stored.key).is_file());
        blobs.delete(&stored.key).await.unwrap();
        assert!(!dir.path().join(&stored.key).exists());
        blobs.delete(&stored.key).await.unwrap();
    }

    #[tokio::test]
    async fn small_local_files_are_served_from_memory_until_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let upload = |content: Vec<u8>| {
            let blobs = blobs.clone();
            async move {
                blobs
                    .upload(
                        futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(content))]),
                        1 << 20,
                    )
                    .await
                    .unwrap()
            }
        };
        let small = upload(b"licence key 1234".to_vec()).await;
        let big = upload(vec![1u8; 64 * 1024 + 1]).await;
        assert_eq!(blobs.small_local(&big.key, big.size).await.unwrap(), None);
        let first = blobs.small_local(&small.key, small.size).await.unwrap();
        assert_eq!(first.as_deref(), Some(&b"licence key 1234"[..]));
        // Served from memory: the disk is not read again.
        std::fs::remove_file(dir.path().join(&small.key)).unwrap();
        assert_eq!(
            blobs.small_local(&small.key, small.size).await.unwrap(),
            first
        );
        // Deleting forgets it; a file whose size differs from the record is an error.
        blobs.delete(&small.key).await.unwrap();
        assert!(blobs.small_local(&small.key, small.size).await.is_err());
        let cut = upload(b"0123456789".to_vec()).await;
        assert!(blobs.small_local(&cut.key, 20).await.is_err());
    }

    #[tokio::test]
    async fn local_reads_span_chunks_and_a_missing_or_truncated_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let content: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let stored = blobs
            .upload(
                futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(content.clone()))]),
                1 << 20,
            )
            .await
            .unwrap();
        let read = |range: Range<u64>| {
            let blobs = blobs.clone();
            let key = stored.key.clone();
            async move {
                let parts: Vec<Bytes> = blobs.read(&key, range).await?.try_collect().await?;
                Ok::<_, BlobError>(parts.concat())
            }
        };
        assert_eq!(read(100..650_000).await.unwrap(), &content[100..650_000]);
        assert_eq!(read(0..700_000).await.unwrap(), content);
        assert!(matches!(
            blobs.read("00ff", 0..1).await.err().unwrap(),
            BlobError::Storage(object_store::Error::NotFound { .. })
        ));
        // A file cut short on disk fails the read rather than ending the download early.
        std::fs::write(dir.path().join(&stored.key), &content[..300_000]).unwrap();
        assert!(read(0..700_000).await.is_err());
    }

    #[tokio::test]
    async fn oversize_and_broken_uploads_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let err = blobs
            .upload(chunks(&[b"0123456789", b"0123456789"]), 15)
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::TooLarge { limit: 15 }));
        let broken = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"part")),
            Err(std::io::Error::other("client went away")),
        ]);
        assert!(matches!(
            blobs.upload(broken, 100).await,
            Err(BlobError::Source(_))
        ));
        let leftovers: Vec<_> = walk(dir.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flat_map(|e| {
                let p = e.unwrap().path();
                if p.is_dir() { walk(&p) } else { vec![p] }
            })
            .collect()
    }
}

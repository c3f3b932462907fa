//! Downloads: the buyer's page facts and the file requests.
//!
//! [`DownloadService::begin`] decides a request with `domain::authorize` and reserves its
//! bytes in the same redb write transaction (redb has one writer at a time), so parallel
//! requests can never exceed the budget. [`DownloadService::finish`] gives back what was
//! not sent when the connection ends; a resumed download therefore costs only what arrived.
//! Every attempt, allowed or refused, is written to the event log.

use super::ServiceError;
use crate::auth::download_key::DownloadKey;
use crate::blobs::{BlobError, Blobs, FileStores};
use crate::store;
use crate::store::catalog::FileRecord;
use crate::store::download_tables::DeliveryReads;
use crate::store::download_tables::DownloadTables;
use crate::store::events::EventRecord;
use crate::store::events::Outcome;
use crate::store::grants::Grant;
use crate::store::grants::Sighting;
use crate::store::{Store, StoreError};
use bytes::Bytes;
use domain::range::{self, RangeAnswer};
use domain::rules::{Attempt, Denied};
pub use domain::wire::{BuyerPage, FileOffer, GrantPage};
use domain::{CountryCode, DownloadPassword, FileId, GrantId, ProductId, Timestamp};
use futures::stream::BoxStream;
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

/// Who is asking, as far as the rules and the log care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    pub country: Option<CountryCode>,
    pub user_agent: String,
}

/// The request's range headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    pub range: Option<String>,
    pub if_range: Option<String>,
}

/// Why a file request gets no bytes.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The file's bytes could not be read from the store (the charge was given back).
    #[error("the stored file could not be read: {0}")]
    Unreadable(BlobError),
    /// Unknown password or file, or a replaced password: 404, nothing revealed.
    #[error("not found")]
    NotFound,
    /// The rules said no; the buyer is told why.
    #[error("{0}")]
    Denied(Denied),
    /// 416 for the file of this length.
    #[error("range not satisfiable")]
    RangeNotSatisfiable { len: u64 },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Self::Service(e.into())
    }
}

/// An allowed request: what to send, and the reservation to settle with `finish`.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub grant: GrantId,
    pub file: FileId,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Strong ETag: the content's SHA-256.
    pub etag: String,
    pub storage_key: String,
    /// The file store the bytes are in (`""`: the default).
    pub store: String,
    pub answer: RangeAnswer,
    pub reserved: u64,
    event: u64,
}

/// What the download transaction decided.
enum Decision {
    /// Allowed; the bytes are charged and the event logged.
    Allowed(Ticket),
    /// Refused by the rules; the refusal (and any block) is written.
    Denied(Denied),
    /// Nothing to record (unknown password or file, bad range): nothing was written.
    Declined(Refusal),
}

/// Downloads and the buyer page.
#[derive(Clone, Debug)]
pub struct DownloadService {
    store: Store,
    key: DownloadKey,
    stores: FileStores,
    /// How long a presigned URL works.
    presign_ttl: Duration,
    /// Whether an endpoint listens for `download.completed`, so that the download path does
    /// no store work for the event when nobody does.
    completions: super::webhooks::Subscription,
}

/// One request for a file's bytes, as the HTTP layer received it.
#[derive(Clone, Debug)]
pub struct FileRequest {
    pub password: String,
    pub file: FileId,
    pub ranges: RangeRequest,
    pub client: Client,
    /// A HEAD: the headers a GET would get, and nothing else.
    pub head: bool,
    /// The connection can send a local file with `sendfile` (else local files stream).
    pub sendfile: bool,
}

/// The answer to a file request: what to send and how. The service decides; the HTTP layer
/// maps it to a response and only reports back how many bytes went out.
#[derive(Debug)]
pub struct Download {
    pub name: String,
    pub content_type: String,
    /// Size of the whole file.
    pub size: u64,
    /// Strong ETag: the content's SHA-256.
    pub etag: String,
    /// The bytes of the file this answer is about: all of it, or the one range asked for.
    pub range: Range<u64>,
    /// Whether `range` answers a Range request (206) rather than the whole file (200).
    pub partial: bool,
    pub delivery: Delivery,
}

/// How the bytes of a [`Download`] reach the buyer.
#[derive(Debug)]
pub enum Delivery {
    /// Headers only: a HEAD (decided by the rules but neither charged nor logged, as it
    /// sends no bytes), or an empty range.
    Headers,
    /// A 302 to a presigned URL of the store for the whole file, which was charged in
    /// full: the bytes do not pass through Dropgate, so nothing less can be counted. A
    /// ranged request never gets one (the URL would fetch any range, any number of times
    /// while it lives), it is streamed instead.
    Redirect(String),
    /// The bytes, counted as the connection takes them: call
    /// [`DownloadService::finish`] with the count when the body ends or is dropped.
    Body { source: BodySource, ticket: Ticket },
}

/// Where a body's bytes come from.
pub enum BodySource {
    /// A small file's range, from memory.
    Memory(Bytes),
    /// An open file on local disk for `sendfile`, to be sent from `range.start`.
    LocalFile(std::fs::File),
    /// A stream of the range from the store.
    Stream(BoxStream<'static, Result<Bytes, BlobError>>),
}

impl std::fmt::Debug for BodySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(bytes) => write!(f, "Memory({} bytes)", bytes.len()),
            Self::LocalFile(_) => f.write_str("LocalFile"),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl DownloadService {
    pub fn new(
        store: Store,
        key: DownloadKey,
        stores: impl Into<FileStores>,
        presign_ttl: Duration,
    ) -> Self {
        Self {
            store,
            key,
            stores: stores.into(),
            presign_ttl,
            completions: super::webhooks::Subscription::default(),
        }
    }

    /// Announces finished downloads as `download.completed` while `subscription` is on
    /// (the webhook service keeps it in step with the endpoints).
    #[must_use]
    pub fn announcing(mut self, subscription: super::webhooks::Subscription) -> Self {
        self.completions = subscription;
        self
    }

    /// Whether finished downloads are announced (an endpoint listens).
    pub fn announces_completions(&self) -> bool {
        self.completions.is_on()
    }

    /// Queues `download.completed` for a download whose every requested byte was handed
    /// to the connection (or, from S3, whose presigned URL was issued: S3 sends the bytes),
    /// when an endpoint listens for it.
    pub async fn announce_completed(
        &self,
        ticket: &Ticket,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        if !self.completions.is_on() {
            return Ok(());
        }
        let (grant_id, file, name, bytes, size) = (
            ticket.grant,
            ticket.file,
            ticket.name.clone(),
            ticket.reserved,
            ticket.size,
        );
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let grant = crate::store::grants::grant(tx, grant_id)?;
                    let data = serde_json::json!({
                        "grant_id": grant_id,
                        "order_id": grant.as_ref().map(|g| g.order_id),
                        "product_id": grant.as_ref().map(|g| g.product_id.clone()),
                        "file_id": file,
                        "file_name": name,
                        "bytes": bytes,
                        "file_size": size,
                    });
                    crate::store::webhooks::emit(tx, "download.completed", &data, now)?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await
    }

    /// Answers a file request: decides it with the rules, charges what a GET will send
    /// (see [`Delivery`] for what each way of sending costs) and opens its bytes.
    pub async fn request(&self, request: FileRequest, now: Timestamp) -> Result<Download, Refusal> {
        if request.head {
            return self.head(request, now).await;
        }
        let ticket = self
            .begin(
                &request.password,
                request.file,
                request.ranges,
                request.client,
                now,
            )
            .await?;
        let (range, partial) = span(&ticket.answer, ticket.size);
        let download = |delivery| Download {
            name: ticket.name.clone(),
            content_type: ticket.content_type.clone(),
            size: ticket.size,
            etag: ticket.etag.clone(),
            range: range.clone(),
            partial,
            delivery,
        };
        if range.is_empty() {
            return Ok(download(Delivery::Headers));
        }
        let presigns = self.stores.get(&ticket.store).is_ok_and(Blobs::presigns);
        let opened = if presigns && !partial {
            let url = self.presign(&ticket).await;
            if url.is_ok()
                && let Err(e) = self.announce_completed(&ticket, now).await
            {
                tracing::error!(error = %e, "could not queue download.completed");
            }
            url.map(Delivery::Redirect)
        } else {
            self.open(&ticket, range.clone(), request.sendfile)
                .await
                .map(|source| Delivery::Body {
                    source,
                    ticket: ticket.clone(),
                })
        };
        match opened {
            Ok(delivery) => Ok(download(delivery)),
            Err(e) => {
                // Nothing went out: the whole charge is given back.
                self.finish(&ticket, 0).await?;
                Err(Refusal::Unreadable(e))
            }
        }
    }

    /// A HEAD: the same lookups and rules as a GET in a read transaction, so it writes
    /// nothing (no charge, no log entry, no country lock or block).
    async fn head(&self, request: FileRequest, now: Timestamp) -> Result<Download, Refusal> {
        let password = DownloadPassword::parse(&request.password).map_err(|_| Refusal::NotFound)?;
        let digest = self.key.digest(&password);
        let FileRequest {
            file,
            ranges,
            client,
            ..
        } = request;
        let found = self
            .store
            .run(move |s| s.read(|tx| find(tx, &digest, file, &ranges)))
            .await??;
        found
            .grant
            .authorize(found.order_status, &found.attempt(&client), now)
            .map_err(Refusal::Denied)?;
        let (range, partial) = span(&found.answer, found.record.size);
        Ok(Download {
            name: found.record.name,
            content_type: found.record.content_type,
            size: found.record.size,
            etag: found.etag,
            range,
            partial,
            delivery: Delivery::Headers,
        })
    }

    /// A presigned URL for the whole file, with its real name and type signed in.
    async fn presign(&self, ticket: &Ticket) -> Result<String, BlobError> {
        self.stores
            .get(&ticket.store)?
            .presigned_get(
                &ticket.storage_key,
                &content_disposition(&ticket.name),
                &ticket.content_type,
                self.presign_ttl,
            )
            .await?
            .ok_or_else(|| BlobError::Source("this store does not presign".into()))
    }

    /// The bytes of `range`: a small local file from memory, a larger one for `sendfile`
    /// when the connection can, anything else as a stream.
    async fn open(
        &self,
        ticket: &Ticket,
        range: Range<u64>,
        sendfile: bool,
    ) -> Result<BodySource, BlobError> {
        let key = &ticket.storage_key;
        let blobs = self.stores.get(&ticket.store)?;
        if let Some(bytes) = blobs.small_local(key, ticket.size).await? {
            // The range was checked against the recorded size, which the bytes match.
            let part = bytes.slice(index(range.start)..index(range.end));
            return Ok(BodySource::Memory(part));
        }
        if sendfile && let Some(file) = blobs.open_local(key, &range).await? {
            return Ok(BodySource::LocalFile(file));
        }
        Ok(BodySource::Stream(blobs.read(key, range).await?))
    }

    /// The buyer page for a password, at `now`.
    pub async fn page(&self, password: &str, now: Timestamp) -> Result<BuyerPage, ServiceError> {
        Ok(self.buyer_page(password, now).await?.0)
    }

    /// [`Self::page`] with the order's language, when it names one (the page is shown in it).
    pub async fn buyer_page(
        &self,
        password: &str,
        now: Timestamp,
    ) -> Result<(BuyerPage, Option<domain::Language>), ServiceError> {
        let Ok(password) = DownloadPassword::parse(password) else {
            return Ok((BuyerPage::Unknown, None));
        };
        let digest = self.key.digest(&password);
        self.store
            .run(move |s| {
                s.read(|tx| {
                    let Some(gid) = store::grants::grant_by_digest(tx, &digest)? else {
                        return Ok((BuyerPage::Unknown, None));
                    };
                    let Some(grant) = store::grants::grant(tx, gid)? else {
                        return Ok((BuyerPage::Unknown, None));
                    };
                    if grant.password_digest != digest {
                        return Ok((BuyerPage::Unknown, None));
                    }
                    let order = store::orders::order(tx, grant.order_id)?
                        .ok_or_else(|| corrupt("order of a grant"))?;
                    let product = store::catalog::product(tx, &grant.product_id)?;
                    let product_name = product
                        .as_ref()
                        .map_or_else(|| grant.product_id.to_string(), |p| p.name.clone());
                    let records = store::catalog::files_of(tx, product.as_ref())?;
                    let sizes = store::catalog::sizes(&records);
                    let files: Vec<FileOffer> = records
                        .into_iter()
                        .map(|(fid, f)| FileOffer {
                            file_id: fid,
                            downloads_left: grant.left(fid, f.size),
                            size: f.size,
                            sha256: hex::encode(f.sha256),
                            updated_at: (f.version > 1).then_some(f.uploaded_at),
                            changelog: f.changelog,
                            name: f.name,
                        })
                        .collect();
                    if let Some(reason) = grant.refusal(order.status, &sizes, now) {
                        let explanation = reason.explain();
                        return Ok((
                            BuyerPage::Refused {
                                product_name,
                                reason,
                                explanation,
                            },
                            order.language,
                        ));
                    }
                    Ok((
                        BuyerPage::Ready(GrantPage {
                            product_name,
                            valid_until: grant.valid_until,
                            max_downloads: grant.max_downloads,
                            files,
                        }),
                        order.language,
                    ))
                })
            })
            .await
            .map_err(ServiceError::from)
    }

    /// Decides a file request and reserves its bytes, atomically.
    pub async fn begin(
        &self,
        password: &str,
        file: FileId,
        ranges: RangeRequest,
        client: Client,
        now: Timestamp,
    ) -> Result<Ticket, Refusal> {
        let password = DownloadPassword::parse(password).map_err(|_| Refusal::NotFound)?;
        let digest = self.key.digest(&password);
        // `Err` is a storage failure only. A request declined before anything is written
        // (unknown password, bad range) is an `Ok`, so it stays in the shared batch: an
        // `Err` would make the writer rerun every job of the batch alone, one fsync each,
        // and a flood of made-up passwords could then slow every buyer's download.
        let decided: Result<Decision, StoreError> = self
            .store
            // Grouped: concurrent downloads share one commit (and fsync); the decision
            // and the reservation are still one transaction that no other writer interleaves.
            .write_grouped(move |batch| {
                decide_and_reserve(batch.downloads()?, &digest, file, &ranges, &client, now)
            })
            .await;
        match decided? {
            Decision::Allowed(ticket) => Ok(ticket),
            Decision::Denied(denied) => Err(Refusal::Denied(denied)),
            Decision::Declined(refusal) => Err(refusal),
        }
    }

    /// Settles a ticket when its connection ends: of the bytes charged by `begin`, what
    /// was not sent is given back. A completed download has nothing to settle.
    pub async fn finish(&self, ticket: &Ticket, sent: u64) -> Result<(), ServiceError> {
        if sent >= ticket.reserved {
            return Ok(());
        }
        let (gid, file, unsent, seq) = (
            ticket.grant,
            ticket.file,
            ticket.reserved - sent,
            ticket.event,
        );
        self.store
            // Lazily durable: if a crash loses this, the download stays charged in full,
            // which errs in the seller's favour by what was not sent, and the download
            // path saves an fsync.
            .write_grouped_lazily(move |batch| {
                let tables = batch.downloads()?;
                if let Some(mut grant) = tables.grant(gid)? {
                    grant.settle(file, unsent);
                    tables.update_grant(gid, &grant)?;
                }
                if let Some(mut event) = tables.event(seq)? {
                    event.bytes = sent;
                    tables.put_event(seq, &event)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .map_err(ServiceError::from)
    }
}

/// A file request matched to its grant and file, before the rules are applied.
struct Found {
    grant_id: GrantId,
    file: FileId,
    grant: Grant,
    order_status: domain::OrderStatus,
    record: FileRecord,
    etag: String,
    answer: RangeAnswer,
    requested: u64,
}

/// Finds the grant and the file a request names and decides its range. `Ok(Err(_))` is a
/// request declined before the rules (unknown password or file, bad range), which is never
/// recorded; `Err` is a storage failure.
fn find(
    reads: &impl DeliveryReads,
    digest: &[u8; 32],
    file: FileId,
    ranges: &RangeRequest,
) -> Result<Result<Found, Refusal>, StoreError> {
    let Some(gid) = reads.grant_by_digest(digest)? else {
        return Ok(Err(Refusal::NotFound));
    };
    let Some(grant) = reads.grant(gid)? else {
        return Ok(Err(Refusal::NotFound));
    };
    if grant.password_digest != *digest {
        return Ok(Err(Refusal::NotFound));
    }
    let Some(record) = file_of(reads, &grant.product_id, file)? else {
        return Ok(Err(Refusal::NotFound));
    };
    let order = reads
        .order(grant.order_id)?
        .ok_or_else(|| corrupt("order of a grant"))?;
    let etag = format!("\"{}\"", hex::encode(record.sha256));
    let if_range = ranges
        .if_range
        .as_deref()
        .map(|v| range::if_range_matches(v, &etag));
    let answer = match range::decide(ranges.range.as_deref(), if_range, record.size) {
        // Several ranges are answered with the whole file (RFC 9110 allows it),
        // which keeps the response and the reservation simple and exact.
        RangeAnswer::Partial(parts) if parts.len() > 1 => RangeAnswer::Full,
        other => other,
    };
    let requested = match &answer {
        RangeAnswer::Full => record.size,
        RangeAnswer::Partial(parts) => parts.iter().map(|r| r.end() - r.start() + 1).sum(),
        RangeAnswer::Unsatisfiable => {
            return Ok(Err(Refusal::RangeNotSatisfiable { len: record.size }));
        }
    };
    Ok(Ok(Found {
        grant_id: gid,
        file,
        grant,
        order_status: order.status,
        record,
        etag,
        answer,
        requested,
    }))
}

impl Found {
    fn attempt(&self, client: &Client) -> Attempt {
        Attempt {
            country: client.country,
            file_size: self.record.size,
            counted_bytes: self.grant.counted(self.file),
            requested_bytes: self.requested,
        }
    }
}

/// The download transaction: finds the grant and file, decides with the rules, and
/// charges the bytes and logs the attempt (or logs the refusal and any block).
fn decide_and_reserve(
    tables: &mut DownloadTables<'_>,
    digest: &[u8; 32],
    file: FileId,
    ranges: &RangeRequest,
    client: &Client,
    now: Timestamp,
) -> Result<Decision, StoreError> {
    let found = match find(tables, digest, file, ranges)? {
        Ok(found) => found,
        Err(refusal) => return Ok(Decision::Declined(refusal)),
    };
    let attempt = found.attempt(client);
    let Found {
        grant_id: gid,
        mut grant,
        order_status,
        record,
        etag,
        answer,
        ..
    } = found;
    let sighting = Sighting {
        at: now,
        ip: client.ip,
        country: client.country,
    };
    let mut event = EventRecord::attempt(
        now,
        gid,
        Some(file),
        client.ip,
        client.country,
        &client.user_agent,
    );
    match grant.authorize(order_status, &attempt, now) {
        Ok(permit) => {
            // Charged up front: a download that completes (the usual case)
            // needs no second write, and a crash mid-way errs in the seller's
            // favour. `finish` gives back what a cut-off download did not send.
            grant.record_download(file, &permit, sighting);
            event.bytes = permit.reserve;
            tables.update_grant(gid, &grant)?;
            let seq = tables.insert_event(&event)?;
            Ok(Decision::Allowed(Ticket {
                grant: gid,
                file,
                name: record.name,
                content_type: record.content_type,
                size: record.size,
                etag,
                storage_key: record.storage_key,
                store: record.store,
                answer,
                reserved: permit.reserve,
                event: seq,
            }))
        }
        Err(denied) => {
            if grant.record_refusal(&denied, sighting) {
                tables.update_grant(gid, &grant)?;
            }
            event.outcome = Outcome::of(denied.outcome());
            // A refusal like the grant's last one (a script retrying an expired link) is
            // counted on that entry instead of adding one.
            let folded = tables
                .latest_event_of(gid)?
                .and_then(|(seq, mut last)| last.fold(&event).then_some((seq, last)));
            match folded {
                Some((seq, last)) => tables.put_event(seq, &last)?,
                None => {
                    tables.insert_event(&event)?;
                }
            }
            Ok(Decision::Denied(denied))
        }
    }
}

fn file_of(
    reads: &impl DeliveryReads,
    product: &ProductId,
    file: FileId,
) -> Result<Option<FileRecord>, StoreError> {
    let Some(p) = reads.product(product)? else {
        return Ok(None);
    };
    if !p.files.contains(&file) {
        return Ok(None);
    }
    reads.file(file)
}

/// The bytes an answer covers and whether it is a partial (206) answer.
fn span(answer: &RangeAnswer, size: u64) -> (Range<u64>, bool) {
    match answer {
        RangeAnswer::Partial(parts) if parts.len() == 1 => {
            (*parts[0].start()..*parts[0].end() + 1, true)
        }
        _ => (0..size, false),
    }
}

/// A small file's offset (at most 64 KiB) as an index.
fn index(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// `attachment` with an ASCII fallback name and the real name in RFC 6266/5987 `filename*`.
pub fn content_disposition(name: &str) -> String {
    use std::fmt::Write as _;
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

fn corrupt(what: &'static str) -> StoreError {
    StoreError::Corrupt {
        kind: what,
        detail: "missing".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn content_disposition_keeps_the_real_name_safely() {
        assert_eq!(
            content_disposition("book.pdf"),
            "attachment; filename=\"book.pdf\"; filename*=UTF-8''book.pdf"
        );
        assert_eq!(
            content_disposition("Rüst \"2e\".pdf"),
            "attachment; filename=\"R_st _2e_.pdf\"; filename*=UTF-8''R%C3%BCst%20%222e%22.pdf"
        );
        assert!(!content_disposition("a\r\nSet-Cookie: x").contains('\n'));
    }
    use crate::blobs::Blobs;
    use crate::services::{Actor, CatalogService, OrderService};
    use crate::store::orders::OrderSource;
    use bytes::Bytes;
    use domain::wire::{NewOrder, NewProduct, OrderPatch};
    use std::time::Duration;

    pub(crate) const SIZE: u64 = 1000;

    pub(crate) fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000)
    }

    pub(crate) struct Fixture {
        pub(crate) store: Store,
        pub(crate) downloads: DownloadService,
        pub(crate) orders: OrderService,
        pub(crate) password: String,
        pub(crate) file: FileId,
        pub(crate) order: domain::OrderId,
        _dir: tempfile::TempDir,
    }

    /// A real redb file, a product with one 1000-byte file, a confirmed order.
    pub(crate) async fn fixture(max_downloads: u32, country_lock: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let blobs = Blobs::in_memory();
        let catalog = CatalogService::new(store.clone(), blobs.clone(), 1 << 20);
        let product = NewProduct {
            product_id: "ebook".into(),
            name: "The Book".into(),
            max_downloads,
            download_days: 31,
            country_lock,
        };
        catalog.create(product, Actor::System, now()).await.unwrap();
        let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(
            vec![7u8; usize::try_from(SIZE).unwrap()],
        ))]);
        let file = catalog
            .upload(
                ProductId::parse("ebook").unwrap(),
                super::super::FileUpload {
                    name: "book.pdf",
                    ..Default::default()
                },
                body,
                Actor::System,
                now(),
            )
            .await
            .unwrap()
            .file;
        let key = store.download_key().unwrap();
        let orders = OrderService::new(
            store.clone(),
            key.clone(),
            crate::mail::Mailer::for_tests(store.clone(), "https://dl.example.com").await,
        );
        let order = NewOrder {
            email: "b@example.com".into(),
            name: String::new(),
            product_ids: vec!["ebook".into()],
            transaction_id: None,
            status: None,
            language: None,
            amount: None,
        };
        let created = orders
            .create(order, OrderSource::Api, Actor::System, now())
            .await
            .unwrap();
        Fixture {
            downloads: DownloadService::new(
                store.clone(),
                key,
                blobs.clone(),
                Duration::from_secs(60),
            ),
            store,
            orders,
            password: created.issued[0].password.clone(),
            file: file.file_id,
            order: created.order.order_id,
            _dir: dir,
        }
    }

    pub(crate) fn client(country: Option<&str>, ip: &str) -> Client {
        Client {
            ip: ip.parse().unwrap(),
            country: country.and_then(CountryCode::parse),
            user_agent: "test".into(),
        }
    }
    fn range(r: &str) -> RangeRequest {
        RangeRequest {
            range: Some(r.into()),
            if_range: None,
        }
    }

    #[tokio::test]
    async fn a_full_download_counts_once_and_the_limit_then_applies() {
        let f = fixture(1, true).await;
        let page = f.downloads.page(&f.password, now()).await.unwrap();
        let BuyerPage::Ready(ready) = page else {
            panic!("{page:?}")
        };
        assert_eq!(ready.product_name, "The Book");
        assert_eq!(ready.files[0].downloads_left, Some(1.0));
        assert_eq!(ready.files[0].sha256.len(), 64);

        let ticket = f
            .downloads
            .begin(
                &f.password,
                f.file,
                RangeRequest::default(),
                client(None, "192.0.2.1"),
                now(),
            )
            .await
            .unwrap();
        assert_eq!(
            (ticket.answer.clone(), ticket.reserved),
            (RangeAnswer::Full, SIZE)
        );
        f.downloads.finish(&ticket, SIZE).await.unwrap();
        let again = f
            .downloads
            .begin(
                &f.password,
                f.file,
                RangeRequest::default(),
                client(None, "192.0.2.1"),
                now(),
            )
            .await;
        assert!(
            matches!(
                again,
                Err(Refusal::Denied(Denied::LimitReached { max_downloads: 1 }))
            ),
            "{again:?}"
        );
        assert!(matches!(
            f.downloads.page(&f.password, now()).await.unwrap(),
            BuyerPage::Refused {
                reason: Denied::LimitReached { .. },
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_download_cut_at_40_percent_and_resumed_costs_one_download() {
        let f = fixture(1, true).await;
        let first = f
            .downloads
            .begin(
                &f.password,
                f.file,
                RangeRequest::default(),
                client(None, "192.0.2.1"),
                now(),
            )
            .await
            .unwrap();
        f.downloads.finish(&first, 400).await.unwrap();
        let BuyerPage::Ready(page) = f.downloads.page(&f.password, now()).await.unwrap() else {
            panic!()
        };
        assert!((page.files[0].downloads_left.unwrap() - 0.6).abs() < 1e-9);
        let rest = f
            .downloads
            .begin(
                &f.password,
                f.file,
                range("bytes=400-"),
                client(None, "192.0.2.1"),
                now(),
            )
            .await
            .unwrap();
        assert_eq!(rest.answer, RangeAnswer::Partial(vec![400..=999]));
        assert_eq!(rest.reserved, 600);
        f.downloads.finish(&rest, 600).await.unwrap();
        let more = f
            .downloads
            .begin(
                &f.password,
                f.file,
                range("bytes=0-0"),
                client(None, "192.0.2.1"),
                now(),
            )
            .await;
        assert!(matches!(
            more,
            Err(Refusal::Denied(Denied::LimitReached { .. }))
        ));
    }

    #[tokio::test]
    async fn concurrent_downloads_never_exceed_the_budget() {
        let f = fixture(1, true).await;
        let mut tasks = Vec::new();
        for i in 0..64 {
            let svc = f.downloads.clone();
            let password = f.password.clone();
            let file = f.file;
            tasks.push(tokio::spawn(async move {
                svc.begin(
                    &password,
                    file,
                    RangeRequest::default(),
                    client(None, &format!("192.0.2.{i}")),
                    now(),
                )
                .await
            }));
        }
        let mut reserved = 0;
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(ticket) => reserved += ticket.reserved,
                Err(Refusal::Denied(Denied::LimitReached { .. })) => refused += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(reserved, SIZE, "exactly one full download was allowed");
        assert_eq!(refused, 63);
    }

    /// Unknown passwords and unsatisfiable ranges share the writer's batches with real
    /// downloads (they write nothing): the budget still holds exactly, each request gets
    /// its own answer, and only the attempts that reached the rules are logged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn declined_requests_mixed_into_busy_batches_change_nothing() {
        let f = fixture(10, true).await;
        let unknown =
            DownloadPassword::from_random([0x5a; domain::password::RANDOM_BYTES]).display();
        let mut tasks = Vec::new();
        for i in 0..100u32 {
            let svc = f.downloads.clone();
            let (password, ranges) = match i % 5 {
                0 | 1 => (unknown.clone(), RangeRequest::default()),
                2 => (f.password.clone(), range("bytes=5000-")),
                _ => (f.password.clone(), RangeRequest::default()),
            };
            let file = f.file;
            tasks.push(tokio::spawn(async move {
                let answer = svc
                    .begin(&password, file, ranges, client(None, "192.0.2.7"), now())
                    .await;
                (i % 5, answer)
            }));
        }
        let (mut reserved, mut limit, mut not_found, mut unsatisfiable) = (0, 0, 0, 0);
        for t in tasks {
            match t.await.unwrap() {
                (3 | 4, Ok(ticket)) => reserved += ticket.reserved,
                (3 | 4, Err(Refusal::Denied(Denied::LimitReached { .. }))) => limit += 1,
                (0 | 1, Err(Refusal::NotFound)) => not_found += 1,
                (2, Err(Refusal::RangeNotSatisfiable { len: SIZE })) => unsatisfiable += 1,
                (kind, other) => panic!("request kind {kind} answered {other:?}"),
            }
        }
        assert_eq!(reserved, 10 * SIZE, "ten full downloads, no more");
        assert_eq!((limit, not_found, unsatisfiable), (30, 40, 20));
        let grant = f
            .store
            .read(|tx| {
                store::grants::grant_by_digest(
                    tx,
                    &f.downloads
                        .key
                        .digest(&DownloadPassword::parse(&f.password).unwrap()),
                )
            })
            .unwrap()
            .unwrap();
        let logged = f
            .store
            .read(|tx| store::events::grant_events(tx, grant))
            .unwrap();
        let attempts: u32 = logged.iter().map(|e| e.count).sum();
        assert_eq!(attempts, 40, "the 40 attempts that reached the rules");
        let allowed = logged
            .iter()
            .filter(|e| e.outcome == Outcome::Allowed)
            .count();
        assert_eq!(
            allowed, 10,
            "each download its own entry; refusals may fold"
        );
        assert_eq!(
            f.store.split_batches(),
            0,
            "a declined request never splits the batch it shares"
        );
    }

    #[tokio::test]
    async fn a_second_country_blocks_and_both_are_kept() {
        let f = fixture(3, true).await;
        let us = f
            .downloads
            .begin(
                &f.password,
                f.file,
                range("bytes=0-9"),
                client(Some("US"), "8.8.8.8"),
                now(),
            )
            .await
            .unwrap();
        f.downloads.finish(&us, 10).await.unwrap();
        // An unknown country neither locks nor blocks.
        let unknown = f
            .downloads
            .begin(
                &f.password,
                f.file,
                range("bytes=0-9"),
                client(None, "10.0.0.1"),
                now(),
            )
            .await
            .unwrap();
        f.downloads.finish(&unknown, 10).await.unwrap();
        let gb = f
            .downloads
            .begin(
                &f.password,
                f.file,
                range("bytes=0-9"),
                client(Some("GB"), "81.2.69.142"),
                now(),
            )
            .await;
        assert!(
            matches!(gb, Err(Refusal::Denied(Denied::CountryChanged { .. }))),
            "{gb:?}"
        );
        // Blocked now, even from the first country.
        let back = f
            .downloads
            .begin(
                &f.password,
                f.file,
                range("bytes=0-9"),
                client(Some("US"), "8.8.8.8"),
                now(),
            )
            .await;
        assert!(
            matches!(back, Err(Refusal::Denied(Denied::Blocked))),
            "{back:?}"
        );
        let grant = f
            .downloads
            .store
            .read(|tx| store::grants::grant(tx, GrantId::new(1)))
            .unwrap()
            .unwrap();
        let locked = grant.locked.unwrap();
        let blocked = grant.blocked_by.unwrap();
        assert_eq!(
            (locked.country.unwrap().as_str(), locked.ip.to_string()),
            ("US", "8.8.8.8".to_owned())
        );
        assert_eq!(
            (blocked.country.unwrap().as_str(), blocked.ip.to_string()),
            ("GB", "81.2.69.142".to_owned())
        );
        let events = f
            .downloads
            .store
            .read(|tx| store::events::grant_events(tx, GrantId::new(1)))
            .unwrap();
        let outcomes: Vec<_> = events.iter().map(|e| e.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            vec![
                Outcome::Allowed,
                Outcome::Allowed,
                Outcome::Refused("second_country".into()),
                Outcome::Refused("blocked".into())
            ]
        );
        assert_eq!(events[0].bytes, 10);
    }

    #[tokio::test]
    async fn every_refusal_reason() {
        let f = fixture(3, true).await;
        let try_now = |at: Timestamp| {
            f.downloads.begin(
                &f.password,
                f.file,
                RangeRequest::default(),
                client(None, "192.0.2.1"),
                at,
            )
        };
        let expired = try_now(now().plus(Duration::from_secs(32 * 86_400))).await;
        assert!(matches!(
            expired,
            Err(Refusal::Denied(Denied::Expired { .. }))
        ));
        assert!(matches!(
            f.downloads
                .begin(
                    &f.password,
                    FileId::new(999),
                    RangeRequest::default(),
                    client(None, "192.0.2.1"),
                    now()
                )
                .await,
            Err(Refusal::NotFound)
        ));
        assert!(matches!(
            f.downloads
                .begin(
                    "AAAA-AAAA-AAAA-AAAA-AAAA",
                    f.file,
                    RangeRequest::default(),
                    client(None, "192.0.2.1"),
                    now()
                )
                .await,
            Err(Refusal::NotFound)
        ));
        assert!(matches!(
            f.downloads
                .begin(
                    &f.password,
                    f.file,
                    range("bytes=5000-"),
                    client(None, "192.0.2.1"),
                    now()
                )
                .await,
            Err(Refusal::RangeNotSatisfiable { len: SIZE })
        ));
        f.orders
            .update(
                f.order,
                OrderPatch {
                    status: Some("on_hold".into()),
                    ..OrderPatch::default()
                },
                Actor::System,
                now(),
            )
            .await
            .unwrap();
        assert!(matches!(
            try_now(now()).await,
            Err(Refusal::Denied(Denied::OrderNotConfirmed { .. }))
        ));
        assert!(matches!(
            f.downloads.page(&f.password, now()).await.unwrap(),
            BuyerPage::Refused { .. }
        ));
        f.orders
            .refund(f.order, Actor::System, now())
            .await
            .unwrap();
        assert!(matches!(
            try_now(now()).await,
            Err(Refusal::Denied(Denied::Refunded))
        ));
        assert_eq!(
            f.downloads.page("not a password", now()).await.unwrap(),
            BuyerPage::Unknown
        );
    }

    #[tokio::test]
    async fn a_download_cut_by_a_crash_stays_charged_and_a_finished_one_keeps_its_charge() {
        let f = fixture(2, true).await;
        let attempt = || {
            f.downloads.begin(
                &f.password,
                f.file,
                RangeRequest::default(),
                client(None, "192.0.2.1"),
                now(),
            )
        };
        // Charged and logged in full when it begins; completing it changes nothing.
        let done = attempt().await.unwrap();
        assert_eq!(event_bytes(&f), vec![SIZE]);
        f.downloads.finish(&done, SIZE).await.unwrap();
        assert_eq!(event_bytes(&f), vec![SIZE]);
        // The server dies before this one settles: after the restart nothing is given back,
        // so the buyer cannot turn crashes into free downloads.
        let _lost = attempt().await.unwrap();
        let reopened_ledger = f
            .downloads
            .store
            .read(|tx| crate::store::grants::grant(tx, GrantId::new(1)))
            .unwrap()
            .unwrap()
            .counted(f.file);
        assert_eq!(reopened_ledger, 2 * SIZE);
        assert!(matches!(attempt().await, Err(Refusal::Denied(_))));
    }

    /// The bytes of each event of the fixture's grant, oldest first.
    fn event_bytes(f: &Fixture) -> Vec<u64> {
        let store = f.downloads.store.clone();
        store
            .read(|tx| {
                let grant = store::grants::grant_by_digest(
                    tx,
                    &f.downloads
                        .key
                        .digest(&DownloadPassword::parse(&f.password).unwrap()),
                )?
                .unwrap();
                Ok(store::events::grant_events(tx, grant)?
                    .into_iter()
                    .filter(|e| e.outcome == Outcome::Allowed)
                    .map(|e| e.bytes)
                    .collect())
            })
            .unwrap()
    }
}

//! `GET|HEAD /d/{password}/{file_id}`: the bytes of a product file.
//!
//! Transport only: the download service decides the request, charges it and says how its
//! bytes go out ([`Delivery`]); this handler maps that to HTTP and reports back how many
//! bytes the connection took, when the body ends or the client goes away. Files on local
//! disk go out with `sendfile` (the kernel counts what it took); other bodies are counted
//! as they are handed to the connection.

use super::HttpState;
use super::sendfile::{FileJob, SendfileSlot, mark_body};
use app::server::ClientIp;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use backend::blobs::BlobError;
use backend::services::{
    BodySource, Client, Delivery, Download, DownloadService, FileRequest, RangeRequest, Refusal,
    Ticket, content_disposition,
};
use bytes::Bytes;
use domain::FileId;
use futures::{Stream, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Serves one file request.
pub async fn file(
    State(state): State<HttpState>,
    Path((password, file_id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    client_ip: Option<axum::Extension<ClientIp>>,
    sendfile: Option<axum::Extension<SendfileSlot>>,
) -> Response {
    let Ok(file) = file_id.parse::<u64>().map(FileId::new) else {
        return not_found();
    };
    let ip = client_ip.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0);
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let request = FileRequest {
        password,
        file,
        ranges: RangeRequest {
            range: header_text(header::RANGE),
            if_range: header_text(header::IF_RANGE),
        },
        client: Client {
            ip,
            country: state.geo.country(ip),
            user_agent: header_text(header::USER_AGENT).unwrap_or_default(),
        },
        head: method == Method::HEAD,
        sendfile: sendfile.is_some(),
    };
    let download = match state
        .downloads
        .request(request, backend::clock::now())
        .await
    {
        Ok(download) => download,
        Err(refusal) => return refusal_response(refusal),
    };
    let status = if download.partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let response_headers = file_headers(&download);
    let range = download.range;
    match download.delivery {
        Delivery::Headers => (status, response_headers).into_response(),
        Delivery::Redirect(url) => redirect(&url),
        Delivery::Body { source, ticket } => {
            let downloads = state.downloads.clone();
            let body = match (source, sendfile) {
                (BodySource::LocalFile(file), Some(axum::Extension(slot))) => {
                    let length = range.end - range.start;
                    slot.arm(FileJob::new(
                        file,
                        range.start,
                        length,
                        Box::new(move |sent| settle_later(downloads, ticket, sent)),
                    ));
                    Body::from_stream(mark_body(length))
                }
                (BodySource::Memory(bytes), _) => metered(
                    futures::stream::once(async move { Ok::<Bytes, BlobError>(bytes) }),
                    ticket,
                    downloads,
                ),
                (BodySource::Stream(stream), _) => metered(stream, ticket, downloads),
                (BodySource::LocalFile(_), None) => {
                    // The service opens a file for `sendfile` only when asked to.
                    settle_later(downloads, ticket, 0);
                    return refusal_response(Refusal::Unreadable(BlobError::Source(
                        "a local file without a sendfile connection".into(),
                    )));
                }
            };
            (status, response_headers, body).into_response()
        }
    }
}

/// A body counted as it is handed to the connection.
fn metered(
    stream: impl Stream<Item = Result<Bytes, BlobError>> + Send + 'static,
    ticket: Ticket,
    downloads: DownloadService,
) -> Body {
    Body::from_stream(Metered {
        inner: Box::pin(stream),
        sent: 0,
        ticket: Some(ticket),
        downloads,
    })
}

/// Settles `ticket` with `sent` bytes in the background: called where a download ends,
/// which may be a `Drop`, where nothing can be awaited.
fn settle_later(downloads: DownloadService, ticket: Ticket, sent: u64) {
    if sent >= ticket.reserved && !downloads.announces_completions() {
        return; // charged in full when it began; nothing to give back or announce
    }
    let settle = async move {
        let now = backend::clock::now();
        if sent >= ticket.reserved {
            // Charged in full when it began: nothing to give back, and it is complete.
            if let Err(e) = downloads.announce_completed(&ticket, now).await {
                tracing::error!(error = %e, "could not queue download.completed");
            }
        } else if let Err(e) = downloads.finish(&ticket, sent).await {
            tracing::error!(error = %e, "could not settle a download");
        }
    };
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(settle);
    } else {
        // Only at process exit; the reservation then stays spent (the seller's side).
        tracing::warn!("a download ended after shutdown; its reservation stays spent");
    }
}

/// A 302 to a presigned URL of the store.
fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-store"),
                ),
            ],
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a presigned URL is not a valid header value");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The download could not start. Please try again.",
            )
        }
    }
}

/// The answer when no bytes are sent.
fn refusal_response(refusal: Refusal) -> Response {
    match refusal {
        Refusal::NotFound => not_found(),
        Refusal::Denied(denied) => plain(StatusCode::FORBIDDEN, &denied.explain()),
        Refusal::RangeNotSatisfiable { len } => {
            let mut r = plain(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "The requested range is outside the file.",
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        Refusal::Unreadable(e) => {
            tracing::error!(error = %e, "file missing from storage");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The file could not be read. The seller has been told.",
            )
        }
        Refusal::Service(e) => {
            tracing::error!(error = %e, "download failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The download could not start. Please try again.",
            )
        }
    }
}

/// Headers of a file response: type, length, strong ETag, ranges, no caching, real name.
fn file_headers(download: &Download) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    let range = &download.range;
    set(header::CONTENT_TYPE, download.content_type.clone());
    set(
        header::CONTENT_LENGTH,
        (range.end - range.start).to_string(),
    );
    set(header::ETAG, download.etag.clone());
    set(header::ACCEPT_RANGES, "bytes".to_owned());
    set(header::CACHE_CONTROL, "private, no-store".to_owned());
    set(
        header::CONTENT_DISPOSITION,
        content_disposition(&download.name),
    );
    if download.partial {
        set(
            header::CONTENT_RANGE,
            format!(
                "bytes {}-{}/{}",
                range.start,
                range.end.saturating_sub(1),
                download.size
            ),
        );
    }
    headers
}

fn not_found() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "This download link is not valid. Check that you copied the whole link from your email.",
    )
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text.to_owned(),
    )
        .into_response()
}

/// The response body: counts bytes handed to the connection and settles the ticket when
/// dropped, whether the download completed or the client went away.
struct Metered {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, BlobError>> + Send>>,
    sent: u64,
    ticket: Option<Ticket>,
    downloads: DownloadService,
}

impl Stream for Metered {
    type Item = Result<Bytes, BlobError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.sent += chunk.len() as u64;
        }
        polled
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            settle_later(self.downloads.clone(), ticket, self.sent);
        }
    }
}

//! `GET|HEAD /d/{password}/{file_id}`: the bytes of a product file.
//!
//! The service decides and reserves; this handler sends the bytes and settles the
//! reservation with what was sent when the body ends or the client goes away. Files on
//! local disk go out with `sendfile` (the kernel counts what it took); other stores stream
//! with constant memory, counted as they are handed to the connection.

use super::HttpState;
use super::sendfile::{FileJob, SendfileSlot, mark_body};
use app::server::ClientIp;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use backend::blobs::BlobError;
use backend::services::{Client, DownloadService, RangeRequest, Refusal, Ticket};
use bytes::Bytes;
use domain::FileId;
use domain::range::RangeAnswer;
use futures::{Stream, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use std::fmt::Write as _;
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
    let client = Client {
        ip,
        country: state.geo.country(ip),
        user_agent: header_text(header::USER_AGENT).unwrap_or_default(),
    };
    let ranges = RangeRequest {
        range: header_text(header::RANGE),
        if_range: header_text(header::IF_RANGE),
    };
    let ticket = match state
        .downloads
        .begin(&password, file, ranges, client, backend::clock::now())
        .await
    {
        Ok(ticket) => ticket,
        Err(refusal) => return refusal_response(refusal),
    };

    let (status, range, content_range) = match &ticket.answer {
        RangeAnswer::Partial(parts) if parts.len() == 1 => {
            let r = parts[0].clone();
            (
                StatusCode::PARTIAL_CONTENT,
                *r.start()..*r.end() + 1,
                Some(format!("bytes {}-{}/{}", r.start(), r.end(), ticket.size)),
            )
        }
        _ => (StatusCode::OK, 0..ticket.size, None),
    };
    let length = range.end - range.start;
    let response_headers = file_headers(&ticket, length, content_range);
    if method == Method::HEAD || length == 0 {
        let _ = state.downloads.finish(&ticket, 0).await;
        return (status, response_headers).into_response();
    }
    if state.blobs.presigns() {
        return redirect_to_store(&state, ticket, length).await;
    }
    let body = match (
        state
            .blobs
            .small_local(&ticket.storage_key, ticket.size)
            .await,
        sendfile,
    ) {
        (Ok(Some(bytes)), _) => Ok(small_file_body(&state, ticket, &bytes, range)),
        (Err(e), _) => {
            settle_later(state.downloads.clone(), ticket, 0);
            Err(e)
        }
        (Ok(None), Some(axum::Extension(slot))) => {
            send_local_file(&state, &slot, ticket, range).await
        }
        (Ok(None), None) => stream_file(&state, ticket, range).await,
    };
    match body {
        Ok(body) => (status, response_headers, body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "file missing from storage");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The file could not be read. The seller has been told.",
            )
        }
    }
}

/// A body sent by the connection with `sendfile`, for stores on local disk; other stores
/// stream. The connection settles the ticket with the bytes the kernel accepted.
async fn send_local_file(
    state: &HttpState,
    slot: &SendfileSlot,
    ticket: Ticket,
    range: std::ops::Range<u64>,
) -> Result<Body, BlobError> {
    let file = match state.blobs.open_local(&ticket.storage_key, &range).await {
        Ok(Some(file)) => file,
        Ok(None) => return stream_file(state, ticket, range).await,
        Err(e) => {
            settle_later(state.downloads.clone(), ticket, 0);
            return Err(e);
        }
    };
    let length = range.end - range.start;
    let downloads = state.downloads.clone();
    slot.arm(FileJob::new(
        file,
        range.start,
        length,
        Box::new(move |sent| settle_later(downloads, ticket, sent)),
    ));
    Ok(Body::from_stream(mark_body(length)))
}

/// A small file's range from memory, counted like a stream when handed to the connection.
fn small_file_body(
    state: &HttpState,
    ticket: Ticket,
    bytes: &Bytes,
    range: std::ops::Range<u64>,
) -> Body {
    // The range was checked against the recorded size, which the cached bytes match.
    let part = bytes.slice(usize_of(range.start)..usize_of(range.end));
    Body::from_stream(Metered {
        inner: Box::pin(futures::stream::once(async move { Ok(part) })),
        sent: 0,
        ticket: Some(ticket),
        downloads: state.downloads.clone(),
    })
}

/// A small file's offset (at most 64 KiB) as an index.
fn usize_of(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// A body streamed from the object store, counted as it is handed to the connection.
async fn stream_file(
    state: &HttpState,
    ticket: Ticket,
    range: std::ops::Range<u64>,
) -> Result<Body, BlobError> {
    match state.blobs.read(&ticket.storage_key, range).await {
        Ok(stream) => Ok(Body::from_stream(Metered {
            inner: Box::pin(stream),
            sent: 0,
            ticket: Some(ticket),
            downloads: state.downloads.clone(),
        })),
        Err(e) => {
            settle_later(state.downloads.clone(), ticket, 0);
            Err(e)
        }
    }
}

/// Settles `ticket` with `sent` bytes in the background: called where a download ends,
/// which may be a `Drop`, where nothing can be awaited.
fn settle_later(downloads: DownloadService, ticket: Ticket, sent: u64) {
    if sent >= ticket.reserved {
        return; // charged in full when it began; nothing to give back
    }
    let settle = async move {
        if let Err(e) = downloads.finish(&ticket, sent).await {
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

/// S3: a 302 to a short-lived presigned URL. The bytes do not pass through us, so what the
/// request asked for is spent now (the buyer's browser sends the same Range to S3).
async fn redirect_to_store(state: &HttpState, ticket: Ticket, length: u64) -> Response {
    let signed = state
        .blobs
        .presigned_get(
            &ticket.storage_key,
            &content_disposition(&ticket.name),
            &ticket.content_type,
            state.presign_ttl,
        )
        .await;
    let location = match signed {
        Ok(Some(url)) => HeaderValue::from_str(&url).map_err(|e| e.to_string()),
        Ok(None) => Err("this store does not presign".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    let spent = if location.is_ok() { length } else { 0 };
    if let Err(e) = state.downloads.finish(&ticket, spent).await {
        tracing::error!(error = %e, "could not settle a download");
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The download could not start. Please try again.",
        );
    }
    match location {
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
            tracing::error!(error = %e, "could not presign a download URL");
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
fn file_headers(ticket: &Ticket, length: u64, content_range: Option<String>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, ticket.content_type.clone());
    set(header::CONTENT_LENGTH, length.to_string());
    set(header::ETAG, ticket.etag.clone());
    set(header::ACCEPT_RANGES, "bytes".to_owned());
    set(header::CACHE_CONTROL, "private, no-store".to_owned());
    set(
        header::CONTENT_DISPOSITION,
        content_disposition(&ticket.name),
    );
    if let Some(cr) = content_range {
        set(header::CONTENT_RANGE, cr);
    }
    headers
}

/// `attachment` with an ASCII fallback name and the real name in RFC 6266/5987 `filename*`.
fn content_disposition(name: &str) -> String {
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

#[cfg(test)]
mod tests {
    #[test]
    fn content_disposition_keeps_the_real_name_safely() {
        assert_eq!(
            super::content_disposition("book.pdf"),
            "attachment; filename=\"book.pdf\"; filename*=UTF-8''book.pdf"
        );
        assert_eq!(
            super::content_disposition("Rüst \"2e\".pdf"),
            "attachment; filename=\"R_st _2e_.pdf\"; filename*=UTF-8''R%C3%BCst%20%222e%22.pdf"
        );
        assert!(!super::content_disposition("a\r\nSet-Cookie: x").contains('\n'));
    }
}

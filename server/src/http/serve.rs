//! The accept loop. axum's `serve` has no header-read timeout, so a client that opens a
//! connection and sends nothing (or one byte a minute) could hold it forever. We serve each
//! connection with hyper's HTTP/1 builder, which has one when given a timer, and track
//! connections for graceful shutdown. HTTP/2 is left to the reverse proxy in front.
//! Each connection's I/O can send files with `sendfile` (see [`super::sendfile`]).
//!
//! Two more limits keep slow or many clients from holding the server:
//! - a request body must arrive within [`Limits::body_read`] (product uploads excepted:
//!   they are long by nature and stream to storage); a client that dribbles a form a byte at
//!   a time gets a 408 and its connection is closed;
//! - a response whose client takes no bytes for [`Limits::send`] (a download stalled at
//!   zero window) is cut off, and the download settles what was sent;
//! - at most [`Limits::max_connections`] connections are served at once; at the cap the
//!   server stops accepting until one closes, so new clients wait in the kernel's listen
//!   queue (and time out there if it stays full) while the open ones are served.

use super::sendfile::{ConnectionIo, SendfileSlot};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Body as _, Frame};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How long and how many clients may hold the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send its request headers.
    pub header_read: Duration,
    /// Time a client has to send a whole request body (uploads excepted).
    pub body_read: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a response may wait for a client that takes no bytes (see [`ConnectionIo`]).
    pub send: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true)
        // Queued body bytes are then handed to the I/O as they are, never copied into one
        // buffer: the sendfile marks must reach `ConnectionIo` at their own address.
        .writev(true)
        .max_buf_size(64 * 1024);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    let open = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&open).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning on the error.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let slot = SendfileSlot::default();
        let io = ConnectionIo::new(stream, slot.clone(), limits.send);
        let body_read = limits.body_read;
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let timed_out = BodyTimedOut::default();
            // No timer for a request without a body (most are downloads and pages) or for
            // an upload, which may take as long as the file needs.
            let mut request = if is_upload(&request) || request.body().is_end_stream() {
                request.map(Body::new)
            } else {
                let flag = timed_out.clone();
                request.map(|body| Body::new(Deadline::new(body, body_read, flag)))
            };
            request.extensions_mut().insert(timed_out);
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(slot.clone());
            router.clone().oneshot(request)
        });
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!(?grace, "grace period over; closing remaining connections"),
    }
}

/// A product file upload (`PUT /api/v1/products/{id}/files/{name}`): its body may take
/// as long as the file needs.
fn is_upload<B>(request: &http::Request<B>) -> bool {
    request.method() == http::Method::PUT
        && request
            .uri()
            .path()
            .strip_prefix("/api/v1/products/")
            .is_some_and(|rest| rest.contains("/files/"))
}

/// A request body that fails when it has not fully arrived by its deadline. The handler's
/// extractor then answers 408, and hyper closes a connection whose body was not read to
/// the end.
struct Deadline {
    inner: Incoming,
    timer: Pin<Box<tokio::time::Sleep>>,
    timed_out: BodyTimedOut,
}

impl Deadline {
    fn new(inner: Incoming, within: Duration, timed_out: BodyTimedOut) -> Self {
        Self {
            inner,
            timer: Box::pin(tokio::time::sleep(within)),
            timed_out,
        }
    }
}

/// Set when a request's body missed its deadline: the edge middleware then answers 408
/// whatever the handler made of the failed read (a request extension).
#[derive(Debug, Clone, Default)]
pub struct BodyTimedOut(Arc<std::sync::atomic::AtomicBool>);

impl BodyTimedOut {
    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The error of a body that came too slowly.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTooSlow;

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            self.timed_out
                .0
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTooSlow))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The TCP peer of a request, as inserted by [`serve`].
pub fn peer_of<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

//! Leptos pages render on threads of their own, each request wholly on one thread.
//!
//! Why: Leptos' reactive graph guards its nodes (effects, async-derived values, the
//! Suspense task set) with `RwLock`s, and when one render's resources resolve on one
//! runtime worker while its Suspense effect runs on another, two threads can take those
//! locks in opposite orders (leptos#4673; #4851 and #4853 fixed a related lost wake-up).
//! With two workers that wedges the whole process: both workers block in `futex`, nobody
//! polls the I/O driver, downloads and even SIGTERM go unanswered. We saw exactly that
//! once in an end-to-end run. A render confined to one thread cannot deadlock against
//! itself across threads, so every page request — the handler, the tasks Leptos spawns
//! for it (`tokio::spawn` lands on the current runtime) and the streaming of its body —
//! runs on one single-threaded runtime, and the body is handed to the connection through
//! a small channel. Plain routes (file downloads, the REST API) never come here.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures::StreamExt;
use futures::future::BoxFuture;
use http::StatusCode;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};
use tower::{Layer, Service, ServiceExt};

/// Work for a render thread: builds the (not necessarily `Send`) future to run there.
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Body chunks buffered between a render thread and the connection.
const CHUNKS_IN_FLIGHT: usize = 16;

/// The render threads; requests take turns. The threads end when this is dropped (with
/// the router that holds it).
#[derive(Debug)]
pub struct RenderThreads {
    senders: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl RenderThreads {
    /// Starts `count` threads, each with a single-threaded runtime and a `LocalSet`.
    pub fn start(count: usize) -> std::io::Result<Arc<Self>> {
        let mut senders = Vec::with_capacity(count);
        for n in 0..count.max(1) {
            let (sender, mut jobs) = mpsc::unbounded_channel::<Job>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                // Page data comes from the store through blocking threads; a few suffice.
                .max_blocking_threads(8)
                .build()?;
            std::thread::Builder::new()
                .name(format!("dropgate-render-{n}"))
                .spawn(move || {
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&runtime, async move {
                        while let Some(job) = jobs.recv().await {
                            tokio::task::spawn_local(job());
                        }
                    });
                })?;
            senders.push(sender);
        }
        Ok(Arc::new(Self {
            senders,
            next: AtomicUsize::new(0),
        }))
    }

    /// Runs `service` for `request` on one render thread; the response body streams back.
    async fn run<S>(&self, service: S, request: Request) -> Response
    where
        S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let Ok(response) = service.oneshot(request).await;
                let (parts, body) = response.into_parts();
                let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
                if answer.send((parts, received)).is_err() {
                    return; // the client is gone
                }
                let mut body = body.into_data_stream();
                while let Some(chunk) = body.next().await {
                    if chunks.send(chunk).await.is_err() {
                        break; // the client went away mid-page: stop rendering
                    }
                }
            })
        });
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        if self.senders[turn].send(job).is_err() {
            return unavailable();
        }
        match answered.await {
            Ok((parts, received)) => {
                Response::from_parts(parts, Body::from_stream(tokio_stream_of(received)))
            }
            Err(_) => unavailable(),
        }
    }
}

/// The receiving end as a body stream.
fn tokio_stream_of(
    mut received: mpsc::Receiver<Result<bytes::Bytes, axum::Error>>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, axum::Error>> {
    futures::stream::poll_fn(move |cx| received.poll_recv(cx))
}

/// A render thread is gone (only while shutting down).
fn unavailable() -> Response {
    let mut response = Response::new(Body::from("The server is shutting down."));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
}

/// Wraps each route of a router so that it is served on the render threads.
#[derive(Clone, Debug)]
pub struct OnRenderThreads(pub Arc<RenderThreads>);

impl<S> Layer<S> for OnRenderThreads {
    type Service = RenderedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RenderedService {
            inner,
            threads: Arc::clone(&self.0),
        }
    }
}

/// A route served on the render threads.
#[derive(Clone, Debug)]
pub struct RenderedService<S> {
    inner: S,
    threads: Arc<RenderThreads>,
}

impl<S> Service<Request> for RenderedService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is checked on the render thread by `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let inner = self.inner.clone();
        let threads = Arc::clone(&self.threads);
        Box::pin(async move { Ok(threads.run(inner, request).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    #[tokio::test]
    async fn a_route_runs_on_a_render_thread_and_its_body_streams_back() {
        let threads = RenderThreads::start(2).unwrap();
        let router: Router = Router::new()
            .route(
                "/where",
                get(|| async {
                    // Spawned work of a render stays on the render thread too.
                    let spawned = tokio::spawn(async {
                        std::thread::current().name().unwrap_or("").to_owned()
                    })
                    .await
                    .unwrap();
                    let here = std::thread::current().name().unwrap_or("").to_owned();
                    let chunks = futures::stream::iter(
                        [here, " ".to_owned(), spawned]
                            .map(|s| Ok::<_, Infallible>(bytes::Bytes::from(s))),
                    );
                    Body::from_stream(chunks)
                }),
            )
            .layer(OnRenderThreads(threads));
        for _ in 0..4 {
            let response = router
                .clone()
                .oneshot(Request::get("/where").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            let text = String::from_utf8(body.to_vec()).unwrap();
            let (handler, spawned) = text.split_once(' ').unwrap();
            assert!(handler.starts_with("dropgate-render-"), "{text}");
            assert_eq!(handler, spawned, "{text}");
        }
    }
}

//! Page requests run on render threads of their own, each request wholly on one thread:
//! its handler, every task Leptos spawns for it, and the streaming of its body. Plain
//! routes (file downloads, the REST API) never come here.
//!
//! Why (issue 15): Leptos 0.8's reactive graph guards its nodes with `RwLock`s and can take
//! two of them in opposite orders. A resource (an async-derived value) that re-runs holds
//! its own lock while it registers with its `Suspense` (`SuspenseContext::task_id`, which
//! notifies the Suspense's effect and so wants the effect's lock), while that effect holds
//! its lock as it unsubscribes from the resource (`clear_sources`, which wants the
//! resource's lock). Run on two runtime workers at once, that is a deadlock of both
//! workers: nobody polls the I/O driver, downloads and even SIGTERM go unanswered (gdb on
//! the wedged server: one worker in `ArcAsyncDerived::new_with_manual_dependencies` →
//! `task_id` → `mark_dirty`, the other in `Effect::new_isomorphic` → `clear_sources` →
//! `remove_subscriber`; leptos#4673, still in leptos 0.8.23 / reactive_graph 0.2.16, the
//! newest 0.8). Our trigger was a page reading one resource in two `Suspense`
//! boundaries (the mail-texts page, fixed in `app`), which made its Suspense re-resolve
//! over and over; four clients reloading that page wedged the whole server in a second.
//!
//! Confined to one thread, such a lock-order inversion cannot deadlock: a Leptos bug of
//! this kind costs at most the one page it happens on, never the runtime that serves the
//! buyers. It also means a page's reactive owner is dropped on the thread that made it.
//!
//! A panic in a render costs that request a 500 (or, once its head is sent, a cut-off
//! body) and nothing else: it is caught, logged with the route, and the thread it ran on
//! is replaced by a fresh one, so no poisoned lock or stale reactive thread-local can
//! reach a later request; requests already running on the old thread finish there. A
//! render that has not finished after [`RENDER_DEADLINE`] is cut off and logged the same
//! way, so a page that never resolves is an error in the log, not a silent hang.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures::FutureExt;
use futures::StreamExt;
use futures::future::BoxFuture;
use http::StatusCode;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tower::{Layer, Service, ServiceExt};

/// Work for a render thread: builds the (not necessarily `Send`) future to run there.
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Body chunks buffered between a render thread and the connection.
const CHUNKS_IN_FLIGHT: usize = 16;

/// How long a page may take, from the request to its last byte. Pages render in
/// milliseconds and are a few dozen KiB; this only ends renders that never would.
pub const RENDER_DEADLINE: Duration = Duration::from_secs(60);

/// How long a page may go without its head (status and headers) before it is rendered
/// again on another thread. Pages produce their head in milliseconds.
pub const HEAD_PATIENCE: Duration = Duration::from_secs(10);

/// Blocking threads per render thread: page data comes from the store through them.
const BLOCKING_THREADS: usize = 8;

/// The render threads; requests take turns. The threads end when this is dropped (with
/// the router that holds it), after finishing the requests they are serving.
#[derive(Debug)]
pub struct RenderThreads {
    slots: Vec<Mutex<RenderThread>>,
    next: AtomicUsize,
    /// Threads started so far, for their names (`dropgate-render-N`).
    started: AtomicUsize,
    /// How long a render may take ([`RENDER_DEADLINE`] outside tests).
    deadline: Duration,
    /// How long a GET or HEAD render may go without a head before it is rendered again.
    head_patience: Duration,
}

/// One render thread: where its jobs go, and its runtime (for the watchdog's probes).
#[derive(Debug)]
struct RenderThread {
    jobs: mpsc::UnboundedSender<Job>,
    runtime: Handle,
    /// Which thread this is; a slot whose thread was replaced holds a new number.
    number: usize,
}

impl RenderThreads {
    /// Starts `count` threads, each with a single-threaded runtime and a `LocalSet`; a
    /// render that takes longer than `deadline` is cut off.
    pub fn start(count: usize, deadline: Duration) -> std::io::Result<Arc<Self>> {
        Self::start_with(count, deadline, HEAD_PATIENCE)
    }

    /// [`start`](Self::start) with the patience for a page's head given (tests).
    pub fn start_with(
        count: usize,
        deadline: Duration,
        head_patience: Duration,
    ) -> std::io::Result<Arc<Self>> {
        let started = AtomicUsize::new(0);
        let slots = (0..count.max(1))
            .map(|_| start_thread(started.fetch_add(1, Ordering::Relaxed)).map(Mutex::new))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Arc::new(Self {
            slots,
            next: AtomicUsize::new(0),
            started,
            deadline,
            head_patience,
        }))
    }

    /// The runtimes of the current render threads, for the watchdog to probe.
    pub fn runtimes(&self) -> Vec<Handle> {
        self.slots
            .iter()
            .map(|slot| lock(slot).runtime.clone())
            .collect()
    }

    /// Runs `service` for `request` on a render thread; the response body streams back.
    ///
    /// A page that has not produced its head after `head_patience` is rendered again,
    /// once, on the next thread, and the stalled render is dropped. Why: on a loaded test
    /// machine, about one run in several, a `/resend` render (a resource that resolves at
    /// once, `SsrMode::Async`) never produced its head, and nothing in our code waits
    /// there: we have not found the cause inside Leptos' Suspense. Only GET and HEAD are
    /// rendered again (they change nothing), and it is logged, so it stays visible.
    async fn run<S>(self: Arc<Self>, service: S, request: Request) -> Response
    where
        S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    {
        let route = format!("{} {}", request.method(), request.uri().path());
        let again = matches!(*request.method(), http::Method::GET | http::Method::HEAD)
            .then(|| copy_of(&request));
        let started = tokio::time::Instant::now();
        let Some(first) = self.dispatch(service.clone(), request, route.clone()) else {
            return shutting_down();
        };
        let (mut answered, finished) = first;
        let (head, finished) = if let Some(copy) = again {
            if let Ok(head) = tokio::time::timeout(self.head_patience, &mut answered).await {
                (head.ok(), finished)
            } else {
                tracing::warn!(
                    %route,
                    waited = ?self.head_patience,
                    "a page render stalled before its head; rendering it again on another thread"
                );
                // Dropping `answered` stops the stalled render (it watches for that).
                drop(answered);
                let Some((answered, finished)) = self.dispatch(service, copy, route) else {
                    return shutting_down();
                };
                let left = self.deadline.saturating_sub(started.elapsed());
                let head = tokio::time::timeout(left, answered).await;
                (head.ok().and_then(Result::ok), finished)
            }
        } else {
            (answered.await.ok(), finished)
        };
        match head {
            Some((parts, received)) => {
                Response::from_parts(parts, Body::from_stream(stream_of(received, finished)))
            }
            // The render panicked before its head (logged), ran out of time, or its thread
            // is gone.
            None => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be shown because of an internal error. Try again; if it persists, the server's log says why.",
            ),
        }
    }

    /// Starts `request` on the next render thread; `None` once the threads have stopped.
    fn dispatch<S>(
        self: &Arc<Self>,
        service: S,
        request: Request,
        route: String,
    ) -> Option<(oneshot::Receiver<Head>, oneshot::Receiver<()>)>
    where
        S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let (answer, answered) = oneshot::channel();
        let (finished, finished_here) = oneshot::channel::<()>();
        let threads = Arc::clone(self);
        let job: Job = Box::new(move || {
            let number = lock(&threads.slots[slot]).number;
            Box::pin(async move {
                let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
                // Keeps the body open until the outcome is known (see `stream_of`).
                let _open = chunks.clone();
                let render = render(service, request, answer, chunks, received);
                let outcome =
                    tokio::time::timeout(threads.deadline, AssertUnwindSafe(render).catch_unwind())
                        .await;
                match outcome {
                    Ok(Ok(())) => {
                        let _ = finished.send(());
                    }
                    Ok(Err(panic)) => {
                        tracing::error!(
                            %route,
                            panic = panic_message(panic.as_ref()),
                            "a page render panicked: this request failed, its render thread is replaced"
                        );
                        threads.replace(slot, number);
                    }
                    Err(_) => {
                        tracing::error!(
                            %route,
                            deadline = ?threads.deadline,
                            "a page render did not finish in time and was cut off"
                        );
                    }
                }
            })
        });
        lock(&self.slots[slot]).jobs.send(job).ok()?;
        Some((answered, finished_here))
    }

    /// Replaces the thread in `slot` if it is still thread `number`: new requests go to a
    /// fresh thread, and the old one ends once its running requests are done.
    fn replace(&self, slot: usize, number: usize) {
        let mut current = lock(&self.slots[slot]);
        if current.number != number {
            return; // already replaced
        }
        match start_thread(self.started.fetch_add(1, Ordering::Relaxed)) {
            Ok(fresh) => *current = fresh,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a new render thread; the old one stays");
            }
        }
    }
}

/// The render of one request: the handler, then its body, chunk by chunk, to the
/// connection. Runs on a render thread.
async fn render<S>(
    service: S,
    request: Request,
    answer: oneshot::Sender<Head>,
    chunks: mpsc::Sender<Chunk>,
    received: mpsc::Receiver<Chunk>,
) where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let mut answer = answer;
    let response = tokio::select! {
        Ok(response) = service.oneshot(request) => response,
        // Nobody waits for this page any more (it was rendered again elsewhere).
        () = answer.closed() => return,
    };
    let (parts, body) = response.into_parts();
    if answer.send((parts, received)).is_err() {
        return; // the client is gone
    }
    let mut body = body.into_data_stream();
    while let Some(chunk) = body.next().await {
        if chunks.send(chunk).await.is_err() {
            break; // the client went away mid-page: stop rendering
        }
    }
}

/// A piece of a response body, or the error that cuts it off.
type Chunk = Result<bytes::Bytes, axum::Error>;

/// The response head and the receiving end of its body.
type Head = (http::response::Parts, mpsc::Receiver<Chunk>);

/// Starts render thread number `number`.
fn start_thread(number: usize) -> std::io::Result<RenderThread> {
    let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("dropgate-render-{number}"))
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                while let Some(job) = queue.recv().await {
                    tokio::task::spawn_local(job());
                }
            });
            // The queue is closed (shutdown, or this thread was replaced): finish the
            // requests still running here, then end.
            runtime.block_on(local);
        })?;
    Ok(RenderThread {
        jobs,
        runtime: handle,
        number,
    })
}

/// A copy of a body-less request (GET, HEAD), to render it again.
fn copy_of(request: &Request) -> Request {
    let mut copy = Request::new(Body::empty());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}

/// The answer while the render threads are stopping.
fn shutting_down() -> Response {
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "The server is shutting down.",
    )
}

/// A render thread's slot. Nothing panics while holding it; should that ever change, the
/// slot's contents are still whole, so a poisoned lock is used as it is.
fn lock(slot: &Mutex<RenderThread>) -> std::sync::MutexGuard<'_, RenderThread> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a panic said, for the log.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The receiving end as a body stream. It ends cleanly only if the render finished; a body
/// whose render panicked or was cut off ends in an error, so that the connection is
/// aborted and the client sees a cut-off page, not a complete-looking short one.
fn stream_of(
    mut received: mpsc::Receiver<Chunk>,
    mut finished: oneshot::Receiver<()>,
) -> impl futures::Stream<Item = Chunk> {
    let mut ended = false;
    futures::stream::poll_fn(move |cx| {
        if ended {
            return Poll::Ready(None);
        }
        match received.poll_recv(cx) {
            Poll::Ready(None) => {
                ended = true;
                // Every sender is gone, and the render job sends `finished` before it
                // drops its last one: an empty slot now means it did not finish.
                if finished.try_recv().is_ok() {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(axum::Error::new("the page render failed"))))
                }
            }
            other => other,
        }
    })
}

/// A short plain-text answer.
fn plain(status: StatusCode, message: &'static str) -> Response {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
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

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or("").to_owned()
    }

    /// Sends `method path` without a body through the router.
    async fn send(router: &Router, method: http::Method, path: &str) -> Response {
        let request = Request::builder().method(method).uri(path);
        router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn get_text(router: &Router, path: &str) -> (StatusCode, String) {
        let response = send(router, http::Method::GET, path).await;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_route_runs_on_a_render_thread_and_its_body_streams_back() {
        let threads = RenderThreads::start(2, RENDER_DEADLINE).unwrap();
        let router: Router = Router::new()
            .route(
                "/where",
                get(|| async {
                    // Spawned work of a render stays on the render thread too.
                    let spawned = tokio::spawn(async { thread_name() }).await.unwrap();
                    let here = thread_name();
                    // The body is produced on the render thread as well.
                    let chunks = futures::stream::iter([here, spawned])
                        .then(|s| async move { format!("{s} {}|", thread_name()) })
                        .map(|s| Ok::<_, Infallible>(bytes::Bytes::from(s)));
                    Body::from_stream(chunks)
                }),
            )
            .layer(OnRenderThreads(threads));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4 {
            let (status, text) = get_text(&router, "/where").await;
            assert_eq!(status, StatusCode::OK);
            let names: Vec<&str> = text.split(['|', ' ']).filter(|s| !s.is_empty()).collect();
            assert_eq!(names.len(), 4, "{text}");
            assert!(names[0].starts_with("dropgate-render-"), "{text}");
            assert!(names.iter().all(|n| *n == names[0]), "{text}");
            seen.insert(names[0].to_owned());
        }
        assert_eq!(seen.len(), 2, "requests take turns: {seen:?}");
    }

    /// Asks `/where` until `thread` answers (within 2 s); every answer must be a 200.
    async fn served_by(router: &Router, thread: &str) {
        let started = tokio::time::Instant::now();
        loop {
            let (status, name) = get_text(router, "/where").await;
            assert_eq!(status, StatusCode::OK);
            if name == thread {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "still {name}, not {thread}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_panicking_render_is_a_500_and_its_thread_is_replaced() {
        let threads = RenderThreads::start(1, RENDER_DEADLINE).unwrap();
        let router: Router = Router::new()
            .route("/where", get(|| async { thread_name() }))
            .route(
                "/panic",
                get(|| async {
                    assert!(!thread_name().starts_with("dropgate-render-"), "on purpose");
                    "not on a render thread"
                }),
            )
            .route(
                "/panic-mid-body",
                get(|| async {
                    let chunks = futures::stream::iter(0..3).map(|n| {
                        assert!(n < 2, "on purpose, mid-body");
                        Ok::<_, Infallible>(bytes::Bytes::from("chunk "))
                    });
                    Body::from_stream(chunks)
                }),
            )
            .layer(OnRenderThreads(Arc::clone(&threads)));
        assert_eq!(
            get_text(&router, "/where").await,
            (StatusCode::OK, "dropgate-render-0".to_owned())
        );
        let (status, text) = get_text(&router, "/panic").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(text.contains("internal error"), "{text}");
        // Requests go on being served, and soon by a fresh thread (the client may hear of
        // the failure a moment before the old thread is swapped out).
        served_by(&router, "dropgate-render-1").await;
        // A panic after the head: the body is cut off (an error), the server goes on.
        let response = send(&router, http::Method::GET, "/panic-mid-body").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .is_err(),
            "a body cut off by a panic ends in an error"
        );
        served_by(&router, "dropgate-render-2").await;
        assert_eq!(threads.runtimes().len(), 1);
    }

    #[tokio::test]
    async fn a_render_that_never_finishes_is_cut_off() {
        let threads = RenderThreads::start(1, Duration::from_millis(300)).unwrap();
        let router: Router = Router::new()
            .route(
                "/never",
                get(|| async {
                    let chunks = futures::stream::iter(0..2).then(|n| async move {
                        if n == 1 {
                            std::future::pending::<()>().await;
                        }
                        Ok::<_, Infallible>(bytes::Bytes::from("head "))
                    });
                    Body::from_stream(chunks)
                }),
            )
            .route("/where", get(|| async { thread_name() }))
            .layer(OnRenderThreads(threads));
        let response = send(&router, http::Method::GET, "/never").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = tokio::time::timeout(
            Duration::from_secs(5),
            axum::body::to_bytes(response.into_body(), 1 << 16),
        )
        .await
        .expect("cut off at the deadline, not left hanging");
        assert!(body.is_err(), "a cut-off body ends in an error");
        // The thread serves the next page as before.
        assert_eq!(
            get_text(&router, "/where").await,
            (StatusCode::OK, "dropgate-render-0".to_owned())
        );
    }

    #[tokio::test]
    async fn a_page_that_stalls_before_its_head_is_rendered_again_once() {
        use std::sync::atomic::AtomicBool;
        /// Sets its flag when the stalled render is dropped.
        struct OnDrop(Arc<AtomicBool>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let threads =
            RenderThreads::start_with(2, Duration::from_secs(5), Duration::from_millis(500))
                .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let stalled_render_dropped = Arc::new(AtomicBool::new(false));
        let handler = {
            let (calls, dropped) = (Arc::clone(&calls), Arc::clone(&stalled_render_dropped));
            move || {
                let (calls, dropped) = (Arc::clone(&calls), Arc::clone(&dropped));
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        let _guard = OnDrop(dropped);
                        std::future::pending::<()>().await;
                    }
                    "rendered"
                }
            }
        };
        let router: Router = Router::new()
            .route("/page", get(handler.clone()).post(handler))
            .layer(OnRenderThreads(threads));
        assert_eq!(
            get_text(&router, "/page").await,
            (StatusCode::OK, "rendered".to_owned())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // The stalled render is stopped, not left to its deadline.
        let waiting = tokio::time::Instant::now();
        while !stalled_render_dropped.load(Ordering::SeqCst) {
            assert!(
                waiting.elapsed() < Duration::from_secs(2),
                "the stalled render runs on"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // A POST is never sent twice: it waits for its deadline and fails.
        calls.store(0, Ordering::SeqCst);
        let response = send(&router, http::Method::POST, "/page").await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

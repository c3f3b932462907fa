//! Zero-copy file bodies: the kernel moves a local file's bytes straight to the socket
//! (`sendfile`), as nginx does, instead of each byte being read into a buffer and written
//! back out. That halved the CPU cost of a large download and removed its buffers.
//!
//! hyper owns the HTTP/1 framing and has no notion of sendfile, so the two meet through
//! the connection's I/O object, [`ConnectionIo`]:
//!
//! 1. the download handler opens the file and arms the connection's [`SendfileSlot`] with
//!    a [`FileJob`] (file, offset, length, and what to do when it ends);
//! 2. the response body is made of *marks*: slices of one static region, [`mark_body`],
//!    as long in total as the file range. hyper frames and queues them like any bytes
//!    (HTTP/1 with vectored writes never copies queued body bytes);
//! 3. when hyper writes a slice that lies inside the mark region, `ConnectionIo` sends that
//!    many bytes of the armed file instead. Anything else is written as it is.
//!
//! A mark written with no file armed is an error that closes the connection: a buyer never
//! receives the mark's bytes in place of the file. The job counts what the kernel accepted
//! and settles the download with it when it ends, completed or cut off.

use bytes::Bytes;
use futures::Stream;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Size of one mark slice, so also the most bytes one `sendfile` call is asked for.
const MARK_LEN: usize = 1 << 20;

/// The mark region. Only its address matters; its bytes are never sent.
static MARK: [u8; MARK_LEN] = [0; MARK_LEN];

/// Whether `slice` lies inside the mark region.
fn is_mark(slice: &[u8]) -> bool {
    let region = MARK.as_ptr_range();
    let inside = slice.as_ptr_range();
    !slice.is_empty() && region.start <= inside.start && inside.end <= region.end
}

/// A response body of `len` bytes of marks, in slices of at most [`MARK_LEN`].
pub fn mark_body(len: u64) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    futures::stream::unfold(len, |left| async move {
        if left == 0 {
            return None;
        }
        let take = usize::try_from(left).map_or(MARK_LEN, |l| l.min(MARK_LEN));
        Some((Ok(Bytes::from_static(&MARK[..take])), left - take as u64))
    })
}

/// What happens when a file job ends: called once with the bytes the kernel accepted.
pub type OnEnd = Box<dyn FnOnce(u64) + Send>;

/// One file range being sent on a connection.
pub struct FileJob {
    file: std::fs::File,
    offset: u64,
    remaining: u64,
    sent: u64,
    on_end: Option<OnEnd>,
}

impl FileJob {
    /// `len` bytes of `file` from `offset`; `on_end` gets the bytes sent when the job ends.
    pub fn new(file: std::fs::File, offset: u64, len: u64, on_end: OnEnd) -> Self {
        Self {
            file,
            offset,
            remaining: len,
            sent: 0,
            on_end: Some(on_end),
        }
    }
}

impl Drop for FileJob {
    fn drop(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end(self.sent);
        }
    }
}

impl std::fmt::Debug for FileJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileJob")
            .field("offset", &self.offset)
            .field("remaining", &self.remaining)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

/// The file a connection is sending, shared by the connection's I/O and its requests (as a
/// request extension). HTTP/1 answers one request at a time, so at most one job is armed.
#[derive(Clone, Debug, Default)]
pub struct SendfileSlot(Arc<Mutex<Option<FileJob>>>);

impl SendfileSlot {
    /// Arms the slot. A job still armed (a body dropped before it was sent) ends now and
    /// settles what it sent.
    pub fn arm(&self, job: FileJob) {
        let previous = self.lock().replace(job);
        drop(previous);
    }

    fn lock(&self) -> MutexGuard<'_, Option<FileJob>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A client connection as hyper sees it: a TCP stream whose mark writes become `sendfile`.
///
/// While a file goes out the socket is corked (TCP_CORK, what nginx's `tcp_nopush` does):
/// the kernel sends only full segments. With TCP_NODELAY alone a single 1 GiB download
/// filled the socket buffer with small segments, hit `EAGAIN` every 2 MiB and spent a
/// fifth of its time waiting for room (≈1750 → ≈2100 MiB/s here). The cork comes off when
/// the file range is done, and before any other bytes are written (a body dropped half
/// way), so a response that follows never waits for the kernel's 200 ms cork timer.
///
/// It also ends a connection whose client stopped taking bytes: a write that makes no
/// progress for `send_timeout` (a reader at zero window, or one that went away without a
/// FIN) fails with `TimedOut`, so hyper closes the connection and the download settles
/// what was sent. A slow client that keeps taking bytes is never cut.
#[derive(Debug)]
pub struct ConnectionIo {
    stream: TcpStream,
    slot: SendfileSlot,
    corked: bool,
    send_timeout: Duration,
    /// Started when a write finds the socket full; made once per connection, then reset.
    stall: Option<Pin<Box<Sleep>>>,
    /// Whether `stall` runs for the current wait.
    stalled: bool,
}

impl ConnectionIo {
    pub fn new(stream: TcpStream, slot: SendfileSlot, send_timeout: Duration) -> Self {
        Self {
            stream,
            slot,
            corked: false,
            send_timeout,
            stall: None,
            stalled: false,
        }
    }

    /// Passes on a write's result, timing how long writes stay blocked: progress (or an
    /// error) ends a wait; a wait longer than `send_timeout` becomes a `TimedOut` error.
    fn watch(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if polled.is_ready() {
            self.stalled = false;
            return polled;
        }
        let send_timeout = self.send_timeout;
        let timer = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(send_timeout)));
        if !self.stalled {
            // The first blocked write of a wait starts the clock.
            timer
                .as_mut()
                .reset(tokio::time::Instant::now() + send_timeout);
            self.stalled = true;
        }
        if timer.as_mut().poll(cx).is_ready() {
            self.stalled = false;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no bytes for the send timeout",
            )));
        }
        Poll::Pending
    }

    /// Corks or uncorks the socket. A failure only costs speed, so it is not an error.
    fn set_cork(&mut self, on: bool) {
        if self.corked != on {
            self.corked = on;
            let _ = rustix::net::sockopt::set_tcp_cork(&self.stream, on);
        }
    }

    /// Sends up to `max` bytes of the armed file.
    fn poll_sendfile(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<usize>> {
        self.set_cork(true);
        let mut slot = self.slot.lock();
        let Some(job) = slot.as_mut() else {
            return Poll::Ready(Err(io::Error::other(
                "a file body was written without its file",
            )));
        };
        let count = usize::try_from(job.remaining).map_or(max, |r| r.min(max));
        if count == 0 {
            return Poll::Ready(Err(io::Error::other(
                "a file body is longer than its file range",
            )));
        }
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            let mut offset = job.offset;
            let sent = self.stream.try_io(Interest::WRITABLE, || {
                // May block on a page-cache miss, like nginx without `aio threads`.
                rustix::fs::sendfile(&self.stream, &job.file, Some(&mut offset), count)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stored file is shorter than recorded",
                    )));
                }
                Ok(n) => {
                    job.offset = offset;
                    job.remaining -= n as u64;
                    job.sent += n as u64;
                    if job.remaining == 0 {
                        // Done: end the job now (it settles), not when the next one arms.
                        let done = slot.take();
                        drop(slot);
                        drop(done);
                        // Uncorking sends the last partial segment at once.
                        self.set_cork(false);
                    }
                    return Poll::Ready(Ok(n));
                }
                // Readiness was stale; `try_io` cleared it, so wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for ConnectionIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnectionIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = if is_mark(buf) {
            this.poll_sendfile(cx, buf.len())
        } else {
            this.set_cork(false);
            Pin::new(&mut this.stream).poll_write(cx, buf)
        };
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let bufs = match bufs.iter().position(|b| !b.is_empty()) {
            Some(first) => &bufs[first..],
            None => return Poll::Ready(Ok(0)),
        };
        let polled = if is_mark(&bufs[0]) {
            this.poll_sendfile(cx, bufs[0].len())
        } else {
            this.set_cork(false);
            // Plain bytes up to the first mark go out in one writev.
            let plain = bufs.iter().position(|b| is_mark(b)).unwrap_or(bufs.len());
            Pin::new(&mut this.stream).poll_write_vectored(cx, &bufs[..plain])
        };
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::io::Write as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    fn file_with(bytes: &[u8]) -> std::fs::File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    #[tokio::test]
    async fn marks_become_the_file_range_and_plain_bytes_pass_through() {
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (mut client, server) = pair().await;
        let slot = SendfileSlot::default();
        let (ended_tx, ended_rx) = std::sync::mpsc::channel();
        let range = 1_000..2_600_000u64;
        slot.arm(FileJob::new(
            file_with(&content),
            range.start,
            range.end - range.start,
            Box::new(move |sent| ended_tx.send(sent).unwrap()),
        ));
        let mut io = ConnectionIo::new(server, slot, Duration::from_secs(60));
        let writer = tokio::spawn(async move {
            io.write_all(b"head;").await.unwrap();
            let mut body = Box::pin(mark_body(range.end - range.start));
            while let Some(chunk) = body.next().await {
                io.write_all(&chunk.unwrap()).await.unwrap();
            }
            io.write_all(b";tail").await.unwrap();
        });
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        writer.await.unwrap();
        let mut expected = b"head;".to_vec();
        expected.extend_from_slice(&content[1_000..2_600_000]);
        expected.extend_from_slice(b";tail");
        assert!(
            received == expected,
            "the bytes on the wire are the file range"
        );
        assert_eq!(ended_rx.recv().unwrap(), range.end - range.start);
    }

    #[tokio::test]
    async fn a_mark_without_a_file_is_an_error_never_the_mark_bytes() {
        let (mut client, server) = pair().await;
        let mut io = ConnectionIo::new(server, SendfileSlot::default(), Duration::from_secs(60));
        let error = io.write_all(&MARK[..10]).await.unwrap_err();
        assert!(error.to_string().contains("without its file"), "{error}");
        drop(io);
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        assert!(received.is_empty());
    }

    #[tokio::test]
    async fn a_cut_connection_settles_what_was_sent() {
        let content = vec![7u8; 8 << 20];
        let (client, server) = pair().await;
        let slot = SendfileSlot::default();
        let (ended_tx, ended_rx) = std::sync::mpsc::channel();
        slot.arm(FileJob::new(
            file_with(&content),
            0,
            content.len() as u64,
            Box::new(move |sent| ended_tx.send(sent).unwrap()),
        ));
        drop(client);
        let mut io = ConnectionIo::new(server, slot, Duration::from_secs(60));
        let mut body = Box::pin(mark_body(content.len() as u64));
        let mut failed = false;
        while let Some(chunk) = body.next().await {
            if io.write_all(&chunk.unwrap()).await.is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "writing to a closed peer fails");
        drop(io);
        let sent = ended_rx.recv().unwrap();
        assert!(sent < content.len() as u64, "sent {sent}");
    }

    #[tokio::test]
    async fn the_socket_is_corked_only_while_a_file_goes_out() {
        let content = vec![3u8; 300_000];
        let (mut client, server) = pair().await;
        let slot = SendfileSlot::default();
        let mut io = ConnectionIo::new(server, slot.clone(), Duration::from_secs(60));
        let corked = |io: &ConnectionIo| rustix::net::sockopt::tcp_cork(&io.stream).unwrap();
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            client.read_to_end(&mut received).await.unwrap();
            received
        });

        // A whole file range: corked while it goes out, uncorked when it is done.
        slot.arm(FileJob::new(
            file_with(&content),
            0,
            content.len() as u64,
            Box::new(|_| ()),
        ));
        io.write_all(b"head;").await.unwrap();
        assert!(!corked(&io), "headers go out uncorked");
        io.write_all(&MARK[..1000]).await.unwrap();
        assert!(corked(&io), "corked while the file is being sent");
        io.write_all(&MARK[..content.len() - 1000]).await.unwrap();
        assert!(!corked(&io), "uncorked once the range is sent");

        // A body dropped half way: the next plain bytes uncork first.
        slot.arm(FileJob::new(
            file_with(&content),
            0,
            content.len() as u64,
            Box::new(|_| ()),
        ));
        io.write_all(&MARK[..500]).await.unwrap();
        assert!(corked(&io));
        slot.arm(FileJob::new(file_with(b""), 0, 0, Box::new(|_| ())));
        io.write_all(b";next").await.unwrap();
        assert!(
            !corked(&io),
            "a response after an abandoned file is not held back"
        );
        drop(io);

        let received = reader.await.unwrap();
        assert_eq!(received.len(), 5 + content.len() + 500 + 5);
        assert!(received.ends_with(b";next"));
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_off_after_the_send_timeout() {
        let content = vec![5u8; 32 << 20];
        let (client, server) = pair().await;
        let slot = SendfileSlot::default();
        let (ended_tx, ended_rx) = std::sync::mpsc::channel();
        slot.arm(FileJob::new(
            file_with(&content),
            0,
            content.len() as u64,
            Box::new(move |sent| ended_tx.send(sent).unwrap()),
        ));
        let mut io = ConnectionIo::new(server, slot, Duration::from_millis(300));
        let started = std::time::Instant::now();
        let mut body = Box::pin(mark_body(content.len() as u64));
        let mut error = None;
        while let Some(chunk) = body.next().await {
            if let Err(e) = io.write_all(&chunk.unwrap()).await {
                error = Some(e);
                break;
            }
        }
        let error = error.expect("a write to a client that reads nothing stalls and fails");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(io);
        let sent = ended_rx.recv().unwrap();
        assert!(
            sent < content.len() as u64,
            "only what the socket took: {sent}"
        );
        drop(client);
    }
}

//! One request: reading its head, its body, writing its response, and
//! ending the connection, as its [`Connection`] decides.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use scgi_net::Addr;
use scgi_proto::server::{
    Config, Connection, Describe, Drain, Ending, HeadStep, Outcome, Reply, Then,
};
use scgi_proto::{EncodeError, Framing, Head, Headers, NO_CONTENT, ResponseHead};

use crate::rt::{self, Runtime, Socket, Timer};
use crate::shared::Slot;

/// The connection's read buffer to start with: a typical head (nginx and
/// Apache send 0.4-1 KiB) and a small body arrive in one read.
const READ_BUF: usize = 4 * 1024;

/// Room made for each read of [`Request::chunk`].
const CHUNK_READ: usize = 16 * 1024;

/// Reads while draining a peer that still sends after the response.
const DRAIN_READ: usize = 16 * 1024;

/// Response bytes are gathered in a buffer of this size, inline in the
/// request (no allocation), so that a head and a short body leave in one
/// write and a failure before the first write can still become a clean 500.
/// A write that does not fit goes out with what is buffered in one
/// vectored write, so a head and a page of any size still leave together.
/// Small, because the request is moved into the handler's future (and an
/// `async fn` keeps its argument twice). Error answers are encoded into it
/// ([`Answer::encode`](scgi_proto::server::Answer::encode) needs at most
/// 512 bytes).
const OUT_CAP: usize = 512;

/// What [`Request::respond`] reserves for the head it builds.
const HEAD_ROOM: usize = 256;

/// A request whose head is read and validated: its headers, its body and
/// its response.
///
/// - The body reads through the runtime's `AsyncRead` (tokio's or
///   `futures-io`'s, features `tokio` and `futures-io`), or zero-copy with
///   [`chunk`](Request::chunk). Reading yields exactly `CONTENT_LENGTH`
///   bytes, then end of input. A peer that closes early makes a read fail
///   with [`UnexpectedEof`](io::ErrorKind::UnexpectedEof); one that sends
///   nothing for [`body_timeout`](Config::body_timeout), with
///   [`TimedOut`](io::ErrorKind::TimedOut).
/// - The response writes through the runtime's `AsyncWrite`. Writes are
///   gathered in a 512-byte buffer inside the request and sent when it
///   fills (together with the write that overflows it, in one vectored
///   write), on flush, and when the request finishes. A write that waits
///   longer than [`write_timeout`](Config::write_timeout) for the peer
///   fails with [`TimedOut`](io::ErrorKind::TimedOut). Start with a head:
///   [`write_status_ok_text_content`](Request::write_status_ok_text_content)
///   or [`write_head`](Request::write_head). Shutting the writer down (or
///   closing it) only flushes: the server ends the connection itself.
/// - A flush hands the bytes to the web server, which may hold them: to
///   stream a response (server-sent events, progress), send
///   `X-Accel-Buffering: no` in its head for nginx, which buffers
///   responses otherwise, and set `server.stream-response-body = 1` in
///   lighttpd; Apache passes pieces on as they come (DEPLOYING.md,
///   "Streamed responses").
/// - [`read_body`](Request::read_body)`(limit)` reads a whole body into
///   memory, and answers `413` itself when it is larger than `limit`;
///   [`respond`](Request::respond) sends a whole response (status,
///   headers, body, `Content-Length`, no body for `HEAD`) in one call.
/// - [`headers`](Request::headers) borrow the request, and writing
///   borrows it mutably: copy what the response needs (`.to_owned()`,
///   `into_owned()`) before the first write.
/// - The request finishes when dropped (or with
///   [`finish`](Request::finish), to wait for it and see errors): see
///   [`Server::run_until`](crate::Server::run_until) for what the server
///   sends and how it closes. A request dropped by its handler goes back to
///   its connection's task; one dropped elsewhere finishes in a task of its
///   own.
pub struct Request<R: Runtime> {
    /// `None` once upgraded or finished.
    /// Boxed: the request moves from task to handler and back several
    /// times, and a boxed `Conn` (about 850 bytes with the response
    /// buffer) is not copied each time (measured with bench/usertime.sh
    /// and bench/icount.sh: BENCHMARKS.md, "Per-request cost: copies
    /// cut").
    conn: Option<Box<Conn<R>>>,
    /// The header netstring at `..head.wire_len()`, then bytes read with it.
    buf: BytesMut,
    head: Head,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    /// Unread bytes split off `buf` for zero-copy [`Request::chunk`]s (only
    /// once `buf[pos..]` is empty).
    rest: BytesMut,
    peer: Addr,
    /// Under [`Server::run`](crate::Server::run): the id of the connection
    /// whose task takes the request back when it is dropped there (see
    /// [`Handback`](crate::Handback)).
    handback: Option<u64>,
    /// Queued for [`Server::next`](crate::Server::next) and not taken:
    /// dropped so, it is answered `503`.
    queued: bool,
}

/// The live half of a request: the socket, the lifecycle that decides
/// about it, and the response buffer.
pub(crate) struct Conn<R: Runtime> {
    stream: R::Stream,
    life: Connection<Instant>,
    out: OutBuf,
    /// Whether no received byte is left unhandled (for
    /// [`Connection::end`]); set when the request is released.
    read_to_end: bool,
    read_timer: Timer<R>,
    write_timer: Timer<R>,
    slot: Slot,
    runtime: R,
}

impl<R: Runtime> fmt::Debug for Request<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("peer", &self.peer)
            .field("headers", &self.headers())
            .field("body_remaining", &self.body_remaining())
            .finish_non_exhaustive()
    }
}

/// A request's connection handed back to its task (see
/// [`Handback`](crate::Handback)).
pub(crate) struct Returned<R: Runtime> {
    pub(crate) conn: Box<Conn<R>>,
    buf: BytesMut,
    head: Head,
}

impl<R: Runtime> Returned<R> {
    /// `METHOD URI` for log lines.
    pub(crate) fn describe(&self) -> Describe<'_> {
        Describe(self.head.headers(&self.buf))
    }

    /// Ends the request, which came to `outcome`: see [`Conn::complete`].
    /// A plain function returning that future, not an `async fn` around
    /// it: a wrapper future would add its own state to every connection's
    /// task (measured: +700 instructions a request on scgi-tokio).
    pub(crate) fn complete<'a>(
        &'a mut self,
        outcome: Outcome,
        peer: &'a Addr,
    ) -> impl Future<Output = io::Result<()>> + 'a {
        let headers = self.head.headers(&self.buf);
        self.conn.complete(outcome, peer, headers)
    }

    /// Ends the request, which came to `outcome`, in a task of its own,
    /// which gives up if the shutdown is forced.
    fn finish_apart(mut self, outcome: Outcome, peer: Addr) {
        let watch = self.conn.slot.shared().watch();
        let runtime = self.conn.runtime.clone();
        runtime.spawn(watch.guard(async move {
            let _ = self.complete(outcome, &peer).await;
        }));
    }
}

/// The response buffer: `bytes[start..end]` waits to be sent.
struct OutBuf {
    bytes: [u8; OUT_CAP],
    start: usize,
    end: usize,
}

impl OutBuf {
    fn pending(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// The free room after the pending bytes, moved to the front first.
    fn spare_mut(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.bytes[self.end..]
    }

    /// Appends `data`, which must fit in the free room.
    fn push(&mut self, data: &[u8]) {
        let spare = self.spare_mut();
        spare[..data.len()].copy_from_slice(data);
        self.end += data.len();
    }

    /// Encodes into the free room with `encode`; `Ok(false)` if it needs
    /// more room than there is.
    fn encode(
        &mut self,
        encode: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
    ) -> io::Result<bool> {
        match encode(self.spare_mut()) {
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(EncodeError::BufferTooSmall { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the server's shutdown deadline passed",
    )
}

/// `respond` after something was written: the two would make one
/// malformed response.
fn already_written() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "respond: part of a response was already written",
    )
}

fn upgraded_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was upgraded or finished",
    )
}

/// Reads a connection's head under the head deadline. A refused or
/// stalled head is answered and the connection ended as its
/// [`Connection`] says; then, as for a connection closed before its first
/// byte, `None`.
pub(crate) async fn read_head<R: Runtime>(
    mut stream: R::Stream,
    peer: Addr,
    slot: Slot,
    config: &Config,
    runtime: &R,
) -> Option<Request<R>> {
    let mut life = Connection::new(config, R::now());
    let deadline = life.head_deadline();
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let end = loop {
        match life.decode_head(&buf) {
            HeadStep::Read { room } => buf.reserve(room),
            HeadStep::Ready(head) => {
                return Some(Request {
                    conn: Some(Box::new(Conn::new(stream, life, slot, runtime.clone()))),
                    buf,
                    pos: head.wire_len(),
                    head,
                    rest: BytesMut::new(),
                    peer,
                    handback: None,
                    queued: false,
                });
            }
            HeadStep::End(end) => break end,
        }
        let read = poll_fn(|cx| stream.poll_read_buf(cx, &mut buf));
        match rt::within::<R, _>(deadline, read).await {
            None => break life.head_timed_out(),
            Some(Ok(0)) => break life.head_eof(),
            Some(Ok(_)) => {}
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Some(Err(e)) => {
                log::debug!("{peer}: reading the request head: {e}");
                return None;
            }
        }
    };
    end.log(&peer);
    slot.shared().counters.head_ended(&end);
    // Boxed: a refused or stalled head is the rare path, and the
    // connection's state and its closing, held across this `.await`, would
    // otherwise more than double this future, and so the task of every
    // connection while it reads its head (1 984 bytes on smol; a held
    // connection's memory and the copy of each task as it is spawned).
    let runtime = runtime.clone();
    let _ = Box::pin(async move {
        Conn::new(stream, life, slot, runtime)
            .close(end.ending(), &peer)
            .await
    })
    .await;
    None
}

impl<R: Runtime> Conn<R> {
    pub(crate) fn new(
        stream: R::Stream,
        life: Connection<Instant>,
        slot: Slot,
        runtime: R,
    ) -> Self {
        Conn {
            stream,
            life,
            out: OutBuf {
                bytes: [0; OUT_CAP],
                start: 0,
                end: 0,
            },
            read_to_end: false,
            read_timer: Timer::new(),
            write_timer: Timer::new(),
            slot,
            runtime,
        }
    }

    fn forced(&self) -> bool {
        self.slot.shared().is_forced()
    }

    /// How loudly to log the handler's failure (the lifecycle decides).
    pub(crate) fn failure_severity(&self) -> scgi_proto::server::Severity {
        self.life.failure_severity()
    }

    /// One read of body bytes from the socket by `read`, bounded by the
    /// body deadline; the end of input inside the body is an error.
    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        read: impl FnOnce(&mut R::Stream, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.forced() {
            return Poll::Ready(Err(aborted()));
        }
        let Poll::Ready(result) = read(&mut self.stream, cx) else {
            let life = &self.life;
            if self.read_timer.pending(cx, || life.body_deadline(R::now())) {
                let e = self.life.body_timed_out();
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, e)));
            }
            return Poll::Pending;
        };
        self.read_timer.done();
        Poll::Ready(match result {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                self.life.body_eof(),
            )),
            other => other,
        })
    }

    /// One write to the socket: what is buffered, then `extra`, in one
    /// vectored write, under the write deadline. The deadline is armed when
    /// a write first has to wait, and checked before the write is retried,
    /// so that the few bytes a stalled peer's socket takes when the timer
    /// wakes the task do not count as progress (see
    /// [`Connection::write_deadline`]).
    fn poll_send(&mut self, cx: &mut Context<'_>, extra: &[u8]) -> Poll<io::Result<usize>> {
        let timed_out = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer accepted no response data within the write timeout",
            )
        };
        if self.write_timer.passed(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        let bufs = [IoSlice::new(self.out.pending()), IoSlice::new(extra)];
        let Poll::Ready(result) = self.stream.poll_write_vectored(cx, &bufs) else {
            let life = &self.life;
            if self
                .write_timer
                .pending(cx, || life.write_deadline(R::now()))
            {
                return Poll::Ready(Err(timed_out()));
            }
            return Poll::Pending;
        };
        self.write_timer.done();
        Poll::Ready(match result {
            Ok(0) => Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                self.life.sent(n);
                Ok(n)
            }
            Err(e) => Err(e),
        })
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.forced() {
            return Poll::Ready(Err(aborted()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.life.wrote();
        loop {
            let pending = self.out.pending().len();
            if pending + data.len() <= OUT_CAP {
                self.out.push(data);
                return Poll::Ready(Ok(data.len()));
            }
            // What is buffered and what does not fit leave in one write.
            let n = ready!(self.poll_send(cx, data))?;
            if n < pending {
                self.out.consume(n);
                continue;
            }
            self.out.clear();
            if n > pending {
                return Poll::Ready(Ok(n - pending));
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(self.poll_send(cx, &[]))?;
            self.out.consume(n);
        }
        Poll::Ready(Ok(()))
    }

    async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Ends the request, which came to `outcome` (or to nothing, if the
    /// shutdown deadline has passed), and counts it (and logs its access
    /// line, if asked to). `peer` and `headers` are for log lines.
    pub(crate) async fn complete(
        &mut self,
        outcome: Outcome,
        peer: &Addr,
        headers: Headers<'_>,
    ) -> io::Result<()> {
        let outcome = if self.forced() {
            Outcome::Forced
        } else {
            outcome
        };
        let ending = self.life.end(outcome, self.read_to_end);
        let result = self.close(ending, peer).await;
        self.ended(peer, headers);
        result
    }

    /// Counts the request as ended, and logs its access line if asked to.
    fn ended(&self, peer: &Addr, headers: Headers<'_>) {
        let shared = self.slot.shared();
        shared
            .counters
            .request_ended(self.life.status(), self.life.body_error());
        if shared.access_log() {
            self.life.access_line(headers, peer, R::now()).log();
        }
    }

    /// Carries out `ending`. The socket closes when the `Conn` is dropped.
    async fn close(&mut self, Ending { reply, then }: Ending, peer: &Addr) -> io::Result<()> {
        match reply {
            Reply::Nothing => self.out.clear(),
            Reply::Buffered => {}
            Reply::NoContent => self.out.push(NO_CONTENT),
            Reply::Answer(answer) => {
                self.out.clear();
                self.out.encode(|buf| answer.encode(buf))?;
            }
        }
        if let Err(e) = self.flush().await {
            log::debug!("{peer}: sending the response: {e}");
            return Err(e);
        }
        match then {
            Then::Close => {}
            Then::CloseUnlessPending if matches!(self.stream.has_pending_input(), Ok(false)) => {}
            Then::CloseUnlessPending | Then::Drain => self.drain(peer).await,
            Then::HalfClose => {
                let _ = self.stream.shutdown(Shutdown::Write);
            }
            Then::Reset => {
                if let Err(e) = self.stream.set_abortive_close() {
                    log::debug!("{peer}: setting SO_LINGER to 0 failed: {e}");
                }
            }
        }
        Ok(())
    }

    /// Ends our side, then reads and discards what the peer still sends,
    /// within the drain's bounds. Reads go into the response buffer, free
    /// now (usually the peer has nothing left, or just closed); a peer
    /// still sending a body nobody read gets a larger buffer.
    async fn drain(&mut self, peer: &Addr) {
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let drain: Drain<Instant> = self.life.start_drain(R::now());
        let mut total = 0u64;
        let mut large = Vec::new();
        while total < drain.limit() {
            let deadline = drain.deadline(R::now(), total);
            let into = if large.is_empty() {
                &mut self.out.bytes[..]
            } else {
                &mut large[..]
            };
            let full = into.len();
            let stream = &mut self.stream;
            let read = poll_fn(|cx| stream.poll_read(cx, into));
            match rt::within::<R, _>(deadline, read).await {
                Some(Ok(0)) => return,
                Some(Ok(n)) => {
                    total += n as u64;
                    if n == full && large.is_empty() {
                        large = vec![0; DRAIN_READ];
                    }
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(_)) => return,
                None => break,
            }
        }
        log::debug!("{peer}: stopped draining after {total} bytes; closing");
    }
}

/// A new connection task id (see [`Handback`](crate::Handback)).
pub(crate) fn handback_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<R: Runtime> Request<R> {
    /// The request's headers: the CGI variables the web server sent, with
    /// typed accessors ([`method`](Headers::method),
    /// [`path`](Headers::path), [`query_string`](Headers::query_string),
    /// [`http`](Headers::http), ...). They borrow the request: copy what
    /// must outlive the next write.
    #[must_use]
    pub fn headers(&self) -> Headers<'_> {
        self.head.headers(&self.buf)
    }

    /// The body's length (`CONTENT_LENGTH`).
    #[must_use]
    pub fn content_length(&self) -> u64 {
        self.head.content_length()
    }

    /// Body bytes not read yet.
    #[must_use]
    pub fn body_remaining(&self) -> u64 {
        self.conn.as_ref().map_or(0, |c| c.life.body_remaining())
    }

    /// The address of the peer: the web server, not the HTTP client (that
    /// one is [`Headers::remote_addr`]).
    #[must_use]
    pub fn peer_addr(&self) -> &Addr {
        &self.peer
    }

    /// Marks the request as waiting in [`Server::next`](crate::Server::next)'s
    /// queue, or taken from it.
    pub(crate) fn set_queued(&mut self, queued: bool) {
        self.queued = queued;
    }

    /// Names the connection task (`id`, from [`handback_id`]) that takes
    /// this request back when it is dropped there.
    pub(crate) fn hand_back_to(&mut self, id: u64) {
        self.handback = Some(id);
    }

    fn conn_mut(&mut self) -> io::Result<&mut Conn<R>> {
        self.conn.as_deref_mut().ok_or_else(upgraded_error)
    }

    /// The next piece of the body, without copying: a [`Bytes`] sliced from
    /// the connection's read buffer, or `None` at the end of the body. The
    /// buffer's memory is reused for later reads once the pieces handed out
    /// are dropped; keeping them is fine, later reads then use new memory.
    /// Fails as reading the body does.
    pub async fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// [`chunk`](Request::chunk) as a poll function.
    pub(crate) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        let conn = self.conn.as_mut().ok_or_else(upgraded_error)?;
        if conn.life.body_remaining() == 0 {
            return Poll::Ready(Ok(None));
        }
        if self.pos < self.buf.len() {
            self.rest = self.buf.split_off(self.pos);
        }
        if self.rest.is_empty() {
            self.rest.reserve(CHUNK_READ);
            let rest = &mut self.rest;
            ready!(conn.poll_body(cx, |stream, cx| stream.poll_read_buf(cx, rest)))?;
        }
        let n = conn.life.body(&self.rest);
        Poll::Ready(Ok((n > 0).then(|| self.rest.split_to(n).freeze())))
    }

    /// Reads the rest of the body into memory, if it is at most `limit`
    /// bytes; returns it (empty for a request without a body). A body that
    /// arrived in one piece (a form read along with the head, say) comes
    /// back without a copy.
    ///
    /// `CONTENT_LENGTH` is the peer's word, so do not size a buffer by it
    /// (`Vec::with_capacity(req.content_length())` lets any client make
    /// the server allocate gigabytes); this reads with memory that grows
    /// as the bytes arrive, up to the body's size
    /// ([`body_room`](scgi_proto::server::body_room)), and never more
    /// than `limit`.
    ///
    /// A larger body fails at once, before a byte is read, with an
    /// [`InvalidData`](io::ErrorKind::InvalidData) error wrapping
    /// [`BodyError::TooLarge`](scgi_proto::server::BodyError::TooLarge),
    /// and the request is answered `413 Content Too Large` whether the
    /// handler returns that error or returns without writing (the
    /// lifecycle's [`limit_body`](Connection::limit_body)); the unread
    /// body is drained so the answer reaches the client. Call it before
    /// writing: an answer already written is kept (or, if already sent,
    /// the handler's error resets the connection). `limit` counts the
    /// bytes still to read: `0` takes only an empty body, `u64::MAX` any
    /// (memory then bounded by the peer alone). For a server-wide limit
    /// the decoder applies before any handler runs, use
    /// [`Config::with_max_body`]. Fails as [`chunk`](Request::chunk) does.
    pub async fn read_body(&mut self, limit: u64) -> io::Result<Bytes> {
        self.conn_mut()?.life.limit_body(limit)?;
        let Some(first) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        let left = self.body_remaining();
        if left == 0 {
            return Ok(first);
        }
        let mut body =
            Vec::with_capacity(first.len() + scgi_proto::server::body_room(first.len(), left));
        body.extend_from_slice(&first);
        drop(first);
        while let Some(piece) = self.chunk().await? {
            if body.capacity() - body.len() < piece.len() {
                // `left` counts this piece: the room never passes the
                // body's end.
                let left = self.body_remaining() + piece.len() as u64;
                let room = scgi_proto::server::body_room(body.len(), left);
                body.reserve_exact(room.max(piece.len()));
            }
            body.extend_from_slice(&piece);
        }
        Ok(Bytes::from(body))
    }

    /// How many bytes a body read into a buffer of `room` bytes may take.
    #[cfg(feature = "tokio")]
    pub(crate) fn read_limit(&self, room: usize) -> usize {
        usize::try_from(self.body_remaining()).map_or(room, |r| r.min(room))
    }

    /// Reads body bytes into `dst`: those read along with the head (or
    /// split off for chunks) first, then the socket's; 0 at the end of the
    /// body.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Err(upgraded_error()));
        };
        let max =
            usize::try_from(conn.life.body_remaining()).map_or(dst.len(), |r| r.min(dst.len()));
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        let unread = if self.pos < self.buf.len() {
            &self.buf[self.pos..]
        } else {
            &self.rest[..]
        };
        if !unread.is_empty() {
            let take = max.min(unread.len());
            let n = conn.life.body(&unread[..take]);
            dst[..n].copy_from_slice(&unread[..n]);
            if self.pos < self.buf.len() {
                self.pos += n;
            } else {
                bytes::Buf::advance(&mut self.rest, n);
            }
            return Poll::Ready(Ok(n));
        }
        let dst = &mut dst[..max];
        let n = ready!(conn.poll_body(cx, |stream, cx| stream.poll_read(cx, dst)))?;
        // Bookkeeping only: `n` is within the body.
        conn.life.body(&dst[..n]);
        Poll::Ready(Ok(n))
    }

    #[cfg_attr(
        not(any(feature = "tokio", feature = "futures-io", feature = "tower")),
        allow(dead_code)
    )]
    /// Buffers (or sends) response bytes.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.conn.as_mut() {
            Some(conn) => conn.poll_write(cx, data),
            None => Poll::Ready(Err(upgraded_error())),
        }
    }

    #[cfg_attr(
        not(any(feature = "tokio", feature = "futures-io", feature = "tower")),
        allow(dead_code)
    )]
    /// Sends what is buffered.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.conn.as_mut() {
            Some(conn) => conn.poll_flush(cx),
            None => Poll::Ready(Err(upgraded_error())),
        }
    }

    /// An owned copy of the header netstring, for the `http::Request`'s
    /// extensions.
    #[cfg(feature = "tower")]
    pub(crate) fn scgi_headers(&self) -> scgi_proto::http::ScgiHeaders {
        scgi_proto::http::ScgiHeaders::new(&self.head, &self.buf)
    }

    /// Writes `data` whole.
    async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = poll_fn(|cx| self.poll_write(cx, data)).await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Writes `Status: 200 OK` and `Content-Type: <content_type>`: the head
    /// of the most common response (Nim's `writeStatusOkTextContent`). A
    /// content type with CR or LF is refused
    /// ([`InvalidInput`](io::ErrorKind::InvalidInput)) and nothing is
    /// written.
    pub async fn write_status_ok_text_content(&mut self, content_type: &str) -> io::Result<()> {
        self.write_response_head(ResponseHead::new(200).headers(&[("Content-Type", content_type)]))
            .await
    }

    /// Writes a response head: `Status: <status> <reason>` and `headers` in
    /// order. A status or header the writer refuses (1xx other than 101, CR
    /// or LF in a value, a `Status` header) gives
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) and writes nothing.
    /// The writer's choices (no 1xx but 101, reason phrases, why there is
    /// no `Location`-only redirect) are explained on
    /// [`HeadWriter`](scgi_proto::HeadWriter).
    ///
    /// For a whole answer whose body is in hand, [`respond`](Request::respond)
    /// takes headers from any iterator (owned `String`s too) and sets
    /// `Content-Length`; to stream a body after owned headers, borrow them
    /// as pairs: `let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)|
    /// (k.as_str(), v.as_str())).collect();`.
    pub async fn write_head(&mut self, status: u16, headers: &[(&str, &str)]) -> io::Result<()> {
        self.write_response_head(ResponseHead::new(status).headers(headers))
            .await
    }

    /// Writes a response head built with [`ResponseHead`] (a custom reason
    /// phrase, say). The head is encoded straight into the response buffer
    /// and leaves in one write (nginx before 1.31 could misread a first
    /// line split across reads).
    pub async fn write_response_head(&mut self, head: ResponseHead<'_>) -> io::Result<()> {
        let conn = self.conn_mut()?;
        if conn.forced() {
            return Err(aborted());
        }
        for attempt in 0..2 {
            if conn.out.encode(|buf| head.encode(buf))? {
                conn.life.wrote();
                conn.life.wrote_head(head.status());
                return Ok(());
            }
            if attempt == 0 {
                conn.flush().await?;
            }
        }
        let bytes = head.to_vec()?;
        self.write_all(&bytes).await?;
        self.conn_mut()?.life.wrote_head(head.status());
        Ok(())
    }

    /// Sends a whole response: `Status: <status> <reason>`, `headers` (any
    /// iterator of name and value pairs, owned or borrowed), the
    /// `Content-Length` of `body`, and `body`, as [`Framing`] frames it:
    /// the answer to a `HEAD` request gets the same head and no body, and
    /// a `1xx`, `204` or `304` neither `Content-Length` nor body. So one
    /// handler serves `GET` and `HEAD` right. A head that fits the
    /// 512-byte response buffer leaves in one write with the body, however
    /// large (a vectored write of both).
    ///
    /// A head the writer refuses (see [`write_head`](Request::write_head);
    /// a `Content-Length` or `Transfer-Encoding` among `headers` too, as
    /// the framing is `respond`'s) gives
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) and writes nothing,
    /// and so does a request whose handler already wrote part of a
    /// response. Write nothing else for the request.
    ///
    /// The headers of the request borrow it, so build what goes into the
    /// response before the call (`req.headers().query_param("page")`
    /// borrows `req`; `.into_owned()` ends the borrow).
    pub async fn respond<K, V>(
        &mut self,
        status: u16,
        headers: impl IntoIterator<Item = (K, V)>,
        body: impl AsRef<[u8]>,
    ) -> io::Result<()>
    where
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        if self.conn_mut()?.life.has_written() {
            return Err(already_written());
        }
        let body = body.as_ref();
        let is_head = self.headers().method() == Some("HEAD");
        let framing = Framing::new(status, is_head, body.len() as u64);
        // Room for a usual head at once: growing from empty took three
        // reallocations a request (callgrind, bench/icount.sh).
        let mut head = Vec::with_capacity(HEAD_ROOM);
        scgi_proto::append_head(&mut head, status, headers, framing.content_length)?;
        self.write_all(&head).await?;
        self.conn_mut()?.life.wrote_head(status);
        if framing.send_body {
            self.write_all(body).await?;
        }
        Ok(())
    }

    /// Takes the connection as a raw byte stream after a
    /// `101 Switching Protocols` head (nginx tunnels the connection after
    /// it): sends what is buffered, and returns the stream with the bytes
    /// that followed the request. The body must be read first.
    ///
    /// The server's timeouts no longer apply and the server no longer
    /// touches the connection; it counts as open until the [`Upgraded`] is
    /// dropped.
    pub async fn upgrade(&mut self) -> io::Result<Upgraded<R>> {
        let remaining = self.body_remaining();
        if remaining != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("read the body before upgrading ({remaining} bytes left)"),
            ));
        }
        self.conn_mut()?.flush().await?;
        let conn = self.conn.take().ok_or_else(upgraded_error)?;
        // The request ends here as far as the server can tell.
        conn.ended(&self.peer, self.head.headers(&self.buf));
        let leftover = if self.pos < self.buf.len() {
            self.buf.split_off(self.pos).freeze()
        } else {
            std::mem::take(&mut self.rest).freeze()
        };
        Ok(Upgraded {
            stream: conn.stream,
            leftover,
            slot: conn.slot,
        })
    }

    /// [`upgrade`](Request::upgrade), consuming the request.
    pub async fn into_upgraded(mut self) -> io::Result<Upgraded<R>> {
        self.upgrade().await
    }

    /// Finishes the request now, as dropping it does, and waits for it:
    /// sends what is buffered (or `204 No Content` if nothing was
    /// written), ends the connection and drains it. Returns the error of
    /// the last write, if any.
    pub async fn finish(mut self) -> io::Result<()> {
        match self.release() {
            Some(mut conn) => {
                let headers = self.head.headers(&self.buf);
                conn.complete(Outcome::Done, &self.peer, headers).await
            }
            None => Ok(()),
        }
    }

    /// A head with `status` went out as raw bytes (the tower layer's):
    /// note it for the counters and the access log.
    #[cfg(feature = "tower")]
    pub(crate) fn wrote_head(&mut self, status: u16) {
        if let Some(conn) = self.conn.as_mut() {
            conn.life.wrote_head(status);
        }
    }

    /// Takes the connection out for good to end it (the server's task,
    /// finding nothing handed back, has nothing left to do), noting
    /// whether every byte received was handed out.
    fn release(&mut self) -> Option<Box<Conn<R>>> {
        let mut conn = self.conn.take()?;
        conn.read_to_end = self.pos == self.buf.len() && self.rest.is_empty();
        Some(conn)
    }
}

impl<R: Runtime> Drop for Request<R> {
    fn drop(&mut self) {
        let Some(conn) = self.release() else {
            return;
        };
        let outcome = if self.queued {
            Outcome::Unserved
        } else if std::thread::panicking() {
            Outcome::Failed
        } else {
            Outcome::Done
        };
        let returned = Returned {
            conn,
            buf: std::mem::take(&mut self.buf),
            head: self.head,
        };
        // Only in its own connection's task, while its handler runs: a
        // request moved to another task (even another connection's)
        // finishes by itself.
        let returned = match self.handback {
            Some(id) => match rt::hand_back(id, returned) {
                None => return,
                Some(returned) => returned,
            },
            None => returned,
        };
        // Handed out by `next`, or outliving its handler: finish in a task
        // of its own (a destructor cannot wait).
        returned.finish_apart(outcome, self.peer.clone());
    }
}

/// A connection taken over after a `101` response (see
/// [`Request::upgrade`]): reads give the bytes that followed the request,
/// then the socket's; writes go to the socket unbuffered.
pub struct Upgraded<R: Runtime> {
    stream: R::Stream,
    leftover: Bytes,
    slot: Slot,
}

impl<R: Runtime> fmt::Debug for Upgraded<R>
where
    R::Stream: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("stream", &self.stream)
            .field("leftover", &self.leftover.len())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Upgraded<R> {
    /// The socket (reading from it directly bypasses
    /// [`leftover`](Upgraded::leftover)).
    #[must_use]
    pub fn stream(&self) -> &R::Stream {
        &self.stream
    }

    /// Bytes that followed the request and have not been read through
    /// this `Upgraded` yet.
    #[must_use]
    pub fn leftover(&self) -> &[u8] {
        &self.leftover
    }

    /// The socket and the unread bytes that followed the request, for code
    /// that wants to own them. The connection no longer counts against
    /// [`max_connections`](Config::max_connections) nor delays shutdown.
    /// Never fails (the `io::Result` is the shape every runtime crate
    /// shares, `scgi-blocking`'s included).
    pub fn into_parts(self) -> io::Result<(R::Stream, Bytes)> {
        let Upgraded {
            stream,
            leftover,
            slot,
        } = self;
        drop(slot);
        Ok((stream, leftover))
    }

    /// How many bytes a read into a buffer of `room` bytes may take.
    #[cfg(feature = "tokio")]
    pub(crate) fn read_limit(&self, room: usize) -> usize {
        room
    }

    /// Reads the leftover bytes first, then the socket's.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !self.leftover.is_empty() {
            let n = dst.len().min(self.leftover.len());
            dst[..n].copy_from_slice(&self.leftover[..n]);
            bytes::Buf::advance(&mut self.leftover, n);
            return Poll::Ready(Ok(n));
        }
        self.stream.poll_read(cx, dst)
    }

    /// Writes to the socket.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream.poll_write_vectored(cx, bufs)
    }

    /// Shuts down the sending side.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }
}

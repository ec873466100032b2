//! One request: reading its head, its body, writing its response, and
//! ending the connection, as its [`Connection`] decides.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use scgi_proto::server::{
    Config, Connection, Describe, Drain, Ending, HeadStep, Outcome, Reply, Then,
};
use scgi_proto::{EncodeError, Head, Headers, NO_CONTENT, ResponseHead};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::net::{Addr, Stream};
use crate::server::Slot;

/// The lifecycle's clock: tokio's (so a paused test clock applies), as the
/// `std` instant `scgi-proto` knows.
type Clock = std::time::Instant;

fn now() -> Clock {
    Instant::now().into_std()
}

/// `f`, given up on (`None`) at `deadline` (`None`: never).
async fn within<F: Future>(deadline: Option<Clock>, f: F) -> Option<F::Output> {
    match deadline {
        Some(at) => tokio::time::timeout_at(Instant::from_std(at), f).await.ok(),
        None => Some(f.await),
    }
}

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
pub(crate) const OUT_CAP: usize = 512;

/// A request whose head is read and validated: its headers, its body (read
/// it through [`AsyncRead`], or zero-copy with [`chunk`](Request::chunk))
/// and its response (write it through [`AsyncWrite`]).
///
/// - Reading yields exactly `CONTENT_LENGTH` bytes, then end of input. A
///   peer that closes early makes a read fail with
///   [`UnexpectedEof`](io::ErrorKind::UnexpectedEof); one that sends
///   nothing for [`body_timeout`](Config::body_timeout), with
///   [`TimedOut`](io::ErrorKind::TimedOut).
/// - Writes are gathered in a 512-byte buffer inside the request and sent when
///   it fills (together with the write that overflows it, in one vectored
///   write), on [`flush`](tokio::io::AsyncWriteExt::flush), and when the
///   request finishes. A write that waits longer than
///   [`write_timeout`](Config::write_timeout) for the peer fails with
///   [`TimedOut`](io::ErrorKind::TimedOut). Start with a head:
///   [`write_status_ok_text_content`](Request::write_status_ok_text_content)
///   or [`write_head`](Request::write_head). Shutting the writer down
///   ([`AsyncWrite::poll_shutdown`]) only flushes: the server ends the
///   connection itself.
/// - The request finishes when dropped (or with
///   [`finish`](Request::finish), to wait for it and see errors): see
///   [`Server::run`](crate::Server::run) for what the server sends and how
///   it closes. A request dropped outside a tokio runtime cannot finish and
///   is just closed.
pub struct Request {
    /// `None` once upgraded or finished, or while handed back.
    conn: Option<Conn>,
    /// The header netstring at `..head.wire_len()`, then bytes read with it.
    buf: BytesMut,
    head: Head,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    /// Unread bytes split off `buf` for zero-copy [`Request::chunk`]s (only
    /// once `buf[pos..]` is empty).
    rest: BytesMut,
    peer: Addr,
    /// Under [`Server::run`](crate::Server::run): the id of the
    /// connection whose task takes the request back when it is dropped
    /// there (see [`HANDBACK`]).
    handback: Option<u64>,
}

/// The live half of a request: the socket, the lifecycle that decides
/// about it, and the response buffer.
pub(crate) struct Conn {
    stream: Stream,
    life: Connection<Clock>,
    out: OutBuf,
    /// Whether no received byte is left unhandled (for
    /// [`Connection::end`]); set when the request is released.
    read_to_end: bool,
    read_timer: Timer,
    write_timer: Timer,
    slot: Slot,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("peer", &self.peer)
            .field("headers", &self.headers())
            .field("body_remaining", &self.body_remaining())
            .finish_non_exhaustive()
    }
}

tokio::task_local! {
    /// Under [`Server::run`](crate::Server::run), in each connection's
    /// task while its handler's future runs (and is dropped): where a
    /// request dropped there leaves its connection, so that the task can
    /// finish it knowing how the handler ended (which a destructor cannot
    /// know: an error result comes out after the request is dropped). It
    /// lives inside the task, so handing back allocates nothing.
    pub(crate) static HANDBACK: Handback;
}

/// The hand-back slot of one connection's task.
pub(crate) struct Handback {
    id: u64,
    returned: RefCell<Option<Returned>>,
}

impl Handback {
    /// A slot for the request it returns with its id.
    pub(crate) fn new(req: &mut Request) -> Handback {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        req.handback = Some(id);
        Handback {
            id,
            returned: RefCell::new(None),
        }
    }

    /// The connection of a request dropped in the task, if it was.
    pub(crate) fn into_returned(self) -> Option<Returned> {
        self.returned.into_inner()
    }
}

pub(crate) struct Returned {
    pub(crate) conn: Conn,
    buf: BytesMut,
    head: Head,
}

impl Returned {
    /// `METHOD URI` for log lines.
    pub(crate) fn describe(&self) -> Describe<'_> {
        Describe(self.head.headers(&self.buf))
    }
}

/// A lazily armed timer for one poll-based read or write.
#[derive(Default)]
struct Timer {
    /// Boxed so that the request stays `Unpin`; allocated the first time a
    /// read or write has to wait under a deadline, then reset.
    sleep: Option<Pin<Box<Sleep>>>,
    /// While waiting: whether under a deadline.
    armed: Option<bool>,
}

impl Timer {
    /// Whether the deadline `deadline` gives when the operation starts
    /// waiting (`None`: never) has passed.
    fn poll_expired(
        &mut self,
        cx: &mut Context<'_>,
        deadline: impl FnOnce() -> Option<Clock>,
    ) -> bool {
        let sleep = &mut self.sleep;
        let timed = *self.armed.get_or_insert_with(|| {
            let Some(at) = deadline() else {
                return false;
            };
            let at = Instant::from_std(at);
            match sleep {
                Some(sleep) => sleep.as_mut().reset(at),
                None => *sleep = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            true
        });
        let expired = timed
            && self
                .sleep
                .as_mut()
                .is_some_and(|s| s.as_mut().poll(cx).is_ready());
        if expired {
            self.armed = None;
        }
        expired
    }

    fn disarm(&mut self) {
        self.armed = None;
    }
}

/// The response buffer: `bytes[start..end]` waits to be sent.
struct OutBuf {
    bytes: [u8; OUT_CAP],
    start: usize,
    end: usize,
}

impl OutBuf {
    fn new() -> OutBuf {
        OutBuf {
            bytes: [0; OUT_CAP],
            start: 0,
            end: 0,
        }
    }

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
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the server's shutdown deadline passed",
    )
}

fn upgraded_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was upgraded or finished",
    )
}

/// One write (vectored) to the socket, bounded by the write deadline while
/// the peer accepts nothing.
fn poll_send(
    stream: &mut Stream,
    timer: &mut Timer,
    life: &mut Connection<Clock>,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    match Pin::new(stream).poll_write_vectored(cx, bufs) {
        Poll::Ready(result) => {
            timer.disarm();
            Poll::Ready(match result {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    life.sent();
                    Ok(n)
                }
                Err(e) => Err(e),
            })
        }
        Poll::Pending if timer.poll_expired(cx, || life.write_deadline(now())) => {
            Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer accepted no response data within the write timeout",
            )))
        }
        Poll::Pending => Poll::Pending,
    }
}

/// Reads a connection's head under the head deadline. A refused or
/// stalled head is answered and the connection ended as its
/// [`Connection`] says; then, as for a connection closed before its first
/// byte, `None`.
pub(crate) async fn read_head(
    mut stream: Stream,
    peer: Addr,
    slot: Slot,
    config: &Config,
) -> Option<Request> {
    let mut life = Connection::new(config, now());
    let deadline = life.head_deadline();
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let end = loop {
        match life.decode_head(&buf) {
            HeadStep::Read { room } => buf.reserve(room),
            HeadStep::Ready(head) => {
                return Some(Request {
                    conn: Some(Conn::new(stream, life, slot)),
                    buf,
                    pos: head.wire_len(),
                    head,
                    rest: BytesMut::new(),
                    peer,
                    handback: None,
                });
            }
            HeadStep::End(end) => break end,
        }
        match within(deadline, stream.read_buf(&mut buf)).await {
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
    let _ = Conn::new(stream, life, slot)
        .close(end.ending(), &peer)
        .await;
    None
}

impl Conn {
    fn new(stream: Stream, life: Connection<Clock>, slot: Slot) -> Conn {
        Conn {
            stream,
            life,
            out: OutBuf::new(),
            read_to_end: false,
            read_timer: Timer::default(),
            write_timer: Timer::default(),
            slot,
        }
    }

    fn forced(&self) -> bool {
        self.slot.shared().is_forced()
    }

    /// One read of body bytes from the socket by `read`, bounded by the
    /// body deadline; the end of input inside the body is an error.
    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        read: impl FnOnce(&mut Stream, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.forced() {
            return Poll::Ready(Err(aborted()));
        }
        match read(&mut self.stream, cx) {
            Poll::Ready(result) => {
                self.read_timer.disarm();
                Poll::Ready(match result {
                    Ok(0) => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        self.life.body_eof(),
                    )),
                    other => other,
                })
            }
            Poll::Pending
                if self
                    .read_timer
                    .poll_expired(cx, || self.life.body_deadline(now())) =>
            {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    self.life.body_timed_out(),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// A read from the socket straight into `dst`, bounded to the body.
    fn poll_read_body(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let remaining = self.life.body_remaining();
        let max = usize::try_from(remaining).map_or(dst.remaining(), |r| r.min(dst.remaining()));
        // Safe code cannot hand out `dst`'s uninitialized tail directly.
        let mut limited = ReadBuf::new(dst.initialize_unfilled_to(max));
        let n = ready!(self.poll_body(cx, |stream, cx| {
            Pin::new(stream)
                .poll_read(cx, &mut limited)
                .map_ok(|()| limited.filled().len())
        }))?;
        // Bookkeeping only: `n` is within the body.
        self.life.body(limited.filled());
        dst.advance(n);
        Poll::Ready(Ok(()))
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
            let bufs = [IoSlice::new(self.out.pending()), IoSlice::new(data)];
            let n = ready!(poll_send(
                &mut self.stream,
                &mut self.write_timer,
                &mut self.life,
                cx,
                &bufs
            ))?;
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

    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let bufs = [IoSlice::new(self.out.pending())];
            let n = ready!(poll_send(
                &mut self.stream,
                &mut self.write_timer,
                &mut self.life,
                cx,
                &bufs
            ))?;
            self.out.consume(n);
        }
        Poll::Ready(Ok(()))
    }

    async fn flush_out(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush_out(cx)).await
    }

    /// Ends the request, which came to `outcome` (or to nothing, if the
    /// shutdown deadline has passed). `peer` is for log lines.
    pub(crate) async fn complete(&mut self, outcome: Outcome, peer: &Addr) -> io::Result<()> {
        let outcome = if self.forced() {
            Outcome::Forced
        } else {
            outcome
        };
        let ending = self.life.end(outcome, self.read_to_end);
        self.close(ending, peer).await
    }

    /// Carries out `ending`, cut short if the shutdown deadline passes
    /// meanwhile. The socket closes when the `Conn` is dropped.
    async fn close(&mut self, ending: Ending, peer: &Addr) -> io::Result<()> {
        let shared = Arc::clone(self.slot.shared());
        let mut forced = pin!(shared.forced_signal());
        let mut work = pin!(self.carry_out(ending, peer));
        poll_fn(|cx| {
            if let Poll::Ready(result) = work.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            forced.as_mut().poll(cx).map(|()| Err(aborted()))
        })
        .await
    }

    async fn carry_out(&mut self, Ending { reply, then }: Ending, peer: &Addr) -> io::Result<()> {
        match reply {
            Reply::Nothing => self.out.clear(),
            Reply::Buffered => {}
            Reply::NoContent => self.out.push(NO_CONTENT),
            Reply::Answer(answer) => {
                self.out.clear();
                self.out.end = answer.encode(&mut self.out.bytes)?;
            }
        }
        if let Err(e) = self.flush_out().await {
            log::debug!("{peer}: sending the response: {e}");
            return Err(e);
        }
        match then {
            Then::Close => {}
            Then::CloseUnlessPending if matches!(self.stream.has_pending_input(), Ok(false)) => {}
            Then::CloseUnlessPending | Then::Drain => self.drain(peer).await,
            Then::HalfClose => {
                let _ = self.stream.shutdown(std::net::Shutdown::Write);
            }
            Then::Reset => self.stream.set_abortive_close(),
        }
        Ok(())
    }

    /// Ends our side, then reads and discards what the peer still sends,
    /// within the drain's bounds. Reads go into the response buffer, free
    /// now (usually the peer has nothing left, or just closed); a peer
    /// still sending a body nobody read gets a larger buffer.
    async fn drain(&mut self, peer: &Addr) {
        if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
            return;
        }
        let Drain { deadline, limit } = self.life.start_drain(now());
        let mut total = 0u64;
        let mut large = Vec::new();
        while total < limit {
            let into = if large.is_empty() {
                &mut self.out.bytes[..]
            } else {
                &mut large[..]
            };
            let full = into.len();
            match within(deadline, self.stream.read(into)).await {
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

impl Request {
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

    fn conn_mut(&mut self) -> io::Result<&mut Conn> {
        self.conn.as_mut().ok_or_else(upgraded_error)
    }

    /// The next piece of the body, without copying: a [`Bytes`] sliced from
    /// the connection's read buffer, or `None` at the end of the body. The
    /// buffer's memory is reused for later reads once the pieces handed out
    /// are dropped; keeping them is fine, later reads then use new memory.
    /// Fails as reading through [`AsyncRead`] does.
    ///
    /// ```no_run
    /// # async fn f(mut req: scgi_tokio::Request) -> std::io::Result<()> {
    /// let mut total = 0;
    /// while let Some(piece) = req.chunk().await? {
    ///     total += piece.len(); // or send it on, keep it, ...
    /// }
    /// assert_eq!(total as u64, req.content_length());
    /// # Ok(()) }
    /// ```
    pub async fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// [`chunk`](Request::chunk) as a poll function (the request body of
    /// the `tower` feature's `Server::serve` reads with it).
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

    /// An owned copy of the header netstring, for the `http::Request`'s
    /// extensions.
    #[cfg(feature = "tower")]
    pub(crate) fn scgi_headers(&self) -> scgi_proto::http::ScgiHeaders {
        scgi_proto::http::ScgiHeaders::new(&self.head, &self.buf)
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
        let required = match head.encode(conn.out.spare_mut()) {
            Ok(n) => {
                conn.out.end += n;
                conn.life.wrote();
                return Ok(());
            }
            Err(EncodeError::BufferTooSmall { required }) => required,
            Err(e) => return Err(e.into()),
        };
        if required <= OUT_CAP {
            conn.flush_out().await?;
            let n = head.encode(conn.out.spare_mut())?;
            conn.out.end += n;
            conn.life.wrote();
            return Ok(());
        }
        let bytes = head.to_vec()?;
        conn.flush_out().await?;
        self.write_all(&bytes).await
    }

    /// Takes the connection as a raw byte stream after a
    /// `101 Switching Protocols` head (nginx tunnels the connection after
    /// it): sends what is buffered, and returns the stream with the bytes
    /// that followed the request. The body must be read first.
    ///
    /// The server's timeouts no longer apply (wrap reads in
    /// `tokio::time::timeout` as needed) and the server no longer touches
    /// the connection; it counts as open until the [`Upgraded`] is
    /// dropped.
    pub async fn upgrade(&mut self) -> io::Result<Upgraded> {
        let remaining = self.body_remaining();
        if remaining != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("read the body before upgrading ({remaining} bytes left)"),
            ));
        }
        self.conn_mut()?.flush_out().await?;
        let conn = self.conn.take().ok_or_else(upgraded_error)?;
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
    pub async fn into_upgraded(mut self) -> io::Result<Upgraded> {
        self.upgrade().await
    }

    /// Finishes the request now, as dropping it does (see
    /// [`Server::run`](crate::Server::run)), and waits for it: sends what
    /// is buffered (or `204 No Content` if nothing was written), ends the
    /// connection and drains it. Returns the error of the last write, if
    /// any.
    pub async fn finish(mut self) -> io::Result<()> {
        match self.release() {
            Some(mut conn) => conn.complete(Outcome::Done, &self.peer).await,
            None => Ok(()),
        }
    }

    /// Takes the connection out for good to end it (the server's task,
    /// finding nothing handed back, has nothing left to do), noting
    /// whether every byte received was handed out.
    fn release(&mut self) -> Option<Conn> {
        let mut conn = self.conn.take()?;
        conn.read_to_end = self.pos == self.buf.len() && self.rest.is_empty();
        Some(conn)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        let Some(conn) = self.release() else {
            return;
        };
        let outcome = if std::thread::panicking() {
            Outcome::Failed
        } else {
            Outcome::Done
        };
        let mut conn = Some(conn);
        if let Some(id) = self.handback {
            // Only in its own connection's task, while its handler runs: a
            // request moved to another task (even another connection's)
            // finishes by itself.
            let _ = HANDBACK.try_with(|h| {
                let mut slot = h.returned.borrow_mut();
                if h.id == id && slot.is_none() {
                    *slot = conn.take().map(|conn| Returned {
                        conn,
                        buf: std::mem::take(&mut self.buf),
                        head: self.head,
                    });
                }
            });
        }
        let Some(mut conn) = conn else {
            return;
        };
        // Handed out by `next`, or outliving its handler: finish in a task
        // of its own (a destructor cannot wait).
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let peer = self.peer.clone();
                runtime.spawn(async move {
                    let _ = conn.complete(outcome, &peer).await;
                });
            }
            Err(_) => log::debug!(
                "{}: request dropped outside a tokio runtime; closing it unfinished",
                self.peer
            ),
        }
    }
}

impl AsyncRead for Request {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else {
            return Poll::Ready(Err(upgraded_error()));
        };
        if conn.life.body_remaining() == 0 || dst.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // Bytes read along with the head (or split off for chunks) first.
        let unread = if this.pos < this.buf.len() {
            &this.buf[this.pos..]
        } else {
            &this.rest[..]
        };
        if !unread.is_empty() {
            let take = dst.remaining().min(unread.len());
            let n = conn.life.body(&unread[..take]);
            dst.put_slice(&unread[..n]);
            if this.pos < this.buf.len() {
                this.pos += n;
            } else {
                this.rest.advance(n);
            }
            return Poll::Ready(Ok(()));
        }
        conn.poll_read_body(cx, dst)
    }
}

impl AsyncWrite for Request {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().conn.as_mut() {
            Some(conn) => conn.poll_write(cx, data),
            None => Poll::Ready(Err(upgraded_error())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().conn.as_mut() {
            Some(conn) => {
                ready!(conn.poll_flush_out(cx))?;
                Pin::new(&mut conn.stream).poll_flush(cx)
            }
            None => Poll::Ready(Err(upgraded_error())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// A connection taken over after a `101` response (see
/// [`Request::upgrade`]): reads give the bytes that followed the request,
/// then the socket's; writes go to the socket unbuffered.
#[derive(Debug)]
pub struct Upgraded {
    stream: Stream,
    leftover: Bytes,
    slot: Slot,
}

impl Upgraded {
    /// The socket (reading from it directly bypasses
    /// [`leftover`](Upgraded::leftover)).
    #[must_use]
    pub fn stream(&self) -> &Stream {
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
    /// Never fails here (the `io::Result` is the shape every runtime crate
    /// shares: on the others the server may still hold the socket).
    pub fn into_parts(self) -> io::Result<(Stream, Bytes)> {
        let Upgraded {
            stream,
            leftover,
            slot,
        } = self;
        drop(slot);
        Ok((stream, leftover))
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.leftover.is_empty() {
            let n = dst.remaining().min(this.leftover.len());
            dst.put_slice(&this.leftover[..n]);
            this.leftover.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, dst)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

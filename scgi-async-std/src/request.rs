//! One request: reading its head, its body, writing its response, and
//! finishing the connection. Every decision (how much to read, which
//! deadline applies, what to answer, how to close) is
//! [`scgi_proto::server::Connection`]'s; this module carries them out on
//! the socket.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_channel::{Receiver, Sender};
use async_io::Timer;
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, future};
use scgi_proto::server::{Connection, Describe, Drain, Ending, HeadStep, Outcome, Reply, Then};
use scgi_proto::{EncodeError, Head, Headers, ResponseHead};

use crate::net::{Addr, Stream};
use crate::server::{Accepted, Slot};

/// Response bytes are gathered up to this size before a write, so that a
/// head and a short body leave in one segment and a failure before the
/// first write can still become a clean 500.
const OUT_CAP: usize = 8 * 1024;

/// Room made for each socket read of [`Request::chunk`].
const CHUNK_READ: usize = 16 * 1024;

/// Runs `fut` until `deadline` (`None`: no deadline); `None` if it passed.
async fn until<T>(deadline: Option<Instant>, fut: impl Future<Output = T>) -> Option<T> {
    let timer = deadline.map_or_else(Timer::never, Timer::at);
    future::or(async { Some(fut.await) }, async {
        timer.await;
        None
    })
    .await
}

/// The deadline of one wait of a read or a write: armed when the operation
/// first has to wait, disarmed when it completes. This is how the body
/// idle and write timeouts apply to `poll_read` and `poll_write`.
#[derive(Debug)]
struct Wait {
    timer: Timer,
    armed: bool,
}

impl Wait {
    fn new() -> Wait {
        Wait {
            timer: Timer::never(),
            armed: false,
        }
    }

    /// Whether the armed deadline has passed (then it is disarmed: a
    /// retried operation waits afresh).
    fn passed(&mut self, cx: &mut Context<'_>) -> bool {
        if self.armed && Pin::new(&mut self.timer).poll(cx).is_ready() {
            self.armed = false;
            return true;
        }
        false
    }

    /// The operation is pending: arms the deadline `deadline(now)` gives,
    /// unless armed already, and says whether it has passed (if not, the
    /// timer will wake the task).
    fn pending(
        &mut self,
        cx: &mut Context<'_>,
        deadline: impl FnOnce(Instant) -> Option<Instant>,
    ) -> bool {
        if !self.armed {
            let Some(at) = deadline(Instant::now()) else {
                return false;
            };
            self.timer.set_at(at);
            self.armed = true;
        }
        self.passed(cx)
    }

    /// The operation completed. A disarmed timer may still fire once: a
    /// spurious wake-up.
    fn done(&mut self) {
        self.armed = false;
    }
}

/// Reads and validates a connection's head under the head deadline.
/// Answers a malformed or stalled head itself and returns `None`, as for a
/// connection closed before its first byte.
pub(crate) async fn read_head(accepted: Accepted) -> Option<(Request, Receiver<Finish>)> {
    let Accepted {
        stream,
        peer,
        slot,
        mut conn,
    } = accepted;
    let mut buf = Vec::new();
    let mut reader: &Stream = &stream;
    let end = loop {
        let room = match conn.decode_head(&buf) {
            HeadStep::Ready(head) => {
                return Some(Request::new(stream, peer, buf, head, conn, slot));
            }
            HeadStep::Read { room } => room,
            HeadStep::End(end) => break end,
        };
        let len = buf.len();
        buf.resize(len + room, 0);
        let read = until(conn.head_deadline(), reader.read(&mut buf[len..])).await;
        buf.truncate(len + read.as_ref().and_then(|r| r.as_ref().ok()).unwrap_or(&0));
        match read {
            None => break conn.head_timed_out(),
            Some(Ok(0)) => break conn.head_eof(),
            Some(Ok(_)) => {}
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Some(Err(e)) => {
                log::debug!("{peer}: reading the request head: {e}");
                return None;
            }
        }
    };
    end.log(&peer);
    let _ = settle(&stream, &peer, &conn, end.ending(), &[]).await;
    None
}

/// Carries out `ending`: sends what its reply says (`buffered` is the
/// response the request still holds), then closes as it says. Returns
/// how sending went.
async fn settle(
    stream: &Stream,
    peer: &Addr,
    conn: &Connection<Instant>,
    ending: Ending,
    buffered: &[u8],
) -> io::Result<()> {
    let answer;
    let reply = match ending.reply {
        Reply::Nothing => &[][..],
        Reply::Buffered => buffered,
        Reply::NoContent => scgi_proto::NO_CONTENT,
        Reply::Answer(a) => {
            answer = a.to_vec();
            &answer
        }
    };
    if !reply.is_empty() {
        let mut writer = stream;
        let sent = until(conn.write_deadline(Instant::now()), writer.write_all(reply))
            .await
            .unwrap_or_else(|| Err(write_timed_out()));
        if let Err(e) = sent {
            log::debug!("{peer}: sending the response: {e}");
            return Err(e);
        }
    }
    match ending.then {
        Then::Close => {}
        Then::CloseUnlessPending if matches!(stream.has_pending_input(), Ok(false)) => {}
        Then::CloseUnlessPending | Then::Drain => {
            drain(stream, peer, conn.start_drain(Instant::now())).await;
        }
        Then::HalfClose => {
            let _ = stream.shutdown(Shutdown::Write);
        }
        Then::Reset => stream.set_abortive_close(),
    }
    Ok(())
}

/// Ends our side, then reads and discards what the peer still sends until
/// it closes, within `bounds` (see [`Then::Drain`]).
async fn drain(stream: &Stream, peer: &Addr, bounds: Drain<Instant>) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let mut reader = stream;
    let mut total = 0u64;
    let closed = until(bounds.deadline, async {
        let mut scratch = [0u8; 8 * 1024];
        while total < bounds.limit {
            match reader.read(&mut scratch).await {
                Ok(0) => return true,
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        false
    })
    .await;
    if closed != Some(true) {
        log::debug!("{peer}: stopped draining after {total} bytes; closing");
    }
}

/// A request whose head is read and validated: its headers, its body (read
/// it through [`AsyncRead`]) and its response (write it through
/// [`AsyncWrite`]); both are the `futures-io` traits, so
/// `futures_lite::{AsyncReadExt, AsyncWriteExt}` (or `futures::io`'s) work on
/// it.
///
/// - Reading yields exactly `CONTENT_LENGTH` bytes, then end of input. A
///   peer that closes early makes a read fail with
///   [`UnexpectedEof`](io::ErrorKind::UnexpectedEof); one that stalls
///   longer than [`body_timeout`](crate::Config::body_timeout), with
///   [`TimedOut`](io::ErrorKind::TimedOut).
/// - Writes are gathered in an 8 KiB buffer and sent when it fills, on
///   [`flush`](AsyncWriteExt::flush), and when the request finishes. Each
///   write may wait at most
///   [`write_timeout`](crate::Config::write_timeout) for the peer. Start
///   with a head:
///   [`write_status_ok_text_content`](Request::write_status_ok_text_content)
///   or [`write_head`](Request::write_head).
/// - The request finishes when dropped: it goes back to the connection's
///   task, which sends the rest of the response (or a fallback) and closes
///   the connection (see [`Server::run`](crate::Server::run)). Call
///   [`finish`](Request::finish) instead to do that in place and see its
///   errors.
///
/// A `Request` is `Send + 'static`: a handler may move it into a task of its
/// own; the connection ends when it is dropped.
pub struct Request {
    stream: Option<Arc<Stream>>,
    peer: Addr,
    /// The header netstring at `..head.wire_len()`, then bytes read past it.
    buf: Vec<u8>,
    head: Head,
    /// Start of the unread bytes in `buf`: body, then whatever followed it.
    pos: usize,
    /// Where [`Request::chunk`] reads body pieces from the socket.
    rest: BytesMut,
    conn: Connection<Instant>,
    out: Vec<u8>,
    /// How much of `out` is already sent.
    out_pos: usize,
    read_wait: Wait,
    write_wait: Wait,
    slot: Option<Slot>,
    /// Where the request goes when dropped: its connection's task.
    ret: Sender<Finish>,
    /// Whether a handler or [`Server::next`](crate::Server::next) took it.
    pub(crate) taken: bool,
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

impl Request {
    fn new(
        stream: Arc<Stream>,
        peer: Addr,
        buf: Vec<u8>,
        head: Head,
        conn: Connection<Instant>,
        slot: Slot,
    ) -> (Request, Receiver<Finish>) {
        let (ret, back) = async_channel::bounded(1);
        let req = Request {
            stream: Some(stream),
            peer,
            pos: head.wire_len(),
            buf,
            head,
            rest: BytesMut::new(),
            conn,
            out: Vec::new(),
            out_pos: 0,
            read_wait: Wait::new(),
            write_wait: Wait::new(),
            slot: Some(slot),
            ret,
            taken: false,
        };
        (req, back)
    }

    /// The request's headers: the CGI variables the web server sent, with
    /// typed accessors ([`method`](Headers::method),
    /// [`path`](Headers::path), [`query_string`](Headers::query_string),
    /// [`http`](Headers::http), ...).
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
        self.conn.body_remaining()
    }

    /// The address of the peer: the web server, not the HTTP client (that
    /// one is [`Headers::remote_addr`]).
    #[must_use]
    pub fn peer_addr(&self) -> &Addr {
        &self.peer
    }

    /// Writes `Status: 200 OK` and `Content-Type: <content_type>`: the head
    /// of the most common response (Nim's `writeStatusOkTextContent`). A
    /// content type with CR or LF is refused
    /// ([`InvalidInput`](io::ErrorKind::InvalidInput)) and nothing is
    /// written.
    pub async fn write_status_ok_text_content(&mut self, content_type: &str) -> io::Result<()> {
        self.write_head(200, &[("Content-Type", content_type)])
            .await
    }

    /// Writes a response head: `Status: <status> <reason>` and `headers` in
    /// order, as one write. A status or header the writer refuses (1xx
    /// other than 101, CR or LF in a value, a `Status` header) gives
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) and writes nothing.
    pub async fn write_head(&mut self, status: u16, headers: &[(&str, &str)]) -> io::Result<()> {
        self.write_response_head(ResponseHead::new(status).headers(headers))
            .await
    }

    /// Writes a response head built with [`ResponseHead`] (a custom reason
    /// phrase, say), as one write.
    pub async fn write_response_head(&mut self, head: ResponseHead<'_>) -> io::Result<()> {
        let mut stack = [0u8; 512];
        match head.encode(&mut stack) {
            Ok(n) => self.write_all(&stack[..n]).await,
            Err(EncodeError::BufferTooSmall { .. }) => self.write_all(&head.to_vec()?).await,
            Err(e) => Err(e.into()),
        }
    }

    /// The next piece of the body, or `None` at its end, as a [`Bytes`]:
    /// read from the socket into a buffer that is handed out without a
    /// copy (the bytes that came with the head are copied once). Fails as
    /// reading through [`AsyncRead`] does.
    ///
    /// ```no_run
    /// # async fn f(mut req: scgi_async_std::Request) -> std::io::Result<()> {
    /// let mut total = 0;
    /// while let Some(piece) = req.chunk().await? {
    ///     total += piece.len(); // or send it on, keep it, ...
    /// }
    /// assert_eq!(total as u64, req.content_length());
    /// # Ok(()) }
    /// ```
    pub async fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// [`chunk`](Request::chunk) as a poll function.
    pub(crate) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        let remaining = self.conn.body_remaining();
        if remaining == 0 {
            return Poll::Ready(Ok(None));
        }
        if self.pos < self.buf.len() {
            let avail = &self.buf[self.pos..];
            let n = self.conn.body(avail);
            let piece = Bytes::copy_from_slice(&avail[..n]);
            self.pos += n;
            return Poll::Ready(Ok(Some(piece)));
        }
        let want = usize::try_from(remaining).map_or(CHUNK_READ, |r| r.min(CHUNK_READ));
        let mut rest = std::mem::take(&mut self.rest);
        rest.resize(want, 0);
        let read = self.poll_read_socket(cx, &mut rest);
        if let Poll::Ready(Ok(n)) = read {
            rest.truncate(n);
            let piece = rest.split().freeze();
            self.rest = rest;
            return Poll::Ready(Ok(Some(piece)));
        }
        rest.clear();
        self.rest = rest;
        read.map_ok(|_| None)
    }

    /// One read of body bytes from the socket into `dst` (at most what the
    /// body has left), under the body deadline; end of input inside the
    /// body is an error.
    fn poll_read_socket(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let Some(stream) = self.stream.as_deref() else {
            return Poll::Ready(Err(upgraded_error()));
        };
        let max =
            usize::try_from(self.conn.body_remaining()).map_or(dst.len(), |r| r.min(dst.len()));
        let Poll::Ready(read) = Pin::new(&mut &*stream).poll_read(cx, &mut dst[..max]) else {
            let conn = &self.conn;
            if self.read_wait.pending(cx, |now| conn.body_deadline(now)) {
                let e = self.conn.body_timed_out();
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, e)));
            }
            return Poll::Pending;
        };
        self.read_wait.done();
        Poll::Ready(match read {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                self.conn.body_eof(),
            )),
            Ok(n) => {
                // Bookkeeping only: the read was bounded by the body.
                let _ = self.conn.body(&dst[..n]);
                Ok(n)
            }
            Err(e) => Err(e),
        })
    }

    /// An owned copy of the header netstring (for an `http::Request`'s
    /// extensions).
    #[cfg(feature = "tower")]
    pub(crate) fn scgi_headers(&self) -> scgi_proto::http::ScgiHeaders {
        scgi_proto::http::ScgiHeaders::new(&self.head, &self.buf)
    }

    /// Takes the connection as a raw byte stream after a
    /// `101 Switching Protocols` head (nginx tunnels the connection after
    /// it): sends what is buffered, and returns the stream with the bytes
    /// that followed the request. The body must be read first.
    ///
    /// The [`Upgraded`] stream has no timeouts. The server no longer
    /// touches the connection; it counts as open until the [`Upgraded`] is
    /// dropped, and a server shutdown past its deadline shuts it down.
    pub async fn upgrade(&mut self) -> io::Result<Upgraded> {
        let remaining = self.body_remaining();
        if remaining != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("read the body before upgrading ({remaining} bytes left)"),
            ));
        }
        self.flush().await?;
        let stream = self.stream.take().ok_or_else(upgraded_error)?;
        let leftover = self.buf.split_off(self.pos);
        Ok(Upgraded {
            stream,
            leftover,
            pos: 0,
            _slot: self.slot.take(),
        })
    }

    /// [`upgrade`](Request::upgrade), consuming the request.
    pub async fn into_upgraded(mut self) -> io::Result<Upgraded> {
        self.upgrade().await
    }

    /// Finishes the request now, in the caller's task, as dropping it does
    /// in the connection's task, and returns the error of the last write,
    /// if any.
    pub async fn finish(mut self) -> io::Result<()> {
        match self.take_finish() {
            Some(finish) => finish.complete(Outcome::Done).await,
            None => Ok(()),
        }
    }

    /// Moves the connection's state out, for finishing.
    fn take_finish(&mut self) -> Option<Finish> {
        let stream = self.stream.take()?;
        let mut out = std::mem::take(&mut self.out);
        out.drain(..self.out_pos);
        Some(Finish {
            stream,
            peer: self.peer.clone(),
            read_to_end: self.pos == self.buf.len(),
            buf: std::mem::take(&mut self.buf),
            head: self.head,
            out,
            conn: self.conn.clone(),
            _slot: self.slot.take(),
            panicked: std::thread::panicking(),
            taken: self.taken,
        })
    }

    /// Sends what is gathered in `out`.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let data = &self.out[self.out_pos..];
            let sent = poll_send(
                self.stream.as_deref(),
                &mut self.conn,
                &mut self.write_wait,
                cx,
                data,
            );
            match ready!(sent) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.out_pos += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

/// One write of a request's response to its socket, under the write
/// deadline: armed when a write first has to wait, and checked before the
/// write is retried, so that the few bytes a stalled peer's socket takes
/// when the timer wakes the task do not count as progress (and re-arm it).
fn poll_send(
    stream: Option<&Stream>,
    conn: &mut Connection<Instant>,
    wait: &mut Wait,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    let Some(stream) = stream else {
        return Poll::Ready(Err(upgraded_error()));
    };
    if wait.passed(cx) {
        return Poll::Ready(Err(write_timed_out()));
    }
    let Poll::Ready(result) = Pin::new(&mut &*stream).poll_write(cx, data) else {
        return if wait.pending(cx, |now| conn.write_deadline(now)) {
            Poll::Ready(Err(write_timed_out()))
        } else {
            Poll::Pending
        };
    };
    wait.done();
    if matches!(result, Ok(n) if n > 0) {
        conn.sent();
    }
    Poll::Ready(result)
}

fn write_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the peer took no response data within the write timeout",
    )
}

fn upgraded_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was upgraded or finished",
    )
}

impl AsyncRead for Request {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let remaining = this.conn.body_remaining();
        if remaining == 0 || dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Bytes read along with the head come first.
        if this.pos < this.buf.len() {
            let avail = &this.buf[this.pos..];
            let avail = &avail[..dst.len().min(avail.len())];
            let n = this.conn.body(avail);
            dst[..n].copy_from_slice(&avail[..n]);
            this.pos += n;
            return Poll::Ready(Ok(n));
        }
        this.poll_read_socket(cx, dst)
    }
}

impl AsyncWrite for Request {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.stream.is_none() {
            return Poll::Ready(Err(upgraded_error()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        this.conn.wrote();
        if this.out.len() + data.len() > OUT_CAP {
            ready!(this.poll_flush_out(cx))?;
        }
        if data.len() < OUT_CAP {
            this.out.extend_from_slice(data);
            return Poll::Ready(Ok(data.len()));
        }
        // A large write goes straight out (`out` is empty now).
        poll_send(
            this.stream.as_deref(),
            &mut this.conn,
            &mut this.write_wait,
            cx,
            data,
        )
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_out(cx)
    }

    /// Flushes. The connection itself closes when the request finishes.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_out(cx)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if let Some(finish) = self.take_finish() {
            // Fails only when the connection's task is gone (cancelled at
            // a forced shutdown): the connection then just closes.
            let _ = self.ret.try_send(finish);
        }
    }
}

/// A request's connection on its way to being finished: what the
/// [`Request`] leaves to its connection's task when dropped.
pub(crate) struct Finish {
    stream: Arc<Stream>,
    peer: Addr,
    buf: Vec<u8>,
    head: Head,
    /// The response bytes not sent yet.
    out: Vec<u8>,
    conn: Connection<Instant>,
    /// Released when the connection is finished.
    _slot: Option<Slot>,
    /// Dropped while its thread was panicking (a handler panicked).
    panicked: bool,
    taken: bool,
    /// Whether every byte read was handed out (nothing past the body).
    read_to_end: bool,
}

impl Finish {
    /// `METHOD URI` for log lines.
    pub(crate) fn describe(&self) -> Describe<'_> {
        Describe(self.head.headers(&self.buf))
    }

    /// Sends the response's end (or a fallback) and closes the connection.
    pub(crate) async fn complete(mut self, outcome: Outcome) -> io::Result<()> {
        let outcome = match outcome {
            // Queued for `Server::next` and never taken: the server was
            // closed or dropped first.
            _ if !self.taken => Outcome::Unserved,
            Outcome::Done if self.panicked => Outcome::Failed,
            outcome => outcome,
        };
        let ending = self.conn.end(outcome, self.read_to_end);
        settle(&self.stream, &self.peer, &self.conn, ending, &self.out).await
    }
}

/// A connection taken over after a `101` response (see
/// [`Request::upgrade`]): reads give the bytes that followed the request,
/// then the socket's; writes go to the socket unbuffered; closing shuts
/// down the sending side.
#[derive(Debug)]
pub struct Upgraded {
    stream: Arc<Stream>,
    leftover: Vec<u8>,
    pos: usize,
    _slot: Option<Slot>,
}

impl Upgraded {
    /// The socket, for shutdown and addresses (`&Stream` also reads and
    /// writes, bypassing [`leftover`](Upgraded::leftover)).
    #[must_use]
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Bytes that followed the request and have not been read through
    /// this `Upgraded` yet.
    #[must_use]
    pub fn leftover(&self) -> &[u8] {
        &self.leftover[self.pos..]
    }

    /// The socket and the unread bytes that followed the request, for code
    /// that wants to own them. The connection no longer counts against
    /// [`max_connections`](crate::Config::max_connections) nor delays
    /// shutdown. Fails only if the server still holds the socket and it
    /// cannot be duplicated.
    pub fn into_parts(mut self) -> io::Result<(Stream, Bytes)> {
        // The server's handle on the socket (for a forced shutdown) goes
        // with the slot.
        drop(self._slot.take());
        let leftover = Bytes::from(std::mem::take(&mut self.leftover)).slice(self.pos..);
        let stream = Arc::try_unwrap(self.stream).or_else(|shared| shared.try_clone())?;
        Ok((stream, leftover))
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pos < this.leftover.len() {
            let n = dst.len().min(this.leftover.len() - this.pos);
            dst[..n].copy_from_slice(&this.leftover[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut &*this.stream).poll_read(cx, dst)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.stream).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.stream).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.stream).poll_close(cx)
    }
}

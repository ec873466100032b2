//! One request: reading its head, its body, writing its response, and
//! finishing the connection.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use async_io::Timer;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, future};
use scgi_proto::{Decoder, EncodeError, Head, Headers, ResponseHead, Step};

use crate::config::Config;
use crate::net::{Addr, Stream};
use crate::server::{Conn, Slot};

/// Reads per call while the head is incomplete: at least a typical head
/// (nginx and Apache send 0.4-1 KiB), at most this much past it.
const HEAD_READ_MIN: usize = 2 * 1024;
const HEAD_READ_MAX: usize = 16 * 1024;

/// Response bytes are gathered up to this size before a write, so that a
/// head and a short body leave in one segment and a failure before the
/// first write can still become a clean 500.
const OUT_CAP: usize = 8 * 1024;

// What the server sends for a handler that wrote nothing.
use scgi_proto::NO_CONTENT;

/// How a handler ended, for [`Finish::complete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    Failed,
}

/// Runs `fut`, failing with [`TimedOut`](io::ErrorKind::TimedOut) after `limit`.
async fn timeout<T>(
    limit: Duration,
    what: &'static str,
    fut: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    future::or(fut, async {
        Timer::after(limit).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, what))
    })
    .await
}

/// The wait of one read or write: armed when the operation first has to
/// wait, disarmed when it makes progress. This is how the body idle and
/// write timeouts apply to `poll_read` and `poll_write`.
#[derive(Debug)]
struct Idle {
    timer: Timer,
    armed: bool,
    limit: Duration,
}

impl Idle {
    fn new(limit: Duration) -> Idle {
        Idle {
            timer: Timer::never(),
            armed: false,
            limit,
        }
    }

    /// Called when the operation is pending: whether it has now waited
    /// too long (if not, the timer will wake the task).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.armed {
            self.timer.set_after(self.limit);
            self.armed = true;
        }
        if Pin::new(&mut self.timer).poll(cx).is_ready() {
            self.armed = false;
            return true;
        }
        false
    }

    fn reset(&mut self) {
        // A disarmed timer may still fire once: a spurious wake-up, after
        // which `expired` arms it afresh.
        self.armed = false;
    }
}

/// Reads and validates a connection's head under the head timeout. Answers
/// a malformed or stalled head itself and returns `None`, as for a
/// connection closed before its first byte.
pub(crate) async fn read_head(
    conn: Conn,
    config: &Arc<Config>,
) -> Option<(Request, Receiver<Finish>)> {
    let Conn { stream, peer, slot } = conn;
    let mut deadline = Timer::at(Instant::now() + config.head_timeout);
    let mut decoder = Decoder::with_config(config.proto);
    let mut buf = Vec::with_capacity(HEAD_READ_MIN);
    let mut reader: &Stream = &stream;
    loop {
        let needed = match decoder.decode(&buf) {
            Ok(Step::Head(head)) => {
                return Some(Request::new(
                    Arc::clone(&stream),
                    peer,
                    buf,
                    head,
                    decoder,
                    config,
                    slot,
                ));
            }
            Ok(Step::Partial { needed }) => needed,
            // The decoder reports the head before any body step.
            Ok(Step::Body(_) | Step::End) => return None,
            Err(e) => {
                log::warn!("{peer}: bad request: {e}");
                answer(&stream, &error_response(e.status_hint(), &e), config).await;
                return None;
            }
        };
        let len = buf.len();
        buf.resize(len + needed.clamp(HEAD_READ_MIN, HEAD_READ_MAX), 0);
        let read = future::or(async { Some(reader.read(&mut buf[len..]).await) }, async {
            (&mut deadline).await;
            None
        })
        .await;
        buf.truncate(len + read.as_ref().and_then(|r| r.as_ref().ok()).unwrap_or(&0));
        match read {
            None => {
                head_timed_out(&stream, &peer, &buf, config).await;
                return None;
            }
            Some(Ok(0)) => {
                match decoder.finish() {
                    // Apache opens and closes a connection without a byte
                    // when it answers a chunked request (411) itself.
                    Ok(_) => log::debug!("{peer}: closed before the first byte"),
                    Err(e) => {
                        log::warn!("{peer}: bad request: {e}");
                        answer(&stream, &error_response(e.status_hint(), &e), config).await;
                    }
                }
                return None;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Some(Err(e)) => {
                log::debug!("{peer}: reading the request head: {e}");
                return None;
            }
        }
    }
}

async fn head_timed_out(stream: &Stream, peer: &Addr, buf: &[u8], config: &Config) {
    if buf.is_empty() {
        log::debug!("{peer}: no request within the head timeout; closing");
        return;
    }
    log::info!(
        "{peer}: request head incomplete after the head timeout ({} bytes); closing",
        buf.len()
    );
    // No draining: the peer is the one stalling. Best effort, bounded by
    // the write timeout.
    let response = error_response(408, &"request head not received in time");
    let mut writer = stream;
    let _ = timeout(
        config.write_timeout,
        "write timed out",
        writer.write_all(&response),
    )
    .await;
    let _ = stream.shutdown(Shutdown::Write);
}

/// A complete plain-text error response (scgi-proto formats it), built
/// whole so it leaves in one write. Only valid statuses are passed here.
fn error_response(status: u16, detail: &dyn fmt::Display) -> Vec<u8> {
    scgi_proto::error_response(status, detail).unwrap_or_default()
}

/// Sends `response` under the write timeout.
async fn send(stream: &Stream, response: &[u8], config: &Config) -> io::Result<()> {
    let mut writer = stream;
    timeout(
        config.write_timeout,
        "response write timed out",
        writer.write_all(response),
    )
    .await
}

/// Sends `response`, then closes politely.
async fn answer(stream: &Stream, response: &[u8], config: &Config) {
    match send(stream, response, config).await {
        Ok(()) => linger(stream, config).await,
        Err(e) => log::debug!("sending an error response: {e}"),
    }
}

/// Ends our side, then reads and discards what the peer still sends until
/// it closes, within the drain bounds: closing a socket with unread input
/// sends RST, and the peer may then lose the response (SCGI.md).
async fn linger(stream: &Stream, config: &Config) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let mut reader = stream;
    let mut total = 0u64;
    let drain = async {
        let mut scratch = [0u8; 8 * 1024];
        while total < config.drain_limit {
            match reader.read(&mut scratch).await {
                Ok(0) => return true,
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        false
    };
    let closed = future::or(drain, async {
        Timer::after(config.drain_timeout).await;
        false
    })
    .await;
    if !closed {
        log::debug!("stopped draining after {total} bytes; closing");
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
///   longer than [`body_timeout`](Config::body_timeout), with
///   [`TimedOut`](io::ErrorKind::TimedOut).
/// - Writes are gathered in an 8 KiB buffer and sent when it fills, on
///   [`flush`](AsyncWriteExt::flush), and when the request finishes. Each
///   write may wait at most [`write_timeout`](Config::write_timeout). Start
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
    /// In its body state: counts body bytes.
    decoder: Decoder,
    out: Vec<u8>,
    /// How much of `out` is already sent.
    out_pos: usize,
    /// Whether the handler wrote anything.
    written: bool,
    /// Whether response bytes may have reached the socket.
    sent: bool,
    /// The status to answer a failure with when the body could not be read.
    body_status: Option<u16>,
    read_idle: Idle,
    write_idle: Idle,
    config: Arc<Config>,
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
        decoder: Decoder,
        config: &Arc<Config>,
        slot: Slot,
    ) -> (Request, Receiver<Finish>) {
        let (ret, back) = async_channel::bounded(1);
        let req = Request {
            stream: Some(stream),
            peer,
            pos: head.wire_len(),
            buf,
            head,
            decoder,
            out: Vec::new(),
            out_pos: 0,
            written: false,
            sent: false,
            body_status: None,
            read_idle: Idle::new(config.body_timeout),
            write_idle: Idle::new(config.write_timeout),
            config: Arc::clone(config),
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
        self.decoder.remaining_body().unwrap_or(0)
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
        let head = ResponseHead::new(status).headers(headers);
        let mut stack = [0u8; 512];
        match head.encode(&mut stack) {
            Ok(n) => self.write_all(&stack[..n]).await,
            Err(EncodeError::BufferTooSmall { .. }) => self.write_all(&head.to_vec()?).await,
            Err(e) => Err(e.into()),
        }
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
        let read_to_end = self.body_remaining() == 0 && self.pos == self.buf.len();
        Some(Finish {
            stream,
            peer: self.peer.clone(),
            buf: std::mem::take(&mut self.buf),
            head: self.head,
            out: std::mem::take(&mut self.out),
            out_pos: self.out_pos,
            written: self.written,
            sent: self.sent,
            body_status: self.body_status,
            config: Arc::clone(&self.config),
            slot: self.slot.take(),
            panicked: std::thread::panicking(),
            taken: self.taken,
            read_to_end,
        })
    }

    /// Sends what is gathered in `out`.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(stream) = self.stream.as_deref() else {
            return Poll::Ready(Err(upgraded_error()));
        };
        while self.out_pos < self.out.len() {
            self.sent = true;
            match Pin::new(&mut &*stream).poll_write(cx, &self.out[self.out_pos..]) {
                Poll::Ready(Ok(0)) => {
                    self.write_idle.reset();
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.write_idle.reset();
                    self.out_pos += n;
                }
                Poll::Ready(Err(e)) => {
                    self.write_idle.reset();
                    return Poll::Ready(Err(e));
                }
                Poll::Pending if self.write_idle.expired(cx) => {
                    return Poll::Ready(Err(write_timed_out()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
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
        let remaining = this.body_remaining();
        if remaining == 0 || dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Bytes read along with the head come first.
        if this.pos < this.buf.len() {
            let take = dst.len().min(this.buf.len() - this.pos);
            let avail = &this.buf[this.pos..this.pos + take];
            let Ok(Step::Body(n)) = this.decoder.decode(avail) else {
                return Poll::Ready(Ok(0));
            };
            dst[..n].copy_from_slice(&avail[..n]);
            this.pos += n;
            return Poll::Ready(Ok(n));
        }
        let Some(stream) = this.stream.as_deref() else {
            return Poll::Ready(Err(upgraded_error()));
        };
        let max = usize::try_from(remaining).map_or(dst.len(), |r| r.min(dst.len()));
        let read = Pin::new(&mut &*stream).poll_read(cx, &mut dst[..max]);
        if read.is_pending() {
            if this.read_idle.expired(cx) {
                this.body_status = Some(408);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request body data within the body timeout",
                )));
            }
            return Poll::Pending;
        }
        this.read_idle.reset();
        Poll::Ready(match ready!(read) {
            Ok(0) => match this.decoder.finish() {
                Ok(_) => Ok(0),
                Err(e) => {
                    this.body_status = Some(e.status_hint());
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, e))
                }
            },
            Ok(n) => {
                // Bookkeeping only: `n` is within the body.
                let _ = this.decoder.decode(&dst[..n]);
                Ok(n)
            }
            Err(e) => Err(e),
        })
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
        this.written = true;
        if this.out.len() + data.len() > OUT_CAP {
            ready!(this.poll_flush_out(cx))?;
        }
        if data.len() < OUT_CAP {
            this.out.extend_from_slice(data);
            return Poll::Ready(Ok(data.len()));
        }
        // A large write goes straight out (`out` is empty now).
        let Some(stream) = this.stream.as_deref() else {
            return Poll::Ready(Err(upgraded_error()));
        };
        this.sent = true;
        match Pin::new(&mut &*stream).poll_write(cx, data) {
            Poll::Ready(result) => {
                this.write_idle.reset();
                Poll::Ready(result)
            }
            Poll::Pending if this.write_idle.expired(cx) => Poll::Ready(Err(write_timed_out())),
            Poll::Pending => Poll::Pending,
        }
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
    out: Vec<u8>,
    out_pos: usize,
    written: bool,
    sent: bool,
    body_status: Option<u16>,
    config: Arc<Config>,
    slot: Option<Slot>,
    /// Dropped while its thread was panicking (a handler panicked).
    panicked: bool,
    taken: bool,
    /// Whether the request was read to its end with no byte past it: then,
    /// with nothing pending on the socket either, closing cannot send RST
    /// and the connection closes without lingering.
    read_to_end: bool,
}

impl Finish {
    /// `METHOD URI` for log lines.
    pub(crate) fn describe(&self) -> String {
        let h = self.head.headers(&self.buf);
        format!(
            "{} {}",
            h.method().unwrap_or("-"),
            h.request_uri().unwrap_or(b"-").escape_ascii()
        )
    }

    /// Sends the response's end (or a fallback) and closes the connection.
    pub(crate) async fn complete(self, outcome: Outcome) -> io::Result<()> {
        let stream = &*self.stream;
        let config = &*self.config;
        let result = if !self.taken {
            // Queued for `Server::next` and never taken: the server was
            // closed or dropped first.
            let detail = "the server shut down before handling the request";
            send(stream, &error_response(503, &detail), config).await
        } else if outcome == Outcome::Done && !self.panicked {
            let rest = if self.written {
                &self.out[self.out_pos..]
            } else {
                NO_CONTENT
            };
            send(stream, rest, config).await
        } else if self.sent {
            // Part of the response is out; ending it cleanly would pass a
            // truncated response off as complete.
            stream.set_abortive_close();
            return Ok(());
        } else {
            let status = self.body_status.unwrap_or(500);
            let detail = match status {
                500 => "the handler failed",
                408 => "request body not received in time",
                _ => "request body incomplete",
            };
            send(stream, &error_response(status, &detail), config).await
        };
        match &result {
            // Nothing unread: close at once rather than wait for the peer's
            // close (a task held per request for nothing).
            Ok(()) if self.read_to_end && matches!(stream.has_pending_input(), Ok(false)) => {}
            Ok(()) => linger(stream, config).await,
            Err(e) => log::debug!("{}: sending the response: {e}", self.peer),
        }
        drop(self.slot);
        result
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

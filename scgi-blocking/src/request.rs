//! One request: reading its head, its body, writing its response, and
//! finishing the connection.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use scgi_proto::{Decoder, Head, Headers, Step};

use crate::config::{Config, nonzero};
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

/// How a handler ended, for [`Request::complete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    Failed,
}

/// A request whose head is read and validated: its headers, its body (read
/// it through [`io::Read`]) and its response (write it through
/// [`io::Write`]).
///
/// - Reading yields exactly `CONTENT_LENGTH` bytes, then end of input. A
///   peer that closes early makes a read fail with
///   [`UnexpectedEof`](io::ErrorKind::UnexpectedEof); one that stalls
///   longer than [`body_timeout`](Config::body_timeout), with
///   [`TimedOut`](io::ErrorKind::TimedOut).
/// - Writes are gathered in an 8 KiB buffer and sent when it fills, on
///   [`flush`](Write::flush), and when the request finishes. Start with a
///   head: [`write_status_ok_text_content`](Request::write_status_ok_text_content)
///   or [`write_head`](Request::write_head).
/// - The request finishes when dropped (or with [`finish`](Request::finish)
///   to see errors): see [`Server::run`](crate::Server::run) for what the
///   server sends and how it closes.
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
    /// Whether the handler wrote anything.
    written: bool,
    /// Whether response bytes reached the socket.
    sent: bool,
    /// The status to answer a failure with when the body could not be read.
    body_status: Option<u16>,
    /// Whether the socket's read timeout is the body timeout yet (set on
    /// the first body read from the socket: most bodies come with the head,
    /// or are empty).
    body_timeout_set: bool,
    done: bool,
    config: Arc<Config>,
    slot: Option<Slot>,
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

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads and validates a connection's head under the head timeout. Answers
/// a malformed or stalled head itself and returns `None`, as for a
/// connection closed before its first byte.
pub(crate) fn read_head(conn: Conn, config: &Arc<Config>) -> Option<Request> {
    let Conn { stream, peer, slot } = conn;
    if let Err(e) = stream.set_write_timeout(Some(nonzero(config.write_timeout))) {
        log::debug!("{peer}: {e}");
        return None;
    }
    let deadline = Instant::now() + config.head_timeout;
    let mut decoder = Decoder::with_config(config.proto);
    let mut buf = Vec::with_capacity(HEAD_READ_MIN);
    loop {
        let needed = match decoder.decode(&buf) {
            Ok(Step::Head(head)) => {
                return Some(Request::new(stream, peer, buf, head, decoder, config, slot));
            }
            Ok(Step::Partial { needed }) => needed,
            // The decoder reports the head before any body step.
            Ok(Step::Body(_) | Step::End) => return None,
            Err(e) => {
                log::warn!("{peer}: bad request: {e}");
                answer(&stream, &error_response(e.status_hint(), &e), config);
                return None;
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            head_timed_out(&stream, &peer, &buf);
            return None;
        }
        if let Err(e) = stream.set_read_timeout(Some(nonzero(left))) {
            log::debug!("{peer}: {e}");
            return None;
        }
        let len = buf.len();
        buf.resize(len + needed.clamp(HEAD_READ_MIN, HEAD_READ_MAX), 0);
        let read = (&*stream).read(&mut buf[len..]);
        buf.truncate(len + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => {
                match decoder.finish() {
                    // Apache opens and closes a connection without a byte
                    // when it answers a chunked request (411) itself.
                    Ok(_) => log::debug!("{peer}: closed before the first byte"),
                    Err(e) => {
                        log::warn!("{peer}: bad request: {e}");
                        answer(&stream, &error_response(e.status_hint(), &e), config);
                    }
                }
                return None;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                head_timed_out(&stream, &peer, &buf);
                return None;
            }
            Err(e) => {
                log::debug!("{peer}: reading the request head: {e}");
                return None;
            }
        }
    }
}

fn head_timed_out(stream: &Stream, peer: &Addr, buf: &[u8]) {
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
    let _ = (&*stream).write_all(&error_response(408, &"request head not received in time"));
    let _ = stream.shutdown(Shutdown::Write);
}

/// A complete plain-text error response (scgi-proto formats it), built
/// whole so it leaves in one write. Only valid statuses are passed here.
fn error_response(status: u16, detail: &dyn fmt::Display) -> Vec<u8> {
    scgi_proto::error_response(status, detail).unwrap_or_default()
}

/// Sends `response`, then closes politely.
fn answer(stream: &Stream, response: &[u8], config: &Config) {
    match (&*stream).write_all(response) {
        Ok(()) => linger(stream, config),
        Err(e) => log::debug!("sending an error response: {e}"),
    }
}

/// Ends our side, then reads and discards what the peer still sends until
/// it closes, within the drain bounds: closing a socket with unread input
/// sends RST, and the peer may then lose the response (SCGI.md).
fn linger(stream: &Stream, config: &Config) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + config.drain_timeout;
    let mut scratch = [0u8; 16 * 1024];
    let mut total = 0u64;
    while total < config.drain_limit {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(nonzero(left))).is_err() {
            break;
        }
        match (&*stream).read(&mut scratch) {
            Ok(0) => return,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    log::debug!("stopped draining after {total} bytes; closing");
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
    ) -> Request {
        Request {
            stream: Some(stream),
            peer,
            pos: head.wire_len(),
            buf,
            head,
            decoder,
            out: Vec::new(),
            written: false,
            sent: false,
            body_status: None,
            body_timeout_set: false,
            done: false,
            config: Arc::clone(config),
            slot: Some(slot),
        }
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
    pub fn write_status_ok_text_content(&mut self, content_type: &str) -> io::Result<()> {
        scgi_proto::write_status_ok_text_content(self, content_type)
    }

    /// Writes a response head: `Status: <status> <reason>` and `headers` in
    /// order. A status or header the writer refuses (1xx other than 101, CR
    /// or LF in a value, a `Status` header) gives
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) and writes nothing.
    pub fn write_head(&mut self, status: u16, headers: &[(&str, &str)]) -> io::Result<()> {
        scgi_proto::write_response_head(self, status, headers)
    }

    /// Takes the connection as a raw byte stream after a
    /// `101 Switching Protocols` head (nginx tunnels the connection after
    /// it): sends what is buffered, and returns the stream with the bytes
    /// that followed the request. The body must be read first.
    ///
    /// The stream keeps the write timeout and loses the read timeout (set
    /// your own on [`Upgraded::stream`]). The server no longer touches the
    /// connection; it counts as open until the [`Upgraded`] is dropped.
    pub fn upgrade(&mut self) -> io::Result<Upgraded> {
        let remaining = self.body_remaining();
        if remaining != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("read the body before upgrading ({remaining} bytes left)"),
            ));
        }
        self.flush()?;
        let stream = self.stream.take().ok_or_else(upgraded_error)?;
        stream.set_read_timeout(None)?;
        self.done = true;
        let leftover = self.buf.split_off(self.pos);
        Ok(Upgraded {
            stream,
            leftover,
            pos: 0,
            _slot: self.slot.take(),
        })
    }

    /// [`upgrade`](Request::upgrade), consuming the request.
    pub fn into_upgraded(mut self) -> io::Result<Upgraded> {
        self.upgrade()
    }

    /// Finishes the request now, as dropping it does, but returns the error
    /// of the last write, if any.
    pub fn finish(mut self) -> io::Result<()> {
        self.complete(Outcome::Done)
    }

    /// `METHOD URI` for log lines.
    pub(crate) fn describe(&self) -> String {
        let h = self.headers();
        format!(
            "{} {}",
            h.method().unwrap_or("-"),
            h.request_uri().unwrap_or(b"-").escape_ascii()
        )
    }

    /// Sends the response's end (or a fallback) and closes the connection.
    pub(crate) fn complete(&mut self, outcome: Outcome) -> io::Result<()> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        let Some(stream) = self.stream.take() else {
            return Ok(());
        };
        let result = match outcome {
            Outcome::Done => {
                if !self.written {
                    self.out.extend_from_slice(NO_CONTENT);
                }
                flush_out(&stream, &mut self.out, &mut self.sent)
            }
            Outcome::Failed if self.sent => {
                // Part of the response is out; ending it cleanly would pass
                // a truncated response off as complete.
                stream.set_abortive_close();
                return Ok(());
            }
            Outcome::Failed => {
                let status = self.body_status.unwrap_or(500);
                let detail = match status {
                    500 => "the handler failed",
                    408 => "request body not received in time",
                    _ => "request body incomplete",
                };
                (&*stream).write_all(&error_response(status, &detail))
            }
        };
        // Only bytes that arrived along with the head can be buffered
        // here; they are past the body once the body is read.
        let read_all = self.body_remaining() == 0 && self.pos == self.buf.len();
        match &result {
            // Nothing unread: close at once rather than wait for the peer's
            // close (this worker held for one more round trip of the web
            // server's event loop, on every request).
            Ok(()) if read_all && matches!(stream.has_pending_input(), Ok(false)) => {}
            Ok(()) => linger(&stream, &self.config),
            Err(e) => log::debug!("{}: sending the response: {e}", self.peer),
        }
        result
    }

    fn stream(&self) -> io::Result<&Arc<Stream>> {
        self.stream.as_ref().ok_or_else(upgraded_error)
    }
}

fn upgraded_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was upgraded or finished",
    )
}

fn flush_out(stream: &Stream, out: &mut Vec<u8>, sent: &mut bool) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    *sent = true;
    let result = (&*stream).write_all(out);
    out.clear();
    result
}

impl Read for Request {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let remaining = self.body_remaining();
        if remaining == 0 || dst.is_empty() {
            return Ok(0);
        }
        // Bytes read along with the head come first.
        if self.pos < self.buf.len() {
            let take = dst.len().min(self.buf.len() - self.pos);
            let avail = &self.buf[self.pos..self.pos + take];
            let Ok(Step::Body(n)) = self.decoder.decode(avail) else {
                return Ok(0);
            };
            dst[..n].copy_from_slice(&avail[..n]);
            self.pos += n;
            return Ok(n);
        }
        let stream = Arc::clone(self.stream()?);
        if !self.body_timeout_set {
            stream.set_read_timeout(Some(nonzero(self.config.body_timeout)))?;
            self.body_timeout_set = true;
        }
        let max = usize::try_from(remaining).map_or(dst.len(), |r| r.min(dst.len()));
        loop {
            match (&*stream).read(&mut dst[..max]) {
                Ok(0) => {
                    let e = match self.decoder.finish() {
                        Err(e) => e,
                        Ok(_) => return Ok(0),
                    };
                    self.body_status = Some(e.status_hint());
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, e));
                }
                Ok(n) => {
                    // Bookkeeping only: `n` is within the body.
                    let _ = self.decoder.decode(&dst[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    self.body_status = Some(408);
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request body data within the body timeout",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Request {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let stream = self.stream.as_ref().ok_or_else(upgraded_error)?;
        if data.is_empty() {
            return Ok(0);
        }
        self.written = true;
        if self.out.len() + data.len() > OUT_CAP {
            flush_out(stream, &mut self.out, &mut self.sent)?;
        }
        if data.len() >= OUT_CAP {
            self.sent = true;
            return (&**stream).write(data);
        }
        self.out.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let stream = self.stream.as_ref().ok_or_else(upgraded_error)?;
        flush_out(stream, &mut self.out, &mut self.sent)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        let outcome = if std::thread::panicking() {
            Outcome::Failed
        } else {
            Outcome::Done
        };
        let _ = self.complete(outcome);
    }
}

/// A connection taken over after a `101` response (see
/// [`Request::upgrade`]): reads give the bytes that followed the request,
/// then the socket's; writes go to the socket unbuffered.
#[derive(Debug)]
pub struct Upgraded {
    stream: Arc<Stream>,
    leftover: Vec<u8>,
    pos: usize,
    _slot: Option<Slot>,
}

impl Upgraded {
    /// The socket, for timeouts and shutdown (`&Stream` also reads and
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

impl Read for Upgraded {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.leftover.len() {
            let n = dst.len().min(self.leftover.len() - self.pos);
            dst[..n].copy_from_slice(&self.leftover[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        (&*self.stream).read(dst)
    }
}

impl Write for Upgraded {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        (&*self.stream).write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

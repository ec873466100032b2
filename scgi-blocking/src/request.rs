//! One request: reading its head, its body, writing its response, and
//! finishing the connection.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use scgi_proto::server::{Config, Connection, HeadStep, MIN_TIMEOUT, Outcome, Reply, Then};
use scgi_proto::{Framing, Head, Headers, NO_CONTENT, ResponseHead};

use crate::net::{Addr, Stream};
use crate::server::{Conn, Slot};

/// Response bytes are gathered up to this size before a write, so that a
/// head and a short body leave in one segment and a failure before the
/// first write can still become a clean 500.
const OUT_CAP: usize = 8 * 1024;

/// Room made for each socket read of [`Request::chunk`].
const CHUNK_READ: usize = 16 * 1024;

/// A request whose head is read and validated: its headers, its body (read
/// it through [`io::Read`]) and its response (write it through
/// [`io::Write`]).
///
/// - Reading yields exactly `CONTENT_LENGTH` bytes, then end of input. A
///   peer that closes early makes a read fail with
///   [`UnexpectedEof`](io::ErrorKind::UnexpectedEof); one that stalls
///   longer than [`body_timeout`](Config::body_timeout), with
///   [`TimedOut`](io::ErrorKind::TimedOut).
/// - [`read_body`](Request::read_body)`(limit)` reads a whole body into
///   memory, and answers `413` itself when it is larger than `limit`.
/// - [`respond`](Request::respond) sends a whole response (status,
///   headers, body, `Content-Length`, no body for `HEAD`) in one call.
/// - Writes are gathered in an 8 KiB buffer and sent when it fills, on
///   [`flush`](Write::flush), and when the request finishes. Start with a
///   head: [`write_status_ok_text_content`](Request::write_status_ok_text_content)
///   or [`write_head`](Request::write_head).
/// - A flush hands the bytes to the web server, which may hold them: to
///   stream a response (server-sent events, progress), send
///   `X-Accel-Buffering: no` in its head for nginx, which buffers
///   responses otherwise, and set `server.stream-response-body = 1` in
///   lighttpd; Apache passes pieces on as they come (DEPLOYING.md,
///   "Streamed responses").
/// - [`headers`](Request::headers) borrow the request, and writing
///   borrows it mutably: copy what the response needs (`.to_owned()`,
///   `into_owned()`) before the first write.
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
    /// The lifecycle: body bookkeeping, what the handler did, the ending.
    conn: Connection<Instant>,
    out: Vec<u8>,
    done: bool,
    slot: Option<Slot>,
    /// [`Config::access_log`].
    access_log: bool,
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

/// A socket timeout reaching `deadline` from `now` (`None`: no deadline,
/// block), never zero (which sockets refuse).
fn until(deadline: Option<Instant>, now: Instant) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(now).max(MIN_TIMEOUT))
}

/// Reads and validates a connection's head under the head timeout. Answers
/// a malformed or stalled head itself and returns `None`, as for a
/// connection closed before its first byte.
pub(crate) fn read_head(conn: Conn, config: &Config) -> Option<Request> {
    let Conn { stream, peer, slot } = conn;
    let now = Instant::now();
    let mut lc = Connection::new(config, now);
    if let Err(e) = stream.set_write_timeout(until(lc.write_deadline(now), now)) {
        log::debug!("{peer}: {e}");
        return None;
    }
    let mut buf = Vec::new();
    let end = loop {
        let room = match lc.decode_head(&buf) {
            HeadStep::Ready(head) => {
                return Some(Request {
                    stream: Some(stream),
                    peer,
                    pos: head.wire_len(),
                    buf,
                    head,
                    conn: lc,
                    out: Vec::new(),
                    done: false,
                    slot: Some(slot),
                    access_log: config.access_log,
                });
            }
            HeadStep::Read { room } => room,
            HeadStep::End(end) => break end,
        };
        let now = Instant::now();
        if lc.head_deadline().is_some_and(|d| d <= now) {
            break lc.head_timed_out();
        }
        if let Err(e) = stream.set_read_timeout(until(lc.head_deadline(), now)) {
            log::debug!("{peer}: {e}");
            return None;
        }
        let len = buf.len();
        buf.resize(len + room, 0);
        let read = (&*stream).read(&mut buf[len..]);
        buf.truncate(len + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => break lc.head_eof(),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => break lc.head_timed_out(),
            Err(e) => {
                log::debug!("{peer}: reading the request head: {e}");
                return None;
            }
        }
    };
    end.log(&peer);
    slot.counters().head_ended(&end);
    let _ = settle(&stream, &peer, &mut lc, end.ending(), &mut Vec::new());
    None
}

/// Carries out an [`Ending`](scgi_proto::server::Ending): sends what it
/// says (`out` holds the handler's buffered bytes), then closes as it
/// says. Returns the error of the send, if any (the connection then just
/// closes).
fn settle(
    stream: &Stream,
    peer: &Addr,
    lc: &mut Connection<Instant>,
    ending: scgi_proto::server::Ending,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let deadline = |lc: &Connection<Instant>| lc.write_deadline(Instant::now());
    let result = match ending.reply {
        Reply::Nothing => Ok(()),
        Reply::Buffered => {
            lc.sent(out.len());
            flush_out(stream, out, lc)
        }
        Reply::NoContent => {
            lc.sent(NO_CONTENT.len());
            send_all(stream, NO_CONTENT, deadline(lc))
        }
        Reply::Answer(answer) => {
            let answer = answer.to_vec();
            lc.sent(answer.len());
            send_all(stream, &answer, deadline(lc))
        }
    };
    if let Err(e) = &result {
        log::debug!("{peer}: sending the response: {e}");
        return result;
    }
    match ending.then {
        Then::Close => {}
        Then::CloseUnlessPending if matches!(stream.has_pending_input(), Ok(false)) => {}
        Then::CloseUnlessPending | Then::Drain => drain(stream, lc),
        Then::HalfClose => {
            let _ = stream.shutdown(Shutdown::Write);
        }
        Then::Reset => stream.set_abortive_close(),
    }
    result
}

/// Ends our side, then reads and discards what the peer still sends until
/// it closes, within the lifecycle's drain bounds.
fn drain(stream: &Stream, lc: &Connection<Instant>) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let bounds = lc.start_drain(Instant::now());
    let mut scratch = [0u8; 16 * 1024];
    let mut total = 0u64;
    while total < bounds.limit() {
        let now = Instant::now();
        let deadline = bounds.deadline(now, total);
        if deadline.is_some_and(|d| d <= now)
            || stream.set_read_timeout(until(deadline, now)).is_err()
        {
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

    /// An owned copy of the header netstring (for an `http::Request`'s
    /// extensions).
    #[cfg(feature = "http")]
    pub(crate) fn scgi_headers(&self) -> scgi_proto::http::ScgiHeaders {
        scgi_proto::http::ScgiHeaders::new(&self.head, &self.buf)
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
    pub fn write_status_ok_text_content(&mut self, content_type: &str) -> io::Result<()> {
        scgi_proto::write_status_ok_text_content(self, content_type)?;
        self.conn.wrote_head(200);
        Ok(())
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
    pub fn write_head(&mut self, status: u16, headers: &[(&str, &str)]) -> io::Result<()> {
        scgi_proto::write_response_head(self, status, headers)?;
        self.conn.wrote_head(status);
        Ok(())
    }

    /// Writes a response head built with [`ResponseHead`] (a custom reason
    /// phrase, say), as one write.
    pub fn write_response_head(&mut self, head: ResponseHead<'_>) -> io::Result<()> {
        head.write_to(self)?;
        self.conn.wrote_head(head.status());
        Ok(())
    }

    /// Reads the rest of the body into memory, if it is at most `limit`
    /// bytes; returns it (empty for a request without a body).
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
    /// [`Config::with_max_body`]. Fails as reading through [`io::Read`]
    /// does.
    ///
    /// ```no_run
    /// # fn f(req: &mut scgi_blocking::Request) -> std::io::Result<()> {
    /// let body = req.read_body(64 * 1024)?;
    /// let mut name = String::new();
    /// for (key, value) in scgi_blocking::form_pairs(&body) {
    ///     if key == "name" {
    ///         name = value.into_owned();
    ///     }
    /// }
    /// req.respond(200, [("Content-Type", "text/plain")], format!("Hello, {name}"))
    /// # }
    /// ```
    pub fn read_body(&mut self, limit: u64) -> io::Result<Bytes> {
        self.stream()?;
        self.conn.limit_body(limit)?;
        let mut body = Vec::new();
        loop {
            let left = self.body_remaining();
            if left == 0 {
                return Ok(Bytes::from(body));
            }
            let len = body.len();
            if len == body.capacity() {
                body.reserve_exact(scgi_proto::server::body_room(len, left));
            }
            body.resize(body.capacity(), 0);
            let n = self.read(&mut body[len..]);
            body.truncate(len + *n.as_ref().unwrap_or(&0));
            n?;
        }
    }

    /// Sends a whole response: `Status: <status> <reason>`, `headers` (any
    /// iterator of name and value pairs, owned or borrowed), the
    /// `Content-Length` of `body`, and `body`, as [`Framing`] frames it:
    /// the answer to a `HEAD` request gets the same head and no body, and
    /// a `1xx`, `204` or `304` neither `Content-Length` nor body. So one
    /// handler serves `GET` and `HEAD` right.
    ///
    /// A head the writer refuses (see [`write_head`](Request::write_head);
    /// a `Content-Length` or `Transfer-Encoding` among `headers` too, as
    /// the framing is `respond`'s) gives
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) and writes nothing,
    /// and so does a request whose handler already wrote part of a
    /// response. Write nothing else for the request.
    ///
    /// The headers of the request borrow it, so build what goes into the
    /// response before the call:
    ///
    /// ```no_run
    /// # fn f(req: &mut scgi_blocking::Request) -> std::io::Result<()> {
    /// // `req.headers()` borrows `req`: take owned copies first.
    /// let page = req.headers().query_param("page").unwrap_or_default().into_owned();
    /// let etag = format!("\"{page}\"");
    /// req.respond(200, [("Content-Type", "text/plain"), ("ETag", &etag)], format!("page {page}"))
    /// # }
    /// ```
    pub fn respond<K, V>(
        &mut self,
        status: u16,
        headers: impl IntoIterator<Item = (K, V)>,
        body: impl AsRef<[u8]>,
    ) -> io::Result<()>
    where
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        self.stream()?;
        if self.conn.has_written() {
            return Err(already_written());
        }
        let body = body.as_ref();
        let is_head = self.headers().method() == Some("HEAD");
        let framing = Framing::new(status, is_head, body.len() as u64);
        // The head goes into the response buffer; with the body, it leaves
        // as the writes below decide.
        scgi_proto::append_head(&mut self.out, status, headers, framing.content_length)?;
        self.conn.wrote();
        self.conn.wrote_head(status);
        if framing.send_body {
            self.write_all(body)?;
        }
        Ok(())
    }

    /// The next piece of the body, or `None` at its end, as a [`Bytes`]
    /// read from the socket into a buffer that is handed out without a
    /// copy (the bytes that came with the head are copied once). Fails as
    /// reading through [`io::Read`] does.
    ///
    /// ```no_run
    /// # fn f(req: &mut scgi_blocking::Request) -> std::io::Result<()> {
    /// let mut total = 0;
    /// while let Some(piece) = req.chunk()? {
    ///     total += piece.len(); // or send it on, keep it, ...
    /// }
    /// assert_eq!(total as u64, req.content_length());
    /// # Ok(()) }
    /// ```
    pub fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        let remaining = self.body_remaining();
        if remaining == 0 {
            return Ok(None);
        }
        if self.pos < self.buf.len() {
            let n = self.conn.body(&self.buf[self.pos..]);
            let piece = Bytes::copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(Some(piece));
        }
        let want = usize::try_from(remaining).map_or(CHUNK_READ, |r| r.min(CHUNK_READ));
        let mut piece = BytesMut::zeroed(want);
        let n = self.read(&mut piece)?;
        piece.truncate(n);
        Ok((n > 0).then(|| piece.freeze()))
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
        // The request ends here as far as the server can tell.
        self.ended();
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
    pub(crate) fn describe(&self) -> scgi_proto::server::Describe<'_> {
        scgi_proto::server::Describe(self.headers())
    }

    /// Sends the response's end (or a fallback) and closes the connection,
    /// as the lifecycle says.
    pub(crate) fn complete(&mut self, outcome: Outcome) -> io::Result<()> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        let Some(stream) = self.stream.take() else {
            return Ok(());
        };
        // Only bytes that arrived along with the head can be buffered here.
        let ending = self.conn.end(outcome, self.pos == self.buf.len());
        if matches!(ending.reply, Reply::Answer(_)) {
            self.out.clear();
        }
        let result = settle(&stream, &self.peer, &mut self.conn, ending, &mut self.out);
        self.ended();
        result
    }

    /// A head with `status` went out as raw bytes (the `http` layer's):
    /// note it for the counters and the access log.
    #[cfg(feature = "http")]
    pub(crate) fn wrote_head(&mut self, status: u16) {
        self.conn.wrote_head(status);
    }

    /// How loudly to log the handler's failure (the lifecycle decides).
    pub(crate) fn failure_severity(&self) -> scgi_proto::server::Severity {
        self.conn.failure_severity()
    }

    /// Counts the request as ended, and logs its access line if asked to.
    fn ended(&self) {
        if let Some(slot) = &self.slot {
            slot.counters()
                .request_ended(self.conn.status(), self.conn.body_error());
        }
        if self.access_log {
            let headers = self.head.headers(&self.buf);
            self.conn
                .access_line(headers, &self.peer, Instant::now())
                .log();
        }
    }

    fn stream(&self) -> io::Result<&Arc<Stream>> {
        self.stream.as_ref().ok_or_else(upgraded_error)
    }
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

fn flush_out(stream: &Stream, out: &mut Vec<u8>, lc: &Connection<Instant>) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let result = send_all(stream, out, lc.write_deadline(Instant::now()));
    out.clear();
    result
}

/// Writes all of `data` by `deadline` (`None`: no deadline): the socket's
/// `SO_SNDTIMEO` bounds each system call, and a call that moved a few
/// bytes before it waited returns them as progress, so without the check
/// one write to a stalled peer would last a multiple of the timeout
/// (issue 14: a 10 s timeout cut a stalled echo at 20.4 s).
fn send_all(stream: &Stream, mut data: &[u8], deadline: Option<Instant>) -> io::Result<()> {
    while !data.is_empty() {
        match (&*stream).write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(write_timed_out()),
            Err(e) => return Err(e),
        }
        if !data.is_empty() && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(write_timed_out());
        }
    }
    Ok(())
}

fn write_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the peer took no response data within the write timeout",
    )
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
            let n = self.conn.body(avail);
            dst[..n].copy_from_slice(&avail[..n]);
            self.pos += n;
            return Ok(n);
        }
        let stream = Arc::clone(self.stream()?);
        // Each read from the socket waits until the body deadline: the idle
        // timeout, or earlier for a body behind its minimum rate. (Most
        // bodies come with the head and never get here.)
        let now = Instant::now();
        stream.set_read_timeout(until(self.conn.body_deadline(now), now))?;
        let max = usize::try_from(remaining).map_or(dst.len(), |r| r.min(dst.len()));
        loop {
            match (&*stream).read(&mut dst[..max]) {
                Ok(0) => {
                    let e = self.conn.body_eof();
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, e));
                }
                Ok(n) => {
                    // Bookkeeping only: `n` is within the body.
                    self.conn.body(&dst[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    let e = self.conn.body_timed_out();
                    return Err(io::Error::new(io::ErrorKind::TimedOut, e));
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
        self.conn.wrote();
        if self.out.len() + data.len() > OUT_CAP && !self.out.is_empty() {
            self.conn.sent(self.out.len());
            flush_out(stream, &mut self.out, &self.conn)?;
        }
        if data.len() >= OUT_CAP {
            // One write(2): an error means nothing was sent.
            let n = (&**stream).write(data)?;
            self.conn.sent(n);
            return Ok(n);
        }
        self.out.extend_from_slice(data);
        Ok(data.len())
    }

    /// One write deadline for the whole of `data` (see
    /// [`write_timeout`](Config::write_timeout)), where the default
    /// `write_all` would wait up to the socket timeout once per system
    /// call.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let stream = self.stream.as_ref().ok_or_else(upgraded_error)?;
        if data.is_empty() {
            return Ok(());
        }
        self.conn.wrote();
        if self.out.len() + data.len() <= OUT_CAP {
            self.out.extend_from_slice(data);
            return Ok(());
        }
        // Counted before sending: a send that fails half way has still
        // put bytes on the socket, so no clean answer may follow.
        self.conn.sent(self.out.len());
        let deadline = self.conn.write_deadline(Instant::now());
        send_all(stream, &self.out, deadline)?;
        self.out.clear();
        if data.len() < OUT_CAP {
            self.out.extend_from_slice(data);
            return Ok(());
        }
        self.conn.sent(data.len());
        send_all(stream, data, deadline)
    }

    fn flush(&mut self) -> io::Result<()> {
        let stream = self.stream.as_ref().ok_or_else(upgraded_error)?;
        self.conn.sent(self.out.len());
        flush_out(stream, &mut self.out, &self.conn)
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

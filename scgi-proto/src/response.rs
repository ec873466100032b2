//! The response head writer: `Status:` CGI heads, written in one piece.

use crate::error::EncodeError;
use crate::status::default_reason;

/// A cursor over the caller's buffer that keeps counting past its end, so a
/// too-small buffer reports the size it needs.
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    fn finish(self) -> Result<usize, EncodeError> {
        if self.len > self.buf.len() {
            Err(EncodeError::BufferTooSmall { required: self.len })
        } else {
            Ok(self.len)
        }
    }
}

/// Where a head's bytes go: a caller's slice ([`Out`], counting past its
/// end) or, with `alloc`, a growing `Vec`. The lines are written by the
/// same generic functions either way.
trait Put {
    fn put(&mut self, bytes: &[u8]);
}

impl Put for Out<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        Out::put(self, bytes);
    }
}

#[cfg(feature = "alloc")]
impl Put for alloc::vec::Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// `Status: <status> <reason>` CRLF; `status` and `reason` checked by
/// [`check_status`], so `status` has three digits.
fn put_status_line(out: &mut impl Put, status: u16, reason: &str) {
    debug_assert!(valid_status(status));
    // One piece up to the reason: each `put` into a `Vec` is a capacity
    // check and a copy of its own.
    let mut line = *b"Status: 000 ";
    line[8] = b'0' + (status / 100 % 10) as u8;
    line[9] = b'0' + (status / 10 % 10) as u8;
    line[10] = b'0' + (status % 10) as u8;
    out.put(&line);
    out.put(reason.as_bytes());
    out.put(b"\r\n");
}

/// `name: value` CRLF; checked by [`check_header`].
fn put_header(out: &mut impl Put, name: &str, value: &[u8]) {
    out.put(name.as_bytes());
    out.put(b": ");
    out.put(value);
    out.put(b"\r\n");
}

fn check_status(status: u16, reason: &str) -> Result<(), EncodeError> {
    if !valid_status(status) {
        return Err(EncodeError::InvalidStatus { code: status });
    }
    if !valid_reason(reason.as_bytes()) {
        return Err(EncodeError::InvalidReason);
    }
    Ok(())
}

/// The checks of [`HeadWriter::header`] on the header at `index`.
fn check_header(index: usize, name: &str, value: &[u8]) -> Result<(), EncodeError> {
    if !valid_response_name(name.as_bytes()) {
        return Err(EncodeError::InvalidName { index });
    }
    if name.eq_ignore_ascii_case("status") {
        return Err(EncodeError::ReservedName { index });
    }
    if !valid_response_value(value) {
        return Err(EncodeError::InvalidValue { index });
    }
    Ok(())
}

/// An HTTP token character (RFC 9110 `tchar`): what a header name may hold.
const fn is_tchar(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    ) || b.is_ascii_alphanumeric()
}

/// [`is_tchar`] for every byte: one load a byte instead of a chain of
/// comparisons (a header name is checked on every response).
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_tchar(b as u8);
        b += 1;
    }
    table
};

pub(crate) fn valid_response_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| TCHAR[usize::from(b)])
}

/// A field value as RFC 9110 (5.5) and `http::HeaderValue` allow it: HTAB,
/// SP, visible ASCII and obs-text (`0x80..=0xFF`); no other control byte.
/// CR or LF would split the response, NUL is where web servers truncate,
/// and the rest (VT, DEL, ...) no HTTP peer accepts.
const fn field_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

/// A response header value: [`field_byte`]s only.
pub(crate) fn valid_response_value(value: &[u8]) -> bool {
    value.iter().all(|&b| field_byte(b))
}

fn valid_reason(reason: &[u8]) -> bool {
    reason.iter().all(|&b| field_byte(b))
}

/// Only `101` of the 1xx: nginx and Apache take the CGI head as the final
/// response (nginx reads the `Status:` value's three digits as the status,
/// Apache's script header parser sets it as `r->status`), so a `100` or
/// `103` would reach the client as a final answer with the real one as its
/// body. `100 Continue` is the front end's business anyway: it has read
/// (nginx, lighttpd) or is streaming the body before the backend answers.
/// `101` is the one interim status with a meaning here: nginx tunnels the
/// connection after it.
const fn valid_status(code: u16) -> bool {
    code == 101 || (code >= 200 && code <= 599)
}

/// Whether a response with `status` has no body: the 1xx, `204 No
/// Content` and `304 Not Modified` (RFC 9110 6.4.1).
///
/// ```
/// assert!(scgi_proto::is_bodiless(204));
/// assert!(!scgi_proto::is_bodiless(200));
/// ```
#[must_use]
pub const fn is_bodiless(status: u16) -> bool {
    matches!(status, 100..=199 | 204 | 304)
}

/// How a complete response whose body is in hand is framed: the
/// `Content-Length` to send and whether to send the body. This is the
/// decision behind the runtime crates' `respond`.
///
/// - A bodiless status ([`is_bodiless`]: 1xx, 204, 304) gets neither a
///   `Content-Length` nor the body (RFC 9110 forbids both; a body given
///   anyway is dropped, as hyper and `http::frame_response` drop it).
/// - The answer to a `HEAD` request gets the `Content-Length` of the body
///   a `GET` would get, and no body (RFC 9110 9.3.2): the handler builds
///   the same response for both, and `HEAD` is right by default.
/// - Anything else gets `Content-Length: <body length>` and the body, so
///   the web server (nginx uses it to frame the response it forwards)
///   knows where the body ends without waiting for the close.
///
/// ```
/// use scgi_proto::Framing;
/// assert_eq!(Framing::new(200, false, 5), Framing { content_length: Some(5), send_body: true });
/// assert_eq!(Framing::new(200, true, 5), Framing { content_length: Some(5), send_body: false });
/// assert_eq!(Framing::new(204, false, 5), Framing { content_length: None, send_body: false });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Framing {
    /// The `Content-Length` header to send, if any.
    pub content_length: Option<u64>,
    /// Whether to send the body's bytes.
    pub send_body: bool,
}

impl Framing {
    /// The framing of a `status` response with a body of `body_len`
    /// bytes, to a `HEAD` request if `is_head`.
    #[must_use]
    pub const fn new(status: u16, is_head: bool, body_len: u64) -> Framing {
        if is_bodiless(status) {
            Framing {
                content_length: None,
                send_body: false,
            }
        } else {
            Framing {
                content_length: Some(body_len),
                send_body: !is_head,
            }
        }
    }
}

/// Writes a response head incrementally into the caller's buffer: the
/// `Status:` line first, then one header per [`header`](HeadWriter::header)
/// call, then the blank line at [`finish`](HeadWriter::finish). No
/// allocation; works without `std`.
///
/// Refuses what would let a value escape its line (CR, LF, NUL) and any
/// other control byte but HTAB (as `http::HeaderValue` does), names that
/// are not HTTP tokens, a `Status` header (the writer sends the one status),
/// and statuses web servers mishandle from a backend (1xx other than 101).
/// When the buffer is too small, writing goes on counting and
/// [`finish`](HeadWriter::finish) fails with
/// [`EncodeError::BufferTooSmall`] carrying the size needed.
///
/// # Choices, checked against the web servers
///
/// - **Always a `Status:` line.** Apache refuses an `HTTP/1.x` status
///   line from a CGI backend (500), and a head without `Status` means 200
///   to all three except with `Location`, below.
/// - **No 1xx but 101** ([`EncodeError::InvalidStatus`]): nginx and
///   Apache take the CGI head as the final response, so a `100 Continue`
///   or `103 Early Hints` would end up as the client's final status with
///   the real response as its body; `100 Continue` is the front end's job
///   (it reads or streams the body before the backend answers). A handler
///   that asks for one gets an `InvalidInput` error, a bug to fix.
/// - **Reason phrases** are the registered ones ([`reason_phrase`](crate::reason_phrase),
///   `418 I'm a teapot` included), else `Success`, `Redirection`,
///   `Client Error` or `Server Error` by class; nginx and Apache forward
///   the phrase to the client, so give an unregistered code its own with
///   [`with_reason`](HeadWriter::with_reason).
/// - **No CGI "local redirect"** (RFC 3875 6.2.2: a head that is only
///   `Location: /path`, which the server serves in place of the
///   response): the writer always sends `Status`, because the front ends
///   disagree on a `Location` without one. nginx and lighttpd answer the
///   client `302` with it; only Apache (`ProxySCGIInternalRedirect`, on by
///   default) redirects internally, and it does so on a `Status: 200`
///   with a `Location` starting with `/` too, which this writer sends. So,
///   instead: for a client redirect send `302`/`303`/`307` with
///   `Location` (portable); for an internal one send `200` with
///   `X-Accel-Redirect: /path`, which nginx honours from any upstream
///   (SCGI included) and Apache 2.4.13+ too with
///   `ProxySCGIInternalRedirect X-Accel-Redirect` (its default header is
///   `Location`, also on a `200`), or let the front end route it.
///
/// ```
/// use scgi_proto::HeadWriter;
/// let mut buf = [0u8; 128];
/// let mut w = HeadWriter::new(&mut buf, 404)?;
/// w.header("Content-Type", "text/plain")?;
/// let n = w.finish()?;
/// assert_eq!(&buf[..n], b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n");
/// # Ok::<(), scgi_proto::EncodeError>(())
/// ```
pub struct HeadWriter<'b> {
    out: Out<'b>,
    index: usize,
}

impl<'b> HeadWriter<'b> {
    /// Starts a head with `status` and its canonical reason phrase (a generic
    /// one for an unregistered code).
    pub fn new(buf: &'b mut [u8], status: u16) -> Result<Self, EncodeError> {
        Self::with_reason(buf, status, default_reason(status))
    }

    /// Starts a head with `status` and a custom reason phrase.
    pub fn with_reason(buf: &'b mut [u8], status: u16, reason: &str) -> Result<Self, EncodeError> {
        check_status(status, reason)?;
        let mut out = Out { buf, len: 0 };
        put_status_line(&mut out, status, reason);
        Ok(HeadWriter { out, index: 0 })
    }

    /// Adds the header line `name: value`.
    pub fn header(
        &mut self,
        name: &str,
        value: impl AsRef<[u8]>,
    ) -> Result<&mut Self, EncodeError> {
        let value = value.as_ref();
        check_header(self.index, name, value)?;
        put_header(&mut self.out, name, value);
        self.index += 1;
        Ok(self)
    }

    /// Ends the head with the blank line; returns its total length.
    pub fn finish(mut self) -> Result<usize, EncodeError> {
        self.out.put(b"\r\n");
        self.out.finish()
    }
}

/// A complete response head as a value: status, optional custom reason and a
/// list of headers. Encode it into a buffer with
/// [`encode`](ResponseHead::encode), or (with `std`) send it in one write
/// with [`write_to`](ResponseHead::write_to).
///
/// ```
/// use scgi_proto::ResponseHead;
/// let head = ResponseHead::new(302).headers(&[("Location", "/next")]);
/// let mut buf = [0u8; 64];
/// let n = head.encode(&mut buf)?;
/// assert_eq!(&buf[..n], b"Status: 302 Found\r\nLocation: /next\r\n\r\n");
/// # Ok::<(), scgi_proto::EncodeError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead<'h> {
    status: u16,
    reason: Option<&'h str>,
    headers: &'h [(&'h str, &'h str)],
}

impl<'h> ResponseHead<'h> {
    /// A head with `status`, its canonical reason phrase and no headers.
    #[must_use]
    pub const fn new(status: u16) -> Self {
        ResponseHead {
            status,
            reason: None,
            headers: &[],
        }
    }

    /// Sets a custom reason phrase.
    #[must_use]
    pub const fn reason(mut self, reason: &'h str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Sets the headers, sent in this order.
    #[must_use]
    pub const fn headers(mut self, headers: &'h [(&'h str, &'h str)]) -> Self {
        self.headers = headers;
        self
    }

    /// The status code.
    #[must_use]
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// Writes the head into `buf`; returns its length, or the size it needs.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let reason = self.reason.unwrap_or(default_reason(self.status));
        let mut w = HeadWriter::with_reason(buf, self.status, reason)?;
        for (name, value) in self.headers {
            w.header(name, value)?;
        }
        w.finish()
    }

    /// The encoded length, after the same checks as
    /// [`encode`](ResponseHead::encode).
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        match self.encode(&mut []) {
            Ok(n) | Err(EncodeError::BufferTooSmall { required: n }) => Ok(n),
            Err(e) => Err(e),
        }
    }

    /// The encoded head as an owned buffer.
    #[cfg(feature = "alloc")]
    pub fn to_vec(&self) -> Result<alloc::vec::Vec<u8>, EncodeError> {
        let mut v = alloc::vec![0; self.encoded_len()?];
        let n = self.encode(&mut v)?;
        v.truncate(n);
        Ok(v)
    }

    /// Sends the head with a single `write_all`, so the web server sees it
    /// in one piece (nginx before 1.31 could misread a first line split
    /// across reads). Heads up to 1 KiB are built on the stack; larger ones in
    /// one exact allocation. A refused head becomes an
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput) error and writes
    /// nothing.
    #[cfg(feature = "std")]
    pub fn write_to<W: std::io::Write + ?Sized>(&self, w: &mut W) -> std::io::Result<()> {
        let mut stack = [0u8; 1024];
        match self.encode(&mut stack) {
            Ok(n) => w.write_all(&stack[..n]),
            Err(EncodeError::BufferTooSmall { .. }) => w.write_all(&self.to_vec()?),
            Err(e) => Err(e.into()),
        }
    }
}

/// The whole response a server sends for a handler that wrote nothing: the
/// request was handled and there is nothing to say. A valid CGI response
/// that nginx, Apache and lighttpd all pass on as is.
///
/// ```
/// let mut buf = [0u8; 32];
/// let n = scgi_proto::ResponseHead::new(204).encode(&mut buf)?;
/// assert_eq!(scgi_proto::NO_CONTENT, &buf[..n]);
/// # Ok::<(), scgi_proto::EncodeError>(())
/// ```
pub const NO_CONTENT: &[u8] = b"Status: 204 No Content\r\n\r\n";

/// Writes `Status: 200 OK` and `Content-Type: <content_type>` into `buf`:
/// the head of the most common response, heir of Nim's
/// `writeStatusOkTextContent`. Returns the length written.
///
/// ```
/// let mut buf = [0u8; 64];
/// let n = scgi_proto::status_ok_text_content(&mut buf, "text/html")?;
/// assert_eq!(&buf[..n], b"Status: 200 OK\r\nContent-Type: text/html\r\n\r\n");
/// # Ok::<(), scgi_proto::EncodeError>(())
/// ```
pub fn status_ok_text_content(buf: &mut [u8], content_type: &str) -> Result<usize, EncodeError> {
    ResponseHead::new(200)
        .headers(&[("Content-Type", content_type)])
        .encode(buf)
}

/// Sends `Status: 200 OK` and `Content-Type: <content_type>` in one write:
/// Nim's `writeStatusOkTextContent`, made safe (a content type with CR or LF
/// is refused, not sent).
///
/// ```
/// let mut out = Vec::new();
/// scgi_proto::write_status_ok_text_content(&mut out, "text/plain; charset=utf-8")?;
/// assert_eq!(out, b"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(feature = "std")]
pub fn write_status_ok_text_content<W: std::io::Write + ?Sized>(
    w: &mut W,
    content_type: &str,
) -> std::io::Result<()> {
    ResponseHead::new(200)
        .headers(&[("Content-Type", content_type)])
        .write_to(w)
}

/// Sends a response head (`status`, its canonical reason, `headers`) in one
/// write. Shorthand for [`ResponseHead::write_to`].
#[cfg(feature = "std")]
pub fn write_response_head<W: std::io::Write + ?Sized>(
    w: &mut W,
    status: u16,
    headers: &[(&str, &str)],
) -> std::io::Result<()> {
    ResponseHead::new(status).headers(headers).write_to(w)
}

/// Appends a response head to `out`: `Status: <status> <reason>`, the
/// `headers` in order (any iterator of name and value pairs, owned or
/// borrowed), `Content-Length: <content_length>` if given, and the blank
/// line. The checks are [`HeadWriter`]'s; besides, `Content-Length` and
/// `Transfer-Encoding` among `headers` are [`EncodeError::ReservedName`]:
/// the framing is the caller's `content_length` (see [`Framing`]). On an
/// error nothing is appended.
///
/// ```
/// let mut out = Vec::new();
/// let id = String::from("7");
/// scgi_proto::append_head(&mut out, 201, [("Location", format!("/items/{id}"))], Some(2))?;
/// assert_eq!(out, b"Status: 201 Created\r\nLocation: /items/7\r\nContent-Length: 2\r\n\r\n");
/// # Ok::<(), scgi_proto::EncodeError>(())
/// ```
#[cfg(feature = "alloc")]
pub fn append_head<I, K, V>(
    out: &mut alloc::vec::Vec<u8>,
    status: u16,
    headers: I,
    content_length: Option<u64>,
) -> Result<(), EncodeError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<[u8]>,
{
    let start = out.len();
    let result = (|| {
        let reason = default_reason(status);
        check_status(status, reason)?;
        put_status_line(out, status, reason);
        for (index, (name, value)) in headers.into_iter().enumerate() {
            let (name, value) = (name.as_ref(), value.as_ref());
            check_header(index, name, value)?;
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                return Err(EncodeError::ReservedName { index });
            }
            put_header(out, name, value);
        }
        if let Some(len) = content_length {
            let (digits, first) = crate::request::digits_u64(len);
            put_header(out, "Content-Length", &digits[first..]);
        }
        out.put(b"\r\n");
        Ok(())
    })();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Counts the bytes a `Display` value formats to, without allocating.
struct Count(usize);

impl core::fmt::Write for Count {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Formats into an [`Out`], counting past its end.
impl core::fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.put(s.as_bytes());
        Ok(())
    }
}

/// Writes a complete plain-text error response into `buf`: the head
/// (`Status`, `Content-Type: text/plain; charset=utf-8`, `Content-Length`)
/// and the body `"<status> <reason>\n<detail>\n"`. This is what a server
/// sends for a request the decoder refused (with the error's
/// [status hint](crate::Error::status_hint) and the error as `detail`) or a
/// handler that failed before answering. Returns the length written, or
/// the size needed; `detail` is written as given, so keep it free of
/// secrets.
///
/// ```
/// let e = scgi_proto::Error::MissingScgi;
/// let mut buf = [0u8; 512];
/// let n = scgi_proto::encode_error_response(&mut buf, e.status_hint(), &e)?;
/// let text = std::str::from_utf8(&buf[..n]).unwrap();
/// assert!(text.starts_with("Status: 400 Bad Request\r\n"));
/// assert!(text.ends_with("\r\n\r\n400 Bad Request\nno SCGI header: the web server did not send SCGI=1 (with nginx, add `include scgi_params;` to the location)\n"));
/// # Ok::<(), scgi_proto::EncodeError>(())
/// ```
pub fn encode_error_response(
    buf: &mut [u8],
    status: u16,
    detail: &dyn core::fmt::Display,
) -> Result<usize, EncodeError> {
    use core::fmt::Write as _;
    let reason = default_reason(status);
    let mut body_len = Count(0);
    // Counting never fails.
    let _ = write!(body_len, "{status} {reason}\n{detail}\n");
    let (digits, first) = crate::request::digits_u64(body_len.0 as u64);
    let len = core::str::from_utf8(&digits[first..]).unwrap_or("0");
    let mut w = HeadWriter::with_reason(buf, status, reason)?;
    w.header("Content-Type", "text/plain; charset=utf-8")?;
    w.header("Content-Length", len)?;
    w.out.put(b"\r\n");
    let mut out = w.out;
    let _ = write!(out, "{status} {reason}\n{detail}\n");
    out.finish()
}

/// [`encode_error_response`] into a new buffer.
#[cfg(feature = "alloc")]
pub fn error_response(
    status: u16,
    detail: &dyn core::fmt::Display,
) -> Result<alloc::vec::Vec<u8>, EncodeError> {
    let required = match encode_error_response(&mut [], status, detail) {
        Ok(n) | Err(EncodeError::BufferTooSmall { required: n }) => n,
        Err(e) => return Err(e),
    };
    let mut v = alloc::vec![0; required];
    let n = encode_error_response(&mut v, status, detail)?;
    v.truncate(n);
    Ok(v)
}

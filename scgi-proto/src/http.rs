//! Mapping between SCGI and the `http` crate's types (feature
//! `http`): an `http::Request` head built from the SCGI headers, and an
//! `http::Response` head written as a `Status:` CGI head.
//!
//! This is what lets a `tower::Service` or an axum `Router` run behind
//! nginx's `scgi_pass` unchanged: the runtime crates (`scgi-tokio`'s
//! `tower` feature) call [`ScgiHeaders::into_request_parts`] on each
//! request and [`encode_response_head`] on each response.
//!
//! ```
//! use scgi_proto::{Decoder, Step};
//! use scgi_proto::http::{RemoteAddr, ScgiHeaders};
//!
//! let wire = scgi_proto::encode_request_to_vec(
//!     &[
//!         ("REQUEST_METHOD", "POST"),
//!         ("REQUEST_URI", "/api/items?page=2"),
//!         ("SERVER_PROTOCOL", "HTTP/1.1"),
//!         ("HTTPS", "on"),
//!         ("HTTP_HOST", "example.com"),
//!         ("HTTP_ACCEPT", "application/json"),
//!         ("HTTP_X_REQUEST_ID", "abc"),
//!         ("CONTENT_TYPE", "application/json"),
//!         ("REMOTE_ADDR", "192.0.2.7"),
//!         ("REMOTE_PORT", "50123"),
//!     ],
//!     b"{}",
//! )?;
//! let Ok(Step::Head(head)) = Decoder::new().decode(&wire) else { unreachable!() };
//! let parts = ScgiHeaders::new(&head, &wire).into_request_parts()?;
//!
//! assert_eq!(parts.method, http::Method::POST);
//! assert_eq!(parts.uri, "https://example.com/api/items?page=2");
//! assert_eq!(parts.version, http::Version::HTTP_11);
//! assert_eq!(parts.headers["content-type"], "application/json");
//! assert_eq!(parts.headers["content-length"], "2");
//! assert_eq!(parts.headers["accept"], "application/json");
//! assert_eq!(parts.headers["x-request-id"], "abc");
//! assert_eq!(
//!     parts.extensions.get::<RemoteAddr>().unwrap().0,
//!     "192.0.2.7:50123".parse().unwrap(),
//! );
//! // Every CGI variable, raw, for what has no place in an http::Request.
//! let raw = parts.extensions.get::<ScgiHeaders>().unwrap();
//! assert_eq!(raw.headers().get_str("REMOTE_PORT"), Some("50123"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Request: the mapping rules
//!
//! | `http` part | from | rule |
//! | --- | --- | --- |
//! | method | `REQUEST_METHOD` | any token; missing or not a token: [`HttpError`] (400) |
//! | URI path and query | `REQUEST_URI` | as the client sent it (not decoded) when `http::Uri` takes it, raw UTF-8 included (what hyper would pass on); missing: [`HttpError`] (400). A target `http::Uri` refuses (a space, a control or latin-1 byte: nginx passes them through) gets its bytes outside printable ASCII percent-encoded, as a browser would have sent them, then if need be `"<>\^`{\|}` too; one still refused is a 400 |
//! | URI scheme | `HTTPS` (`on`/`1`), `REQUEST_SCHEME` | `https` if either says so (see [`Headers::https`]), else `http` |
//! | URI authority | the absolute-form target's, else `HTTP_HOST` | the URI is absolute (`scheme://host/path?query`, as hyper gives HTTP/2 requests) when a valid authority is known; otherwise origin-form (`/path?query`), and the scheme is then not in the URI |
//! | version | `SERVER_PROTOCOL` | `HTTP/0.9`, `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`(`.0`), `HTTP/3`(`.0`); missing or anything else: HTTP/1.1 |
//! | headers | `HTTP_*` | name: the rest after `HTTP_`, lowercased, every `_` turned into `-` |
//! | `content-type` | `CONTENT_TYPE` | when not empty (nginx sends it empty) |
//! | `content-length` | `CONTENT_LENGTH` | always, the exact body length the SCGI framing gives |
//! | extensions | `REMOTE_ADDR`, `REMOTE_PORT` | [`RemoteAddr`], when `REMOTE_ADDR` is an IP address |
//! | extensions | the whole header block | [`ScgiHeaders`] (with [`ScgiHeaders::into_request_parts`]) |
//!
//! Where the mapping is lossy or ambiguous:
//!
//! - **Underscores and dashes.** CGI turns `-` into `_`, so `HTTP_X_FOO`
//!   could come from `X-Foo` or `X_Foo`. Every `_` becomes `-`: dashes are
//!   what clients send, nginx drops headers with underscores by default
//!   (`underscores_in_headers off`), and lighttpd sends `X_Foo` and `X-Foo`
//!   both as `HTTP_X_FOO`. The raw name stays in [`ScgiHeaders`].
//! - **Duplicates.** A repeated name (nginx before 1.23 forwards two
//!   `Cookie:` or `Accept:` lines as two SCGI headers) becomes repeated
//!   values of one header, in wire order: `HeaderMap::get` gives the first,
//!   `get_all` all of them. The decoder's
//!   [`Duplicates`](crate::Duplicates) policy does not change this (it
//!   governs [`Headers::get`]).
//! - **Absolute-form targets.** Apache passes `GET http://host/p` through as
//!   `REQUEST_URI=http://host/p`. The target's authority wins over `Host`
//!   (RFC 9112, 3.2.2: the server must ignore `Host` then), and the `host`
//!   header is set to it; its scheme is ignored (the client's claim; the
//!   connection's scheme comes from `HTTPS`/`REQUEST_SCHEME`). An
//!   asterisk-form target (`OPTIONS *`) stays `*`.
//! - **Host without port.** Debian's nginx packages send
//!   `HTTP_HOST $host`, which drops the port the client put in `Host`. The
//!   port is not guessed back from `SERVER_PORT` (behind a load balancer or
//!   a port mapping that is not the port the client used): the `host`
//!   header and the URI's authority are what the web server sent. To keep
//!   the client's port, set `scgi_param HTTP_HOST $http_host;` (nginx 1.30+:
//!   `$host$is_request_port$request_port`).
//! - **Not carried as headers.** `HTTP_TRANSFER_ENCODING` (the body always
//!   arrives de-chunked with a real `CONTENT_LENGTH`; a service seeing
//!   `chunked` would misframe), and `HTTP_CONTENT_LENGTH` and
//!   `HTTP_CONTENT_TYPE` (the CGI variables are authoritative). Other CGI
//!   variables (`SERVER_NAME`, `DOCUMENT_ROOT`, `PATH_INFO`, ...) are in
//!   [`ScgiHeaders`].
//! - **Invalid names and values are skipped**, not refused: an `HTTP_*`
//!   name that is not a valid header name once mapped (`HTTP_`, `HTTP_A(B`)
//!   or a value that `HeaderValue` refuses (a control byte other than tab)
//!   is left out of the `HeaderMap`. The web server already accepted the
//!   request, one odd header should not turn it into a 400, and the raw
//!   header is still in [`ScgiHeaders`]. Non-UTF-8 values (obs-text bytes
//!   `0x80..=0xFF`) are valid header values and kept as bytes.
//!
//! # Response: the rules
//!
//! [`encode_response_head`] writes `Status: <code> <reason>` (the canonical
//! reason, or a generic one for an unregistered code) and the headers in
//! the `HeaderMap`'s order, a repeated name as repeated lines, through
//! [`HeadWriter`], refusing what it refuses: a 1xx other than `101`, a
//! `Status` header. Hop-by-hop headers (RFC 9110, 7.6.1: `Connection`,
//! `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`,
//! `Upgrade`) are not written: they concern the web server's connection
//! to the client, which it frames itself, and a `Transfer-Encoding:
//! chunked` from a backend that does not chunk would corrupt the response.
//! A `101 Switching Protocols` keeps `Connection` and `Upgrade`, which the
//! web server needs to switch. The HTTP version is not written (CGI has no
//! place for it).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

use ::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ::http::uri::{Authority, PathAndQuery, Scheme, Uri};
use ::http::{Method, Version, request, response};

use crate::{EncodeError, Head, HeadWriter, Headers};

/// Why a request head could not be mapped to an `http::Request`: the
/// request is answered with [`status_hint`](HttpError::status_hint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No `REQUEST_METHOD`.
    #[error("no REQUEST_METHOD header")]
    MissingMethod,
    /// A `REQUEST_METHOD` that is not an HTTP token.
    #[error("REQUEST_METHOD is not an HTTP method")]
    InvalidMethod,
    /// No `REQUEST_URI`.
    #[error("no REQUEST_URI header")]
    MissingUri,
    /// A `REQUEST_URI` that is not a valid request target, even with its
    /// stray bytes percent-encoded.
    #[error("REQUEST_URI is not a valid request target")]
    InvalidUri,
}

impl HttpError {
    /// The status to answer with: always 400 Bad Request.
    #[must_use]
    pub const fn status_hint(&self) -> u16 {
        400
    }
}

/// The HTTP client's address, from `REMOTE_ADDR` and `REMOTE_PORT` (port 0
/// when `REMOTE_PORT` is missing or not a number, as lighttpd may omit it):
/// a request extension set by [`request_parts`] when `REMOTE_ADDR` is an IP
/// address. This is the client of the web server, not the web server (the
/// peer of the SCGI connection, which the runtime crate adds itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemoteAddr(pub SocketAddr);

/// An owned copy of a request's SCGI header netstring: every CGI variable
/// as the web server sent it, raw, including those the `http::Request` has
/// no place for (`SERVER_NAME`, `DOCUMENT_ROOT`, `PATH_INFO`, headers
/// skipped by the mapping). A request extension set by
/// [`into_request_parts`](ScgiHeaders::into_request_parts); read it with
/// [`headers`](ScgiHeaders::headers).
///
/// It holds the netstring's bytes (one allocation, the size of the head:
/// about 0.4-1 KiB for a browser's GET) and the decoder's [`Head`], whose
/// offsets point into them, so the view keeps the decoder's duplicate
/// policy.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ScgiHeaders {
    wire: Box<[u8]>,
    head: Head,
}

impl ScgiHeaders {
    /// Copies the header netstring `head` describes out of `input`, the
    /// buffer the decoder validated it in (`input[..head.wire_len()]`).
    #[must_use]
    pub fn new(head: &Head, input: &[u8]) -> ScgiHeaders {
        let end = head.wire_len().min(input.len());
        ScgiHeaders {
            wire: input[..end].into(),
            head: *head,
        }
    }

    /// The headers, with the same accessors as the decoder's view.
    #[must_use]
    pub fn headers(&self) -> Headers<'_> {
        self.head.headers(&self.wire)
    }

    /// The decoder's facts about the head (content length, header count).
    #[must_use]
    pub const fn head(&self) -> &Head {
        &self.head
    }

    /// Maps the headers to an `http::Request` head with [`request_parts`],
    /// and adds this copy to its extensions.
    pub fn into_request_parts(self) -> Result<request::Parts, HttpError> {
        let mut parts = request_parts(&self.headers())?;
        parts.extensions.insert(self);
        Ok(parts)
    }
}

impl fmt::Debug for ScgiHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.headers(), f)
    }
}

/// Builds an `http::Request` head from the SCGI headers, by the
/// [rules](self#request-the-mapping-rules) of this module; adds a
/// [`RemoteAddr`] extension (not [`ScgiHeaders`], which
/// [`ScgiHeaders::into_request_parts`] adds).
pub fn request_parts(headers: &Headers<'_>) -> Result<request::Parts, HttpError> {
    let method = headers
        .get("REQUEST_METHOD")
        .ok_or(HttpError::MissingMethod)?;
    let method = Method::from_bytes(method).map_err(|_| HttpError::InvalidMethod)?;
    let target = headers.request_uri().ok_or(HttpError::MissingUri)?;
    let target = parse_target(target)?;

    let mut map = HeaderMap::with_capacity(headers.len());
    for h in headers {
        let Some(field) = h.name().strip_prefix(b"HTTP_") else {
            continue;
        };
        let Some(name) = header_name(field) else {
            continue;
        };
        if name == header::TRANSFER_ENCODING
            || name == header::CONTENT_LENGTH
            || name == header::CONTENT_TYPE
        {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(h.value()) {
            map.append(name, value);
        }
    }
    if let Some(ct) = headers.get("CONTENT_TYPE").filter(|v| !v.is_empty())
        && let Ok(value) = HeaderValue::from_bytes(ct)
    {
        map.insert(header::CONTENT_TYPE, value);
    }
    map.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(headers.content_length()),
    );

    // RFC 9112, 3.2.2: an absolute-form target's authority replaces Host.
    let authority = match target.authority() {
        Some(a) => {
            if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                map.insert(header::HOST, v);
            }
            Some(a.clone())
        }
        None => map
            .get(header::HOST)
            .and_then(|h| Authority::try_from(h.as_bytes()).ok()),
    };
    let uri = build_uri(target, authority, headers.https());

    let (mut parts, ()) = ::http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version(headers.server_protocol());
    parts.headers = map;
    if let Some(addr) = remote_addr(headers) {
        parts.extensions.insert(addr);
    }
    Ok(parts)
}

/// [`request_parts`] as an `http::Request<()>`.
pub fn request_head(headers: &Headers<'_>) -> Result<::http::Request<()>, HttpError> {
    request_parts(headers).map(|parts| ::http::Request::from_parts(parts, ()))
}

/// `HTTP_X_FOO`'s `X_FOO` as `x-foo`, if that is a valid header name.
fn header_name(field: &[u8]) -> Option<HeaderName> {
    if field.is_empty() {
        return None;
    }
    let mut stack = [0u8; 64];
    let mut heap;
    let lowered: &mut [u8] = if field.len() <= stack.len() {
        &mut stack[..field.len()]
    } else {
        heap = Vec::from(field);
        &mut heap
    };
    for (out, &b) in lowered.iter_mut().zip(field) {
        *out = if b == b'_' {
            b'-'
        } else {
            b.to_ascii_lowercase()
        };
    }
    HeaderName::from_bytes(lowered).ok()
}

/// The request target as a `Uri`: as sent when `http::Uri` takes it (as
/// hyper would pass it on), else with the bytes outside printable ASCII
/// percent-encoded, else with the printable ones URIs exclude too.
fn parse_target(raw: &[u8]) -> Result<Uri, HttpError> {
    if raw.is_empty() {
        return Err(HttpError::InvalidUri);
    }
    if let Ok(uri) = Uri::try_from(raw) {
        return Ok(uri);
    }
    let unprintable = |b: u8| !b.is_ascii_graphic();
    let excluded = |b: u8| {
        unprintable(b)
            || matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
    };
    Uri::try_from(escape(raw, unprintable))
        .or_else(|_| Uri::try_from(escape(raw, excluded)))
        .map_err(|_| HttpError::InvalidUri)
}

fn escape(raw: &[u8], needs_escape: impl Fn(u8) -> bool) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut escaped = Vec::with_capacity(raw.len() + 16);
    for &b in raw {
        if needs_escape(b) {
            escaped.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            escaped.push(b);
        }
    }
    escaped
}

/// Puts the scheme and authority in front of the target's path and query
/// when an authority is known; origin-form otherwise.
fn build_uri(target: Uri, authority: Option<Authority>, https: bool) -> Uri {
    let path_and_query = match target.path_and_query() {
        Some(pq) => pq.clone(),
        // `http://host` without a path.
        None if target.authority().is_some() => PathAndQuery::from_static("/"),
        None => return target,
    };
    if path_and_query.as_str() == "*" {
        return Uri::from_static("*");
    }
    let Some(authority) = authority else {
        return Uri::from(path_and_query);
    };
    let scheme = if https { Scheme::HTTPS } else { Scheme::HTTP };
    Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path_and_query.clone())
        .build()
        .unwrap_or_else(|_| Uri::from(path_and_query))
}

fn version(protocol: Option<&str>) -> Version {
    match protocol {
        Some("HTTP/0.9") => Version::HTTP_09,
        Some("HTTP/1.0") => Version::HTTP_10,
        Some("HTTP/2" | "HTTP/2.0") => Version::HTTP_2,
        Some("HTTP/3" | "HTTP/3.0") => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

fn remote_addr(headers: &Headers<'_>) -> Option<RemoteAddr> {
    let ip: IpAddr = headers.remote_addr()?.parse().ok()?;
    let port = headers.remote_port().unwrap_or(0);
    Some(RemoteAddr(SocketAddr::new(ip, port)))
}

/// Whether a response header is hop-by-hop (RFC 9110, 7.6.1) and so not
/// written; `101` keeps `Connection` and `Upgrade`.
fn hop_by_hop(name: &HeaderName, status: u16) -> bool {
    if status == 101 && (name == header::CONNECTION || name == header::UPGRADE) {
        return false;
    }
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::TE
        || name == header::TRAILER
        || name == header::UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Writes an `http::Response` head as a `Status:` CGI head into `buf`, by
/// the [rules](self#response-the-rules) of this module; returns its length,
/// or the size it needs ([`EncodeError::BufferTooSmall`]).
///
/// ```
/// let (mut parts, ()) = http::Response::new(()).into_parts();
/// parts.status = http::StatusCode::NOT_FOUND;
/// parts.headers.insert("content-type", "text/plain".parse().unwrap());
/// parts.headers.insert("transfer-encoding", "chunked".parse().unwrap());
/// let mut buf = [0u8; 128];
/// let n = scgi_proto::http::encode_response_head(&parts, &mut buf)?;
/// assert_eq!(&buf[..n], b"Status: 404 Not Found\r\ncontent-type: text/plain\r\n\r\n");
/// # Ok::<(), scgi_proto::EncodeError>(())
/// ```
pub fn encode_response_head(parts: &response::Parts, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let status = parts.status.as_u16();
    let mut w = HeadWriter::new(buf, status)?;
    for (name, value) in &parts.headers {
        if hop_by_hop(name, status) {
            continue;
        }
        w.header(name.as_str(), value.as_bytes())?;
    }
    w.finish()
}

/// Frames a response head whose body has `exact` bytes if known (framing
/// is the library's job, not the service's, as in hyper), and returns how
/// many body bytes to send: `Some(n)`, exactly `n` (send no more, and fail
/// the response if the body ends short), or `None`, the body until its end
/// (the web server then frames it).
///
/// - A `Content-Length` must be one decimal number (repeated identical
///   values count as one): two different values, or anything else, is
///   [`EncodeError::InvalidContentLength`], as is one that contradicts a
///   body of exact known size. Answer such a response with a 500.
/// - Without a `Content-Length` or `Transfer-Encoding`, a body of exact
///   known size (axum's `Json`, a `String`) gets one, except for `HEAD`
///   requests (`is_head`; the length may not be the `GET`'s) and 1xx, 204
///   and 304 responses.
/// - A `Content-Length` on a 1xx or 204 response is removed (RFC 9110
///   §8.6 forbids it; axum adds `Content-Length: 0`, and nginx would pass
///   it on to the client), as is a `Content-Length: 0` on a 304 (a 304 may
///   state the selected representation's length, never one made up from
///   its empty body); another value on a 304 is kept.
/// - The responses to `HEAD` and the 1xx, 204 and 304 responses send no
///   body: `Some(0)`.
///
/// ```
/// use scgi_proto::http::frame_response;
/// let (mut parts, ()) = http::Response::builder()
///     .status(204)
///     .header("content-length", "0")
///     .body(())?
///     .into_parts();
/// assert_eq!(frame_response(&mut parts, Some(0), false), Ok(Some(0)));
/// assert!(parts.headers.get("content-length").is_none());
///
/// let (mut parts, ()) = http::Response::new(()).into_parts();
/// assert_eq!(frame_response(&mut parts, Some(5), false), Ok(Some(5)));
/// assert_eq!(parts.headers["content-length"], "5");
///
/// let (mut parts, ()) = http::Response::builder()
///     .header("content-length", "11")
///     .header("content-length", "5")
///     .body(())?
///     .into_parts();
/// assert!(frame_response(&mut parts, None, false).is_err());
/// # Ok::<(), http::Error>(())
/// ```
pub fn frame_response(
    parts: &mut response::Parts,
    exact: Option<u64>,
    is_head: bool,
) -> Result<Option<u64>, EncodeError> {
    let declared = declared_length(&parts.headers)?;
    let status = parts.status.as_u16();
    if crate::is_bodiless(status) {
        if status != 304 || declared == Some(0) {
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        return Ok(Some(0));
    }
    if let (Some(d), Some(e)) = (declared, exact)
        && d != e
    {
        return Err(EncodeError::InvalidContentLength);
    }
    if let Some(d) = declared {
        // One value, written once.
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(d));
    }
    let send = if is_head { Some(0) } else { declared.or(exact) };
    if declared.is_none()
        && !is_head
        && !parts.headers.contains_key(header::TRANSFER_ENCODING)
        && let Some(len) = exact
    {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(send)
}

/// The one length the `Content-Length` headers state, if any.
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, EncodeError> {
    let mut declared = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let bytes = value.as_bytes();
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(EncodeError::InvalidContentLength);
        }
        let n = core::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(EncodeError::InvalidContentLength)?;
        if declared.is_some_and(|d| d != n) {
            return Err(EncodeError::InvalidContentLength);
        }
        declared = Some(n);
    }
    Ok(declared)
}

/// [`encode_response_head`] into a new buffer of the exact size.
pub fn response_head_to_vec(parts: &response::Parts) -> Result<Vec<u8>, EncodeError> {
    let required = match encode_response_head(parts, &mut []) {
        Ok(n) | Err(EncodeError::BufferTooSmall { required: n }) => n,
        Err(e) => return Err(e),
    };
    let mut v = alloc::vec![0; required];
    let n = encode_response_head(parts, &mut v)?;
    v.truncate(n);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Step};
    use alloc::string::String;
    use alloc::vec;

    /// Decodes a request with `headers` (duplicates allowed, which the
    /// encoder refuses) and maps it.
    fn map(headers: &[(&str, &str)]) -> Result<request::Parts, HttpError> {
        map_raw(&wire(headers, b""))
    }

    /// A request netstring built by hand: `CONTENT_LENGTH` and `SCGI` first.
    fn wire(headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut block = Vec::new();
        let len = alloc::format!("{}", body.len());
        for (n, v) in [("CONTENT_LENGTH", len.as_str()), ("SCGI", "1")]
            .iter()
            .chain(headers)
        {
            block.extend_from_slice(n.as_bytes());
            block.push(0);
            block.extend_from_slice(v.as_bytes());
            block.push(0);
        }
        let mut out = alloc::format!("{}:", block.len()).into_bytes();
        out.extend_from_slice(&block);
        out.push(b',');
        out.extend_from_slice(body);
        out
    }

    fn map_raw(wire: &[u8]) -> Result<request::Parts, HttpError> {
        let Ok(Step::Head(head)) = Decoder::new().decode(wire) else {
            panic!("not a valid head");
        };
        ScgiHeaders::new(&head, wire).into_request_parts()
    }

    /// A request as nginx sends one, plus `extra`.
    fn nginx(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut h = vec![
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/p?q=1"),
            ("QUERY_STRING", "q=1"),
            ("CONTENT_TYPE", ""),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", "49216"),
            ("SERVER_PORT", "8080"),
            ("SERVER_NAME", "localhost"),
        ];
        h.extend_from_slice(extra);
        h
    }

    fn values(parts: &request::Parts, name: &str) -> Vec<Vec<u8>> {
        parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn method() {
        let p = map(&nginx(&[])).unwrap();
        assert_eq!(p.method, Method::GET);
        let mut h = nginx(&[]);
        h[0].1 = "PROPFIND";
        assert_eq!(map(&h).unwrap().method.as_str(), "PROPFIND");
        h[0].1 = "GE T";
        assert_eq!(map(&h).unwrap_err(), HttpError::InvalidMethod);
        h.remove(0);
        assert_eq!(map(&h).unwrap_err(), HttpError::MissingMethod);
        assert_eq!(HttpError::MissingMethod.status_hint(), 400);
    }

    #[test]
    fn uri_origin_form_without_host() {
        let p = map(&nginx(&[])).unwrap();
        assert_eq!(p.uri, "/p?q=1");
        assert_eq!(p.uri.scheme(), None);
        assert_eq!(p.uri.query(), Some("q=1"));
    }

    #[test]
    fn uri_absolute_with_host_and_scheme() {
        let p = map(&nginx(&[
            ("HTTP_HOST", "example.com:8443"),
            ("HTTPS", "on"),
        ]))
        .unwrap();
        assert_eq!(p.uri, "https://example.com:8443/p?q=1");
        let p = map(&nginx(&[("HTTP_HOST", "example.com")])).unwrap();
        assert_eq!(p.uri, "http://example.com/p?q=1");
        let mut h = nginx(&[("HTTP_HOST", "example.com")]);
        h[5].1 = "https"; // REQUEST_SCHEME alone (lighttpd, Apache)
        assert_eq!(map(&h).unwrap().uri.scheme(), Some(&Scheme::HTTPS));
    }

    #[test]
    fn host_without_port_is_kept_as_sent() {
        // Debian's nginx sends `$host`: no port, and SERVER_PORT is not used.
        let p = map(&nginx(&[("HTTP_HOST", "example.com")])).unwrap();
        assert_eq!(p.headers["host"], "example.com");
        assert_eq!(p.uri.authority().unwrap().as_str(), "example.com");
        assert_eq!(p.uri.port_u16(), None);
    }

    #[test]
    fn invalid_host_gives_origin_form() {
        let p = map(&nginx(&[("HTTP_HOST", "bad host")])).unwrap();
        assert_eq!(p.uri, "/p?q=1");
        assert_eq!(p.headers["host"], "bad host");
    }

    #[test]
    fn apache_absolute_form_target() {
        let p = map(&[
            ("REQUEST_METHOD", "GET"),
            ("HTTP_HOST", "other.example"),
            ("REQUEST_SCHEME", "http"),
            ("REQUEST_URI", "http://target.example:81/abs?x=1"),
        ])
        .unwrap();
        assert_eq!(p.uri, "http://target.example:81/abs?x=1");
        assert_eq!(p.uri.path(), "/abs");
        assert_eq!(p.headers["host"], "target.example:81");
        assert_eq!(values(&p, "host").len(), 1);
        // The client's scheme claim is ignored; the connection's is used.
        let p = map(&[
            ("REQUEST_METHOD", "GET"),
            ("HTTPS", "on"),
            ("REQUEST_URI", "http://h.example"),
        ])
        .unwrap();
        assert_eq!(p.uri, "https://h.example/");
    }

    #[test]
    fn asterisk_form() {
        let p = map(&[
            ("REQUEST_METHOD", "OPTIONS"),
            ("REQUEST_URI", "*"),
            ("HTTP_HOST", "h"),
        ])
        .unwrap();
        assert_eq!(p.uri, "*");
    }

    #[test]
    fn uri_bytes_http_refuses_are_percent_encoded() {
        let mut wire = wire(
            &[
                ("REQUEST_METHOD", "GET"),
                ("REQUEST_URI", "/caf\u{e9} x?a=\u{e9}"),
            ],
            b"",
        );
        let p = map_raw(&wire).unwrap();
        assert_eq!(p.uri, "/caf%C3%A9%20x?a=%C3%A9");
        let p = map(&[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/\u{e9}t\u{e9}|{x}"),
        ])
        .unwrap();
        // What http::Uri takes is kept as sent, as hyper would pass it.
        assert_eq!(p.uri, "/\u{e9}t\u{e9}|{x}");
        let p = map(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/a|b c<")]).unwrap();
        assert_eq!(p.uri, "/a%7Cb%20c%3C");
        // latin-1 (not UTF-8) bytes too.
        let at = wire.windows(2).position(|w| w == b"\xc3\xa9").unwrap();
        wire.splice(at..at + 2, [b'\xe9', b'_']);
        let p = map_raw(&wire).unwrap();
        assert_eq!(p.uri.path(), "/caf%E9_%20x");
        let mut raw =
            super::tests::wire(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/caf~")], b"");
        let at = raw.iter().position(|&b| b == b'~').unwrap();
        raw[at] = 0xe9;
        let p = map_raw(&raw).unwrap();
        assert_eq!(p.uri, "/caf%E9");
    }

    #[test]
    fn missing_or_invalid_uri() {
        let e = map(&[("REQUEST_METHOD", "GET")]).unwrap_err();
        assert_eq!(e, HttpError::MissingUri);
        let e = map(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "")]).unwrap_err();
        assert_eq!(e, HttpError::InvalidUri);
        let e = map(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "http://[::1/")]).unwrap_err();
        assert_eq!(e, HttpError::InvalidUri);
    }

    #[test]
    fn version() {
        for (proto, v) in [
            ("HTTP/0.9", Version::HTTP_09),
            ("HTTP/1.0", Version::HTTP_10),
            ("HTTP/1.1", Version::HTTP_11),
            ("HTTP/2.0", Version::HTTP_2),
            ("HTTP/2", Version::HTTP_2),
            ("HTTP/3", Version::HTTP_3),
            ("INCLUDED", Version::HTTP_11),
        ] {
            let mut h = nginx(&[]);
            h[4].1 = proto;
            assert_eq!(map(&h).unwrap().version, v, "{proto}");
        }
        let h: Vec<_> = nginx(&[])
            .into_iter()
            .filter(|h| h.0 != "SERVER_PROTOCOL")
            .collect();
        assert_eq!(map(&h).unwrap().version, Version::HTTP_11);
    }

    #[test]
    fn http_names_lowercase_and_dashes() {
        let p = map(&nginx(&[
            ("HTTP_USER_AGENT", "curl/8"),
            ("HTTP_X_FORWARDED_FOR", "10.0.0.1"),
            ("HTTP_DNT", "1"),
            ("SERVER_SOFTWARE", "nginx"),
        ]))
        .unwrap();
        assert_eq!(p.headers["user-agent"], "curl/8");
        assert_eq!(p.headers["x-forwarded-for"], "10.0.0.1");
        assert_eq!(p.headers["dnt"], "1");
        // Not an HTTP_ variable: not a header.
        assert!(p.headers.get("server-software").is_none());
        assert!(!p.headers.keys().any(|k| k.as_str().contains('_')));
    }

    #[test]
    fn duplicates_become_repeated_values_in_wire_order() {
        // nginx 1.22 forwards two Cookie lines as two SCGI headers; lighttpd
        // sends X_Foo and X-Foo both as HTTP_X_FOO.
        let p = map(&nginx(&[
            ("HTTP_COOKIE", "a=1"),
            ("HTTP_X_FOO", "under"),
            ("HTTP_COOKIE", "b=2"),
            ("HTTP_X_FOO", "dash"),
        ]))
        .unwrap();
        assert_eq!(values(&p, "cookie"), [b"a=1".to_vec(), b"b=2".to_vec()]);
        assert_eq!(values(&p, "x-foo"), [b"under".to_vec(), b"dash".to_vec()]);
        assert_eq!(p.headers["cookie"], "a=1");
    }

    #[test]
    fn content_type_and_length() {
        let wire = wire(
            &[
                ("REQUEST_METHOD", "POST"),
                ("REQUEST_URI", "/"),
                ("CONTENT_TYPE", "application/json"),
                ("HTTP_CONTENT_TYPE", "text/evil"),
                ("HTTP_CONTENT_LENGTH", "99"),
                ("HTTP_TRANSFER_ENCODING", "chunked"),
            ],
            b"hello",
        );
        let p = map_raw(&wire).unwrap();
        assert_eq!(values(&p, "content-type"), [b"application/json".to_vec()]);
        assert_eq!(values(&p, "content-length"), [b"5".to_vec()]);
        assert!(p.headers.get("transfer-encoding").is_none());
        // nginx's empty CONTENT_TYPE is no content type; length 0 is kept.
        let p = map(&nginx(&[])).unwrap();
        assert!(p.headers.get("content-type").is_none());
        assert_eq!(p.headers["content-length"], "0");
    }

    #[test]
    fn non_utf8_values_are_kept_as_bytes() {
        let mut wire = wire(
            &[
                ("REQUEST_METHOD", "GET"),
                ("REQUEST_URI", "/"),
                ("HTTP_X_NAME", "Zo~"),
            ],
            b"",
        );
        let at = wire.iter().position(|&b| b == b'~').unwrap();
        wire[at] = 0xeb; // latin-1 e-diaeresis
        let p = map_raw(&wire).unwrap();
        assert_eq!(p.headers["x-name"].as_bytes(), b"Zo\xeb");
        assert!(p.headers["x-name"].to_str().is_err());
    }

    #[test]
    fn invalid_names_and_values_are_skipped() {
        let p = map(&nginx(&[
            ("HTTP_", "empty name"),
            ("HTTP_A(B", "not a token"),
            ("HTTP_X_BELL", "ring\u{7}"),
            ("HTTP_X_OK", "fine"),
        ]))
        .unwrap();
        assert_eq!(p.headers.len(), 2, "{:?}", p.headers); // x-ok, content-length
        assert_eq!(p.headers["x-ok"], "fine");
        // Still there, raw.
        let raw = p.extensions.get::<ScgiHeaders>().unwrap().headers();
        assert_eq!(raw.get("HTTP_A(B"), Some(&b"not a token"[..]));
        assert_eq!(raw.get("HTTP_X_BELL"), Some(&b"ring\x07"[..]));
    }

    #[test]
    fn long_header_names() {
        let name = String::from("HTTP_") + &"X_LONG".repeat(20);
        let p = map(&[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/"),
            (&name, "v"),
        ])
        .unwrap();
        let want = "x-long".repeat(20);
        assert_eq!(p.headers[want.as_str()], "v");
    }

    #[test]
    fn remote_addr_extension() {
        let p = map(&nginx(&[])).unwrap();
        assert_eq!(
            p.extensions.get::<RemoteAddr>().unwrap().0,
            "127.0.0.1:49216".parse().unwrap()
        );
        let p = map(&[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/"),
            ("REMOTE_ADDR", "::1"),
        ])
        .unwrap();
        assert_eq!(
            p.extensions.get::<RemoteAddr>().unwrap().0,
            "[::1]:0".parse().unwrap()
        );
        let p = map(&[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/"),
            ("REMOTE_ADDR", "unix:"),
        ])
        .unwrap();
        assert!(p.extensions.get::<RemoteAddr>().is_none());
    }

    #[test]
    fn request_parts_alone_has_no_raw_extension() {
        let wire = wire(&nginx(&[]), b"");
        let Ok(Step::Head(head)) = Decoder::new().decode(&wire) else {
            panic!()
        };
        let req = request_head(&head.headers(&wire)).unwrap();
        assert!(req.extensions().get::<ScgiHeaders>().is_none());
        assert!(req.extensions().get::<RemoteAddr>().is_some());
        let raw = ScgiHeaders::new(&head, &wire);
        assert_eq!(raw.head().content_length(), 0);
        assert_eq!(raw.headers().as_bytes(), head.headers(&wire).as_bytes());
    }

    fn response(status: u16, headers: &[(&str, &[u8])]) -> response::Parts {
        let (mut parts, ()) = ::http::Response::new(()).into_parts();
        parts.status = ::http::StatusCode::from_u16(status).unwrap();
        for (n, v) in headers {
            parts.headers.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        parts
    }

    #[test]
    fn response_head() {
        let p = response(
            201,
            &[
                ("Content-Type", b"application/json"),
                ("Set-Cookie", b"a=1"),
                ("Set-Cookie", b"b=2"),
                ("X-Latin", b"\xe9"),
            ],
        );
        assert_eq!(
            response_head_to_vec(&p).unwrap(),
            b"Status: 201 Created\r\ncontent-type: application/json\r\n\
              set-cookie: a=1\r\nset-cookie: b=2\r\nx-latin: \xe9\r\n\r\n"
        );
        let mut small = [0u8; 8];
        assert_eq!(
            encode_response_head(&p, &mut small),
            Err(EncodeError::BufferTooSmall { required: 101 })
        );
        // An unregistered code gets a generic reason.
        assert_eq!(
            response_head_to_vec(&response(299, &[])).unwrap(),
            b"Status: 299 Success\r\n\r\n"
        );
    }

    #[test]
    fn response_drops_hop_by_hop() {
        let p = response(
            200,
            &[
                ("connection", b"close"),
                ("keep-alive", b"timeout=5"),
                ("proxy-connection", b"close"),
                ("transfer-encoding", b"chunked"),
                ("te", b"trailers"),
                ("trailer", b"x"),
                ("upgrade", b"h2c"),
                ("content-length", b"3"),
            ],
        );
        assert_eq!(
            response_head_to_vec(&p).unwrap(),
            b"Status: 200 OK\r\ncontent-length: 3\r\n\r\n"
        );
        let p = response(
            101,
            &[("connection", b"upgrade"), ("upgrade", b"websocket")],
        );
        assert_eq!(
            response_head_to_vec(&p).unwrap(),
            b"Status: 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
        );
    }

    #[test]
    fn response_refuses_what_the_writer_refuses() {
        assert_eq!(
            response_head_to_vec(&response(103, &[])),
            Err(EncodeError::InvalidStatus { code: 103 })
        );
        assert_eq!(
            response_head_to_vec(&response(200, &[("x-a", b"1"), ("status", b"404")])),
            Err(EncodeError::ReservedName { index: 1 })
        );
    }
}

#[cfg(test)]
mod framing_tests {
    use super::*;

    fn parts(status: u16, content_length: Option<&str>) -> response::Parts {
        let mut b = ::http::Response::builder().status(status);
        if let Some(v) = content_length {
            b = b.header(header::CONTENT_LENGTH, v);
        }
        b.body(()).expect("valid").into_parts().0
    }

    fn cl(p: &response::Parts) -> Option<&str> {
        p.headers
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().expect("ascii"))
    }

    #[test]
    fn no_content_length_on_204_and_1xx() {
        for status in [204, 101] {
            let mut p = parts(status, Some("0"));
            frame_response(&mut p, Some(0), false).expect("framed");
            assert_eq!(cl(&p), None, "{status}");
        }
    }

    #[test]
    fn a_zero_content_length_on_304_is_dropped_a_real_one_kept() {
        let mut p = parts(304, Some("0"));
        frame_response(&mut p, Some(0), false).expect("framed");
        assert_eq!(cl(&p), None);
        let mut p = parts(304, Some("1234"));
        frame_response(&mut p, Some(0), false).expect("framed");
        assert_eq!(cl(&p), Some("1234"));
        let mut p = parts(304, None);
        frame_response(&mut p, Some(0), false).expect("framed");
        assert_eq!(cl(&p), None);
    }

    #[test]
    fn exact_bodies_get_a_content_length_except_for_head() {
        let mut p = parts(200, None);
        frame_response(&mut p, Some(5), false).expect("framed");
        assert_eq!(cl(&p), Some("5"));
        let mut p = parts(200, None);
        frame_response(&mut p, Some(5), true).expect("framed");
        assert_eq!(cl(&p), None);
        let mut p = parts(200, None);
        frame_response(&mut p, None, false).expect("framed");
        assert_eq!(cl(&p), None);
        // The service's own value stands, and says how much to send.
        let mut p = parts(200, Some("7"));
        assert_eq!(frame_response(&mut p, None, false), Ok(Some(7)));
        assert_eq!(cl(&p), Some("7"));
    }

    #[test]
    fn broken_content_lengths_are_refused() {
        // Contradicting the body's known size.
        let mut p = parts(200, Some("7"));
        assert_eq!(
            frame_response(&mut p, Some(5), false),
            Err(EncodeError::InvalidContentLength)
        );
        for bad in ["abc", "", "-1", "1 2", "99999999999999999999999"] {
            let mut p = parts(200, Some(bad));
            assert_eq!(
                frame_response(&mut p, None, false),
                Err(EncodeError::InvalidContentLength),
                "{bad:?}"
            );
        }
        // Two different values (11 and 5): which one frames the body?
        let (mut p, ()) = ::http::Response::builder()
            .header("content-length", "11")
            .header("content-length", "5")
            .body(())
            .expect("valid")
            .into_parts();
        assert_eq!(
            frame_response(&mut p, None, false),
            Err(EncodeError::InvalidContentLength)
        );
        // The same value twice is one value, written once.
        let (mut p, ()) = ::http::Response::builder()
            .header("content-length", "5")
            .header("content-length", "5")
            .body(())
            .expect("valid")
            .into_parts();
        assert_eq!(frame_response(&mut p, Some(5), false), Ok(Some(5)));
        assert_eq!(p.headers.get_all("content-length").iter().count(), 1);
    }

    #[test]
    fn bodiless_responses_send_nothing() {
        for (status, head) in [(200, true), (204, false), (304, false), (101, false)] {
            let mut p = parts(status, None);
            assert_eq!(
                frame_response(&mut p, Some(9), head),
                Ok(Some(0)),
                "{status}"
            );
        }
        let mut p = parts(200, None);
        assert_eq!(frame_response(&mut p, None, false), Ok(None));
    }
}

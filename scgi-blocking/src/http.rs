//! Handlers over the `http` crate's types on std threads (feature `http`):
//! [`Server::serve_http`] maps each request to an `http::Request` whose
//! body is read through [`io::Read`], and writes the handler's
//! `http::Response` back, streaming its [`ResponseBody`].
//!
//! The same head mapping and framing rules as the tower layer of the async
//! runtimes (`scgi-tower`), from [`scgi_proto::http`]; the serving machinery
//! (pool, timeouts, error answers, panic isolation, shutdown) is
//! [`Server::run`]'s.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read, Write};

use crate::request::Request;
use crate::server::Server;

/// A boxed error, what an http handler may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of an `http::Request` served by [`Server::serve_http`]: reads
/// give exactly `CONTENT_LENGTH` bytes, streamed from the connection (under
/// the server's [`body_timeout`](crate::Config::body_timeout)), then end of
/// input. It borrows the request for the handler's call.
pub struct RequestBody<'a> {
    req: &'a mut Request,
}

impl RequestBody<'_> {
    /// Body bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.req.body_remaining()
    }
}

impl fmt::Debug for RequestBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("remaining", &self.remaining())
            .finish()
    }
}

impl Read for RequestBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.req.read(buf)
    }
}

/// The body of an `http::Response` from an http handler: bytes known up
/// front (which get a `Content-Length`), or a reader streamed to the
/// client piece by piece (with a `Content-Length` only if its length is
/// given).
///
/// ```
/// use scgi_blocking::ResponseBody;
/// let page: ResponseBody = "hello".into();
/// let bytes: ResponseBody = vec![1, 2, 3].into();
/// let file = ResponseBody::reader(std::io::Cursor::new(vec![0u8; 1 << 20]));
/// let sized = ResponseBody::sized_reader(std::io::empty(), 0);
/// # drop((page, bytes, file, sized));
/// ```
pub struct ResponseBody(Kind);

enum Kind {
    Full(Cow<'static, [u8]>),
    Reader(Box<dyn Read + Send>, Option<u64>),
}

impl ResponseBody {
    /// An empty body.
    #[must_use]
    pub const fn empty() -> Self {
        ResponseBody(Kind::Full(Cow::Borrowed(b"")))
    }

    /// A body streamed from `reader` until its end, of unknown length.
    pub fn reader(reader: impl Read + Send + 'static) -> Self {
        ResponseBody(Kind::Reader(Box::new(reader), None))
    }

    /// A body streamed from `reader`, which must give exactly `len` bytes
    /// (the response says `Content-Length: len`; fewer is an error that
    /// resets the connection, more are not sent).
    pub fn sized_reader(reader: impl Read + Send + 'static, len: u64) -> Self {
        ResponseBody(Kind::Reader(Box::new(reader), Some(len)))
    }

    /// The length, when known.
    #[must_use]
    pub fn len(&self) -> Option<u64> {
        match &self.0 {
            Kind::Full(b) => Some(b.len() as u64),
            Kind::Reader(_, len) => *len,
        }
    }

    /// Whether the body is known to be empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl Default for ResponseBody {
    fn default() -> Self {
        ResponseBody::empty()
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl From<()> for ResponseBody {
    fn from((): ()) -> Self {
        ResponseBody::empty()
    }
}

impl From<&'static str> for ResponseBody {
    fn from(s: &'static str) -> Self {
        ResponseBody(Kind::Full(Cow::Borrowed(s.as_bytes())))
    }
}

impl From<&'static [u8]> for ResponseBody {
    fn from(s: &'static [u8]) -> Self {
        ResponseBody(Kind::Full(Cow::Borrowed(s)))
    }
}

impl From<String> for ResponseBody {
    fn from(s: String) -> Self {
        ResponseBody(Kind::Full(Cow::Owned(s.into_bytes())))
    }
}

impl From<Vec<u8>> for ResponseBody {
    fn from(v: Vec<u8>) -> Self {
        ResponseBody(Kind::Full(Cow::Owned(v)))
    }
}

impl Server {
    /// Serves `handler`, a function from `http::Request` to
    /// `http::Response`, on the worker pool until the server is shut down,
    /// as [`run`](Server::run) serves a plain handler (the same pool,
    /// timeouts, error answers and shutdown). For each request:
    ///
    /// - the head is mapped by [`scgi_proto::http`]'s rules; a head that
    ///   does not map is answered `400` without calling the handler. The
    ///   extensions hold the [`RemoteAddr`](scgi_proto::http::RemoteAddr)
    ///   (the HTTP client), the raw
    ///   [`ScgiHeaders`](scgi_proto::http::ScgiHeaders) and the peer's
    ///   [`Addr`](crate::Addr) (the web server);
    /// - the body is a [`RequestBody`] ([`io::Read`]);
    /// - a handler error or panic is answered `500` (`400`/`408` when the
    ///   body could not be read);
    /// - the response is framed by
    ///   [`frame_response`](scgi_proto::http::frame_response): an invalid
    ///   or conflicting `Content-Length` is a `500`, a reader longer than
    ///   its `Content-Length` is cut to it and one that ends short fails
    ///   the response; a `Content-Length` for a body of known length, none
    ///   on 1xx/204, no body for `HEAD` requests; hop-by-hop headers are
    ///   dropped. A streamed body that fails after part of it was sent
    ///   resets the connection.
    ///
    /// ```no_run
    /// use scgi_blocking::{ResponseBody, Server};
    /// # fn main() -> std::io::Result<()> {
    /// Server::bind("127.0.0.1:4000")?.serve_http(|req| {
    ///     let body = format!("hello from {}", req.uri().path());
    ///     Ok(http::Response::new(ResponseBody::from(body)))
    /// })
    /// # }
    /// ```
    pub fn serve_http<H>(self, handler: H) -> io::Result<()>
    where
        H: Fn(http::Request<RequestBody<'_>>) -> Result<http::Response<ResponseBody>, BoxError>
            + Send
            + Sync
            + 'static,
    {
        self.run(move |req| respond(&handler, req))
    }

    /// [`serve_http`](Server::serve_http) until `stop` returns, as
    /// [`run_until`](Server::run_until).
    pub fn serve_http_until<H, S>(self, handler: H, stop: S) -> io::Result<()>
    where
        H: Fn(http::Request<RequestBody<'_>>) -> Result<http::Response<ResponseBody>, BoxError>
            + Send
            + Sync
            + 'static,
        S: FnOnce() + Send + 'static,
    {
        self.run_until(move |req| respond(&handler, req), stop)
    }
}

fn respond<H>(handler: &H, req: &mut Request) -> io::Result<()>
where
    H: Fn(http::Request<RequestBody<'_>>) -> Result<http::Response<ResponseBody>, BoxError>,
{
    let mut parts = match req.scgi_headers().into_request_parts() {
        Ok(parts) => parts,
        Err(e) => {
            log::warn!("{}: bad request: {e}", req.peer_addr());
            let answer = scgi_proto::error_response(e.status_hint(), &e)?;
            return req.write_all(&answer);
        }
    };
    parts.extensions.insert(req.peer_addr().clone());
    let is_head = parts.method == http::Method::HEAD;
    let request = http::Request::from_parts(parts, RequestBody { req: &mut *req });
    let (mut parts, body) = handler(request).map_err(io::Error::other)?.into_parts();
    let to_send = scgi_proto::http::frame_response(&mut parts, body.len(), is_head)?;
    req.write_all(&scgi_proto::http::response_head_to_vec(&parts)?)?;
    req.wrote_head(parts.status.as_u16());
    match (body.0, to_send) {
        (_, Some(0)) => Ok(()),
        // `frame_response` checked a known length against the head's.
        (Kind::Full(bytes), _) => req.write_all(&bytes),
        (Kind::Reader(reader, _), None) => io::copy(&mut { reader }, req).map(drop),
        (Kind::Reader(reader, _), Some(len)) => {
            let copied = io::copy(&mut reader.take(len), req)?;
            if copied < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the response body ended after {copied} of {len} bytes"),
                ));
            }
            Ok(())
        }
    }
}

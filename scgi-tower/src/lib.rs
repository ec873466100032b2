//! Serve any `tower::Service` over `http` types (an axum `Router`, a
//! tower-http stack, a `service_fn`) over SCGI, on any async runtime crate
//! of scgi-rs.
//!
//! This crate is the `http`/tower layer written once: it maps a request's
//! SCGI head to an `http::Request` ([`scgi_proto::http`]'s rules), streams
//! its body as a [`RequestBody`], calls the service, and writes the
//! `http::Response` back as a CGI response. It is runtime-neutral: it
//! drives a request through the small [`Exchange`] trait, which
//! `scgi_tokio::Request` and `scgi_async_std::Request` implement, and the
//! runtime crates' `serve` / `serve_until` (feature `tower`) call
//! [`handle`] from their `run_until`. The serving machinery (connection
//! cap, timeouts, error answers, panic isolation, graceful shutdown) is
//! theirs, the same as for plain handlers.
//!
//! What [`handle`] does for each request:
//!
//! - the head is mapped by [`scgi_proto::http`]'s rules (method, URI,
//!   version, headers, duplicates); a head that does not map (no
//!   `REQUEST_METHOD`, a target `http::Uri` refuses) is answered `400`
//!   without calling the service. The extensions hold the
//!   [`RemoteAddr`] (the HTTP client), the
//!   raw [`ScgiHeaders`](scgi_proto::http::ScgiHeaders) and the peer's
//!   address (the web server; the runtime crate's `Addr`); with the
//!   feature `axum`, also axum's `ConnectInfo<SocketAddr>` (the HTTP
//!   client, as [`RemoteAddr`]), so that
//!   axum's `ConnectInfo` extractor works;
//! - the body is a [`RequestBody`], streamed from the socket as the
//!   service reads it;
//! - the service is called once it is ready; its error, or a panic, is
//!   answered `500` (`400`/`408` when the body could not be read), as a
//!   failed handler is;
//! - the response head is written by
//!   [`response_head_to_vec`](scgi_proto::http::response_head_to_vec)'s
//!   rules (hop-by-hop headers dropped; a status or header the writer
//!   refuses is a `500`). Framing is the library's, by
//!   [`frame_response`](scgi_proto::http::frame_response)'s rules: an
//!   invalid or conflicting `Content-Length` (two values, not a number,
//!   not the body's known size) is a `500`; a body longer than its
//!   `Content-Length` is cut to it, one that ends short fails the response
//!   (a reset once part of it was sent); a body of exact known size gets a
//!   `Content-Length`; none on 1xx and 204, nor a zero one on 304 (axum
//!   adds both; nginx would pass them on); the responses to `HEAD` and the
//!   1xx, 204 and 304 responses are their head alone (the service's body
//!   is dropped unpolled);
//! - the response body is streamed: each data frame is written before the
//!   next is polled (backpressure from the socket), and what is buffered is
//!   flushed whenever the body has no frame ready, so a slow stream reaches
//!   the client piece by piece. Trailers are dropped (CGI has no place for
//!   them). A body error after the head was sent resets the connection, so
//!   the web server sees a failed response, not a short one.
// docs.rs (`--cfg docsrs`, nightly) labels each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http_body::{Body as _, Frame, SizeHint};
use tower_service::Service;

pub use scgi_proto::http::RemoteAddr;

/// A boxed error, as tower uses them.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// What this crate needs of a runtime crate's request: its head, its peer,
/// and poll-based body reads and response writes. Implemented by
/// `scgi_tokio::Request` and `scgi_async_std::Request`; a runtime crate of
/// your own implements it to get the tower layer.
pub trait Exchange: Send + 'static {
    /// The peer's address type (the web server), put in the
    /// `http::Request`'s extensions.
    type Peer: Clone + fmt::Display + Send + Sync + 'static;

    /// An owned copy of the header netstring.
    fn scgi_headers(&self) -> scgi_proto::http::ScgiHeaders;

    /// The peer's address.
    fn peer(&self) -> &Self::Peer;

    /// Body bytes not read yet.
    fn body_remaining(&self) -> u64;

    /// The next piece of the body, `None` at its end; errors as the
    /// runtime's body reads fail (a peer that closes early or stalls).
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>>;

    /// Writes response bytes (buffered by the runtime crate as it does for
    /// any handler).
    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>>;

    /// Sends what is buffered.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// The response head written through [`poll_write`](Exchange::poll_write)
    /// carried `status`: for the server's counters and access log. Does
    /// nothing by default.
    fn wrote_head(&mut self, status: u16) {
        let _ = status;
    }
}

/// The request an [`Exchange`] lives in while the service runs: shared by
/// the [`RequestBody`] (which reads from it) and the response writer (which
/// writes to it). Locked only inside one poll, never across an `await`,
/// and never while polling the response body (which may poll the request
/// body: an echo).
type Shared<R> = Arc<Mutex<Option<R>>>;

fn lock<R>(shared: &Shared<R>) -> MutexGuard<'_, Option<R>> {
    // A panic while locked cannot leave the request half-updated in a way
    // that matters more than the panic itself, which the server answers.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn finished_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the request body was read after its response was finished",
    )
}

/// The body of an `http::Request` served by [`handle`]: an
/// [`http_body::Body`] of [`Bytes`] frames streamed from the connection,
/// exactly `CONTENT_LENGTH` bytes long. `R` is the runtime crate's request
/// (each runtime crate names this type `RequestBody` for its own).
///
/// Nothing is read before the service polls it, and each frame is read
/// only when asked for: a service that does not read the body costs no
/// read (the server drains what is left after the response). A read waits
/// at most the server's `body_timeout`; a peer that closes early or stalls
/// gives an error frame, and a service that then fails is answered `400`
/// or `408`. The body can be read until the response is finished, not
/// after.
pub struct RequestBody<R> {
    shared: Shared<R>,
    /// Bytes not yet handed out.
    remaining: u64,
}

impl<R> fmt::Debug for RequestBody<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl<R: Exchange> http_body::Body for RequestBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let mut guard = lock(&this.shared);
        let Some(req) = guard.as_mut() else {
            return Poll::Ready(Some(Err(finished_error())));
        };
        match ready!(req.poll_chunk(cx)) {
            Ok(Some(piece)) => {
                this.remaining = this.remaining.saturating_sub(piece.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
            Ok(None) => {
                this.remaining = 0;
                Poll::Ready(None)
            }
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// What [`handle`] needs of a service; implemented for every
/// `tower::Service` over `http::Request<RequestBody<R>>` whose response
/// body is an [`http_body::Body`] (an axum `Router`, a
/// `tower::ServiceBuilder` stack, a `tower::service_fn`). Not to be
/// implemented by hand.
pub trait HttpService<R>: Clone + Send + 'static {
    /// The response body.
    type Body: http_body::Body<Data = Self::Data, Error = Self::BodyError> + Send + 'static;
    /// The response body's data.
    type Data: Buf + Send;
    /// The response body's error.
    type BodyError: Into<BoxError>;
    /// The service's error.
    type Error: Into<BoxError>;
    /// The service's future.
    type Future: Future<Output = Result<http::Response<Self::Body>, Self::Error>> + Send + 'static;

    /// `tower::Service::poll_ready`.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;
    /// `tower::Service::call`.
    fn call(&mut self, req: http::Request<RequestBody<R>>) -> Self::Future;
}

impl<R, S, B> HttpService<R> for S
where
    S: Service<http::Request<RequestBody<R>>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Body = B;
    type Data = B::Data;
    type BodyError = B::Error;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Service::poll_ready(self, cx)
    }

    fn call(&mut self, req: http::Request<RequestBody<R>>) -> S::Future {
        Service::call(self, req)
    }
}

/// A service shared by the connections of one server: each request takes a
/// clone. A runtime's `run_until` wants a `Sync` handler, and tower
/// services need not be (`BoxCloneService` is not); the clone is taken
/// under a lock held for the clone alone.
#[derive(Debug)]
pub struct SharedService<S>(Mutex<S>);

impl<S: Clone> SharedService<S> {
    /// Shares `service`.
    pub fn new(service: S) -> Self {
        SharedService(Mutex::new(service))
    }

    /// A clone of the service, for one request.
    pub fn get(&self) -> S {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Serves one request through `service` (see the crate docs for what
/// happens). An error result means the service failed or the response
/// could not be written; the runtime crate answers it as a failed handler.
/// The request goes back to the caller's task when this returns, whatever
/// the service kept, so the server finishes it knowing how it ended.
pub async fn handle<R: Exchange, S: HttpService<R>>(mut service: S, req: R) -> io::Result<()> {
    let mut parts = match req.scgi_headers().into_request_parts() {
        Ok(parts) => parts,
        Err(e) => {
            log::warn!("{}: bad request: {e}", req.peer());
            let response =
                scgi_proto::error_response(e.status_hint(), &e).map_err(io::Error::from)?;
            let shared = Arc::new(Mutex::new(Some(req)));
            return write_all(&shared, &response).await;
        }
    };
    parts.extensions.insert(req.peer().clone());
    #[cfg(feature = "axum")]
    if let Some(client) = parts.extensions.get::<scgi_proto::http::RemoteAddr>() {
        let client = axum::extract::ConnectInfo(client.0);
        parts.extensions.insert(client);
    }
    let is_head = parts.method == http::Method::HEAD;
    let body = RequestBody {
        remaining: req.body_remaining(),
        shared: Arc::new(Mutex::new(None)),
    };
    let shared = Arc::clone(&body.shared);
    *lock(&shared) = Some(req);

    let result = respond(
        &mut service,
        http::Request::from_parts(parts, body),
        is_head,
        &shared,
    )
    .await;
    let req = lock(&shared).take();
    drop(req);
    result
}

async fn respond<R: Exchange, S: HttpService<R>>(
    service: &mut S,
    request: http::Request<RequestBody<R>>,
    is_head: bool,
    shared: &Shared<R>,
) -> io::Result<()> {
    poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(|e| io::Error::other(e.into()))?;
    let response = service
        .call(request)
        .await
        .map_err(|e| io::Error::other(e.into()))?;
    let (mut parts, body) = response.into_parts();
    let to_send = scgi_proto::http::frame_response(&mut parts, body.size_hint().exact(), is_head)?;
    let head = scgi_proto::http::response_head_to_vec(&parts)?;
    write_all(shared, &head).await?;
    if let Some(req) = lock(shared).as_mut() {
        req.wrote_head(parts.status.as_u16());
    }
    if to_send == Some(0) {
        // No body on the wire (HEAD, 1xx, 204, 304), whatever the service
        // made: it is dropped unpolled.
        return Ok(());
    }

    let mut body = pin!(body);
    let mut data: Option<S::Data> = None;
    // Body bytes still to send when the head declared a length: no more
    // are sent, and a body that ends short fails the response.
    let mut left = to_send;
    poll_fn(|cx| {
        loop {
            if let Some(buf) = data.as_mut() {
                let room = left.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
                let chunk = buf.chunk();
                let chunk = &chunk[..chunk.len().min(room)];
                if !chunk.is_empty() {
                    let n = ready!(with_request(shared, |req| req.poll_write(cx, chunk)))?;
                    buf.advance(n);
                    if let Some(l) = left.as_mut() {
                        *l -= n as u64;
                    }
                    continue;
                }
                data = None;
                if left == Some(0) {
                    // The declared length is out: the rest is not sent.
                    return Poll::Ready(Ok(()));
                }
            }
            match body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are dropped: CGI cannot carry them.
                    if let Ok(d) = frame.into_data() {
                        data = Some(d);
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e.into()))),
                Poll::Ready(None) => {
                    return Poll::Ready(match left {
                        Some(l) if l > 0 => Err(short_body(l)),
                        _ => Ok(()),
                    });
                }
                Poll::Pending => {
                    // Nothing to send for now: what is buffered goes out.
                    ready!(with_request(shared, |req| req.poll_flush(cx)))?;
                    return Poll::Pending;
                }
            }
        }
    })
    .await
}

fn short_body(missing: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the response body ended {missing} bytes short of its Content-Length"),
    )
}

/// Runs `f` on the request, locked for this one poll.
fn with_request<R, T>(
    shared: &Shared<R>,
    f: impl FnOnce(&mut R) -> Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    match lock(shared).as_mut() {
        Some(req) => f(req),
        None => Poll::Ready(Err(finished_error())),
    }
}

async fn write_all<R: Exchange>(shared: &Shared<R>, mut data: &[u8]) -> io::Result<()> {
    poll_fn(|cx| {
        while !data.is_empty() {
            let n = ready!(with_request(shared, |req| req.poll_write(cx, data)))?;
            data = &data[n..];
        }
        Poll::Ready(Ok(()))
    })
    .await
}

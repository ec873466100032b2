//! Serving a `tower::Service` (an axum `Router`) over SCGI: a handler for
//! [`Server::run_until`] that maps each [`Request`] to an `http::Request`
//! and writes the service's `http::Response` back (feature `tower`).
//!
//! All the serving machinery (the connection cap, timeouts, error answers,
//! panic isolation, graceful shutdown) is `run_until`'s: this module only
//! adapts the types.

use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::header::{self, HeaderValue};
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tower_service::Service;

use crate::request::Request;
use crate::server::Server;

type BoxError = Box<dyn StdError + Send + Sync>;

/// The request [`Request`] lives in while the service runs: shared by the
/// [`RequestBody`] (which reads from it) and the response writer (which
/// writes to it). Locked only inside one poll, never across an `await`,
/// and never while polling the response body (which may poll the request
/// body: an echo).
type Shared = Arc<Mutex<Option<Request>>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Option<Request>> {
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

/// The body of an `http::Request` served by [`Server::serve`]: an
/// [`http_body::Body`] of [`Bytes`] frames streamed from the connection
/// (zero-copy pieces of its read buffer, as [`Request::chunk`] gives),
/// exactly `CONTENT_LENGTH` bytes long.
///
/// Nothing is read before the service polls it, and each frame is read
/// only when asked for: a service that does not read the body costs no
/// read (the server drains what is left after the response). A read
/// waits at most [`body_timeout`](crate::Config::body_timeout); a peer
/// that closes early or stalls gives an error frame, and a service that
/// then fails is answered `400` or `408` as under [`Server::run`]. The
/// body can be read until the response is finished, not after.
pub struct RequestBody {
    shared: Shared,
    /// Bytes not yet handed out.
    remaining: u64,
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl http_body::Body for RequestBody {
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

/// What [`Server::serve`] needs of a service; implemented for every
/// `tower::Service` over `http::Request<RequestBody>` whose response body
/// is an [`http_body::Body`] (an axum `Router`, a `tower::ServiceBuilder`
/// stack, a `tower::service_fn`). Not to be implemented by hand.
pub trait HttpService: Clone + Send + 'static {
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
    fn call(&mut self, req: http::Request<RequestBody>) -> Self::Future;
}

impl<S, B> HttpService for S
where
    S: Service<http::Request<RequestBody>, Response = http::Response<B>> + Clone + Send + 'static,
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

    fn call(&mut self, req: http::Request<RequestBody>) -> S::Future {
        Service::call(self, req)
    }
}

impl Server {
    /// Serves `service` (an axum `Router`, any `tower::Service` taking an
    /// `http::Request<`[`RequestBody`]`>` and returning an `http::Response`
    /// whose body is an [`http_body::Body`]) until the server is shut down
    /// through a [`ShutdownHandle`](crate::ShutdownHandle); see
    /// [`serve_until`](Server::serve_until).
    pub async fn serve<S: HttpService>(self, service: S) -> io::Result<()> {
        self.serve_until(service, std::future::pending::<()>())
            .await
    }

    /// Serves `service` until `signal` completes or the server is shut
    /// down, as [`run_until`](Server::run_until) serves a handler, with the
    /// same connection cap, timeouts, error answers, panic isolation and
    /// graceful shutdown. For each request:
    ///
    /// - the head is mapped by [`scgi_proto::http`]'s rules (method, URI,
    ///   version, headers, duplicates); a head that does not map (no
    ///   `REQUEST_METHOD`, a target `http::Uri` refuses) is answered `400`
    ///   without calling the service. The extensions hold the
    ///   [`RemoteAddr`](scgi_proto::http::RemoteAddr) (the HTTP client),
    ///   the raw [`ScgiHeaders`](scgi_proto::http::ScgiHeaders) and the
    ///   peer's [`Addr`](crate::Addr) (the web server);
    /// - the body is a [`RequestBody`], streamed from the socket as the
    ///   service reads it;
    /// - the service's clone is called once it is ready; its error, or a
    ///   panic, is answered `500` (`400`/`408` when the body could not be
    ///   read), as a failed handler is;
    /// - the response head is written by
    ///   [`encode_response_head`](scgi_proto::http::encode_response_head)'s
    ///   rules (hop-by-hop headers dropped; a status or header the writer
    ///   refuses is a `500`). Without a `Content-Length` and with a body of
    ///   exact known size (axum's `Json`, a `String`), one is added, except
    ///   for `HEAD` requests and 1xx, 204 and 304 responses;
    /// - the response body is streamed: each data frame is written before
    ///   the next is polled (backpressure from the socket, each write under
    ///   [`write_timeout`](crate::Config::write_timeout)), and what is
    ///   buffered is flushed whenever the body has no frame ready, so a
    ///   slow stream reaches the client piece by piece. Trailers are
    ///   dropped (CGI has no place for them). A body error after the head
    ///   was sent resets the connection, so the web server sees a failed
    ///   response, not a short one.
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// use tower::service_fn;
    /// let server = scgi_tokio::Server::bind_tcp(scgi_tokio::Server::DEFAULT_ADDR)?;
    /// let hello = service_fn(|_req: http::Request<scgi_tokio::RequestBody>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
    /// });
    /// server.serve_until(hello, tokio::signal::ctrl_c()).await
    /// # }
    /// ```
    pub async fn serve_until<S: HttpService, F: Future>(
        self,
        service: S,
        signal: F,
    ) -> io::Result<()> {
        // `run_until` wants a `Sync` handler; tower services need not be
        // (`BoxCloneService` is not), and a clone per request is taken
        // under the lock anyway.
        let service = Mutex::new(service);
        self.run_until(
            move |req: Request| {
                let service = service
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                handle(service, req)
            },
            signal,
        )
        .await
    }
}

/// One request through the service.
async fn handle<S: HttpService>(mut service: S, mut req: Request) -> io::Result<()> {
    let mut parts = match req.scgi_headers().into_request_parts() {
        Ok(parts) => parts,
        Err(e) => {
            log::warn!("{}: bad request: {e}", req.peer_addr());
            let response =
                scgi_proto::error_response(e.status_hint(), &e).map_err(io::Error::from)?;
            return req.write_all(&response).await;
        }
    };
    parts.extensions.insert(req.peer_addr().clone());
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
    // The request goes back to this task, whatever the service kept: the
    // server then finishes it knowing how the service ended.
    let req = lock(&shared).take();
    drop(req);
    result
}

async fn respond<S: HttpService>(
    service: &mut S,
    request: http::Request<RequestBody>,
    is_head: bool,
    shared: &Shared,
) -> io::Result<()> {
    poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(|e| io::Error::other(e.into()))?;
    let response = service
        .call(request)
        .await
        .map_err(|e| io::Error::other(e.into()))?;
    let (mut parts, body) = response.into_parts();

    let status = parts.status.as_u16();
    if !is_head
        && !matches!(status, 100..=199 | 204 | 304)
        && !parts.headers.contains_key(header::CONTENT_LENGTH)
        && !parts.headers.contains_key(header::TRANSFER_ENCODING)
        && let Some(len) = body.size_hint().exact()
    {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    let head = scgi_proto::http::response_head_to_vec(&parts)?;
    write_all(shared, &head).await?;

    let mut body = pin!(body);
    let mut data: Option<S::Data> = None;
    poll_fn(|cx| {
        loop {
            if let Some(buf) = data.as_mut() {
                if buf.has_remaining() {
                    let n = ready!(with_request(shared, |req| {
                        Pin::new(req).poll_write(cx, buf.chunk())
                    }))?;
                    buf.advance(n);
                    continue;
                }
                data = None;
            }
            match body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are dropped: CGI cannot carry them.
                    if let Ok(d) = frame.into_data() {
                        data = Some(d);
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e.into()))),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    // Nothing to send for now: what is buffered goes out.
                    ready!(with_request(shared, |req| Pin::new(req).poll_flush(cx)))?;
                    return Poll::Pending;
                }
            }
        }
    })
    .await
}

/// Runs `f` on the request, locked for this one poll.
fn with_request<T>(
    shared: &Shared,
    f: impl FnOnce(&mut Request) -> Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    match lock(shared).as_mut() {
        Some(req) => f(req),
        None => Poll::Ready(Err(finished_error())),
    }
}

async fn write_all(shared: &Shared, mut data: &[u8]) -> io::Result<()> {
    poll_fn(|cx| {
        while !data.is_empty() {
            let n = ready!(with_request(shared, |req| Pin::new(req).poll_write(cx, data)))?;
            data = &data[n..];
        }
        Poll::Ready(Ok(()))
    })
    .await
}

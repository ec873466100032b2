//! Serving a `tower::Service` (an axum `Router`) on any runtime (feature
//! `tower`): [`scgi_tower`]'s layer on this crate's [`Request`].

use std::future::Future;
use std::io;
use std::task::{Context, Poll};

use bytes::Bytes;
use scgi_net::Addr;

use crate::request::Request;
use crate::rt::Runtime;
use crate::server::Server;

/// The body of an `http::Request` served by [`Server::serve`]: an
/// `http_body::Body` of `Bytes` frames streamed from the connection (see
/// [`scgi_tower::RequestBody`]).
pub type RequestBody<R> = scgi_tower::RequestBody<Request<R>>;

impl<R: Runtime> scgi_tower::Exchange for Request<R> {
    type Peer = Addr;

    fn scgi_headers(&self) -> scgi_proto::http::ScgiHeaders {
        Request::scgi_headers(self)
    }

    fn peer(&self) -> &Addr {
        self.peer_addr()
    }

    fn body_remaining(&self) -> u64 {
        Request::body_remaining(self)
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        Request::poll_chunk(self, cx)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Request::poll_write(self, cx, data)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Request::poll_flush(self, cx)
    }

    fn wrote_head(&mut self, status: u16) {
        Request::wrote_head(self, status);
    }
}

impl<R: Runtime> Server<R> {
    /// Serves `service` (an axum `Router`, any `tower::Service` taking an
    /// `http::Request<`[`RequestBody`]`>` and returning an `http::Response`
    /// whose body is an `http_body::Body`) until the server is shut down;
    /// see [`serve_until`](Server::serve_until).
    pub async fn serve<S: scgi_tower::HttpService<Request<R>>>(self, service: S) -> io::Result<()> {
        self.serve_until(service, std::future::pending::<()>())
            .await
    }

    /// Serves `service` until `signal` completes or the server is shut
    /// down, as [`run_until`](Server::run_until) serves a handler (the
    /// same connection cap, timeouts, error answers, panic isolation and
    /// graceful shutdown). What happens to each request is
    /// [`scgi_tower`]'s: the head mapped to an `http::Request`, the body
    /// streamed, the response framed and streamed back.
    pub async fn serve_until<S, F>(self, service: S, signal: F) -> io::Result<()>
    where
        S: scgi_tower::HttpService<Request<R>>,
        F: Future,
    {
        let service = scgi_tower::SharedService::new(service);
        self.run_until(
            move |req: Request<R>| scgi_tower::handle(service.get(), req),
            signal,
        )
        .await
    }
}

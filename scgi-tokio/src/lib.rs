//! Serve SCGI on tokio: TCP (IPv4, IPv6) or Unix sockets, one task per
//! connection.
//!
//! This crate binds [`scgi_async`], the async server every runtime crate
//! shares, to tokio ([`Tokio`]): sockets, tasks and timers. The protocol (decoding the
//! header netstring, counting the body, writing `Status:` heads) is
//! [`scgi_proto`]'s, and so is every decision about a connection's life
//! (which timeout applies, which status a failure gets, whether to close,
//! drain or reset): each connection is driven by a
//! [`scgi_proto::server::Connection`]. The settings are
//! [`scgi_proto::server::Config`], re-exported as [`Config`] and shared
//! with `scgi-blocking`, with the same defaults; its
//! [`workers`](Config::workers) is ignored here, since every connection is
//! a task and how many threads run them is the tokio runtime's business.
//! The API is `scgi-blocking`'s made async, with the same names, so
//! switching runtimes is mostly adding `.await`: open ([`Server::bind_tcp`], [`Server::bind_unix`],
//! [`Server::from_listener`]), [`next`](Server::next),
//! [`run`](Server::run) / [`run_until`](Server::run_until),
//! [`close`](Server::close) and
//! [`write_status_ok_text_content`](Request::write_status_ok_text_content).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use scgi_tokio::{Addr, Request, Server};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! // Port 0 picks a free port; a real server uses Server::DEFAULT_ADDR.
//! let server = Server::bind_tcp("127.0.0.1:0")?;
//! let Addr::Tcp(addr) = server.local_addr().clone() else { unreachable!() };
//! let handle = server.shutdown_handle();
//!
//! let count = Arc::new(AtomicUsize::new(0));
//! let serving = tokio::spawn(server.run(move |mut req: Request| {
//!     let n = count.fetch_add(1, Ordering::Relaxed) + 1;
//!     async move {
//!         req.write_status_ok_text_content("text/plain").await?;
//!         req.write_all(format!("Hello for the {n}th time").as_bytes()).await
//!     }
//! }));
//!
//! // What a web server would send, and read back.
//! let mut conn = tokio::net::TcpStream::connect(addr).await?;
//! conn.write_all(&scgi_proto::encode_request_to_vec(
//!     &[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")],
//!     b"",
//! )?)
//! .await?;
//! let mut response = String::new();
//! conn.read_to_string(&mut response).await?;
//! assert_eq!(
//!     response,
//!     "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nHello for the 1th time"
//! );
//! drop(conn);
//!
//! assert!(handle.close().await); // stop accepting, wait for requests in flight
//! serving.await.unwrap()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Behind a web server
//!
//! nginx passes requests to the server with:
//!
//! ```nginx
//! location / {
//!     include scgi_params;
//!     scgi_pass 127.0.0.1:4000;   # or unix:/run/app/scgi.sock
//! }
//! ```
//!
//! Forgetting `include scgi_params;` drops the `SCGI` header with every
//! other CGI variable; the server answers 400 and logs why. Apache uses
//! `ProxyPass / scgi://127.0.0.1:4000/` (`mod_proxy_scgi`), lighttpd
//! `scgi.server` (`mod_scgi`). The examples `hello` and `echo` listen on
//! `127.0.0.1:4000` (`cargo run -p scgi-tokio --example hello`) and stop
//! gracefully on SIGTERM or Ctrl-C ([`shutdown_signal`]).
//!
//! # Handlers
//!
//! A handler is any `Fn(Request) -> impl Future<Output = io::Result<()>>`
//! that is `Send + Sync + 'static`, with a `Send + 'static` future: a
//! closure returning an `async move` block, or an `async fn` passed by name
//! (`server.run(handle)` with `async fn handle(mut req: Request) ->
//! io::Result<()>`). The request is the handler's to own (no boxed future,
//! no borrow to fight); shared state goes in an `Arc` captured by the
//! closure. [`Request`] reads as the body ([`AsyncRead`](tokio::io::AsyncRead),
//! or zero-copy [`Bytes`](bytes::Bytes) pieces with
//! [`chunk`](Request::chunk)) and writes as the response
//! ([`AsyncWrite`](tokio::io::AsyncWrite)); use tokio's
//! `AsyncReadExt` / `AsyncWriteExt`.
//!
//! # What the server does for you
//!
//! The decisions are [`scgi_proto::server`]'s, the same on every runtime:
//!
//! - **Concurrency**: a task per connection; at most
//!   [`max_connections`](Config::max_connections) open at once (a
//!   semaphore; the rest wait in the kernel's backlog).
//! - **Timeouts**: the whole head within
//!   [`head_timeout`](Config::head_timeout) (slowloris defence; `408`),
//!   each body read within [`body_timeout`](Config::body_timeout), each
//!   write within [`write_timeout`](Config::write_timeout).
//! - **Bad requests**: answered with the decoder's
//!   [status hint](scgi_proto::Error::status_hint) (400, 413, 431) and a
//!   short text body ([`scgi_proto::error_response`]), logged, and never
//!   shown to the handler.
//! - **Handlers**: one that writes nothing gets `Status: 204 No Content`
//!   sent for it; one that fails or panics before sending gets a `500`
//!   (or `400`/`408` when its body read failed); after a partial send the
//!   connection is reset. A panic is caught in its connection's task; the
//!   server keeps serving.
//! - **Closing**: a request read to its end, with nothing pending behind
//!   it, is closed right after its response. Otherwise the response is
//!   followed by a half-close and a bounded drain of what the peer still
//!   sends ([`drain_timeout`](Config::drain_timeout),
//!   [`drain_limit`](Config::drain_limit)), so an unread body (an early
//!   `413`, nginx's surplus after a short `CONTENT_LENGTH`) does not turn
//!   into a reset that loses the response.
//! - **Quiet**: a connection closed before its first byte (Apache does it
//!   when it answers a chunked request itself) is not an error.
//! - **Shutdown**: [`run_until`](Server::run_until)'s future or a
//!   [`ShutdownHandle`] stops accepting, serves what was already accepted,
//!   and waits up to [`shutdown_timeout`](Config::shutdown_timeout); past
//!   it the remaining connections' tasks are cancelled.
//! - **Memory**: a connection costs its task (the connection's future
//!   lives inside it: about 7 KiB in release builds), tokio's reactor
//!   registration, and a 4 KiB read buffer (grown only for a larger head);
//!   nothing else is allocated per request. Headers are views into the
//!   read buffer, the 512-byte response buffer lives inside the request,
//!   body reads go straight into the caller's buffer,
//!   [`chunk`](Request::chunk) slices the read buffer, and a request
//!   dropped by its handler hands its connection back through a
//!   thread-local slot. `tests/allocations.rs` counts this.
//!
//! Diagnostics go through the [`log`](https://docs.rs/log) facade: `warn`
//! for bad requests, `error` for failed handlers and accept errors, `debug`
//! for the routine.
//!
//! # One at a time
//!
//! Without a handler, [`Server::next`] hands out requests in the caller's
//! task:
//!
//! ```no_run
//! use tokio::io::AsyncWriteExt;
//! # async fn f() -> std::io::Result<()> {
//! let mut server = scgi_tokio::Server::bind_tcp(scgi_tokio::Server::DEFAULT_ADDR)?;
//! while let Some(mut req) = server.next(None).await? {
//!     req.write_status_ok_text_content("text/plain").await?;
//!     req.write_all(b"hello").await?;
//!     req.finish().await?; // or drop it: it then finishes in a task of its own
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Feature `tower`: axum and any `tower::Service`
//!
//! With the `tower` feature, `Server::serve` and `Server::serve_until`
//! serve any `tower::Service<http::Request<RequestBody>>` returning an
//! `http::Response` with an `http_body::Body` (an axum `Router`, a
//! tower-http stack) through `scgi-tower`, the runtime-neutral layer
//! scgi-async-std uses too, over [`run_until`](Server::run_until): the
//! same cap, timeouts, error answers and shutdown. The head mapping and
//! the response framing are `scgi_proto::http`'s; see `Server::serve_until`
//! for the rest and `examples/axum` for an axum app.
//!
//! The `axum` feature is `tower` plus axum's `ConnectInfo<SocketAddr>` in
//! each request's extensions (the HTTP client's address, from
//! `REMOTE_ADDR` and `REMOTE_PORT`; also there as `RemoteAddr` with
//! `tower` alone), so axum's `ConnectInfo` extractor works.
//!
//! # Cargo features of tokio
//!
//! The crate enables tokio's `net`, `rt`, `time`, `sync` and `io-util`.
//! The application picks the runtime flavour (`rt-multi-thread` or
//! current-thread); [`shutdown_signal`] needs no tokio feature.
// docs.rs (`--cfg docsrs`, nightly) labels each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The crate README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod net;

#[cfg(unix)]
pub use net::UnixOptions;
pub use net::{Addr, Listener, Stream, TcpOptions, Tokio, TokioListener};
pub use scgi_async;
#[cfg(unix)]
pub use scgi_async::{ShutdownSignal, shutdown_signal};
pub use scgi_proto;
pub use scgi_proto::form_pairs;
pub use scgi_proto::server::{Config, Stats};
#[cfg(feature = "tower")]
pub use scgi_tower::{self, HttpService, RemoteAddr};

/// An SCGI server on a TCP or Unix socket, served by tokio tasks: see
/// [`scgi_async::Server`] for its methods, and the [crate docs](crate).
pub type Server = scgi_async::Server<Tokio>;

/// A request whose head is read and validated: its headers, its body
/// (tokio's [`AsyncRead`](tokio::io::AsyncRead), or zero-copy
/// [`chunk`](scgi_async::Request::chunk)s) and its response (tokio's
/// [`AsyncWrite`](tokio::io::AsyncWrite)); see [`scgi_async::Request`].
pub type Request = scgi_async::Request<Tokio>;

/// A connection taken over after a `101` response: see
/// [`scgi_async::Upgraded`]; it reads and writes through tokio's traits.
pub type Upgraded = scgi_async::Upgraded<Tokio>;

/// A handle that stops a [`Server`] from another task or thread: see
/// [`scgi_async::ShutdownHandle`].
pub type ShutdownHandle = scgi_async::ShutdownHandle<Tokio>;

/// The body of an `http::Request` served by `Server::serve` (feature
/// `tower`): see [`scgi_async::RequestBody`].
#[cfg(feature = "tower")]
pub type RequestBody = scgi_async::RequestBody<Tokio>;

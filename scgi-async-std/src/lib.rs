//! Serve SCGI on async-std or smol: TCP (IPv4, IPv6) or Unix sockets, one
//! task per connection.
//!
//! This crate binds [`scgi_async`], the async server every runtime crate
//! shares, to `async-io` sockets and timers and to any executor
//! ([`AsyncIo`], with a [`Spawn`]er). The protocol (decoding the header
//! netstring, counting the body, writing `Status:` heads) is
//! [`scgi_proto`]'s, and so is every decision about a connection's life
//! (which deadline applies, what to answer, when to drain):
//! [`scgi_proto::server::Connection`]. The API is `scgi-blocking`'s, made
//! async, and the same as `scgi-tokio`'s: open
//! ([`Server::bind_tcp`], [`Server::bind_unix`], [`Server::from_listener`]),
//! [`next`](Server::next), [`run`](Server::run), [`close`](Server::close),
//! and [`write_status_ok_text_content`](Request::write_status_ok_text_content).
//! A [`Request`] reads as its body and writes as its response through the
//! `futures-io` traits ([`AsyncRead`](futures_lite::AsyncRead),
//! [`AsyncWrite`](futures_lite::AsyncWrite)).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//! use scgi_async_std::{Addr, Server};
//!
//! # fn main() -> std::io::Result<()> {
//! async_std::task::block_on(async {
//!     // Port 0 picks a free port; a real server uses Server::DEFAULT_ADDR.
//!     let server = Server::bind_tcp("127.0.0.1:0")?;
//!     let Addr::Tcp(addr) = server.local_addr().clone() else { unreachable!() };
//!     let handle = server.shutdown_handle();
//!
//!     let count = Arc::new(AtomicUsize::new(0));
//!     let serving = async_std::task::spawn(server.run(move |mut req| {
//!         let n = count.fetch_add(1, Ordering::Relaxed) + 1;
//!         async move {
//!             req.write_status_ok_text_content("text/plain").await?;
//!             req.write_all(format!("Hello for the {n}th time").as_bytes()).await
//!         }
//!     }));
//!
//!     // What a web server would send, and read back.
//!     let mut conn = async_std::net::TcpStream::connect(addr).await?;
//!     conn.write_all(&scgi_proto::encode_request_to_vec(
//!         &[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")],
//!         b"",
//!     )?)
//!     .await?;
//!     let mut response = String::new();
//!     conn.read_to_string(&mut response).await?;
//!     assert_eq!(
//!         response,
//!         "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nHello for the 1th time"
//!     );
//!     drop(conn);
//!
//!     assert!(handle.close().await); // stop accepting, wait for requests in flight
//!     serving.await
//! })
//! # }
//! ```
//!
//! # async-std is unmaintained; smol works the same
//!
//! async-std has been discontinued: its 1.13.1 release notes point users to
//! smol, and advisory RUSTSEC-2025-0052 flags it as unmaintained. This
//! crate keeps working on it, but depends on it only for spawning tasks
//! (`AsyncStd`) and for converting its listeners, behind the default
//! `async-std` feature. Sockets and timers run on `async-io`, the reactor
//! that async-std and smol both use, and connections are served through
//! the `futures-io` traits, so the same code serves on smol.
//!
//! smol users turn the default features off, so async-std is not even
//! compiled, and name a spawner:
//!
//! ```toml
//! scgi-async-std = { version = "0.1", default-features = false, features = ["smol"] }
//! ```
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! smol::block_on(
//!     scgi_async_std::Server::bind_tcp(scgi_async_std::Server::DEFAULT_ADDR)?
//!         // With the `smol` feature: `.with_spawner(scgi_async_std::Smol)`,
//!         // or pass an `Arc<smol::Executor>`.
//!         .with_spawner(|task| smol::spawn(task).detach())
//!         .run(|req| async move { drop(req); Ok(()) }), // 204 No Content
//! )
//! # }
//! ```
//!
//! Any other executor is a closure away (see [`Spawn`]); the crate's tests
//! run every shared scenario on async-std and again on a smol executor.
//!
//! ## Why `async-std` stays the default feature
//!
//! Decided for the first release, knowing RUSTSEC-2025-0052:
//!
//! - The crate is named for async-std, and with the default feature
//!   `Server::bind(..)?.run(handler)` serves with no spawner to choose;
//!   without it, `run` fails until [`Server::with_spawner`] names one.
//! - A smol default would not be additive: the default spawner would be
//!   smol's or async-std's depending on which features other crates in the
//!   dependency graph turn on, and features here only add API.
//! - The advisory says unmaintained, not vulnerable, and what async-std
//!   does here is small: spawning tasks and converting its listeners.
//!   Sockets and timers are `async-io`'s, which smol maintains.
//! - Leaving it out is one line (`default-features = false`,
//!   `features = ["smol"]`), and CI builds and tests exactly that, with
//!   async-std not compiled.
//!
//! Dropping a default feature is a breaking change, so the choice is
//! revisited at the next breaking release (0.2), not in a patch.
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
//! `127.0.0.1:4000` (`cargo run -p scgi-async-std --example hello`).
//!
//! # What the server does for you
//!
//! Its settings are a [`Config`], the one every runtime crate shares
//! ([`scgi_proto::server::Config`]). Its
//! [`workers`](Config::workers) count is ignored here: every connection is
//! a task of its own, and the executor decides how many threads run them.
//!
//! - **Concurrency**: a task per connection; at most
//!   [`max_connections`](Config::max_connections) open connections,
//!   counting requests handed out by [`Server::next`] and upgraded ones
//!   (the rest wait in the kernel's backlog).
//! - **Timeouts**: the whole head within
//!   [`head_timeout`](Config::head_timeout) (slowloris defence; `408`),
//!   each body read within [`body_timeout`](Config::body_timeout), each
//!   write within [`write_timeout`](Config::write_timeout).
//! - **Bad requests**: answered with the decoder's
//!   [status hint](scgi_proto::Error::status_hint) (400, 413, 431) and a
//!   short text body, logged, and never shown to the handler.
//! - **Handlers**: one that writes nothing gets `Status: 204 No Content`
//!   sent for it; one that fails or panics before sending gets a `500`
//!   (or `400`/`408` when its body read failed); after a partial send the
//!   connection is reset. The handler's future runs under `catch_unwind`:
//!   a panic costs its own connection, never the server.
//! - **Closing**: a request read to its end, with nothing pending behind
//!   it, is closed right after its response. Otherwise the response is
//!   followed by a half-close and a bounded drain of what the peer still
//!   sends ([`drain_timeout`](Config::drain_timeout),
//!   [`drain_limit`](Config::drain_limit)), so an unread body (an early
//!   `413`, nginx's surplus after a short `CONTENT_LENGTH`) does not turn
//!   into a reset that loses the response.
//! - **Quiet**: a connection closed before its first byte (Apache does it
//!   when it answers a chunked request itself) is not an error.
//! - **Shutdown**: a [`ShutdownHandle`] (from any task or thread) or a
//!   future ([`Server::run_until`]) stops accepting, serves what was
//!   already accepted, and waits up to
//!   [`shutdown_timeout`](Config::shutdown_timeout); past it, the
//!   remaining connections' tasks are cancelled and their connections
//!   closed.
//!
//! Diagnostics go through the [`log`](https://docs.rs/log) facade: `warn`
//! for bad requests, `error` for failed handlers and accept errors, `debug`
//! for the routine.
//!
//! # One at a time
//!
//! [`Server::next`] hands out requests to the caller's task (an acceptor
//! task reads their heads); closing the server answers those queued and
//! not taken with `503`:
//!
//! ```no_run
//! use futures_lite::AsyncWriteExt;
//! # fn main() -> std::io::Result<()> {
//! # async_io::block_on(async {
//! let mut server = scgi_async_std::Server::bind_tcp(scgi_async_std::Server::DEFAULT_ADDR)?;
//! while let Some(mut req) = server.next(None).await? {
//!     req.write_status_ok_text_content("text/plain").await?;
//!     req.write_all(b"hello").await?;
//! } // a dropped request finishes in a task of its own
//! # Ok(())
//! # })
//! # }
//! ```
//!
//! # Features
//!
//! Features only add API.
//!
//! | feature | default | adds |
//! | --- | --- | --- |
//! | `async-std` | yes | `AsyncStd`, the spawner used when none is set; `TryFrom` async-std's listeners for [`Listener`] |
//! | `smol` | no | `Smol` (spawns with `smol::spawn`), and [`Spawn`] for `Arc<smol::Executor>` |
//! | `tower` | no | `Server::serve` / `serve_until` for any `tower::Service` (an axum `Router`), through `scgi-tower`; `RemoteAddr` |
//! | `axum` | no | `tower`, and axum's `ConnectInfo<SocketAddr>` (the HTTP client) in each request, for axum's `ConnectInfo` extractor |
// docs.rs (`--cfg docsrs`, nightly) labels each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The crate README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod net;
mod runtime;

#[cfg(unix)]
pub use net::UnixOptions;
pub use net::{Addr, AsyncIoListener, Listener, Stream, TcpOptions};
#[cfg(feature = "async-std")]
pub use runtime::AsyncStd;
#[cfg(feature = "smol")]
pub use runtime::Smol;
pub use runtime::{AsyncIo, Sleep, Spawn, Task};
pub use scgi_async;
#[cfg(unix)]
pub use scgi_async::{ShutdownSignal, shutdown_signal};
pub use scgi_proto;
pub use scgi_proto::form_pairs;
pub use scgi_proto::server::{Config, Stats};
#[cfg(feature = "tower")]
pub use scgi_tower::{self, HttpService, RemoteAddr};

/// An SCGI server on a TCP or Unix socket, a task per connection on the
/// executor its [`Spawn`]er names: see [`scgi_async::Server`] for its
/// methods (`with_spawner` takes any [`Spawn`]), and the
/// [crate docs](crate).
pub type Server = scgi_async::Server<AsyncIo>;

/// A request whose head is read and validated: its headers, its body
/// (the `futures-io` [`AsyncRead`](futures_lite::AsyncRead), or zero-copy
/// [`chunk`](scgi_async::Request::chunk)s) and its response
/// ([`AsyncWrite`](futures_lite::AsyncWrite)); see [`scgi_async::Request`].
pub type Request = scgi_async::Request<AsyncIo>;

/// A connection taken over after a `101` response: see
/// [`scgi_async::Upgraded`]; it reads and writes through the `futures-io`
/// traits.
pub type Upgraded = scgi_async::Upgraded<AsyncIo>;

/// A handle that stops a [`Server`] from another task or thread: see
/// [`scgi_async::ShutdownHandle`].
pub type ShutdownHandle = scgi_async::ShutdownHandle<AsyncIo>;

/// The body of an `http::Request` served by `Server::serve` (feature
/// `tower`): see [`scgi_async::RequestBody`].
#[cfg(feature = "tower")]
pub type RequestBody = scgi_async::RequestBody<AsyncIo>;

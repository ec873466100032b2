//! The async SCGI server of scgi-rs, written once for every runtime.
//!
//! [`Server`], [`Request`], [`Upgraded`] and [`ShutdownHandle`] are generic
//! over a [`Runtime`]: a handful of small traits (a [`Socket`], a listener
//! that can [`Accept`], a timer, `spawn`, and a thread-local
//! [`Handback`] slot), the way hyper's `rt` module lets one HTTP
//! implementation run on any executor. The runtime crates are thin
//! bindings: `scgi-tokio` implements [`Runtime`] with tokio's sockets,
//! timers and `spawn`, `scgi-async-std` with `async-io`'s and any
//! executor (async-std, smol); each names the types
//! (`pub type Server = scgi_async::Server<Tokio>`) and adds its docs and
//! tests. Applications use those crates, not this one.
//!
//! Every decision about a connection (which timeout applies, which status
//! a failure gets, whether to close, drain or reset) is
//! [`scgi_proto::server::Connection`]'s; this crate carries them out: the
//! accept loop under the connection cap, a task per connection, the head
//! under its deadline, the handler under `catch_unwind`, body reads and
//! buffered writes under their deadlines, the response's end, the drain,
//! and graceful then forced shutdown.
//!
//! ```
//! use scgi_tokio::{Addr, Request, Server};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! // scgi_tokio::Server is scgi_async::Server<scgi_tokio::Tokio>.
//! let server: scgi_async::Server<scgi_tokio::Tokio> = Server::bind("127.0.0.1:0")?;
//! let Addr::Tcp(addr) = server.local_addr().clone() else { unreachable!() };
//! let handle = server.shutdown_handle();
//! let serving = tokio::spawn(server.run(|mut req: Request| async move {
//!     req.write_status_ok_text_content("text/plain").await?;
//!     req.write_all(b"hello").await
//! }));
//!
//! let mut conn = tokio::net::TcpStream::connect(addr).await?;
//! conn.write_all(&scgi_proto::encode_request_to_vec(&[("REQUEST_URI", "/")], b"")?).await?;
//! let mut response = String::new();
//! conn.read_to_string(&mut response).await?;
//! assert_eq!(response, "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nhello");
//!
//! assert!(handle.close().await);
//! serving.await.unwrap()
//! # }
//! ```
//!
//! # Per connection
//!
//! A connection costs its task (the connection's future lives inside it),
//! the runtime's reactor registration, and a 4 KiB read buffer (grown only
//! for a larger head); nothing else is allocated per request. Headers are
//! views into the read buffer, the 512-byte response buffer lives inside
//! the request, body reads go straight into the caller's buffer,
//! [`Request::chunk`] slices the read buffer, and a request dropped by its
//! handler hands its connection back through the runtime's [`Handback`]
//! slot.
//!
//! # Features
//!
//! Features only add API.
//!
//! | feature | adds |
//! | --- | --- |
//! | `tokio` | `tokio::io::AsyncRead` / `AsyncWrite` for [`Request`] and [`Upgraded`] |
//! | `futures-io` | `futures_io::AsyncRead` / `AsyncWrite` for [`Request`] and [`Upgraded`] |
//! | `tower` | `Server::serve` and `Server::serve_until` for any `tower::Service` (an axum `Router`), through `scgi-tower`; `RequestBody` |
// docs.rs (`--cfg docsrs`, nightly) labels each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "tokio", feature = "futures-io"))]
mod io;
mod queue;
mod request;
mod rt;
mod server;
mod shared;
#[cfg(feature = "tower")]
mod tower;

pub use request::{Request, Upgraded};
pub use rt::{Accept, Handback, Runtime, Socket};
pub use scgi_net::{Addr, Listener};
pub use scgi_proto::server::{Config, Stats};
pub use server::Server;
pub use shared::ShutdownHandle;

#[cfg(unix)]
pub use scgi_net::ShutdownSignal;

/// The graceful stop on `SIGTERM` (what systemd, Docker and Kubernetes
/// send) and `SIGINT` (Ctrl-C), for [`Server::run_until`]: the future
/// resolves on the first of them; a second one while the server stops
/// terminates the process at once. One line in `main`:
///
/// ```no_run
/// # async fn handler(_: scgi_tokio::Request) -> std::io::Result<()> { Ok(()) }
/// # async fn run() -> std::io::Result<()> {
/// scgi_tokio::Server::bind("unix:/run/app/scgi.sock")?
///     .run_until(handler, scgi_tokio::shutdown_signal()?)
///     .await
/// # }
/// ```
///
/// `run_until` then stops accepting, lets the requests in flight finish
/// (for at most [`shutdown_timeout`](Config::shutdown_timeout)), removes
/// the Unix socket file it created, and returns `Ok(())`, so `main` exits
/// with status 0. The handlers are installed process-wide on the first
/// call; see [`ShutdownSignal`]. Fails only if they cannot be.
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<ShutdownSignal> {
    ShutdownSignal::new()
}
#[cfg(feature = "tower")]
pub use tower::RequestBody;

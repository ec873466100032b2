//! Serve SCGI on std sockets: TCP (IPv4, IPv6) or Unix, with a bounded pool
//! of worker threads.
//!
//! This crate owns sockets, threads and timeouts; the protocol (decoding
//! the header netstring, counting the body, writing `Status:` heads) is
//! [`scgi_proto`]'s. The API follows Nim's `scgi` module:
//! open ([`Server::bind_tcp`], [`Server::bind_unix`],
//! [`Server::from_listener`]), [`next`](Server::next), [`run`](Server::run),
//! [`close`](Server::close) and
//! [`write_status_ok_text_content`](Request::write_status_ok_text_content).
//!
//! ```
//! use std::io::{Read, Write};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use scgi_blocking::{Addr, Server};
//!
//! # fn main() -> std::io::Result<()> {
//! // Port 0 picks a free port; a real server uses Server::DEFAULT_ADDR.
//! let server = Server::bind_tcp("127.0.0.1:0")?;
//! let Addr::Tcp(addr) = server.local_addr().clone() else { unreachable!() };
//! let handle = server.shutdown_handle();
//!
//! let count = AtomicUsize::new(0);
//! let serving = std::thread::spawn(move || {
//!     server.run(move |req| {
//!         let n = count.fetch_add(1, Ordering::Relaxed) + 1;
//!         req.write_status_ok_text_content("text/plain")?;
//!         write!(req, "Hello for the {n}th time")
//!     })
//! });
//!
//! // What a web server would send, and read back.
//! let mut conn = std::net::TcpStream::connect(addr)?;
//! conn.write_all(&scgi_proto::encode_request_to_vec(
//!     &[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")],
//!     b"",
//! )?)?;
//! let mut response = String::new();
//! conn.read_to_string(&mut response)?;
//! assert_eq!(
//!     response,
//!     "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nHello for the 1th time"
//! );
//! drop(conn);
//!
//! assert!(handle.close()); // stop accepting, wait for requests in flight
//! serving.join().unwrap()?;
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
//! `127.0.0.1:4000` (`cargo run -p scgi-blocking --example hello`).
//!
//! # What the server does for you
//!
//! - **Concurrency**: [`workers`](Config::workers) threads, which accept
//!   connections themselves on TCP (on a Unix socket, and for
//!   [`next`](Server::next), an acceptor thread queues them), and one more
//!   whenever all of them are busy, up to one per connection: a client
//!   that holds its connection without finishing its request (idle, or
//!   trickling its body) never keeps another waiting. Threads beyond
//!   `workers` leave after 5 s without work. At most
//!   [`max_connections`](Config::max_connections) open connections (the
//!   rest wait in the kernel's backlog).
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
//!   connection is reset. The server keeps serving.
//! - **Closing**: a connection whose request was read to its end, with
//!   nothing pending behind it, closes right after the response. Otherwise
//!   the response is followed by a half-close and a bounded drain of what
//!   the peer still sends ([`drain_timeout`](Config::drain_timeout),
//!   [`drain_limit`](Config::drain_limit)), so an unread body (an early
//!   `413`, nginx's surplus after a short `CONTENT_LENGTH`) does not turn
//!   into a reset that loses the response.
//! - **Quiet**: a connection closed before its first byte (Apache does it
//!   when it answers a chunked request itself) is not an error.
//! - **Shutdown**: a [`ShutdownHandle`] (from any thread) stops accepting,
//!   serves what was already accepted, and waits up to
//!   [`shutdown_timeout`](Config::shutdown_timeout).
//!
//! Diagnostics go through the [`log`](https://docs.rs/log) facade: `warn`
//! for bad requests, `error` for failed handlers and accept errors, `debug`
//! for the routine.
//!
//! # One at a time
//!
//! Without a pool, [`Server::next`] hands out requests in the caller's
//! thread:
//!
//! ```no_run
//! use std::io::Write;
//! # fn main() -> std::io::Result<()> {
//! let mut server = scgi_blocking::Server::bind_tcp(scgi_blocking::Server::DEFAULT_ADDR)?;
//! while let Some(mut req) = server.next(None)? {
//!     req.write_status_ok_text_content("text/plain")?;
//!     req.write_all(b"hello")?;
//! } // dropping the request sends the response and closes the connection
//! # Ok(())
//! # }
//! ```
// docs.rs (`--cfg docsrs`, nightly) labels each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The crate README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(feature = "http")]
mod http;
mod net;
mod pool;
mod request;
mod server;

#[cfg(feature = "http")]
pub use http::{BoxError, RequestBody, ResponseBody};
#[cfg(unix)]
pub use net::UnixOptions;
pub use net::{Addr, Listener, Stream, TcpOptions};
pub use request::{Request, Upgraded};
pub use scgi_proto;
pub use scgi_proto::form_pairs;
pub use scgi_proto::server::{Config, Stats};
pub use server::{Server, ShutdownHandle};

#[cfg(unix)]
pub use scgi_net::ShutdownSignal;

/// The graceful stop on `SIGTERM` (what systemd, Docker and Kubernetes
/// send) and `SIGINT` (Ctrl-C), for [`Server::run_until`]: the returned
/// function blocks until the first of them; a second one while the server
/// stops terminates the process at once. One line in `main`:
///
/// ```no_run
/// # fn handler(_: &mut scgi_blocking::Request) -> std::io::Result<()> { Ok(()) }
/// scgi_blocking::Server::bind("unix:/run/app/scgi.sock")?
///     .run_until(handler, scgi_blocking::shutdown_signal()?)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// `run_until` then stops accepting, lets the requests in flight finish
/// (for at most [`shutdown_timeout`](Config::shutdown_timeout)), removes
/// the Unix socket file it created, and returns `Ok(())`, so `main` exits
/// with status 0. The handlers are installed process-wide when this is
/// called (so a signal arriving before `run_until` starts is not lost);
/// see [`ShutdownSignal`]. Fails only if they cannot be installed.
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl FnOnce() + Send + 'static> {
    let signal = ShutdownSignal::new()?;
    Ok(move || signal.wait())
}

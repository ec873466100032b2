//! The benchmark's tokio-scgi peer: `peer-tokio-scgi HOST:PORT | unix:PATH`.
//!
//! Served the way tokio-scgi 0.2.4's own `examples/server.rs` serves:
//! `#[tokio::main]` (multi-thread), a task per connection, the connection
//! wrapped in `Framed::new(conn, SCGICodec::new())`; `framed.next()` gives
//! `SCGIRequest::Request(headers, body)` and then `BodyFragment`s until the
//! body is complete, and `framed.send(bytes)` answers. Two departures from
//! the example, both so it can be measured at all:
//!
//! - no `println!` per request or per connection (the example prints
//!   "Served TCP request from ..." for each one, which would measure the
//!   terminal);
//! - the body length is read from `CONTENT_LENGTH`, the name SCGI gives it.
//!   The example looks for a header named `Content-Length`, which an SCGI
//!   client never sends, so it answers after the first read even when the
//!   body has not all arrived. And where the example reads `None` from
//!   `next()` as "not ready, read again", here it is the end of the stream
//!   (the example's loop would spin on a closed connection).

use std::io;

use bench_peer_servers::{Addr, BAD_REQUEST, answer};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_scgi::server::{SCGICodec, SCGIRequest};
use tokio_util::codec::Framed;

/// Serves the one request on `conn`, then closes it (by dropping it).
async fn serve<C: AsyncRead + AsyncWrite + Unpin>(conn: C) -> io::Result<()> {
    let mut framed = Framed::new(conn, SCGICodec::new());
    let (mut body, length) = match framed.next().await {
        // Closed before a whole head, or a read failed: nothing to answer.
        None => return Ok(()),
        Some(Err(e)) if e.kind() != io::ErrorKind::InvalidData => return Err(e),
        // The codec's own verdict on a malformed netstring or header.
        Some(Err(_)) => return framed.send(BAD_REQUEST.to_vec()).await,
        Some(Ok(SCGIRequest::BodyFragment(_))) => unreachable!("a body before the head"),
        Some(Ok(SCGIRequest::Request(headers, body))) => {
            let length = headers
                .iter()
                .find(|(name, _)| name == "CONTENT_LENGTH")
                .and_then(|(_, value)| value.parse::<usize>().ok());
            match length {
                Some(length) => (body, length),
                None => return framed.send(BAD_REQUEST.to_vec()).await,
            }
        }
    };
    while body.len() < length {
        match framed.next().await {
            Some(Ok(SCGIRequest::BodyFragment(more))) => body.extend_from_slice(&more),
            Some(Ok(SCGIRequest::Request(..))) => unreachable!("a second head"),
            Some(Err(e)) => return Err(e),
            // Closed before the whole body: nothing to answer.
            None => return Ok(()),
        }
    }
    body.truncate(length);
    framed.send(answer(&body)).await
}

#[tokio::main]
async fn main() -> io::Result<()> {
    match Addr::from_args()? {
        Addr::Unix(path) => {
            let listener = UnixListener::bind(path)?;
            loop {
                let (conn, _) = listener.accept().await?;
                tokio::spawn(serve(conn));
            }
        }
        Addr::Tcp(addr) => {
            let listener = TcpListener::bind(addr).await?;
            loop {
                let (conn, _) = listener.accept().await?;
                let _ = conn.set_nodelay(true);
                tokio::spawn(serve(conn));
            }
        }
    }
}

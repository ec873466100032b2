//! The benchmark's async-scgi peer: `peer-async-scgi HOST:PORT | unix:PATH`.
//!
//! Served the way async-scgi 1.0.0's README shows: smol, the stream in a
//! `BufReader`, `async_scgi::read_request(&mut stream)` for the whole
//! request (head and body), then `stream.write_all(answer)`. The README's
//! accept loop serves each connection to the end before it accepts the
//! next, one at a time; this one spawns a task per connection
//! (`smol::spawn(..).detach()` inside `smol::block_on`), the natural
//! concurrent form and the stronger contender. The accept loop runs on the
//! main thread (`block_on`), the connections' tasks on smol's global
//! executor: one thread unless `SMOL_THREADS` says more (smol's default,
//! left as it is).
//!
//! One guard the README lacks: `read_request` indexes `len_part[read - 1]`
//! without checking that it read anything, so a connection closed before
//! its first byte (a readiness probe, say) panics the task. The
//! connection's first `fill_buf` here is the read `read_request` would do
//! anyway, and an empty one closes quietly instead.

use std::io;

use async_scgi::ScgiReadError;
use bench_peer_servers::{Addr, BAD_REQUEST, answer};
use futures_lite::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt};
use smol::io::BufReader;
use smol::net::TcpListener;
use smol::net::unix::UnixListener;

/// Serves the one request on `stream`, then closes it (by dropping it).
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> io::Result<()> {
    let mut stream = BufReader::new(stream);
    if stream.fill_buf().await?.is_empty() {
        return Ok(());
    }
    let reply = match async_scgi::read_request(&mut stream).await {
        Ok(req) => answer(&req.body),
        // A read failed or the connection closed mid-request.
        Err(ScgiReadError::IO(e)) => return Err(e),
        // A bad netstring, header block or CONTENT_LENGTH.
        Err(_) => BAD_REQUEST.to_vec(),
    };
    stream.write_all(&reply).await
}

fn main() -> io::Result<()> {
    let addr = Addr::from_args()?;
    smol::block_on(async {
        match addr {
            Addr::Unix(path) => {
                let listener = UnixListener::bind(path)?;
                loop {
                    let (stream, _) = listener.accept().await?;
                    smol::spawn(serve(stream)).detach();
                }
            }
            Addr::Tcp(addr) => {
                let listener = TcpListener::bind(addr).await?;
                loop {
                    let (stream, _) = listener.accept().await?;
                    let _ = stream.set_nodelay(true);
                    smol::spawn(serve(stream)).detach();
                }
            }
        }
    })
}

//! What the capacity benchmark's peer servers (issue 19) share: the two
//! answers every backend in the benchmark gives, byte for byte, and the
//! `BINARY ADDR` command line.
//!
//! ```text
//! cargo run --release -p bench-peer-servers --bin peer-tokio-scgi -- 127.0.0.1:4000
//! cargo run --release -p bench-peer-servers --bin peer-async-scgi -- unix:/tmp/peer.sock
//! ```
//!
//! A request with an empty body gets [`hello`] with a process-wide count
//! ([`next_hello`]); a request with a body gets it echoed back ([`echo`]);
//! a request the peer's API reports as malformed gets [`BAD_REQUEST`].
//! The Python peer, `bench/peer_scgi.py`, builds the same bytes.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The answer to a malformed request, when the peer's API tells one apart.
pub const BAD_REQUEST: &[u8] = b"Status: 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

/// The answer to the `n`th request without a body (counted from 1): head
/// and body in one buffer, to be sent in one write.
pub fn hello(n: u64) -> Vec<u8> {
    let body = format!("Hello for the {n}th time");
    let mut out = format!(
        "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Requests answered with [`hello`] so far, in this process.
static HELLOS: AtomicU64 = AtomicU64::new(0);

/// [`hello`] with the next number of this process's count (the first call
/// answers "Hello for the 1th time").
pub fn next_hello() -> Vec<u8> {
    hello(HELLOS.fetch_add(1, Ordering::Relaxed) + 1)
}

/// The answer to a request with a body: the body echoed back as
/// `application/octet-stream`, head and body in one buffer.
pub fn echo(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The answer to a request with `body` (complete): [`next_hello`] when it
/// is empty, else [`echo`].
pub fn answer(body: &[u8]) -> Vec<u8> {
    if body.is_empty() {
        next_hello()
    } else {
        echo(body)
    }
}

/// Where a peer listens: the single argument, `HOST:PORT` or `unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// A TCP address, `HOST:PORT`, as the runtime's `bind` takes it.
    Tcp(String),
    /// A Unix socket path (the argument without its `unix:` prefix).
    Unix(PathBuf),
}

impl Addr {
    /// Parses `HOST:PORT` or `unix:PATH`.
    pub fn parse(arg: &str) -> Addr {
        match arg.strip_prefix("unix:") {
            Some(path) => Addr::Unix(PathBuf::from(path)),
            None => Addr::Tcp(arg.to_owned()),
        }
    }

    /// The address from the command line (`BINARY ADDR`), or an
    /// `InvalidInput` error naming the usage when there is none. For a Unix
    /// socket the stale socket file at the path, if any, is removed, so the
    /// caller can bind at once.
    pub fn from_args() -> io::Result<Addr> {
        let mut args = std::env::args();
        let bin = args.next().unwrap_or_default();
        let (Some(arg), None) = (args.next(), args.next()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("usage: {bin} HOST:PORT | unix:PATH"),
            ));
        };
        let addr = Addr::parse(&arg);
        if let Addr::Unix(path) = &addr {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(
            hello(1),
            b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n\r\nHello for the 1th time"
        );
        assert_eq!(
            echo(b"abc"),
            b"Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\nabc"
        );
        assert_eq!(Addr::parse("unix:/a/b"), Addr::Unix("/a/b".into()));
        assert_eq!(Addr::parse("127.0.0.1:1"), Addr::Tcp("127.0.0.1:1".into()));
    }
}

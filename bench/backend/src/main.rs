//! `bench-backend ADDR [RUNTIME]`: the benchmarks' backend on each runtime
//! crate (`RUNTIME`: `tokio`, the default, `async-std`, `smol` or
//! `blocking`) at `ADDR` (`HOST:PORT` or `unix:PATH`), answering as a careful user's handler
//! would, with `Content-Length`:
//!
//! - a request without a body: "Hello for the Nth time" (the counter of
//!   Nim's `scgi` docs), `text/plain`;
//! - a request with one (the capacity benchmark's 4 KiB POST): the body
//!   read whole (`read_body`, at most 1 MiB) and echoed back.
//!
//! Room for 20 000 connections and a 300 s head timeout, so that
//! `bench/idle.sh` can hold 10 000 idle or slow connections open and read
//! the process's memory; `bench/capacity.sh` loads it at up to 512
//! connections. Stops on SIGTERM.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

/// The largest body echoed; a larger one is refused with 413.
const MAX_ECHO: u64 = 1 << 20;

fn config() -> scgi_tokio::Config {
    scgi_tokio::Config::DEFAULT
        .with_max_connections(20_000)
        .with_head_timeout(Duration::from_secs(300))
}

/// An answer's body: the hello line, or the request body echoed (as the
/// `Bytes` it was read into: not copied, not converted).
enum Body {
    Hello(String),
    Echo(Bytes),
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        match self {
            Body::Hello(text) => text.as_bytes(),
            Body::Echo(bytes) => bytes,
        }
    }
}

/// The answer's content type and body: the echoed request body, or the
/// hello line counted from `counter`.
fn answer(body: Bytes, counter: &AtomicU64) -> (&'static str, Body) {
    if body.is_empty() {
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        (
            "text/plain",
            Body::Hello(format!("Hello for the {n}th time")),
        )
    } else {
        ("application/octet-stream", Body::Echo(body))
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(addr) = args.next() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: bench-backend ADDR [tokio|async-std|smol|blocking]",
        ));
    };
    let runtime = args.next().unwrap_or_else(|| "tokio".to_owned());
    match runtime.as_str() {
        "tokio" => {
            let server = scgi_tokio::Server::bind(&addr)?.with_config(config());
            let stop = scgi_tokio::shutdown_signal()?;
            tokio::runtime::Runtime::new()?.block_on(server.run_until(
                |mut req: scgi_tokio::Request| async move {
                    let body = req.read_body(MAX_ECHO).await?;
                    let (kind, body) = answer(body, &COUNTER);
                    req.respond(200, [("Content-Type", kind)], body).await
                },
                stop,
            ))
        }
        "async-std" | "smol" => {
            let server = scgi_async_std::Server::bind(&addr)?.with_config(config());
            let stop = scgi_async_std::shutdown_signal()?;
            let handler = |mut req: scgi_async_std::Request| async move {
                let body = req.read_body(MAX_ECHO).await?;
                let (kind, body) = answer(body, &COUNTER);
                req.respond(200, [("Content-Type", kind)], body).await
            };
            if runtime == "smol" {
                smol::block_on(
                    server
                        .with_spawner(scgi_async_std::Smol)
                        .run_until(handler, stop),
                )
            } else {
                async_std::task::block_on(server.run_until(handler, stop))
            }
        }
        "blocking" => {
            let server = scgi_blocking::Server::bind(&addr)?.with_config(config());
            server.run_until(
                |req: &mut scgi_blocking::Request| {
                    let body = req.read_body(MAX_ECHO)?;
                    let (kind, body) = answer(body, &COUNTER);
                    req.respond(200, [("Content-Type", kind)], body)
                },
                scgi_blocking::shutdown_signal()?,
            )
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown runtime {other}: tokio, async-std, smol or blocking"),
        )),
    }
}

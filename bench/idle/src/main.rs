//! `bench-idle RUNTIME ADDR`: serves "hello" on `RUNTIME` (`tokio`,
//! `async-std`, `smol` or `blocking`) at `ADDR`, with room for 20 000
//! connections and a 300 s head timeout, so that `bench/idle.sh` can hold
//! 10 000 idle or slow connections open and read the process's memory.
//! Stops on SIGTERM.

use std::io::{self, Write as _};
use std::time::Duration;

use futures_lite::AsyncWriteExt as _;

fn config() -> scgi_tokio::Config {
    scgi_tokio::Config::DEFAULT
        .with_max_connections(20_000)
        .with_head_timeout(Duration::from_secs(300))
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(runtime), Some(addr)) = (args.next(), args.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: bench-idle tokio|async-std|smol|blocking ADDR",
        ));
    };
    match runtime.as_str() {
        "tokio" => {
            let server = scgi_tokio::Server::bind(&addr)?.with_config(config());
            let stop = scgi_tokio::shutdown_signal()?;
            tokio::runtime::Runtime::new()?.block_on(server.run_until(
                |mut req| async move {
                    req.write_status_ok_text_content("text/plain").await?;
                    req.write_all(b"hello").await
                },
                stop,
            ))
        }
        "async-std" | "smol" => {
            let server = scgi_async_std::Server::bind(&addr)?.with_config(config());
            let stop = scgi_async_std::shutdown_signal()?;
            let handler = |mut req: scgi_async_std::Request| async move {
                req.write_status_ok_text_content("text/plain").await?;
                req.write_all(b"hello").await
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
                |req| {
                    req.write_status_ok_text_content("text/plain")?;
                    req.write_all(b"hello")
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

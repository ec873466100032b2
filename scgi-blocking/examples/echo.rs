//! Streams the request body back as it arrives, holding at most 64 KiB of
//! it.
//!
//! ```text
//! cargo run -p scgi-blocking --example echo [HOST:PORT | unix:PATH]
//! curl --data-binary @big.file http://localhost/   # through nginx
//! ```
//!
//! Listens on `127.0.0.1:4000` unless an address is given as the argument
//! or in `SCGI_ADDR`; SIGTERM or Ctrl-C stops it gracefully.

mod common;

use std::io::{Read, Write};

fn main() -> std::io::Result<()> {
    // Before binding: a SIGTERM from then on stops the server gracefully.
    let stop = scgi_blocking::shutdown_signal()?;
    let server = common::bind_from_args()?;
    server.run_until(
        |req| {
            let length = req.content_length().to_string();
            let content_type = req
                .headers()
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            req.write_head(
                200,
                &[("Content-Type", &content_type), ("Content-Length", &length)],
            )?;
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let n = req.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                req.write_all(&chunk[..n])?;
            }
        },
        stop,
    )
}

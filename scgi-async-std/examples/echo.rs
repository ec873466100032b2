//! Streams the request body back as it arrives, holding at most 64 KiB of
//! it.
//!
//! ```text
//! cargo run -p scgi-async-std --example echo [HOST:PORT | unix:PATH]
//! curl --data-binary @big.file http://localhost/   # through nginx
//! ```
//!
//! Listens on `127.0.0.1:4000` unless an address is given as the argument
//! or in `SCGI_ADDR`; SIGTERM or Ctrl-C stops it gracefully.

mod common;

use futures_lite::{AsyncReadExt, AsyncWriteExt};

fn main() -> std::io::Result<()> {
    // Before binding: a SIGTERM from then on stops the server gracefully.
    let stop = scgi_async_std::shutdown_signal()?;
    let server = common::bind_from_args()?;
    async_std::task::block_on(server.run_until(
        |mut req| async move {
            let length = req.content_length().to_string();
            let content_type = req
                .headers()
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            req.write_head(
                200,
                &[("Content-Type", &content_type), ("Content-Length", &length)],
            )
            .await?;
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let n = req.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                req.write_all(&chunk[..n]).await?;
            }
        },
        stop,
    ))
}

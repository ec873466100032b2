//! Streams the request body back as it arrives, in zero-copy pieces of the
//! connection's read buffer.
//!
//! ```text
//! cargo run -p scgi-tokio --example echo [HOST:PORT | unix:PATH]
//! curl --data-binary @big.file http://localhost/   # through nginx
//! ```
//!
//! Listens on `127.0.0.1:4000` unless an address is given as the argument
//! or in `SCGI_ADDR`; SIGTERM or Ctrl-C stops it gracefully.

mod common;

use scgi_tokio::Request;
use tokio::io::AsyncWriteExt;

async fn echo(mut req: Request) -> std::io::Result<()> {
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
    while let Some(piece) = req.chunk().await? {
        req.write_all(&piece).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Before binding: a SIGTERM from then on stops the server gracefully.
    let stop = scgi_tokio::shutdown_signal()?;
    common::bind_from_args()?.run_until(echo, stop).await
}

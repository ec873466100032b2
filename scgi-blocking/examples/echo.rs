//! Streams the request body back, chunk by chunk, never holding more than
//! 64 KiB of it.
//!
//! ```text
//! cargo run -p scgi-blocking --example echo [ADDR | unix:PATH]
//! curl --data-binary @big.file http://localhost/   # through nginx
//! ```
//!
//! Listens on `127.0.0.1:4000` unless an address is given as the argument
//! or in `SCGI_ADDR`.

use std::io::{Read, Write};

use scgi_blocking::Server;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("SCGI_ADDR").ok())
        .unwrap_or_else(|| Server::DEFAULT_ADDR.to_owned());
    let server = match addr.strip_prefix("unix:") {
        Some(path) => Server::bind_unix(path)?,
        None => Server::bind_tcp(addr.as_str())?,
    };
    server.run(|req| {
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
    })
}

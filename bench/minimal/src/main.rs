//! The least an SCGI backend can cost nginx: no library, no validation.
//!
//! ```text
//! cargo run --release -p bench-minimal -- [HOST:PORT | unix:PATH]
//! ```
//!
//! Reads the netstring, finds `CONTENT_LENGTH` by a naive search, and
//! answers a fixed hello when the body is empty, else the body echoed back
//! (streamed in 64 KiB pieces). Same runtime shape as the runtime crates'
//! tokio examples: `#[tokio::main]`, a task per connection. The load script
//! `bench/load.sh` runs it as the floor of the end-to-end benchmark.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0;
    // "<len>:<headers>," then the body; assume the head fits the buffer.
    let (head_end, length) = loop {
        let n = s.read(&mut buf[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let Some(colon) = buf[..have].iter().position(|&b| b == b':') else {
            continue;
        };
        let len: usize = std::str::from_utf8(&buf[..colon])
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if have <= colon + len + 1 {
            continue;
        }
        // The first header is CONTENT_LENGTH: its value follows the first NUL.
        let Some(value) = buf.get(colon + 16..colon + 1 + len) else {
            return Ok(());
        };
        let end = value.iter().position(|&b| b == 0).unwrap_or(0);
        let length: u64 = std::str::from_utf8(&value[..end])
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        break (colon + len + 2, length);
    };
    if length == 0 {
        return s
            .write_all(b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nHello for the 1th time")
            .await;
    }
    // The head and the first piece of the body in one write.
    let mut out = format!(
        "Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
    )
    .into_bytes();
    let first = have.min(head_end.saturating_add(length.try_into().unwrap_or(usize::MAX)));
    out.extend_from_slice(&buf[head_end..first]);
    s.write_all(&out).await?;
    let mut left = length - (first - head_end) as u64;
    while left > 0 {
        let n = s.read(&mut buf[..left.min(64 * 1024) as usize]).await?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4000".to_owned());
    if let Some(path) = addr.strip_prefix("unix:") {
        let listener = tokio::net::UnixListener::bind(path)?;
        loop {
            let (s, _) = listener.accept().await?;
            tokio::spawn(serve(s));
        }
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    loop {
        let (s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        tokio::spawn(serve(s));
    }
}

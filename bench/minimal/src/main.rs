//! The floor backend: [`bench_minimal::Exchange`] on one runtime.
//!
//! ```text
//! cargo run --profile lean -p bench-minimal -- [HOST:PORT | unix:PATH] [tokio | async-std | smol | threads]
//! ```
//!
//! Each runtime in the shape its users write by hand, the same shape as
//! the runtime crates' examples: tokio's `#[tokio::main]`-style
//! multi-threaded runtime with a task per connection; async-std's
//! `block_on` and `task::spawn`; smol's `block_on` and `smol::spawn` on
//! its global executor; a thread per connection (`std::thread::spawn`).
//! Default: `127.0.0.1:4000`, tokio.

use std::io;

use bench_minimal::{Exchange, Next};

/// One connection's loop: `$s` read into and written from as `step`
/// says, each call followed by `$($wait)*` (`.await`, or nothing).
macro_rules! drive {
    ($s:ident $($wait:tt)*) => {{
        let mut x = Exchange::new();
        loop {
            match x.step() {
                Next::Read(buf) => {
                    let n = $s.read(buf) $($wait)* ?;
                    x.read(n);
                }
                Next::Write(out) => {
                    $s.write_all(out) $($wait)* ?;
                    x.wrote();
                }
                Next::Done => return Ok(()),
            }
        }
    }};
}

/// One connection on tokio.
async fn serve_tokio<S>(mut s: S) -> io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    drive!(s.await)
}

/// One connection on async-std or smol (futures-io).
async fn serve_futures<S>(mut s: S) -> io::Result<()>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
    drive!(s.await)
}

/// One connection on its own thread.
fn serve_blocking<S: io::Read + io::Write>(mut s: S) -> io::Result<()> {
    drive!(s)
}

fn tokio_main(addr: &str) -> io::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        if let Some(path) = addr.strip_prefix("unix:") {
            let listener = tokio::net::UnixListener::bind(path)?;
            loop {
                let (s, _) = listener.accept().await?;
                tokio::spawn(serve_tokio(s));
            }
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        loop {
            let (s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            tokio::spawn(serve_tokio(s));
        }
    })
}

fn async_std_main(addr: &str) -> io::Result<()> {
    async_std::task::block_on(async {
        if let Some(path) = addr.strip_prefix("unix:") {
            let listener = async_std::os::unix::net::UnixListener::bind(path).await?;
            loop {
                let (s, _) = listener.accept().await?;
                async_std::task::spawn(serve_futures(s));
            }
        }
        let listener = async_std::net::TcpListener::bind(addr).await?;
        loop {
            let (s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            async_std::task::spawn(serve_futures(s));
        }
    })
}

fn smol_main(addr: &str) -> io::Result<()> {
    smol::block_on(async {
        if let Some(path) = addr.strip_prefix("unix:") {
            let listener = smol::net::unix::UnixListener::bind(path)?;
            loop {
                let (s, _) = listener.accept().await?;
                smol::spawn(serve_futures(s)).detach();
            }
        }
        let listener = smol::net::TcpListener::bind(addr).await?;
        loop {
            let (s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            smol::spawn(serve_futures(s)).detach();
        }
    })
}

fn threads_main(addr: &str) -> io::Result<()> {
    if let Some(path) = addr.strip_prefix("unix:") {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        loop {
            let (s, _) = listener.accept()?;
            std::thread::spawn(move || serve_blocking(s));
        }
    }
    let listener = std::net::TcpListener::bind(addr)?;
    loop {
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        std::thread::spawn(move || serve_blocking(s));
    }
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:4000".to_owned());
    match args.next().as_deref().unwrap_or("tokio") {
        "tokio" => tokio_main(&addr),
        "async-std" => async_std_main(&addr),
        "smol" => smol_main(&addr),
        "threads" => threads_main(&addr),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown runtime {other}: tokio, async-std, smol or threads"),
        )),
    }
}

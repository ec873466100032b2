//! The tokio binding of `scgi-async`: [`Tokio`], and the socket types it
//! runs on (tokio's TCP and Unix streams and listeners).
//!
//! Binding is synchronous (`scgi-net`'s, as in `scgi-blocking`), so a
//! server can be bound before a runtime exists; the listener joins the tokio
//! reactor when the server starts serving.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::thread::LocalKey;
use std::time::{Duration, Instant};

use scgi_async::{Accept, Handback, Runtime, Socket};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[cfg(unix)]
pub use scgi_net::UnixOptions;
pub use scgi_net::{Addr, Listener, TcpOptions};

/// The tokio runtime, as `scgi-async` runs on it: tasks spawned on the
/// current runtime, tokio's sockets, and tokio's clock and timers (so a
/// paused test clock applies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokio;

thread_local! {
    static HANDBACK: Handback<Tokio> = const { Handback::new() };
}

impl Runtime for Tokio {
    type Stream = Stream;
    type Listener = TokioListener;
    type Sleep = tokio::time::Sleep;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        match tokio::runtime::Handle::try_current() {
            // Boxed: tokio moves a spawned future by value into its task
            // and through its stages, and a connection's is 3-5 KiB with
            // the handlers measured (bench-backend, the hello example);
            // one allocation costs less than those copies (BENCHMARKS.md,
            // "Per-request cost: copies cut").
            Ok(runtime) => drop(runtime.spawn(Box::pin(task))),
            Err(_) => {
                log::debug!("a request was dropped outside a tokio runtime; closing it unfinished")
            }
        }
    }

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(deadline: Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline.into())
    }

    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        sleep.reset(deadline.into());
    }

    fn handback() -> &'static LocalKey<Handback<Self>> {
        &HANDBACK
    }
}

/// A listener in tokio's reactor (what [`Tokio`] accepts from).
#[derive(Debug)]
#[non_exhaustive]
pub enum TokioListener {
    /// A TCP listener.
    Tcp(tokio::net::TcpListener),
    /// A Unix domain socket listener.
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

impl Accept for TokioListener {
    type Stream = Stream;

    /// Registers `listener` with the current runtime's reactor. Must be
    /// called within a runtime.
    fn register(listener: Listener) -> io::Result<Self> {
        // tokio requires non-blocking sockets; an inherited one may be
        // blocking.
        listener.set_nonblocking(true)?;
        Ok(match listener {
            Listener::Tcp(l) => TokioListener::Tcp(tokio::net::TcpListener::from_std(l)?),
            #[cfg(unix)]
            Listener::Unix(l) => TokioListener::Unix(tokio::net::UnixListener::from_std(l)?),
            // `Listener` is non-exhaustive; it has no other variant today.
            _ => return Err(io::ErrorKind::Unsupported.into()),
        })
    }

    /// Asks the socket itself (tokio's `poll_accept` would answer
    /// `Pending` for a connection its reactor has not seen yet, and the
    /// shutdown would then reset it).
    fn try_accept(&self) -> Option<io::Result<(Stream, Addr)>> {
        let accepted = match self {
            TokioListener::Tcp(l) => socket2::SockRef::from(l).accept(),
            #[cfg(unix)]
            TokioListener::Unix(l) => socket2::SockRef::from(l).accept(),
        };
        let (socket, _) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => return Some(Err(e)),
        };
        let adopt = || -> io::Result<(Stream, Addr)> {
            socket.set_nonblocking(true)?;
            match self {
                TokioListener::Tcp(_) => {
                    let s = std::net::TcpStream::from(socket);
                    let _ = s.set_nodelay(true);
                    let peer = s.peer_addr()?;
                    Ok((
                        Stream::Tcp(tokio::net::TcpStream::from_std(s)?),
                        Addr::Tcp(peer),
                    ))
                }
                #[cfg(unix)]
                TokioListener::Unix(_) => {
                    let s =
                        std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(socket));
                    let peer = s.peer_addr()?;
                    Ok((
                        Stream::Unix(tokio::net::UnixStream::from_std(s)?),
                        Addr::Unix(peer),
                    ))
                }
            }
        };
        Some(adopt())
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Stream, Addr)>> {
        match self {
            TokioListener::Tcp(l) => l.poll_accept(cx).map_ok(|(s, a)| {
                // Responses go out whole or in large pieces; don't hold
                // back the last small segment.
                let _ = s.set_nodelay(true);
                (Stream::Tcp(s), Addr::Tcp(a))
            }),
            #[cfg(unix)]
            TokioListener::Unix(l) => l
                .poll_accept(cx)
                .map_ok(|(s, a)| (Stream::Unix(s), Addr::Unix(a.into()))),
        }
    }
}

/// A connection's socket: a tokio TCP or Unix stream. It reads and writes
/// through [`AsyncRead`] and [`AsyncWrite`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// A TCP connection.
    Tcp(tokio::net::TcpStream),
    /// A Unix domain socket connection.
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Stream {
    /// Shuts down the read, write or both halves at once, without
    /// waiting (what `AsyncWriteExt::shutdown` does for the write half,
    /// as a plain call, the same as on the other runtime crates).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        scgi_net::each_stream!(self, s => socket2::SockRef::from(s).shutdown(how))
    }

    /// The address of the peer (the web server).
    pub fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(Addr::Tcp),
            #[cfg(unix)]
            Stream::Unix(s) => s.peer_addr().map(|a| Addr::Unix(a.into())),
        }
    }
}

impl Socket for Stream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        ready!(AsyncRead::poll_read(Pin::new(self), cx, &mut buf))?;
        Poll::Ready(Ok(buf.filled().len()))
    }

    /// Reads into `buf`'s spare capacity without zeroing it first (tokio's
    /// `try_read_buf` does the unsafe part).
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut bytes::BytesMut,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(scgi_net::each_stream!(self, s => s.poll_read_ready(cx)))?;
            match scgi_net::each_stream!(self, s => s.try_read_buf(buf)) {
                // A spurious readiness: the reactor was told, poll again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write_vectored(Pin::new(self), cx, bufs)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        Stream::shutdown(self, how)
    }

    fn has_pending_input(&self) -> io::Result<bool> {
        scgi_net::each_stream!(self, s => scgi_net::has_pending_input(s))
    }

    fn set_abortive_close(&self) -> io::Result<()> {
        scgi_net::each_stream!(self, s => socket2::SockRef::from(s).set_linger(Some(Duration::ZERO)))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        scgi_net::each_stream!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        scgi_net::each_stream!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        scgi_net::each_stream!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        scgi_net::each_stream!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        scgi_net::each_stream!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        scgi_net::each_stream!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

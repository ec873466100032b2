//! Sockets: binding listeners, and the stream and address types shared by
//! TCP and Unix connections. Sockets are registered with `async-io`'s
//! reactor, the one async-std and smol both run on, and read and written
//! through the `futures-io` traits.
//!
//! Binding (socket2, permissions, stale socket files) is `scgi-net`'s, as
//! in `scgi-blocking` and `scgi-tokio`; the listeners and streams are this
//! crate's.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(unix)]
use std::path::Path;

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};

#[cfg(unix)]
pub use scgi_net::UnixOptions;
pub use scgi_net::{Addr, Listener, TcpOptions};

/// Registers `listener` with the reactor (which makes it non-blocking).
pub(crate) fn register(listener: Listener) -> io::Result<AsyncListener> {
    Ok(match listener {
        Listener::Tcp(l) => AsyncListener::Tcp(Async::new(l)?),
        #[cfg(unix)]
        Listener::Unix(l) => AsyncListener::Unix(Async::new(l)?),
        // `Listener` is non-exhaustive; it has no other variant today.
        _ => return Err(io::ErrorKind::Unsupported.into()),
    })
}

/// A listener registered with the reactor.
#[derive(Debug)]
pub(crate) enum AsyncListener {
    Tcp(Async<TcpListener>),
    #[cfg(unix)]
    Unix(Async<UnixListener>),
}

impl AsyncListener {
    pub(crate) async fn accept(&self) -> io::Result<(Stream, Addr)> {
        match self {
            AsyncListener::Tcp(l) => {
                let (s, a) = l.accept().await?;
                Ok((Stream::tcp(s), Addr::Tcp(a)))
            }
            #[cfg(unix)]
            AsyncListener::Unix(l) => {
                let (s, a) = l.accept().await?;
                Ok((Stream::Unix(s), Addr::Unix(a)))
            }
        }
    }

    /// Accepts a connection the kernel has already completed, without
    /// waiting (`WouldBlock` when there is none).
    pub(crate) fn try_accept(&self) -> io::Result<(Stream, Addr)> {
        match self {
            AsyncListener::Tcp(l) => {
                let (s, a) = l.get_ref().accept()?;
                Ok((Stream::tcp(Async::new(s)?), Addr::Tcp(a)))
            }
            #[cfg(unix)]
            AsyncListener::Unix(l) => {
                let (s, a) = l.get_ref().accept()?;
                Ok((Stream::Unix(Async::new(s)?), Addr::Unix(a)))
            }
        }
    }
}

/// A connection's socket, TCP or Unix, registered with the reactor.
/// `&Stream` implements the `futures-io` [`AsyncRead`] and [`AsyncWrite`]
/// traits (as `&Async<TcpStream>` does), so reads and writes go straight
/// to the socket.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// A TCP connection.
    Tcp(Async<TcpStream>),
    /// A Unix domain socket connection.
    #[cfg(unix)]
    Unix(Async<UnixStream>),
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Tcp($s) => $e,
            #[cfg(unix)]
            Stream::Unix($s) => $e,
        }
    };
}

impl Stream {
    fn tcp(s: Async<TcpStream>) -> Stream {
        // Responses go out whole or in large pieces; don't hold back the
        // last small segment.
        let _ = s.get_ref().set_nodelay(true);
        Stream::Tcp(s)
    }

    /// Shuts down the read, write or both halves (see
    /// [`TcpStream::shutdown`]).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        each!(self, s => s.get_ref().shutdown(how))
    }

    /// A second handle to the same socket (a duplicated descriptor,
    /// registered with the reactor on its own).
    pub fn try_clone(&self) -> io::Result<Stream> {
        match self {
            Stream::Tcp(s) => Async::new(s.get_ref().try_clone()?).map(Stream::Tcp),
            #[cfg(unix)]
            Stream::Unix(s) => Async::new(s.get_ref().try_clone()?).map(Stream::Unix),
        }
    }

    /// The address of the peer (the web server).
    pub fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Tcp(s) => s.get_ref().peer_addr().map(Addr::Tcp),
            #[cfg(unix)]
            Stream::Unix(s) => s.get_ref().peer_addr().map(Addr::Unix),
        }
    }

    /// Whether the peer has sent anything not read yet (peeked, without
    /// waiting: [`scgi_net::has_pending_input`]).
    pub(crate) fn has_pending_input(&self) -> io::Result<bool> {
        each!(self, s => scgi_net::has_pending_input(s.get_ref()))
    }

    /// Closes the connection with a reset instead of an orderly end (linger
    /// zero), so a peer reading a truncated response sees an error rather
    /// than what looks like a complete one.
    pub(crate) fn set_abortive_close(&self) {
        let r =
            each!(self, s => socket2::SockRef::from(s.get_ref()).set_linger(Some(Duration::ZERO)));
        if let Err(e) = r {
            log::debug!("setting SO_LINGER to 0 failed: {e}");
        }
    }
}

impl AsyncRead for &Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        each!(*self, s => Pin::new(&mut &*s).poll_read(cx, buf))
    }
}

impl AsyncWrite for &Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(*self, s => Pin::new(&mut &*s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

#[cfg(unix)]
pub(crate) use scgi_net::SocketFile;
pub(crate) use scgi_net::bind_tcp;

/// Binds a Unix socket (see [`scgi_net::bind_unix`]), logging about its
/// socket file under this module's target.
#[cfg(unix)]
pub(crate) fn bind_unix(path: &Path, opts: &UnixOptions) -> io::Result<(UnixListener, SocketFile)> {
    scgi_net::bind_unix(path, opts, module_path!())
}

//! Sockets: binding listeners, adopting listeners bound elsewhere, and the
//! stream and address types shared by TCP and Unix connections.
//!
//! Binding is synchronous (`scgi-net`'s, as in `scgi-blocking`), so a
//! server can be bound before a runtime exists; the listener joins the tokio
//! reactor when the server starts serving.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::net::UnixListener;
#[cfg(unix)]
use std::path::Path;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[cfg(unix)]
pub use scgi_net::UnixOptions;
pub use scgi_net::{Addr, Listener, TcpOptions};

/// Registers `listener` with the current runtime's reactor. Must be
/// called within a runtime.
pub(crate) fn register(listener: Listener) -> io::Result<Registered> {
    // tokio requires non-blocking sockets; an inherited one may be
    // blocking.
    listener.set_nonblocking(true)?;
    Ok(match listener {
        Listener::Tcp(l) => Registered::Tcp(tokio::net::TcpListener::from_std(l)?),
        #[cfg(unix)]
        Listener::Unix(l) => Registered::Unix(tokio::net::UnixListener::from_std(l)?),
        // `Listener` is non-exhaustive; it has no other variant today.
        _ => return Err(io::ErrorKind::Unsupported.into()),
    })
}

/// A listener in the reactor.
#[derive(Debug)]
pub(crate) enum Registered {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

impl Registered {
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Stream, Addr)>> {
        match self {
            Registered::Tcp(l) => l.poll_accept(cx).map_ok(|(s, a)| {
                // Responses go out whole or in large pieces; don't hold
                // back the last small segment.
                let _ = s.set_nodelay(true);
                (Stream::Tcp(s), Addr::Tcp(a))
            }),
            #[cfg(unix)]
            Registered::Unix(l) => l
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
    /// Whether the peer has sent anything not read yet (peeked, without
    /// waiting: [`scgi_net::has_pending_input`]).
    pub(crate) fn has_pending_input(&self) -> io::Result<bool> {
        each!(self, s => scgi_net::has_pending_input(s))
    }

    /// Shuts down the read, write or both halves at once, without
    /// waiting (what `AsyncWriteExt::shutdown` does for the write half,
    /// as a plain call, the same as on the other runtime crates).
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        each!(self, s => socket2::SockRef::from(s).shutdown(how))
    }

    /// The address of the peer (the web server).
    pub fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(Addr::Tcp),
            #[cfg(unix)]
            Stream::Unix(s) => s.peer_addr().map(|a| Addr::Unix(a.into())),
        }
    }

    /// Closes the connection with a reset instead of an orderly end (linger
    /// zero), so a peer reading a truncated response sees an error rather
    /// than what looks like a complete one.
    pub(crate) fn set_abortive_close(&self) {
        let r = each!(self, s => socket2::SockRef::from(s).set_linger(Some(Duration::ZERO)));
        if let Err(e) = r {
            log::debug!("setting SO_LINGER to 0 failed: {e}");
        }
    }

    /// Reads what is available into `buf`'s spare capacity, without
    /// zeroing it first (tokio's `try_read_buf` does the unsafe part).
    pub(crate) fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut bytes::BytesMut,
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(each!(self, s => s.poll_read_ready(cx)))?;
            match each!(self, s => s.try_read_buf(buf)) {
                // A spurious readiness: the reactor was told, poll again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
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

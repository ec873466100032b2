//! Sockets: binding listeners, and the stream and address types shared by
//! TCP and Unix connections. Sockets are registered with `async-io`'s
//! reactor, the one async-std and smol both run on, and read and written
//! through the `futures-io` traits.
//!
//! Binding (socket2, permissions, stale socket files) is `scgi-net`'s, and
//! serving is `scgi-async`'s; the listeners and streams are this crate's.

use std::io::{self, IoSlice};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};
use scgi_async::{Accept, Socket};

#[cfg(unix)]
pub use scgi_net::UnixOptions;
pub use scgi_net::{Addr, Listener, TcpOptions};

/// A listener registered with `async-io`'s reactor (what [`AsyncIo`]
/// accepts from).
///
/// [`AsyncIo`]: crate::AsyncIo
#[derive(Debug)]
#[non_exhaustive]
pub enum AsyncIoListener {
    /// A TCP listener.
    Tcp(Async<TcpListener>),
    /// A Unix domain socket listener.
    #[cfg(unix)]
    Unix(Async<UnixListener>),
}

impl AsyncIoListener {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            AsyncIoListener::Tcp(l) => l.poll_readable(cx),
            #[cfg(unix)]
            AsyncIoListener::Unix(l) => l.poll_readable(cx),
        }
    }
}

impl Accept for AsyncIoListener {
    type Stream = Stream;

    /// Registers `listener` with the reactor (which makes it non-blocking).
    fn register(listener: Listener) -> io::Result<Self> {
        Ok(match listener {
            Listener::Tcp(l) => AsyncIoListener::Tcp(Async::new(l)?),
            #[cfg(unix)]
            Listener::Unix(l) => AsyncIoListener::Unix(Async::new(l)?),
            // `Listener` is non-exhaustive; it has no other variant today.
            _ => return Err(io::ErrorKind::Unsupported.into()),
        })
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Stream, Addr)>> {
        loop {
            let accepted = match self {
                AsyncIoListener::Tcp(l) => l
                    .get_ref()
                    .accept()
                    .and_then(|(s, a)| Ok((Stream::tcp(Async::new(s)?), Addr::Tcp(a)))),
                #[cfg(unix)]
                AsyncIoListener::Unix(l) => l
                    .get_ref()
                    .accept()
                    .and_then(|(s, a)| Ok((Stream::Unix(Async::new(s)?), Addr::Unix(a)))),
            };
            match accepted {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // After a wake-up, async-io's `poll_readable` answers
                    // `Ready` once for the event that caused it, which the
                    // `accept` since has mostly used up. Asking a second
                    // time registers for the next event, where retrying
                    // `accept` on that mostly stale answer cost one more
                    // failing system call per wake-up. Nothing is lost
                    // when the answer was fresh (a connection came after
                    // the `accept`): the registration is one-shot, and
                    // re-arming it with a connection waiting fires at once,
                    // at the cost of a trip through the reactor.
                    ready!(self.poll_readable(cx))?;
                    ready!(self.poll_readable(cx))?;
                }
                accepted => return Poll::Ready(accepted),
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
        scgi_net::each_stream!(self, s => s.get_ref().shutdown(how))
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
}

impl Socket for Stream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_read(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        scgi_net::each_stream!(&*self, s => Pin::new(&mut &*s).poll_write_vectored(cx, bufs))
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        Stream::shutdown(self, how)
    }

    fn has_pending_input(&self) -> io::Result<bool> {
        scgi_net::each_stream!(self, s => scgi_net::has_pending_input(s.get_ref()))
    }

    fn set_abortive_close(&self) -> io::Result<()> {
        scgi_net::each_stream!(self, s => socket2::SockRef::from(s.get_ref()).set_linger(Some(Duration::ZERO)))
    }
}

impl AsyncRead for &Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        scgi_net::each_stream!(*self, s => Pin::new(&mut &*s).poll_read(cx, buf))
    }
}

impl AsyncWrite for &Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        scgi_net::each_stream!(*self, s => Pin::new(&mut &*s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

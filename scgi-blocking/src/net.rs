//! Sockets: the listener and stream types shared by TCP and Unix
//! connections. Binding, its options and the address type are `scgi-net`'s,
//! re-exported here.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(unix)]
use std::path::Path;

#[cfg(unix)]
pub use scgi_net::UnixOptions;
pub use scgi_net::{Addr, Listener, TcpOptions};

/// Accepts a connection on `listener` (blocking unless it is
/// non-blocking).
pub(crate) fn accept(listener: &Listener) -> io::Result<(Stream, Addr)> {
    match listener {
        Listener::Tcp(l) => {
            let (s, a) = l.accept()?;
            Ok((Stream::Tcp(s), Addr::Tcp(a)))
        }
        #[cfg(unix)]
        Listener::Unix(l) => {
            let (s, a) = l.accept()?;
            Ok((Stream::Unix(s), Addr::Unix(a)))
        }
        // `Listener` is non-exhaustive; it has no other variant today.
        _ => Err(io::ErrorKind::Unsupported.into()),
    }
}

/// [`Addr::poke`]: an extension trait, as [`Addr`] is `scgi-net`'s.
pub(crate) trait Poke {
    /// Opens a connection to this address, bounded by `timeout` for TCP,
    /// to wake an acceptor blocked on it. An unspecified TCP address
    /// (`0.0.0.0`, `::`) is reached through loopback.
    fn poke(&self, timeout: Duration) -> io::Result<()>;
}

impl Poke for Addr {
    fn poke(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Addr::Tcp(a) => {
                let mut a = *a;
                if a.ip().is_unspecified() {
                    a.set_ip(match a {
                        SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                TcpStream::connect_timeout(&a, timeout).map(drop)
            }
            #[cfg(unix)]
            Addr::Unix(a) => UnixStream::connect_addr(a).map(drop),
            // `Addr` is non-exhaustive; it has no other variant today.
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }
}

/// A connection's socket: TCP or Unix. Reads and writes go straight to the
/// socket; `&Stream` reads and writes too, as `&TcpStream` does.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix domain socket connection.
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// Shuts down the read, write or both halves (see
    /// [`TcpStream::shutdown`]).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        scgi_net::each_stream!(self, s => s.shutdown(how))
    }

    /// Sets the read timeout; `None` blocks forever. A zero duration is
    /// refused, as by [`TcpStream::set_read_timeout`].
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        scgi_net::each_stream!(self, s => s.set_read_timeout(t))
    }

    /// Sets the write timeout; `None` blocks forever.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        scgi_net::each_stream!(self, s => s.set_write_timeout(t))
    }

    /// Moves the socket into or out of non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        scgi_net::each_stream!(self, s => s.set_nonblocking(on))
    }

    /// Whether the peer has sent anything not read yet (peeked, without
    /// waiting: [`scgi_net::has_pending_input`]).
    pub(crate) fn has_pending_input(&self) -> io::Result<bool> {
        scgi_net::each_stream!(self, s => scgi_net::has_pending_input(s))
    }

    /// A second handle to the same socket (a duplicated descriptor).
    pub fn try_clone(&self) -> io::Result<Stream> {
        match self {
            Stream::Tcp(s) => s.try_clone().map(Stream::Tcp),
            #[cfg(unix)]
            Stream::Unix(s) => s.try_clone().map(Stream::Unix),
        }
    }

    /// The address of the peer (the web server).
    pub fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(Addr::Tcp),
            #[cfg(unix)]
            Stream::Unix(s) => s.peer_addr().map(Addr::Unix),
        }
    }

    /// Closes the connection with a reset instead of an orderly end (linger
    /// zero), so a peer reading a truncated response sees an error rather
    /// than what looks like a complete one.
    pub(crate) fn set_abortive_close(&self) {
        let r = scgi_net::each_stream!(self, s => socket2::SockRef::from(s).set_linger(Some(Duration::ZERO)));
        if let Err(e) = r {
            log::debug!("setting SO_LINGER to 0 failed: {e}");
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        scgi_net::each_stream!(*self, s => (&*s).read(buf))
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        scgi_net::each_stream!(*self, s => (&*s).write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

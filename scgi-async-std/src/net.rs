//! Sockets: binding listeners, and the stream and address types shared by
//! TCP and Unix connections. Sockets are registered with `async-io`'s
//! reactor, the one async-std and smol both run on, and read and written
//! through the `futures-io` traits.
//!
//! Binding (socket2, permissions, stale socket files) is the same as in
//! `scgi-blocking`, kept in step by hand: a runtime crate owns its sockets.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(unix)]
use std::path::{Path, PathBuf};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};
use socket2::{Domain, Protocol, Socket, Type};

/// Options for [`Server::bind_tcp_with`](crate::Server::bind_tcp_with).
///
/// | field | default |
/// | --- | --- |
/// | [`reuse_addr`](TcpOptions::reuse_addr) | `true` |
/// | [`only_v6`](TcpOptions::only_v6) | `None` (the system default) |
/// | [`backlog`](TcpOptions::backlog) | 1 024 |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpOptions {
    /// Set `SO_REUSEADDR`, so a restarted server can bind its port while
    /// connections of the previous one linger in `TIME_WAIT`. Default `true`
    /// (what `std::net::TcpListener::bind` does on Unix).
    pub reuse_addr: bool,
    /// For an IPv6 address, set `IPV6_V6ONLY`: `Some(true)` accepts IPv6
    /// only, `Some(false)` also IPv4-mapped connections (`[::]` then serves
    /// both families), `None` keeps the system default.
    pub only_v6: Option<bool>,
    /// The listen backlog: connections the kernel completes and queues
    /// before the server accepts them.
    pub backlog: i32,
}

impl TcpOptions {
    /// The defaults (see the table on [`TcpOptions`]).
    pub const DEFAULT: TcpOptions = TcpOptions {
        reuse_addr: true,
        only_v6: None,
        backlog: 1024,
    };

    /// Returns these options with `reuse_addr` set.
    #[must_use]
    pub const fn with_reuse_addr(mut self, on: bool) -> Self {
        self.reuse_addr = on;
        self
    }

    /// Returns these options with `only_v6` set.
    #[must_use]
    pub const fn with_only_v6(mut self, only_v6: Option<bool>) -> Self {
        self.only_v6 = only_v6;
        self
    }

    /// Returns these options with `backlog` set.
    #[must_use]
    pub const fn with_backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions::DEFAULT
    }
}

/// Options for [`Server::bind_unix_with`](crate::Server::bind_unix_with).
///
/// | field | default |
/// | --- | --- |
/// | [`mode`](UnixOptions::mode) | `None` (what the umask gives) |
/// | [`remove_stale`](UnixOptions::remove_stale) | `true` |
/// | [`backlog`](UnixOptions::backlog) | 1 024 |
#[cfg(unix)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnixOptions {
    /// Permission bits for the socket file, e.g. `0o660` so that a web
    /// server running as another user of the same group can connect
    /// (connecting needs write permission). Set between `bind` and `listen`,
    /// so no client can connect before the mode is in place.
    pub mode: Option<u32>,
    /// If a socket file is already at the path and nothing listens on it
    /// (a server that crashed left it), remove it before binding. A path
    /// that is not a socket, or a socket someone still listens on, is never
    /// removed: binding fails instead.
    pub remove_stale: bool,
    /// The listen backlog.
    pub backlog: i32,
}

#[cfg(unix)]
impl UnixOptions {
    /// The defaults (see the table on [`UnixOptions`]).
    pub const DEFAULT: UnixOptions = UnixOptions {
        mode: None,
        remove_stale: true,
        backlog: 1024,
    };

    /// Returns these options with the socket file's permission bits set.
    #[must_use]
    pub const fn with_mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Returns these options with `remove_stale` set.
    #[must_use]
    pub const fn with_remove_stale(mut self, on: bool) -> Self {
        self.remove_stale = on;
        self
    }

    /// Returns these options with `backlog` set.
    #[must_use]
    pub const fn with_backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }
}

#[cfg(unix)]
impl Default for UnixOptions {
    fn default() -> Self {
        UnixOptions::DEFAULT
    }
}

/// A bound listening socket: TCP, or (on Unix) a Unix domain socket.
///
/// Build one with `From` to adopt a listener bound elsewhere, for example
/// one passed by systemd socket activation (`TcpListener::from(OwnedFd)`),
/// and hand it to [`Server::from_listener`](crate::Server::from_listener).
/// With the `async-std` feature, async-std's listeners convert too
/// (`Listener::try_from`).
#[derive(Debug)]
#[non_exhaustive]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix domain socket listener.
    #[cfg(unix)]
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

#[cfg(unix)]
impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Listener::Unix(l)
    }
}

/// Adopts an async-std listener (taking it off async-std's reactor
/// registration, which can fail).
#[cfg(feature = "async-std")]
impl TryFrom<async_std::net::TcpListener> for Listener {
    type Error = io::Error;

    fn try_from(l: async_std::net::TcpListener) -> io::Result<Self> {
        TcpListener::try_from(l).map(Listener::Tcp)
    }
}

/// Adopts an async-std Unix listener (see the TCP one).
#[cfg(all(unix, feature = "async-std"))]
impl TryFrom<async_std::os::unix::net::UnixListener> for Listener {
    type Error = io::Error;

    fn try_from(l: async_std::os::unix::net::UnixListener) -> io::Result<Self> {
        UnixListener::try_from(l).map(Listener::Unix)
    }
}

impl Listener {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(Addr::Tcp),
            #[cfg(unix)]
            Listener::Unix(l) => l.local_addr().map(Addr::Unix),
        }
    }

    /// Registers the listener with the reactor (which makes it
    /// non-blocking).
    pub(crate) fn into_async(self) -> io::Result<AsyncListener> {
        Ok(match self {
            Listener::Tcp(l) => AsyncListener::Tcp(Async::new(l)?),
            #[cfg(unix)]
            Listener::Unix(l) => AsyncListener::Unix(Async::new(l)?),
        })
    }
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

/// An address: a TCP socket address, or a Unix socket address.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Addr {
    /// An IPv4 or IPv6 address and port.
    Tcp(SocketAddr),
    /// A Unix socket address (a path, abstract, or unnamed).
    #[cfg(unix)]
    Unix(std::os::unix::net::SocketAddr),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(a) => a.fmt(f),
            #[cfg(unix)]
            Addr::Unix(a) => match a.as_pathname() {
                Some(p) => write!(f, "unix:{}", p.display()),
                None => f.write_str("unix:(unnamed)"),
            },
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

    /// The address of the peer (the web server).
    pub fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Tcp(s) => s.get_ref().peer_addr().map(Addr::Tcp),
            #[cfg(unix)]
            Stream::Unix(s) => s.get_ref().peer_addr().map(Addr::Unix),
        }
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

pub(crate) fn bind_tcp<A: ToSocketAddrs>(addr: A, opts: &TcpOptions) -> io::Result<TcpListener> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match bind_tcp_one(a, opts) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

fn bind_tcp_one(addr: SocketAddr, opts: &TcpOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(opts.reuse_addr)?;
    if let (SocketAddr::V6(_), Some(only)) = (addr, opts.only_v6) {
        socket.set_only_v6(only)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(opts.backlog)?;
    Ok(socket.into())
}

/// A socket file this process created; removed when dropped, unless another
/// file has replaced it since (a newer server bound the same path).
#[cfg(unix)]
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

#[cfg(unix)]
fn file_id(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path)?;
    Ok((m.dev(), m.ino()))
}

#[cfg(unix)]
impl Drop for SocketFile {
    fn drop(&mut self) {
        if file_id(&self.path).is_ok_and(|id| id == self.id)
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            log::warn!("removing socket file {}: {e}", self.path.display());
        }
    }
}

#[cfg(unix)]
pub(crate) fn bind_unix(path: &Path, opts: &UnixOptions) -> io::Result<(UnixListener, SocketFile)> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if opts.remove_stale
        && let Ok(meta) = std::fs::symlink_metadata(path)
    {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("a server is listening on {}", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                log::info!("removing stale socket file {}", path.display());
                std::fs::remove_file(path)?;
            }
            Err(e) => return Err(e),
        }
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    let file = SocketFile {
        path: path.to_owned(),
        id: file_id(path)?,
    };
    if let Some(mode) = opts.mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    socket.listen(opts.backlog)?;
    Ok((UnixListener::from(std::os::fd::OwnedFd::from(socket)), file))
}

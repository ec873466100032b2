//! Sockets: binding listeners, adopting listeners bound elsewhere, and the
//! stream and address types shared by TCP and Unix connections.
//!
//! Binding is synchronous (socket2, as in `scgi-blocking`), so a server can
//! be bound before a runtime exists; the listener joins the tokio reactor
//! when the server starts serving.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(unix)]
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

/// A bound listening socket to serve on: a std or tokio TCP listener, or
/// (on Unix) a std or tokio Unix listener.
///
/// Build one with `From` to adopt a listener bound elsewhere, for example
/// one passed by systemd socket activation (`std::net::TcpListener::from(OwnedFd)`),
/// and hand it to [`Server::from_listener`](crate::Server::from_listener).
/// A std listener joins the tokio reactor when the server starts serving,
/// so it can be adopted before a runtime exists.
#[derive(Debug)]
pub struct Listener {
    kind: ListenerKind,
}

#[derive(Debug)]
enum ListenerKind {
    StdTcp(TcpListener),
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    StdUnix(UnixListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener {
            kind: ListenerKind::StdTcp(l),
        }
    }
}

impl From<tokio::net::TcpListener> for Listener {
    fn from(l: tokio::net::TcpListener) -> Self {
        Listener {
            kind: ListenerKind::Tcp(l),
        }
    }
}

#[cfg(unix)]
impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Listener {
            kind: ListenerKind::StdUnix(l),
        }
    }
}

#[cfg(unix)]
impl From<tokio::net::UnixListener> for Listener {
    fn from(l: tokio::net::UnixListener) -> Self {
        Listener {
            kind: ListenerKind::Unix(l),
        }
    }
}

impl Listener {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<Addr> {
        match &self.kind {
            ListenerKind::StdTcp(l) => l.local_addr().map(Addr::Tcp),
            ListenerKind::Tcp(l) => l.local_addr().map(Addr::Tcp),
            #[cfg(unix)]
            ListenerKind::StdUnix(l) => l.local_addr().map(Addr::Unix),
            #[cfg(unix)]
            ListenerKind::Unix(l) => l.local_addr().map(|a| Addr::Unix(a.into())),
        }
    }

    /// The listener registered with the current runtime's reactor. Must be
    /// called within a runtime.
    pub(crate) fn register(self) -> io::Result<Registered> {
        Ok(match self.kind {
            ListenerKind::StdTcp(l) => {
                // tokio requires non-blocking sockets; an inherited one may
                // be blocking.
                l.set_nonblocking(true)?;
                Registered::Tcp(tokio::net::TcpListener::from_std(l)?)
            }
            ListenerKind::Tcp(l) => Registered::Tcp(l),
            #[cfg(unix)]
            ListenerKind::StdUnix(l) => {
                l.set_nonblocking(true)?;
                Registered::Unix(tokio::net::UnixListener::from_std(l)?)
            }
            #[cfg(unix)]
            ListenerKind::Unix(l) => Registered::Unix(l),
        })
    }
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
}

#[cfg(feature = "tower")]
impl Stream {
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

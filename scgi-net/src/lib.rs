//! Runtime-independent socket binding shared by the scgi-rs servers
//! (`scgi-blocking`, `scgi-tokio`, `scgi-async-std`).
//!
//! - [`TcpOptions`] and [`bind_tcp`]: a std [`TcpListener`] bound through
//!   socket2 (`SO_REUSEADDR`, `IPV6_V6ONLY`, the listen backlog).
//! - On Unix, [`UnixOptions`] and [`bind_unix`]: a std `UnixListener` with
//!   the socket file's mode set before `listen`, and a stale socket file
//!   (one nobody listens on) removed first; [`SocketFile`] removes the file
//!   again when dropped.
//! - [`Addr`]: a TCP or Unix socket address, as servers report their own
//!   and their peers'.
//! - [`Listener`]: a bound std listener (TCP or Unix) that any server
//!   adopts with `from_listener`.
//! - [`ListenAddr`]: the one address string every server's `bind` takes
//!   (`"host:port"`, `"[v6]:port"`, `"unix:/path"`).
//! - On Unix, [`systemd`]: socket activation (the `"systemd"` address)
//!   and readiness notification; [`ShutdownSignal`]: the graceful stop on
//!   `SIGTERM` and `SIGINT` that each runtime crate's `shutdown_signal()`
//!   returns.
//! - [`has_pending_input`]: whether a connection has unread input, the
//!   test each server makes before closing without a drain.
//!
//! Everything here is synchronous and std only: each runtime crate turns
//! the bound std listener into its own listener type, and re-exports the
//! public types under its own paths (`scgi_tokio::TcpOptions`, ...).
//!
//! ```no_run
//! let listener = scgi_net::bind_tcp("127.0.0.1:4000", &scgi_net::TcpOptions::DEFAULT)?;
//! let (conn, peer) = listener.accept()?;
//! # drop((conn, peer));
//! # Ok::<(), std::io::Error>(())
//! ```
// docs.rs (`--cfg docsrs`, nightly) labels each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(unix)]
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, Socket, Type};

#[cfg(unix)]
mod signal;
#[cfg(unix)]
pub mod systemd;

#[cfg(unix)]
pub use signal::ShutdownSignal;

/// Options for binding a TCP listener (a server's `bind_tcp_with`, or
/// [`bind_tcp`]).
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

/// Options for binding a Unix socket (a server's `bind_unix_with`, or
/// [`bind_unix`]).
///
/// | field | default |
/// | --- | --- |
/// | [`mode`](UnixOptions::mode) | `None` (what the umask gives) |
/// | [`owner`](UnixOptions::owner) | `None` (the server's user) |
/// | [`group`](UnixOptions::group) | `None` (the server's group) |
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
    /// The user id to give the socket file (`chown`; only root may give a
    /// file away). Set with [`mode`](UnixOptions::mode), before `listen`.
    pub owner: Option<u32>,
    /// The group id to give the socket file, e.g. the web server's group
    /// (`www-data`) with mode `0o660`, so that the web server can connect
    /// and nobody else can. The server's user must be root or a member of
    /// the group. [`group_id`] looks a group up by name.
    pub group: Option<u32>,
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
        owner: None,
        group: None,
        remove_stale: true,
        backlog: 1024,
    };

    /// Returns these options with the socket file's permission bits set.
    #[must_use]
    pub const fn with_mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Returns these options with the socket file's owner (a user id) set.
    #[must_use]
    pub const fn with_owner(mut self, uid: u32) -> Self {
        self.owner = Some(uid);
        self
    }

    /// Returns these options with the socket file's group (a group id)
    /// set: `UnixOptions::DEFAULT.with_mode(0o660).with_group(scgi_net::group_id("www-data")?)`.
    #[must_use]
    pub const fn with_group(mut self, gid: u32) -> Self {
        self.group = Some(gid);
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

/// Where a server listens, parsed from the one string every server's
/// `bind` takes:
///
/// | string | listens on |
/// | --- | --- |
/// | `"127.0.0.1:4000"`, `"localhost:4000"` | TCP (every resolved address is tried in turn) |
/// | `"[::1]:4000"`, `"[::]:4000"` | TCP over IPv6 |
/// | `"unix:/run/app/scgi.sock"` | a Unix socket at that path (as nginx writes `scgi_pass unix:/path`) |
/// | `"systemd"` | the one socket systemd passed (socket activation; see [`systemd`]) |
/// | `"systemd:web"` | the passed socket named `web` (`FileDescriptorName=web`) |
///
/// (So `systemd:4000` names a passed socket, never a host called
/// `systemd`: write `systemd.example:4000` or its IP address for that.)
///
/// ```
/// use scgi_net::ListenAddr;
/// assert_eq!(ListenAddr::parse("[::1]:4000")?, ListenAddr::Tcp("[::1]:4000"));
/// # #[cfg(unix)]
/// assert_eq!(
///     ListenAddr::parse("unix:/run/app/scgi.sock")?,
///     ListenAddr::Unix(std::path::Path::new("/run/app/scgi.sock"))
/// );
/// # #[cfg(unix)]
/// assert_eq!(ListenAddr::parse("systemd:web")?, ListenAddr::Systemd(Some("web")));
/// assert!(ListenAddr::parse("unix:").is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenAddr<'a> {
    /// A TCP address for [`ToSocketAddrs`]: `host:port` or `[v6]:port`.
    Tcp(&'a str),
    /// A Unix socket path (the string after `unix:`).
    #[cfg(unix)]
    Unix(&'a Path),
    /// A socket passed by systemd socket activation: the only one (`None`,
    /// from `"systemd"`), or the one of that name (from `"systemd:NAME"`);
    /// taken with [`systemd::listener`].
    #[cfg(unix)]
    Systemd(Option<&'a str>),
}

impl<'a> ListenAddr<'a> {
    /// Parses an address string (see the table above). An empty string or
    /// an empty `unix:` path is `InvalidInput`; `unix:` where there are no
    /// Unix sockets is `Unsupported`. A TCP address is only resolved when
    /// bound.
    pub fn parse(addr: &'a str) -> io::Result<ListenAddr<'a>> {
        if addr == "systemd" || addr.starts_with("systemd:") {
            let name = addr.strip_prefix("systemd:");
            if name == Some("") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "`systemd:` needs a socket name after it (or write `systemd`)",
                ));
            }
            #[cfg(unix)]
            return Ok(ListenAddr::Systemd(name));
            #[cfg(not(unix))]
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "systemd socket activation is not available on this system",
            ));
        }
        if let Some(path) = addr.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "`unix:` needs a socket path after it",
                ));
            }
            #[cfg(unix)]
            return Ok(ListenAddr::Unix(Path::new(path)));
            #[cfg(not(unix))]
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Unix sockets are not available on this system",
            ));
        }
        if addr.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty address: give `host:port`, `[v6]:port` or `unix:/path`",
            ));
        }
        Ok(ListenAddr::Tcp(addr))
    }

    /// The listener for a `systemd` address, taken from the sockets systemd
    /// passed ([`systemd::listener`]); `None` for the other kinds, which
    /// each server binds its own way.
    pub fn passed_listener(&self) -> Option<io::Result<Listener>> {
        match self {
            #[cfg(unix)]
            ListenAddr::Systemd(name) => Some(systemd::listener(*name)),
            _ => None,
        }
    }

    /// The error a server gives for a kind of address it cannot bind
    /// (`Unsupported`): the `_` arm of a match on this non-exhaustive enum.
    #[must_use]
    pub fn unsupported(&self) -> io::Error {
        let what = match self {
            ListenAddr::Tcp(a) => format!("the TCP address {a}"),
            #[cfg(unix)]
            ListenAddr::Unix(p) => format!("the Unix socket unix:{}", p.display()),
            #[cfg(unix)]
            ListenAddr::Systemd(_) => {
                "a socket passed by systemd (`systemd` addresses are for servers)".to_owned()
            }
        };
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{what} cannot be used here"),
        )
    }
}

/// A bound listening socket to serve on, the same type on every runtime
/// crate: a std TCP listener or (on Unix) a std Unix listener.
///
/// Build one with `From` to adopt a listener bound elsewhere, for example
/// one passed by systemd socket activation
/// (`std::net::TcpListener::from(OwnedFd)`), and hand it to a server's
/// `from_listener`. An async runtime's own listener converts to std first
/// (tokio: `into_std()`; async-std: `std::net::TcpListener::try_from`;
/// async-io: `Async::into_inner()`): a server registers it with its
/// runtime's reactor itself when it starts serving, so it can be adopted
/// before a runtime exists.
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

impl Listener {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(Addr::Tcp),
            #[cfg(unix)]
            Listener::Unix(l) => l.local_addr().map(Addr::Unix),
        }
    }

    /// Moves the listener into or out of non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(on),
            #[cfg(unix)]
            Listener::Unix(l) => l.set_nonblocking(on),
        }
    }
}

/// Binds a TCP listener to the first of `addr`'s addresses that binds, with
/// `opts` applied before `listen`. With none binding, the last address's
/// error is returned, its message naming the address
/// (`127.0.0.1:4000: Address already in use`; `InvalidInput` if `addr`
/// resolved to nothing).
pub fn bind_tcp<A: ToSocketAddrs>(addr: A, opts: &TcpOptions) -> io::Result<TcpListener> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match bind_tcp_one(a, opts) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(naming(&a, e)),
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

/// A socket file this process created (see [`bind_unix`]); removed when
/// dropped, unless another file has replaced it since (a newer server bound
/// the same path).
#[cfg(unix)]
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
    log_target: &'static str,
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
            log::warn!(target: self.log_target, "removing socket file {}: {e}", self.path.display());
        }
    }
}

/// Binds a Unix socket listener at `path` with `opts`, and returns it with
/// the [`SocketFile`] guard that removes the file when dropped. Errors
/// name the address (`unix:/run/app/scgi.sock: Permission denied`).
///
/// With [`remove_stale`](UnixOptions::remove_stale), a socket file nobody
/// listens on is removed first; a path that is not a socket fails with
/// `AlreadyExists`, one a server listens on with `AddrInUse`. The file's
/// [`mode`](UnixOptions::mode) is set between `bind` and `listen`.
///
/// `log_target` is the [`log`] target of the messages about the socket
/// file (its stale removal here, a failed removal on drop): the calling
/// crate's, usually its `module_path!()`.
#[cfg(unix)]
pub fn bind_unix(
    path: &Path,
    opts: &UnixOptions,
    log_target: &'static str,
) -> io::Result<(UnixListener, SocketFile)> {
    bind_unix_at(path, opts, log_target)
        .map_err(|e| naming(&format_args!("unix:{}", path.display()), e))
}

/// `e` with the address it is about in front of its message
/// (`127.0.0.1:4000: Address already in use`), its kind kept.
fn naming(addr: &dyn fmt::Display, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{addr}: {e}"))
}

#[cfg(unix)]
fn bind_unix_at(
    path: &Path,
    opts: &UnixOptions,
    log_target: &'static str,
) -> io::Result<(UnixListener, SocketFile)> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if opts.remove_stale
        && let Ok(meta) = std::fs::symlink_metadata(path)
    {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            ));
        }
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "a server is listening on it",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                log::info!(target: log_target, "removing stale socket file {}", path.display());
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
        log_target,
    };
    if opts.owner.is_some() || opts.group.is_some() {
        std::os::unix::fs::chown(path, opts.owner, opts.group)?;
    }
    if let Some(mode) = opts.mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    socket.listen(opts.backlog)?;
    Ok((UnixListener::from(std::os::fd::OwnedFd::from(socket)), file))
}

/// The id of the group named `name` (from `/etc/group` or whatever the
/// system's name service reads), for [`UnixOptions::with_group`]; a number
/// is taken as the id itself. `NotFound` if there is no such group.
#[cfg(unix)]
pub fn group_id(name: &str) -> io::Result<u32> {
    if let Ok(gid) = name.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no group named {name}"),
        )),
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("looking up group {name}: {e}"),
        )),
    }
}

/// The id of the user named `name` (a number is taken as the id itself),
/// for [`UnixOptions::with_owner`]. `NotFound` if there is no such user.
#[cfg(unix)]
pub fn user_id(name: &str) -> io::Result<u32> {
    if let Ok(uid) = name.parse() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no user named {name}"),
        )),
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("looking up user {name}: {e}"),
        )),
    }
}

/// Whether the peer has sent bytes not read yet, without reading them and
/// without waiting, whatever the socket's blocking mode (one `recv` with
/// `MSG_PEEK | MSG_DONTWAIT`). `Ok(false)` when nothing is pending or the
/// peer has closed its side.
///
/// Closing a socket with unread input makes the kernel send RST, which can
/// destroy a response the peer has not read yet; so the servers close at
/// once only a connection whose request was read to its end and for which
/// this says `false`, and drain the others.
///
/// Elsewhere than on Unix it answers `Ok(true)` (assume input is pending,
/// so the caller drains).
#[cfg(unix)]
pub fn has_pending_input(socket: &impl std::os::fd::AsFd) -> io::Result<bool> {
    let mut byte = [std::mem::MaybeUninit::uninit()];
    loop {
        match socket2::SockRef::from(socket)
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        {
            Ok(n) => return Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// See the Unix version: here it always answers `Ok(true)`.
#[cfg(not(unix))]
pub fn has_pending_input<S>(_socket: &S) -> io::Result<bool> {
    Ok(true)
}

/// Runs `$e` with `$s` bound to the socket inside a runtime crate's
/// `Stream` enum (`Stream::Tcp`, and `Stream::Unix` on Unix), whichever it
/// is: the one dispatch every runtime crate's `Stream` methods need, written
/// once. `Stream` is resolved where the macro is used.
#[doc(hidden)]
#[macro_export]
macro_rules! each_stream {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Tcp($s) => $e,
            #[cfg(unix)]
            Stream::Unix($s) => $e,
        }
    };
}

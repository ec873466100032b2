//! The backend side: how a runtime is plugged in, and the Unix socket
//! permissions the front end's workers need.

use std::fmt;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use scgi_proto::server::Config;
use socket2::{Domain, Protocol, Socket, Type};

use crate::app::App;

/// The user the front ends' workers run as when the tests run as root
/// (Debian's packages use it too).
pub const WORKER_USER: &str = "www-data";

/// The mode the backends give their Unix socket: owner and group may
/// connect (connecting needs write permission on the socket file), others
/// may not. The harness then gives the socket to [`WORKER_USER`]'s group.
pub const SOCKET_MODE: u32 = 0o660;

/// The socket kind between front end and backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP on `127.0.0.1`, a free port.
    Tcp,
    /// A Unix socket in a temp directory.
    Unix,
}

impl Transport {
    /// `tcp` or `unix`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Unix => "unix",
        }
    }
}

/// Where a backend listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendAddr::Tcp(a) => write!(f, "{a}"),
            BackendAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What a [`StartBackend`] function is asked to start.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BackendSpec {
    /// TCP or Unix.
    pub transport: Transport,
    /// For [`Transport::Tcp`]: the address to bind (`127.0.0.1:0`).
    pub tcp_addr: SocketAddr,
    /// For [`Transport::Unix`]: the socket path to bind (fresh, in a
    /// directory the front end's workers can traverse).
    pub unix_path: PathBuf,
    /// For [`Transport::Unix`]: the socket file's mode, [`SOCKET_MODE`].
    pub unix_mode: u32,
    /// The app to serve on every request.
    pub app: Arc<App>,
    /// The server's settings: [`BackendSpec::CONFIG`] unless a test asks
    /// for others (a body limit, say).
    pub config: Config,
    /// For [`Transport::Tcp`]: the listener's `SO_RCVBUF`, set before
    /// `listen` so that every accepted connection has it (`None`: the
    /// system's, autotuned). See [`BackendSpec::tcp_listener`].
    pub tcp_recv_buffer: Option<usize>,
}

impl BackendSpec {
    /// The settings backends run with by default: the servers' defaults,
    /// but a 5 s shutdown grace, so that stopping a backend whose front end
    /// still holds a connection does not hold up a test.
    pub const CONFIG: Config = Config::DEFAULT.with_shutdown_timeout(Duration::from_secs(5));

    /// A backend serving `app` over `transport`: on `127.0.0.1:0`, or on a
    /// socket `<app name>.sock` in `dir`, with [`BackendSpec::CONFIG`].
    #[must_use]
    pub fn new(transport: Transport, dir: &Path, app: App) -> BackendSpec {
        BackendSpec {
            transport,
            tcp_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            unix_path: dir.join(format!("{}.sock", app.name())),
            unix_mode: SOCKET_MODE,
            app: Arc::new(app),
            config: BackendSpec::CONFIG,
            tcp_recv_buffer: None,
        }
    }

    /// With these server settings.
    #[must_use]
    pub fn with_config(mut self, config: Config) -> BackendSpec {
        self.config = config;
        self
    }

    /// With this `SO_RCVBUF` on a TCP listener.
    #[must_use]
    pub fn with_tcp_recv_buffer(mut self, bytes: usize) -> BackendSpec {
        self.tcp_recv_buffer = Some(bytes);
        self
    }

    /// A listener on [`tcp_addr`](BackendSpec::tcp_addr) with
    /// [`tcp_recv_buffer`](BackendSpec::tcp_recv_buffer) set before
    /// `listen` (tcp(7): a buffer size set later does not shape the
    /// window of the connections it accepts), for a server's
    /// `from_listener`.
    pub fn tcp_listener(&self) -> io::Result<TcpListener> {
        let socket = Socket::new(
            Domain::for_address(self.tcp_addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        if let Some(bytes) = self.tcp_recv_buffer {
            socket.set_recv_buffer_size(bytes)?;
        }
        socket.bind(&self.tcp_addr.into())?;
        socket.listen(1024)?;
        Ok(socket.into())
    }
}

/// A runtime's whole part in the e2e tests: start a server on the address
/// `spec` asks for, serving `spec.app` (see [`app`](crate::app) for the
/// few lines of glue), and return it as a [`Backend`].
pub type StartBackend = fn(&BackendSpec) -> io::Result<Backend>;

/// A running backend: its address, and a closure that stops it (called on
/// drop).
pub struct Backend {
    addr: BackendAddr,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend listening on `addr`; `stop` shuts it down and waits for it
    /// (bounded).
    pub fn new(addr: BackendAddr, stop: impl FnOnce() + Send + 'static) -> Backend {
        Backend {
            addr,
            stop: Some(Box::new(stop)),
        }
    }

    /// Where it listens.
    #[must_use]
    pub fn addr(&self) -> &BackendAddr {
        &self.addr
    }

    /// Starts a backend with `start`: binds `127.0.0.1:0`, or a socket
    /// `<name>.sock` in `dir`, and gives a Unix socket to the front end's
    /// workers (see [`grant_worker_access`]).
    pub fn start(
        start: StartBackend,
        transport: Transport,
        dir: &Path,
        app: App,
    ) -> io::Result<Backend> {
        Backend::start_spec(start, &BackendSpec::new(transport, dir, app))
    }

    /// Starts the backend `spec` describes with `start`, and gives a Unix
    /// socket to the front end's workers (see [`grant_worker_access`]).
    pub fn start_spec(start: StartBackend, spec: &BackendSpec) -> io::Result<Backend> {
        let backend = start(spec)?;
        if let BackendAddr::Unix(path) = backend.addr() {
            grant_worker_access(path)?;
        }
        Ok(backend)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// Whether this process runs as root (then the front ends switch their
/// workers to [`WORKER_USER`]).
#[must_use]
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

/// The numeric uid and gid of [`WORKER_USER`], from `/etc/passwd`.
pub fn worker_ids() -> io::Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next() == Some(WORKER_USER)).then_some(())?;
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((uid, gid))
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no user {WORKER_USER} in /etc/passwd"),
            )
        })
}

/// Lets the front end's workers connect to the backend's Unix socket.
///
/// Connecting to a Unix socket needs write permission on the socket file
/// and search (`x`) permission on every directory above it. The backend
/// created the socket with mode [`SOCKET_MODE`] (`0660`) and the directory
/// is `0755`; as root (workers run as [`WORKER_USER`]) this makes
/// [`WORKER_USER`]'s group the socket's group, the equivalent of a
/// deployment's `chgrp www-data app.sock`. Otherwise the workers run as
/// this user, the socket's owner, and nothing is needed.
pub fn grant_worker_access(path: &Path) -> io::Result<()> {
    if !running_as_root() {
        return Ok(());
    }
    let (_, gid) = worker_ids()?;
    std::os::unix::fs::chown(path, None, Some(gid))?;
    // The runtime may have no way to set a mode; make sure it is this one.
    fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))
}

/// Gives a directory the front end writes into from its workers (request
/// body temp files) to [`WORKER_USER`] when running as root.
pub fn give_to_worker(dir: &Path) -> io::Result<()> {
    if !running_as_root() {
        return Ok(());
    }
    let (uid, gid) = worker_ids()?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
}

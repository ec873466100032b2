//! The server: listener, workers accepting on it (or an acceptor thread
//! for `next`), connection cap and shutdown.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, ToSocketAddrs};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

#[cfg(unix)]
use std::path::Path;

use crate::net::{Addr, Listener, Poke, Stream, TcpOptions};
#[cfg(unix)]
use crate::net::{SocketFile, UnixOptions};
use crate::pool::Pool;
use crate::request::{self, Request};
use scgi_proto::server::{Config, Counters, Outcome, Stats, deadline_after};

/// State shared by the server, its acceptor, its connections and its
/// [`ShutdownHandle`]s.
#[derive(Debug)]
pub(crate) struct Inner {
    /// What the server is doing (see [`Stats`]).
    pub(crate) counters: Counters,
    /// `READY=1` and `STOPPING=1` to systemd.
    #[cfg(unix)]
    readiness: scgi_net::systemd::Readiness,
    stop: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug)]
struct State {
    /// Connections accepted (or being accepted) and not yet closed.
    open: usize,
    max_open: usize,
    next_id: u64,
    /// Every open connection, so that closing can shut down stragglers.
    streams: HashMap<u64, Arc<Stream>>,
    /// Whether the listener is open: the acceptor thread runs, or `run`'s
    /// workers accept.
    accepting: bool,
    /// In `run`: the listener the workers accept on, until shutdown.
    listener: Option<Arc<Bound>>,
    /// In `run`: workers holding the listener to accept on it.
    in_accept: usize,
    shutdown_timeout: Duration,
    /// When closing gives up waiting (`None` once stopping: never); set by
    /// the first shutdown request.
    deadline: Option<Instant>,
    /// Where to connect to wake an acceptor blocked in `accept`.
    wake: Option<Addr>,
    /// Whether the deadline passed and connections were shut down.
    forced: bool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The server serves: tell systemd (`READY=1`, if it asked).
    fn serving(&self) {
        #[cfg(unix)]
        self.readiness.serving(module_path!());
    }

    /// Waits for a free connection slot; `None` once shutdown starts.
    fn acquire(self: &Arc<Self>) -> Option<Slot> {
        self.acquire_with(|_| Some(())).map(|(slot, ())| slot)
    }

    /// In `run`: waits for a free slot, and takes the listener to accept
    /// on (counted in `in_accept` until [`accepted`](Inner::accepted));
    /// `None` once shutdown starts.
    pub(crate) fn acquire_listener(self: &Arc<Self>) -> Option<(Slot, Arc<Bound>)> {
        self.acquire_with(|st| {
            let listener = Arc::clone(st.listener.as_ref()?);
            st.in_accept += 1;
            Some(listener)
        })
    }

    /// Waits for a free slot and what `take` gives with it; `None` once
    /// shutdown starts or when `take` gives nothing.
    fn acquire_with<T>(
        self: &Arc<Self>,
        take: impl Fn(&mut State) -> Option<T>,
    ) -> Option<(Slot, T)> {
        let mut st = self.lock();
        let mut waited = false;
        loop {
            if self.stopping() {
                return None;
            }
            if st.open < st.max_open {
                let taken = take(&mut st)?;
                st.open += 1;
                let slot = Slot {
                    inner: Arc::clone(self),
                    id: None,
                };
                return Some((slot, taken));
            }
            if !std::mem::replace(&mut waited, true) {
                self.counters.waited_at_cap();
            }
            st = self
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// In `run`: a worker is done accepting (the listener it took is
    /// dropped); registers the connection it accepted, if any, on its slot.
    fn accepted(&self, slot: &mut Slot, stream: Option<&Arc<Stream>>) {
        let mut st = self.lock();
        st.in_accept -= 1;
        if let Some(stream) = stream {
            slot.id = Some(st.add_stream(stream));
            self.counters.opened();
        }
        if self.stopping() {
            self.changed.notify_all();
        }
    }

    /// A free slot if there is one, even while shutting down (for the
    /// connections already in the listen backlog).
    fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        let mut st = self.lock();
        (st.open < st.max_open).then(|| {
            st.open += 1;
            Slot {
                inner: Arc::clone(self),
                id: None,
            }
        })
    }

    pub(crate) fn shutdown(&self) {
        let wake = {
            // The flag and the deadline change together, under the lock, so
            // that no waiter sees one without the other.
            let mut st = self.lock();
            if self.stop.swap(true, Ordering::SeqCst) {
                return;
            }
            st.deadline = deadline_after(Instant::now(), st.shutdown_timeout);
            self.changed.notify_all();
            st.accepting.then(|| st.wake.clone()).flatten()
        };
        log::info!("shutting down: no new connections");
        #[cfg(unix)]
        self.readiness.stopping(module_path!());
        // The acceptor may be blocked in accept(2), which std cannot
        // interrupt: a connection of our own wakes it, and it then sees the
        // stop flag. That connection sends nothing and is closed quietly.
        if let Some(addr) = wake
            && let Err(e) = addr.poke(Duration::from_secs(1))
        {
            log::debug!("waking the acceptor at {addr}: {e}");
        }
    }

    fn wait_shutdown_requested(&self) {
        let mut st = self.lock();
        while !self.stopping() {
            st = self
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// After [`shutdown`](Inner::shutdown): waits until the listener is
    /// closed and every connection is finished, or the deadline passes, in
    /// which case the remaining connections are shut down. Returns whether
    /// everything finished in time.
    pub(crate) fn wait_stopped(&self) -> bool {
        let mut st = self.lock();
        let deadline = if self.stopping() {
            st.deadline
        } else {
            deadline_after(Instant::now(), st.shutdown_timeout)
        };
        loop {
            if !st.accepting && st.open == 0 {
                return !st.forced;
            }
            let Some(deadline) = deadline else {
                // No deadline (a shutdown timeout the clock cannot hold):
                // wait for as long as it takes.
                st = self
                    .changed
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                st.forced = true;
                log::warn!(
                    "shutdown deadline passed with {} connection(s) open: shutting them down",
                    st.open
                );
                for stream in st.streams.values() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// One connection's place under [`Config::max_connections`]; released when
/// dropped (by the request, the upgraded stream, or an unanswered
/// connection).
#[derive(Debug)]
pub(crate) struct Slot {
    inner: Arc<Inner>,
    id: Option<u64>,
}

impl Slot {
    fn register(&mut self, stream: &Arc<Stream>) {
        let id = self.inner.lock().add_stream(stream);
        self.id = Some(id);
        self.inner.counters.opened();
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }
}

impl State {
    /// Keeps `stream` for forced shutdown; returns its id.
    fn add_stream(&mut self, stream: &Arc<Stream>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.streams.insert(id, Arc::clone(stream));
        id
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.id.is_some() {
            self.inner.counters.closed();
        }
        let mut st = self.inner.lock();
        let was_full = st.open >= st.max_open;
        st.open -= 1;
        if let Some(id) = self.id {
            st.streams.remove(&id);
        }
        // Only an acceptor waiting for a slot and, once stopping,
        // `wait_stopped` care; waking the thread parked in `run` on every
        // closed connection cost a context switch per request. (The stop
        // flag is set under this lock, so no waiter can miss it.)
        if was_full || self.inner.stopping() {
            self.inner.changed.notify_all();
        }
    }
}

/// An accepted connection whose head is not read yet.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: Arc<Stream>,
    pub(crate) peer: Addr,
    pub(crate) slot: Slot,
}

/// The listener, and the socket file to remove when it closes.
#[derive(Debug)]
pub(crate) struct Bound {
    listener: Listener,
    #[cfg(unix)]
    _file: Option<SocketFile>,
}

impl Bound {
    /// Sets `SO_RCVTIMEO` on the listener: a blocking accept then returns
    /// `WouldBlock` after `timeout` without a connection.
    fn listener_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.listener {
            Listener::Tcp(l) => socket2::SockRef::from(l).set_read_timeout(timeout),
            #[cfg(unix)]
            Listener::Unix(l) => socket2::SockRef::from(l).set_read_timeout(timeout),
            // `Listener` is non-exhaustive; it has no other variant today.
            _ => Ok(()),
        }
    }
}

/// A handle that stops a [`Server`] from another thread: cloneable, `Send`
/// and `Sync`.
///
/// For SIGTERM and SIGINT, [`Server::run_until`] with
/// [`shutdown_signal`](crate::shutdown_signal) does this in one line.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    inner: Arc<Inner>,
}

impl ShutdownHandle {
    /// Stops accepting connections and returns at once. Requests already
    /// accepted (including those the kernel completed before this call)
    /// are still served; [`Server::run`] returns when they are finished or
    /// the [`shutdown_timeout`](Config::shutdown_timeout) passes, and
    /// [`Server::next`] returns `None` once none is left.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// [`shutdown`](ShutdownHandle::shutdown), then waits until the
    /// listener is closed and every connection is finished, for at most the
    /// [`shutdown_timeout`](Config::shutdown_timeout). Past it the remaining
    /// connections are shut down (their handlers see I/O errors). Returns
    /// whether everything finished in time.
    pub fn close(&self) -> bool {
        self.inner.shutdown();
        self.inner.wait_stopped()
    }

    /// Whether a shutdown was requested.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        self.inner.stopping()
    }

    /// What the server has done so far: connections open and accepted,
    /// requests, responses by status class, timeouts, malformed requests,
    /// waits at the connection cap (see [`Stats`]). A few relaxed atomic
    /// loads: cheap enough to poll for a metrics endpoint.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }
}

/// An SCGI server on a TCP or Unix socket.
///
/// Open it with [`bind_tcp`](Server::bind_tcp),
/// [`bind_unix`](Server::bind_unix) or
/// [`from_listener`](Server::from_listener); then either serve with a
/// handler on a worker pool ([`run`](Server::run)), or take requests one by
/// one ([`next`](Server::next)). Stop it with a [`ShutdownHandle`] or
/// [`close`](Server::close).
///
/// Connections are accepted (at most
/// [`max_connections`](Config::max_connections) open at once) by the
/// workers of [`run`](Server::run) on TCP, else by an acceptor thread that
/// queues them; the head of each is read and validated before the handler
/// sees it.
/// Malformed requests are answered with the decoder's status hint (400, 413
/// or 431) and never reach the handler.
#[derive(Debug)]
pub struct Server {
    inner: Arc<Inner>,
    config: Arc<Config>,
    local: Addr,
    bound: Option<Bound>,
    rx: Option<Receiver<Conn>>,
}

impl Server {
    /// The default address, `127.0.0.1:4000` (as in Nim's `scgi` module).
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:4000";

    /// Binds the address in `addr`: `"host:port"` or `"[v6]:port"` (TCP,
    /// as [`bind_tcp`](Server::bind_tcp)), `"unix:/path"` (a Unix socket,
    /// as [`bind_unix`](Server::bind_unix)), the form `scgi_pass` takes, or
    /// `"systemd"` / `"systemd:NAME"` (a socket passed by systemd socket
    /// activation, see [`scgi_net::systemd`]). The same on every runtime
    /// crate; see [`scgi_net::ListenAddr`].
    ///
    /// ```no_run
    /// let server = scgi_blocking::Server::bind("unix:/run/app/scgi.sock")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(addr: &str) -> io::Result<Server> {
        let addr = scgi_net::ListenAddr::parse(addr)?;
        if let Some(passed) = addr.passed_listener() {
            return Server::from_listener(passed?);
        }
        match addr {
            scgi_net::ListenAddr::Tcp(a) => Server::bind_tcp(a),
            #[cfg(unix)]
            scgi_net::ListenAddr::Unix(path) => Server::bind_unix(path),
            other => Err(other.unsupported()),
        }
    }

    /// Binds a TCP listener on `addr` (IPv4 or IPv6; the first resolved
    /// address that binds), with the default [`TcpOptions`] (`SO_REUSEADDR`
    /// on).
    pub fn bind_tcp<A: ToSocketAddrs>(addr: A) -> io::Result<Server> {
        Server::bind_tcp_with(addr, &TcpOptions::DEFAULT)
    }

    /// Binds a TCP listener on `addr` with the given options.
    pub fn bind_tcp_with<A: ToSocketAddrs>(addr: A, options: &TcpOptions) -> io::Result<Server> {
        let listener = crate::net::bind_tcp(addr, options)?;
        Server::new(Bound {
            listener: Listener::Tcp(listener),
            #[cfg(unix)]
            _file: None,
        })
    }

    /// Binds a Unix socket at `path` with the default [`UnixOptions`]: a
    /// stale socket file left by a dead server is removed, the mode is what
    /// the umask gives. The socket file is removed when the server closes.
    #[cfg(unix)]
    pub fn bind_unix<P: AsRef<Path>>(path: P) -> io::Result<Server> {
        Server::bind_unix_with(path, &UnixOptions::DEFAULT)
    }

    /// Binds a Unix socket at `path` with the given options, e.g. a mode:
    ///
    /// ```no_run
    /// use scgi_blocking::{Server, UnixOptions};
    /// let server = Server::bind_unix_with(
    ///     "/run/app/scgi.sock",
    ///     &UnixOptions::DEFAULT.with_mode(0o660),
    /// )?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(unix)]
    pub fn bind_unix_with<P: AsRef<Path>>(path: P, options: &UnixOptions) -> io::Result<Server> {
        let (listener, file) = crate::net::bind_unix(path.as_ref(), options)?;
        Server::new(Bound {
            listener: Listener::Unix(listener),
            _file: Some(file),
        })
    }

    /// Adopts a listener bound elsewhere: a `TcpListener` or `UnixListener`
    /// (socket activation by systemd or a supervisor passes one as a file
    /// descriptor; turn it into a listener with `From<OwnedFd>`). Its socket
    /// file, if any, is left in place when the server closes.
    pub fn from_listener(listener: impl Into<Listener>) -> io::Result<Server> {
        let listener = listener.into();
        // An inherited listener may be non-blocking; the acceptor blocks.
        listener.set_nonblocking(false)?;
        Server::new(Bound {
            listener,
            #[cfg(unix)]
            _file: None,
        })
    }

    fn new(bound: Bound) -> io::Result<Server> {
        let local = bound.listener.local_addr()?;
        let config = Config::default();
        let inner = Arc::new(Inner {
            counters: Counters::new(),
            #[cfg(unix)]
            readiness: scgi_net::systemd::Readiness::new(),
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                open: 0,
                max_open: config.connection_cap(),
                next_id: 0,
                streams: HashMap::new(),
                accepting: false,
                listener: None,
                in_accept: 0,
                shutdown_timeout: config.shutdown_timeout,
                deadline: None,
                wake: Some(local.clone()),
                forced: false,
            }),
            changed: Condvar::new(),
        });
        Ok(Server {
            inner,
            config: Arc::new(config),
            local,
            bound: Some(bound),
            rx: None,
        })
    }

    /// Replaces the configuration. Takes effect for connections accepted
    /// after the first call to [`next`](Server::next) or
    /// [`run`](Server::run); set it before those.
    #[must_use]
    pub fn with_config(mut self, config: Config) -> Server {
        {
            let mut st = self.inner.lock();
            st.max_open = config.connection_cap();
            st.shutdown_timeout = config.shutdown_timeout;
        }
        self.config = Arc::new(config);
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the server has done so far (see [`ShutdownHandle::stats`]).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// The address the server listens on (with the real port when bound to
    /// port 0).
    #[must_use]
    pub fn local_addr(&self) -> &Addr {
        &self.local
    }

    /// A handle to stop the server from another thread.
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            inner: Arc::clone(&self.inner),
        }
    }

    /// The queue of accepted connections, starting the acceptor thread the
    /// first time.
    fn receiver(&mut self) -> io::Result<&Receiver<Conn>> {
        if self.rx.is_none() {
            let (tx, rx) = mpsc::channel();
            if let Some(bound) = self.bound.take() {
                self.start_acceptor(bound, tx)?;
            }
            self.rx = Some(rx);
        }
        Ok(self.rx.as_ref().expect("set above"))
    }

    fn start_acceptor(&self, bound: Bound, tx: Sender<Conn>) -> io::Result<()> {
        {
            let mut st = self.inner.lock();
            if self.inner.stopping() {
                // Closed before it started: drop the listener, accept nothing.
                return Ok(());
            }
            st.accepting = true;
        }
        // The acceptor also wakes every ACCEPT_WAKE without a connection
        // (Linux honours SO_RCVTIMEO in accept, on Unix sockets too) and
        // sees the stop flag: the connection of our own that `shutdown`
        // opens to wake it cannot reach a socket file whose mode shuts out
        // the server's own user (systemd's SocketMode=0660 with
        // DynamicUser=yes).
        if let Err(e) = bound.listener_timeout(Some(ACCEPT_WAKE)) {
            log::debug!("setting the accept timeout: {e}");
        }
        let inner = Arc::clone(&self.inner);
        let spawned = thread::Builder::new()
            .name("scgi-acceptor".into())
            .spawn(move || accept_loop(Arc::new(bound), &inner, &tx));
        if let Err(e) = spawned {
            self.inner.lock().accepting = false;
            self.inner.changed.notify_all();
            return Err(e);
        }
        log::info!("listening on {}", self.local);
        self.inner.serving();
        Ok(())
    }

    /// Waits for the next request and returns it with its head read and
    /// validated; the body is left to read from the [`Request`].
    ///
    /// Waits at most `timeout` (`None`: until a request arrives or the
    /// server shuts down), and returns `Ok(None)` when it passes, or once
    /// the server is shut down and no accepted connection is left.
    /// Malformed requests are answered (400, 413, 431) and skipped;
    /// connections closed before their first byte are skipped quietly.
    ///
    /// The head is read here, under
    /// [`head_timeout`](Config::head_timeout), so a slow client delays this
    /// call by up to that long; [`run`](Server::run) reads heads on its
    /// worker threads instead.
    pub fn next(&mut self, timeout: Option<Duration>) -> io::Result<Option<Request>> {
        // A timeout the clock cannot hold waits forever, as `None` does.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let config = Arc::clone(&self.config);
        let rx = self.receiver()?;
        loop {
            let conn = match deadline {
                None => match rx.recv() {
                    Ok(conn) => conn,
                    Err(_) => return Ok(None),
                },
                Some(deadline) => {
                    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(conn) => conn,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                            return Ok(None);
                        }
                    }
                }
            };
            if let Some(req) = request::read_head(conn, &config) {
                return Ok(Some(req));
            }
        }
    }

    /// Serves requests with `handler` on a pool of
    /// [`workers`](Config::workers) threads until the server is shut down
    /// through a [`ShutdownHandle`], then waits for the requests in flight
    /// (at most [`shutdown_timeout`](Config::shutdown_timeout)) and returns.
    ///
    /// After the handler returns, the server sends what it buffered, and:
    ///
    /// - if the handler wrote nothing, sends `Status: 204 No Content`;
    /// - if it returned an error or panicked before anything reached the
    ///   socket, sends `500 Internal Server Error` (or `400` / `408` when
    ///   the error came from a truncated or stalled body); if part of the
    ///   response was already sent, resets the connection so the web server
    ///   sees a failed response, not a short one. A panic costs only its
    ///   own connection;
    /// - closes the connection. When the request was read to its end (the
    ///   body included) and the peer has sent nothing more, it closes at
    ///   once. Otherwise (an unread body, bytes past it) it shuts down its
    ///   sending side and drains what the peer still sends (bounded by
    ///   [`drain_timeout`](Config::drain_timeout) and
    ///   [`drain_limit`](Config::drain_limit)) before closing, since
    ///   closing with unread input resets the connection.
    ///
    /// On a TCP listener each worker accepts connections itself (the kernel
    /// hands each to one of them), so a request is read, answered and
    /// closed by the thread that accepted it, without a hand-off. On a Unix
    /// socket (or after [`next`](Server::next)) an acceptor thread accepts
    /// and queues connections for the workers: measured behind nginx, that
    /// is the faster of the two there. Either way at most
    /// [`max_connections`](Config::max_connections) are open at once, and
    /// on shutdown the connections the kernel completed before it are
    /// still served.
    ///
    /// Returns an error only if a thread cannot be started.
    pub fn run<H>(mut self, handler: H) -> io::Result<()>
    where
        H: Fn(&mut Request) -> io::Result<()> + Send + Sync + 'static,
    {
        let backlog = self.share_listener();
        let started = self.receiver().map(|_| ()).and_then(|()| {
            let queue = self.rx.take().expect("receiver() sets it");
            let min = pool_size(&self.config);
            Pool::start(
                Arc::clone(&self.inner),
                backlog.is_some(),
                queue,
                handler,
                Arc::clone(&self.config),
                min,
            )
        });
        let pool = match started {
            Ok(pool) => pool,
            Err(e) => {
                self.inner.shutdown();
                self.stop_accepting(backlog);
                return Err(e);
            }
        };
        self.inner.wait_shutdown_requested();
        self.stop_accepting(backlog);
        if self.inner.wait_stopped() {
            pool.join();
            log::info!("stopped");
        }
        // Otherwise the stragglers' sockets are shut down; their workers
        // end when their handlers return.
        Ok(())
    }

    /// [`run`](Server::run) until `stop` returns: `stop` runs on a thread
    /// of its own (a blocking wait for a signal, a channel, a file), and
    /// its return starts a graceful shutdown, as
    /// [`ShutdownHandle::shutdown`] does. The async runtimes' `run_until`
    /// takes a future instead; on std threads, a blocking function is what
    /// waits.
    ///
    /// ```no_run
    /// use std::io::Write;
    /// # fn main() -> std::io::Result<()> {
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// // Elsewhere (a signal handler thread, say): tx.send(()).
    /// # drop(tx);
    /// scgi_blocking::Server::bind("127.0.0.1:4000")?.run_until(
    ///     |req| req.write_all(b"Status: 200 OK\r\n\r\nhello"),
    ///     move || {
    ///         let _ = rx.recv();
    ///     },
    /// )
    /// # }
    /// ```
    ///
    /// Returns an error only if a thread cannot be started.
    pub fn run_until<H, S>(self, handler: H, stop: S) -> io::Result<()>
    where
        H: Fn(&mut Request) -> io::Result<()> + Send + Sync + 'static,
        S: FnOnce() + Send + 'static,
    {
        let handle = self.shutdown_handle();
        thread::Builder::new()
            .name("scgi-run-until".into())
            .spawn(move || {
                stop();
                handle.shutdown();
            })?;
        self.run(handler)
    }

    /// For a TCP listener: puts it where `run`'s workers take it to accept
    /// on, and returns the sender of the queue they serve after shutdown
    /// (the connections left in the listen backlog). `None` when the
    /// acceptor thread feeds them instead (a Unix socket, or `next` started
    /// it already).
    fn share_listener(&mut self) -> Option<Sender<Conn>> {
        // Over a Unix socket the acceptor thread measured faster behind
        // nginx (fewer context switches per request; BENCHMARKS.md).
        if !matches!(self.bound.as_ref()?.listener, Listener::Tcp(_)) {
            return None;
        }
        let bound = self.bound.take()?;
        let (tx, rx) = mpsc::channel();
        self.rx = Some(rx);
        {
            let mut st = self.inner.lock();
            if self.inner.stopping() {
                // Closed before it started: drop the listener, accept nothing.
                return Some(tx);
            }
            // Workers blocked in accept wake after IDLE_EXIT without a
            // connection (Linux honours SO_RCVTIMEO in accept), so that a
            // thread beyond the configured number can leave.
            if let Listener::Tcp(l) = &bound.listener
                && let Err(e) =
                    socket2::SockRef::from(l).set_read_timeout(Some(crate::pool::IDLE_EXIT))
            {
                log::debug!("setting the accept timeout: {e}");
            }
            st.listener = Some(Arc::new(bound));
            st.accepting = true;
            // The workers are woken by `stop_accepting`, not by `shutdown`.
            st.wake = None;
        }
        log::info!("listening on {}", self.local);
        self.inner.serving();
        Some(tx)
    }

    /// In `run`, once shutdown is requested: takes the listener back from
    /// the workers, wakes those blocked in accept (a connection of our own
    /// each, as for the acceptor thread), queues the connections left in
    /// the listen backlog for them, and closes the listener.
    fn stop_accepting(&self, backlog: Option<Sender<Conn>>) {
        let Some(tx) = backlog else { return };
        let mut st = self.inner.lock();
        let Some(bound) = st.listener.take() else {
            return;
        };
        let deadline = st.deadline;
        while st.in_accept > 0 && deadline.is_none_or(|d| Instant::now() < d) {
            let blocked = st.in_accept;
            drop(st);
            // Each connection wakes one worker: no other thread accepts now.
            if let Err(e) = self.local.poke(Duration::from_secs(1)) {
                log::debug!("waking the workers at {}: {e}", self.local);
            }
            st = self
                .inner
                .changed
                .wait_timeout_while(self.inner.lock(), Duration::from_millis(100), |st| {
                    st.in_accept == blocked
                })
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(st);
        close_listener(bound, &self.inner, &tx);
    }

    /// Stops accepting, closes the connections accepted but not yet taken
    /// by [`next`](Server::next) (unanswered; call `next` until it returns
    /// `None` first to serve them), and waits for the requests handed out
    /// to be dropped, for at most
    /// [`shutdown_timeout`](Config::shutdown_timeout). Returns whether they
    /// all finished in time.
    pub fn close(mut self) -> bool {
        self.inner.shutdown();
        self.bound = None;
        self.rx = None;
        self.inner.wait_stopped()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Without this, a dropped `next`-style server would leave its
        // acceptor accepting connections that nobody serves.
        self.inner.shutdown();
    }
}

/// How often the acceptor thread wakes without a connection to see
/// whether the server is stopping.
const ACCEPT_WAKE: Duration = Duration::from_millis(250);

fn accept_loop(bound: Arc<Bound>, inner: &Arc<Inner>, tx: &Sender<Conn>) {
    let mut backoff = Duration::ZERO;
    while let Some(slot) = inner.acquire() {
        match crate::net::accept(&bound.listener) {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                hand_over(slot, stream, peer, tx);
            }
            Err(e) => {
                drop(slot);
                if inner.stopping() {
                    break;
                }
                accept_failed(&e, &mut backoff);
            }
        }
    }
    close_listener(bound, inner, tx);
}

/// After an accept error: retries at once after a connection aborted or an
/// interruption, else (EMFILE and the like: retrying at once would spin)
/// after a growing pause.
fn accept_failed(e: &io::Error, backoff: &mut Duration) {
    match e.kind() {
        io::ErrorKind::Interrupted
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::WouldBlock => {}
        _ => {
            *backoff = (*backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
            log::error!("accept failed: {e}; retrying in {backoff:?}");
            thread::sleep(*backoff);
        }
    }
}

/// Once accepting stops: queues the connections the kernel completed
/// before shutdown, so that they are served rather than reset when the
/// listener closes, then closes it (when this is its last handle).
fn close_listener(bound: Arc<Bound>, inner: &Arc<Inner>, tx: &Sender<Conn>) {
    if bound.listener.set_nonblocking(true).is_ok() {
        while let Some(slot) = inner.try_acquire() {
            match crate::net::accept(&bound.listener) {
                Ok((stream, peer)) => hand_over(slot, stream, peer, tx),
                Err(_) => break,
            }
        }
    }
    // The listener closes with its last handle (workers drop theirs before
    // they leave `in_accept`), before `accepting` turns false: a stopped
    // server refuses connections.
    drop(bound);
    inner.lock().accepting = false;
    inner.changed.notify_all();
}

/// Readies an accepted stream; `None` if that fails (the connection just
/// closes).
fn prepare(stream: Stream, peer: &Addr) -> Option<Arc<Stream>> {
    // Accepted sockets inherit O_NONBLOCK from the listener on some systems
    // (not on Linux: a system call per connection saved there).
    let inherits = !cfg!(any(target_os = "linux", target_os = "android"));
    if inherits && let Err(e) = stream.set_nonblocking(false) {
        log::debug!("connection from {peer}: {e}");
        return None;
    }
    if let Stream::Tcp(s) = &stream {
        // Responses go out whole or in large pieces; don't hold back the
        // last small segment.
        let _ = s.set_nodelay(true);
    }
    Some(Arc::new(stream))
}

fn hand_over(mut slot: Slot, stream: Stream, peer: Addr, tx: &Sender<Conn>) {
    let Some(stream) = prepare(stream, &peer) else {
        return;
    };
    slot.register(&stream);
    // Fails only when the server was dropped; the connection just closes.
    let _ = tx.send(Conn { stream, peer, slot });
}

/// In `run`: accepts one connection on the listener a worker took.
pub(crate) fn accept_one(
    inner: &Inner,
    mut slot: Slot,
    bound: Arc<Bound>,
    backoff: &mut Duration,
) -> Option<Conn> {
    let accepted = crate::net::accept(&bound.listener);
    drop(bound);
    match accepted {
        Ok((stream, peer)) => {
            *backoff = Duration::ZERO;
            let stream = prepare(stream, &peer);
            inner.accepted(&mut slot, stream.as_ref());
            Some(Conn {
                stream: stream?,
                peer,
                slot,
            })
        }
        Err(e) => {
            inner.accepted(&mut slot, None);
            drop(slot);
            if !inner.stopping() {
                accept_failed(&e, backoff);
            }
            None
        }
    }
}

/// The pool's size: [`Config::workers`], or when 0, 4 × the available
/// parallelism (at least 4).
fn pool_size(config: &Config) -> usize {
    match config.workers {
        0 => std::thread::available_parallelism()
            .map_or(4, usize::from)
            .saturating_mul(4)
            .max(4),
        n => n,
    }
}

/// Reads a connection's head, runs the handler, and finishes the request.
pub(crate) fn serve<H>(conn: Conn, handler: &H, config: &Arc<Config>)
where
    H: Fn(&mut Request) -> io::Result<()>,
{
    let Some(mut req) = request::read_head(conn, config) else {
        return;
    };
    let outcome = match catch_unwind(AssertUnwindSafe(|| handler(&mut req))) {
        Ok(Ok(())) => Outcome::Done,
        Ok(Err(e)) => {
            let level = req.failure_severity().level();
            log::log!(level, "handler failed on {}: {e}", req.describe());
            Outcome::Failed
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(non-string payload)");
            log::error!("handler panicked on {}: {msg}", req.describe());
            Outcome::Failed
        }
    };
    let _ = req.complete(outcome);
}

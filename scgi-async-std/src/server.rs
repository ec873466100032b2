//! The server: listener, acceptor, connection cap, one task per connection,
//! and shutdown.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Shutdown, ToSocketAddrs};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[cfg(unix)]
use std::path::Path;

use async_channel::{Receiver, Sender};
use async_io::Timer;
use event_listener::Event;
use futures_lite::{FutureExt as _, future};
use scgi_proto::server::{Config, Connection, Outcome};

use crate::net::{Addr, AsyncListener, Listener, Stream, TcpOptions};
#[cfg(unix)]
use crate::net::{SocketFile, UnixOptions};
use crate::request::{self, Request};
use crate::runtime::Spawn;

/// State shared by the server, its acceptor, its connections and its
/// [`ShutdownHandle`]s.
pub(crate) struct Inner {
    stop: AtomicBool,
    /// The shutdown deadline passed: connection tasks give up.
    forced: AtomicBool,
    state: Mutex<State>,
    /// A slot was freed, the acceptor ended, or shutdown started.
    changed: Event,
    /// Shutdown started, or was forced.
    signal: Event,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("stop", &self.stop)
            .field("forced", &self.forced)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct State {
    /// Connections accepted (or being accepted) and not yet closed.
    open: usize,
    max_open: usize,
    next_id: u64,
    /// Every open connection, so that closing can shut down stragglers.
    streams: HashMap<u64, Arc<Stream>>,
    /// Whether the acceptor runs (the listener is open).
    accepting: bool,
    shutdown_timeout: Duration,
    /// When closing gives up waiting; set by the first shutdown request.
    deadline: Option<Instant>,
}

const ALL: usize = usize::MAX;

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits for a free connection slot; `None` once shutdown starts.
    async fn acquire(self: &Arc<Self>) -> Option<Slot> {
        loop {
            let listener = self.changed.listen();
            {
                let mut st = self.lock();
                if self.stopping() {
                    return None;
                }
                if st.open < st.max_open {
                    st.open += 1;
                    return Some(Slot {
                        inner: Arc::clone(self),
                        id: None,
                    });
                }
            }
            listener.await;
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
        {
            // The flag and the deadline change together, under the lock, so
            // that no waiter sees one without the other.
            let mut st = self.lock();
            if self.stop.swap(true, Ordering::SeqCst) {
                return;
            }
            st.deadline = Some(Instant::now() + st.shutdown_timeout);
        }
        log::info!("shutting down: no new connections");
        self.changed.notify(ALL);
        self.signal.notify(ALL);
    }

    /// Completes once shutdown has started.
    async fn stopped(&self) {
        loop {
            let listener = self.signal.listen();
            if self.stopping() {
                return;
            }
            listener.await;
        }
    }

    /// Completes once the shutdown deadline has passed.
    async fn forced(&self) {
        loop {
            let listener = self.signal.listen();
            if self.forced.load(Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }

    /// After [`shutdown`](Inner::shutdown): waits until the listener is
    /// closed and every connection is finished, or the deadline passes, in
    /// which case the remaining connections are shut down and their tasks
    /// cancelled. Returns whether everything finished in time.
    pub(crate) async fn wait_stopped(&self) -> bool {
        let deadline = {
            let st = self.lock();
            st.deadline
                .unwrap_or_else(|| Instant::now() + st.shutdown_timeout)
        };
        let mut timer = Timer::at(deadline);
        loop {
            let listener = self.changed.listen();
            {
                let st = self.lock();
                if !st.accepting && st.open == 0 {
                    return !self.forced.load(Ordering::SeqCst);
                }
                if Instant::now() >= deadline {
                    self.forced.store(true, Ordering::SeqCst);
                    log::warn!(
                        "shutdown deadline passed with {} connection(s) open: shutting them down",
                        st.open
                    );
                    for stream in st.streams.values() {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                    drop(st);
                    self.signal.notify(ALL);
                    return false;
                }
            }
            future::or(listener, async {
                (&mut timer).await;
            })
            .await;
        }
    }
}

/// One connection's place under [`Config::max_connections`]; released when
/// dropped (by the finished request, the upgraded stream, or an unanswered
/// connection).
#[derive(Debug)]
pub(crate) struct Slot {
    inner: Arc<Inner>,
    id: Option<u64>,
}

impl Slot {
    fn register(&mut self, stream: &Arc<Stream>) {
        let mut st = self.inner.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.streams.insert(id, Arc::clone(stream));
        self.id = Some(id);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut st = self.inner.lock();
            st.open -= 1;
            if let Some(id) = self.id {
                st.streams.remove(&id);
            }
        }
        self.inner.changed.notify(ALL);
    }
}

/// Marks the acceptor as running; dropped when it ends (or its future is
/// dropped).
struct Accepting(Arc<Inner>);

impl Drop for Accepting {
    fn drop(&mut self) {
        self.0.lock().accepting = false;
        self.0.changed.notify(ALL);
    }
}

/// An accepted connection whose head is not read yet.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) stream: Arc<Stream>,
    pub(crate) peer: Addr,
    pub(crate) slot: Slot,
    /// Its lifecycle, from its acceptance.
    pub(crate) conn: Connection<Instant>,
}

/// The listener, and the socket file to remove when it closes.
#[derive(Debug)]
struct Bound {
    listener: AsyncListener,
    #[cfg(unix)]
    _file: Option<SocketFile>,
}

type HandlerFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;
type Handler = Arc<dyn Fn(Request) -> HandlerFuture + Send + Sync>;

/// What a connection's task does with its request.
#[derive(Clone)]
enum Dispatch {
    /// Runs the handler of [`Server::run`].
    Handler(Handler),
    /// Queues it for [`Server::next`].
    Queue(Sender<Request>),
}

/// A handle that stops a [`Server`] from another task or thread:
/// cloneable, `Send` and `Sync`.
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
    /// connections are shut down and their tasks cancelled. Returns whether
    /// everything finished in time.
    pub async fn close(&self) -> bool {
        self.inner.shutdown();
        self.inner.wait_stopped().await
    }

    /// Whether a shutdown was requested.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        self.inner.stopping()
    }
}

/// An SCGI server on a TCP or Unix socket.
///
/// Open it with [`bind_tcp`](Server::bind_tcp),
/// [`bind_unix`](Server::bind_unix) or
/// [`from_listener`](Server::from_listener) (these bind at once and need no
/// runtime); then either serve with a handler ([`run`](Server::run)), or
/// take requests one by one ([`next`](Server::next)). Stop it with a
/// [`ShutdownHandle`] or [`close`](Server::close).
///
/// Every accepted connection (at most
/// [`max_connections`](Config::max_connections) open at once) gets a task,
/// spawned with the server's [`Spawn`]er, that reads and validates its head
/// before the handler sees it. Malformed requests are answered with the
/// decoder's status hint (400, 413 or 431) and never reach the handler.
pub struct Server {
    inner: Arc<Inner>,
    config: Config,
    local: Addr,
    bound: Option<Bound>,
    queue: Option<Receiver<Request>>,
    spawner: Option<Arc<dyn Spawn>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local", &self.local)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The default address, `127.0.0.1:4000` (as in Nim's `scgi` module).
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:4000";

    /// Binds the address in `addr`: `"host:port"` or `"[v6]:port"` (TCP,
    /// as [`bind_tcp`](Server::bind_tcp)) or `"unix:/path"` (a Unix socket,
    /// as [`bind_unix`](Server::bind_unix)), the form `scgi_pass` takes.
    /// The same on every runtime crate; see [`scgi_net::ListenAddr`].
    pub fn bind(addr: &str) -> io::Result<Server> {
        match scgi_net::ListenAddr::parse(addr)? {
            scgi_net::ListenAddr::Tcp(a) => Server::bind_tcp(a),
            #[cfg(unix)]
            scgi_net::ListenAddr::Unix(path) => Server::bind_unix(path),
            other => Err(other.unsupported()),
        }
    }

    /// Binds a TCP listener on `addr` (IPv4 or IPv6; the first resolved
    /// address that binds), with the default [`TcpOptions`] (`SO_REUSEADDR`
    /// on). Resolving a host name blocks; pass an IP address in async code.
    pub fn bind_tcp<A: ToSocketAddrs>(addr: A) -> io::Result<Server> {
        Server::bind_tcp_with(addr, &TcpOptions::DEFAULT)
    }

    /// Binds a TCP listener on `addr` with the given options.
    pub fn bind_tcp_with<A: ToSocketAddrs>(addr: A, options: &TcpOptions) -> io::Result<Server> {
        let listener = crate::net::bind_tcp(addr, options)?;
        Server::new(Bound {
            listener: crate::net::register(Listener::Tcp(listener))?,
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
    /// use scgi_async_std::{Server, UnixOptions};
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
            listener: crate::net::register(Listener::Unix(listener))?,
            _file: Some(file),
        })
    }

    /// Adopts a listener bound elsewhere: a std `TcpListener` or
    /// `UnixListener` (socket activation by systemd or a supervisor passes
    /// one as a file descriptor; turn it into a listener with
    /// `From<OwnedFd>`; async-std's converts with
    /// `std::net::TcpListener::try_from`, async-io's with
    /// `Async::into_inner`). Its socket file, if any, is left in place when
    /// the server closes.
    pub fn from_listener(listener: impl Into<Listener>) -> io::Result<Server> {
        Server::new(Bound {
            listener: crate::net::register(listener.into())?,
            #[cfg(unix)]
            _file: None,
        })
    }

    fn new(bound: Bound) -> io::Result<Server> {
        let local = match &bound.listener {
            AsyncListener::Tcp(l) => Addr::Tcp(l.get_ref().local_addr()?),
            #[cfg(unix)]
            AsyncListener::Unix(l) => Addr::Unix(l.get_ref().local_addr()?),
        };
        let config = Config::default();
        let inner = Arc::new(Inner {
            stop: AtomicBool::new(false),
            forced: AtomicBool::new(false),
            state: Mutex::new(State {
                open: 0,
                max_open: config.connection_cap(),
                next_id: 0,
                streams: HashMap::new(),
                accepting: false,
                shutdown_timeout: config.shutdown_timeout,
                deadline: None,
            }),
            changed: Event::new(),
            signal: Event::new(),
        });
        Ok(Server {
            inner,
            config,
            local,
            bound: Some(bound),
            queue: None,
            spawner: None,
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
        self.config = config;
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets how the server spawns its tasks (one per connection, and the
    /// acceptor behind [`next`](Server::next)): `Smol` (feature `smol`), an
    /// `Arc<smol::Executor>`, or any `Fn(Task)` closure (see [`Spawn`]).
    /// Without it, the server spawns on async-std
    /// (`AsyncStd`) when the `async-std` feature is on,
    /// and [`run`](Server::run) and [`next`](Server::next) fail with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) when it is off.
    #[must_use]
    pub fn with_spawner(mut self, spawner: impl Spawn) -> Server {
        self.spawner = Some(Arc::new(spawner));
        self
    }

    fn spawner(&self) -> io::Result<Arc<dyn Spawn>> {
        if let Some(s) = &self.spawner {
            return Ok(Arc::clone(s));
        }
        #[cfg(feature = "async-std")]
        {
            Ok(Arc::new(crate::AsyncStd))
        }
        #[cfg(not(feature = "async-std"))]
        {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no spawner: call Server::with_spawner (e.g. with scgi_async_std::Smol) \
                 or enable the async-std feature",
            ))
        }
    }

    /// The address the server listens on (with the real port when bound to
    /// port 0).
    #[must_use]
    pub fn local_addr(&self) -> &Addr {
        &self.local
    }

    /// A handle to stop the server from another task or thread.
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Hands the listener to an acceptor, unless the server is already
    /// closing (then the listener just closes).
    fn start_accepting(&mut self) -> Option<(Bound, Accepting)> {
        let bound = self.bound.take()?;
        {
            let mut st = self.inner.lock();
            if self.inner.stopping() {
                return None;
            }
            st.accepting = true;
        }
        log::info!("listening on {}", self.local);
        Some((bound, Accepting(Arc::clone(&self.inner))))
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
    /// The first call spawns an acceptor task; heads are read by each
    /// connection's task, so a slow client does not delay this call, and
    /// dropping its future (a `select`, a timeout) loses no request. Drop
    /// each request (or [`finish`](Request::finish) it) to send its
    /// response.
    pub async fn next(&mut self, timeout: Option<Duration>) -> io::Result<Option<Request>> {
        if self.queue.is_none() {
            let spawner = self.spawner()?;
            let (tx, rx) = async_channel::unbounded();
            if let Some((bound, accepting)) = self.start_accepting() {
                let acceptor = accept_loop(
                    bound,
                    accepting,
                    Arc::clone(&self.inner),
                    self.config,
                    Arc::clone(&spawner),
                    Dispatch::Queue(tx),
                );
                spawner.spawn(Box::pin(acceptor));
            }
            self.queue = Some(rx);
        }
        let Some(rx) = &self.queue else {
            return Ok(None);
        };
        let recv = async { rx.recv().await.ok() };
        let req = match timeout {
            None => recv.await,
            Some(t) => {
                future::or(recv, async {
                    Timer::after(t).await;
                    None
                })
                .await
            }
        };
        Ok(req.map(|mut req| {
            req.taken = true;
            req
        }))
    }

    /// Serves requests with `handler`, one task per connection, until the
    /// server is shut down through a [`ShutdownHandle`], then waits for the
    /// requests in flight (at most
    /// [`shutdown_timeout`](Config::shutdown_timeout)) and returns.
    ///
    /// The handler gets each [`Request`] by value and returns a future; it
    /// runs in the connection's task, under `catch_unwind`. After it
    /// completes (and the request is dropped), the server sends what it
    /// buffered, and:
    ///
    /// - if the handler wrote nothing, sends `Status: 204 No Content`;
    /// - if it returned an error or panicked before anything reached the
    ///   socket, sends `500 Internal Server Error` (or `400` / `408` when
    ///   the error came from a truncated or stalled body); if part of the
    ///   response was already sent, resets the connection so the web server
    ///   sees a failed response, not a short one. A panic costs only its
    ///   own connection;
    /// - closes the connection at once when the request was read to its
    ///   end and nothing more is pending; otherwise shuts down its sending
    ///   side and drains what the peer still sends (bounded by
    ///   [`drain_timeout`](Config::drain_timeout) and
    ///   [`drain_limit`](Config::drain_limit)) before closing, since
    ///   closing with unread input would send a reset.
    ///
    /// Fails at once without a spawner (see
    /// [`with_spawner`](Server::with_spawner)) or after
    /// [`next`](Server::next) was used; otherwise returns `Ok(())` once
    /// stopped.
    pub async fn run<H, F>(mut self, handler: H) -> io::Result<()>
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = io::Result<()>> + Send + 'static,
    {
        if self.queue.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "run after next: the acceptor already feeds next",
            ));
        }
        let spawner = self.spawner()?;
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        if let Some((bound, accepting)) = self.start_accepting() {
            accept_loop(
                bound,
                accepting,
                Arc::clone(&self.inner),
                self.config,
                spawner,
                Dispatch::Handler(handler),
            )
            .await;
        }
        if self.inner.wait_stopped().await {
            log::info!("stopped");
        }
        Ok(())
    }

    /// [`run`](Server::run) until `shutdown` completes, then shut down as
    /// [`ShutdownHandle::shutdown`] does: stop accepting, finish the
    /// requests in flight (within the deadline), return. With a signal
    /// future (from `async-signal` or `async-ctrlc`), Ctrl-C handling is
    /// one argument:
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use futures_lite::AsyncWriteExt;
    ///
    /// let server = scgi_async_std::Server::bind_tcp("127.0.0.1:0")?;
    /// let stop = async_io::Timer::after(std::time::Duration::from_millis(10));
    /// async_io::block_on(server.run_until(
    ///     |mut req| async move {
    ///         req.write_status_ok_text_content("text/plain").await?;
    ///         req.write_all(b"hi").await
    ///     },
    ///     stop, // any future: a timer, a Ctrl-C signal
    /// ))?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run_until<H, F, S>(self, handler: H, shutdown: S) -> io::Result<()>
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = io::Result<()>> + Send + 'static,
        S: Future,
    {
        let handle = self.shutdown_handle();
        let trigger = async move {
            let _ = shutdown.await;
            handle.shutdown();
            future::pending().await
        };
        future::or(self.run(handler), trigger).await
    }

    /// Stops accepting, answers the requests queued for
    /// [`next`](Server::next) but not taken with `503` (call `next` until
    /// it returns `None` first to serve them), and waits for the requests
    /// handed out to be dropped, for at most
    /// [`shutdown_timeout`](Config::shutdown_timeout). Returns whether they
    /// all finished in time.
    pub async fn close(mut self) -> bool {
        self.inner.shutdown();
        self.bound = None;
        self.queue = None;
        self.inner.wait_stopped().await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Without this, a dropped `next`-style server would leave its
        // acceptor accepting connections that nobody serves.
        self.inner.shutdown();
    }
}

async fn accept_loop(
    bound: Bound,
    accepting: Accepting,
    inner: Arc<Inner>,
    config: Config,
    spawner: Arc<dyn Spawn>,
    dispatch: Dispatch,
) {
    let start = |slot: Slot, stream: Stream, peer: Addr| {
        let mut slot = slot;
        let stream = Arc::new(stream);
        slot.register(&stream);
        let accepted = Accepted {
            stream,
            peer,
            slot,
            conn: Connection::new(&config, Instant::now()),
        };
        spawner.spawn(Box::pin(connection(
            accepted,
            Arc::clone(&inner),
            dispatch.clone(),
        )));
    };
    let mut backoff = Duration::ZERO;
    while let Some(slot) = inner.acquire().await {
        let accepted = future::or(async { Some(bound.listener.accept().await) }, async {
            inner.stopped().await;
            None
        })
        .await;
        let Some(accepted) = accepted else { break };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                start(slot, stream, peer);
            }
            Err(e) => {
                drop(slot);
                match e.kind() {
                    io::ErrorKind::Interrupted
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::WouldBlock => {}
                    _ => {
                        // EMFILE and the like: retrying at once would spin.
                        backoff =
                            (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                        log::error!("accept failed: {e}; retrying in {backoff:?}");
                        future::or(
                            async {
                                Timer::after(backoff).await;
                            },
                            inner.stopped(),
                        )
                        .await;
                    }
                }
            }
        }
    }
    // Connections the kernel completed before shutdown are taken and served
    // rather than reset when the listener closes.
    while let Some(slot) = inner.try_acquire() {
        match bound.listener.try_accept() {
            Ok((stream, peer)) => start(slot, stream, peer),
            Err(_) => break,
        }
    }
    drop(bound);
    drop(accepting);
}

/// Why a handler did not succeed.
enum Failure {
    Error(io::Error),
    Panic(String),
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string payload)")
        .to_owned()
}

/// Calls the handler and runs its future, catching panics in both.
async fn call(handler: &Handler, req: Request) -> Result<(), Failure> {
    let fut = match catch_unwind(AssertUnwindSafe(|| handler(req))) {
        Ok(fut) => fut,
        Err(panic) => return Err(Failure::Panic(panic_message(&*panic))),
    };
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::Error(e)),
        Err(panic) => Err(Failure::Panic(panic_message(&*panic))),
    }
}

/// A connection's task: read the head, hand the request over, finish the
/// connection when the request comes back. Cancelled when the shutdown
/// deadline passes.
async fn connection(accepted: Accepted, inner: Arc<Inner>, dispatch: Dispatch) {
    let work = async {
        let Some((mut req, back)) = request::read_head(accepted).await else {
            return;
        };
        let (outcome, finish) = match dispatch {
            Dispatch::Handler(handler) => {
                req.taken = true;
                let result = call(&handler, req).await;
                // `None`: the handler finished or upgraded its request.
                let finish = back.recv().await.ok();
                let what = || {
                    finish.as_ref().map_or_else(
                        || "a finished request".to_owned(),
                        |f| f.describe().to_string(),
                    )
                };
                let outcome = match result {
                    Ok(()) => Outcome::Done,
                    Err(Failure::Error(e)) => {
                        log::error!("handler failed on {}: {e}", what());
                        Outcome::Failed
                    }
                    Err(Failure::Panic(msg)) => {
                        log::error!("handler panicked on {}: {msg}", what());
                        Outcome::Failed
                    }
                };
                (outcome, finish)
            }
            Dispatch::Queue(queue) => {
                // A closed queue hands the request back at once (503).
                let _ = queue.send(req).await;
                drop(queue);
                (Outcome::Done, back.recv().await.ok())
            }
        };
        if let Some(finish) = finish {
            let _ = finish.complete(outcome).await;
        }
    };
    future::or(work, inner.forced()).await;
}

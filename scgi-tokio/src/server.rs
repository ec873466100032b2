//! The server: listener, accept loop, connection cap, a task per
//! connection, and shutdown.

use std::any::Any;
use std::future::{Future, pending, poll_fn};
use std::io;
use std::net::ToSocketAddrs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

#[cfg(unix)]
use std::path::Path;

use scgi_proto::server::{Config, Outcome};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

use crate::net::{Addr, Listener, Registered, Stream, TcpOptions};
#[cfg(unix)]
use crate::net::{SocketFile, UnixOptions};
use crate::request::{self, HANDBACK, Handback, Request};

/// The result of [`race`].
pub(crate) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Runs two futures until the first completes (`a` wins a tie) and drops
/// the other. `tokio::select!` would need tokio's `macros` feature.
pub(crate) async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        b.as_mut().poll(cx).map(Either::Right)
    })
    .await
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string payload)")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// Not accepting; requests in flight finish.
    Stopping,
    /// The shutdown deadline passed: connections are closed.
    Forced,
}

/// The connection cap as the semaphore holds it: at most what a tokio
/// semaphore can count.
fn permits(config: &Config) -> usize {
    config.connection_cap().min(Semaphore::MAX_PERMITS)
}

/// State shared by the server, its connections and its
/// [`ShutdownHandle`]s.
#[derive(Debug)]
pub(crate) struct Shared {
    phase: watch::Sender<Phase>,
    /// `phase == Forced`, readable without a lock from I/O paths.
    forced: AtomicBool,
    /// One permit per connection that may open (the connection cap).
    sem: Semaphore,
    state: Mutex<State>,
    /// Notified when a connection closes or the listener does.
    changed: Notify,
}

#[derive(Debug)]
struct State {
    /// Connections accepted and not yet closed.
    open: usize,
    /// Permits the semaphore was given (the cap).
    permits: usize,
    /// Whether `run` holds the listener (shutdown waits for it).
    accepting: bool,
    shutdown_timeout: Duration,
    /// When shutting down gives up waiting; set by the first request.
    deadline: Option<Instant>,
}

impl Shared {
    fn new(config: &Config) -> Shared {
        Shared {
            phase: watch::Sender::new(Phase::Running),
            forced: AtomicBool::new(false),
            sem: Semaphore::new(permits(config)),
            state: Mutex::new(State {
                open: 0,
                permits: permits(config),
                accepting: false,
                shutdown_timeout: config.shutdown_timeout,
                deadline: None,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        *self.phase.borrow() != Phase::Running
    }

    pub(crate) fn is_forced(&self) -> bool {
        self.forced.load(Ordering::Acquire)
    }

    /// Completes once shutdown has been requested.
    async fn stop_signal(&self) {
        let mut rx = self.phase.subscribe();
        let _ = rx.wait_for(|p| *p != Phase::Running).await;
    }

    /// Completes once the shutdown deadline has passed.
    pub(crate) async fn forced_signal(&self) {
        let mut rx = self.phase.subscribe();
        let _ = rx.wait_for(|p| *p == Phase::Forced).await;
    }

    fn reconfigure(&self, config: &Config) {
        let mut st = self.lock();
        let want = permits(config);
        if want > st.permits {
            self.sem.add_permits(want - st.permits);
        } else {
            // Only free permits can be forgotten; before serving, all are.
            self.sem.forget_permits(st.permits - want);
        }
        st.permits = want;
        st.shutdown_timeout = config.shutdown_timeout;
    }

    /// Waits for a free connection slot; `None` once shutdown starts.
    async fn acquire(self: &Arc<Self>) -> Option<Slot> {
        if self.stopping() {
            return None;
        }
        match race(self.sem.acquire(), self.stop_signal()).await {
            Either::Left(Ok(permit)) => {
                permit.forget();
                Some(self.opened())
            }
            Either::Left(Err(_)) | Either::Right(()) => None,
        }
    }

    /// A free slot if there is one, even while shutting down (for the
    /// connections already in the listen backlog).
    fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        let permit = self.sem.try_acquire().ok()?;
        permit.forget();
        Some(self.opened())
    }

    fn opened(self: &Arc<Self>) -> Slot {
        self.lock().open += 1;
        Slot {
            shared: Arc::clone(self),
        }
    }

    /// Starts a shutdown: stop accepting, let requests finish until the
    /// deadline. Later calls change nothing.
    pub(crate) fn shutdown(&self) {
        {
            // The phase and the deadline change together, under the lock,
            // so that no waiter sees one without the other.
            let mut st = self.lock();
            let started = self.phase.send_if_modified(|p| {
                let running = *p == Phase::Running;
                if running {
                    *p = Phase::Stopping;
                }
                running
            });
            if !started {
                return;
            }
            st.deadline = Some(Instant::now() + st.shutdown_timeout);
        }
        log::info!("shutting down: no new connections");
        self.changed.notify_waiters();
    }

    fn set_accepting(&self, on: bool) {
        self.lock().accepting = on;
        self.changed.notify_waiters();
    }

    /// After [`shutdown`](Shared::shutdown): waits until the listener is
    /// closed and every connection is finished, or the deadline passes, in
    /// which case the remaining connections are closed. Returns whether
    /// everything finished in time.
    pub(crate) async fn wait_stopped(&self) -> bool {
        loop {
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            let deadline = {
                let st = self.lock();
                if !st.accepting && st.open == 0 {
                    return !self.is_forced();
                }
                st.deadline
                    .unwrap_or_else(|| Instant::now() + st.shutdown_timeout)
            };
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let open = {
                    let st = self.lock();
                    if !st.accepting && st.open == 0 {
                        return !self.is_forced();
                    }
                    st.open
                };
                log::warn!("shutdown deadline passed with {open} connection(s) open: closing them");
                self.forced.store(true, Ordering::Release);
                self.phase.send_replace(Phase::Forced);
                return false;
            }
        }
    }
}

/// One connection's place under [`Config::max_connections`]; released when
/// dropped (by the request, the upgraded stream, or an unanswered
/// connection).
#[derive(Debug)]
pub(crate) struct Slot {
    shared: Arc<Shared>,
}

impl Slot {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.lock().open -= 1;
        self.shared.sem.add_permits(1);
        self.shared.changed.notify_waiters();
    }
}

/// A handle that stops a [`Server`] from another task or thread: cloneable,
/// `Send` and `Sync`.
///
/// [`Server::run_until`] takes a future instead, for the common case
/// (`tokio::signal::ctrl_c()`).
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl ShutdownHandle {
    /// Stops accepting connections and returns at once. Requests already
    /// accepted (including those the kernel completed before this call)
    /// are still served; [`Server::run`] returns when they are finished or
    /// the [`shutdown_timeout`](Config::shutdown_timeout) passes, and
    /// [`Server::next`] returns `None`.
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }

    /// [`shutdown`](ShutdownHandle::shutdown), then waits until the
    /// listener is closed and every connection is finished, for at most the
    /// [`shutdown_timeout`](Config::shutdown_timeout). Past it the remaining
    /// connections are closed. Returns whether everything finished in time.
    pub async fn close(&self) -> bool {
        self.shared.shutdown();
        self.shared.wait_stopped().await
    }

    /// Whether a shutdown was requested.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        self.shared.stopping()
    }
}

/// The listener (registered with the reactor on first use), and the socket
/// file to remove when it closes.
#[derive(Debug)]
struct Bound {
    idle: Option<Listener>,
    registered: Option<Registered>,
    #[cfg(unix)]
    _file: Option<SocketFile>,
}

impl Bound {
    fn registered(&mut self) -> io::Result<&Registered> {
        if let Some(listener) = self.idle.take() {
            self.registered = Some(crate::net::register(listener)?);
        }
        self.registered
            .as_ref()
            .ok_or_else(|| io::Error::other("the listener failed to register"))
    }
}

/// Accepts the next connection under the connection cap; `None` once
/// shutdown starts. Accept errors are logged and retried with a backoff
/// (EMFILE and the like would otherwise spin).
async fn accept_one(shared: &Arc<Shared>, listener: &Registered) -> Option<(Slot, Stream, Addr)> {
    let mut backoff = Duration::ZERO;
    loop {
        let slot = shared.acquire().await?;
        let accepted =
            match race(poll_fn(|cx| listener.poll_accept(cx)), shared.stop_signal()).await {
                Either::Left(accepted) => accepted,
                Either::Right(()) => return None,
            };
        match accepted {
            Ok((stream, peer)) => return Some((slot, stream, peer)),
            Err(e) => {
                drop(slot);
                match e.kind() {
                    io::ErrorKind::Interrupted
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::WouldBlock => {}
                    _ => {
                        backoff =
                            (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                        log::error!("accept failed: {e}; retrying in {backoff:?}");
                        if let Either::Right(()) =
                            race(tokio::time::sleep(backoff), shared.stop_signal()).await
                        {
                            return None;
                        }
                    }
                }
            }
        }
    }
}

/// An SCGI server on a TCP or Unix socket, served by tokio tasks.
///
/// Open it with [`bind_tcp`](Server::bind_tcp),
/// [`bind_unix`](Server::bind_unix) or
/// [`from_listener`](Server::from_listener) (these need no runtime); then,
/// inside a tokio runtime, either serve with a handler, one task per
/// connection ([`run`](Server::run), [`run_until`](Server::run_until)), or
/// take requests one by one ([`next`](Server::next)). Stop it with a
/// [`ShutdownHandle`], the `run_until` future, or [`close`](Server::close).
///
/// At most [`max_connections`](Config::max_connections) connections are
/// open at once (a semaphore); the head of each is read and validated
/// before the handler sees it. Malformed requests are answered with the
/// decoder's status hint (400, 413 or 431) and never reach the handler.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    config: Arc<Config>,
    local: Addr,
    bound: Option<Bound>,
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
    /// on). A host name is resolved with the system resolver, which blocks:
    /// inside async code, pass an IP address.
    pub fn bind_tcp<A: ToSocketAddrs>(addr: A) -> io::Result<Server> {
        Server::bind_tcp_with(addr, &TcpOptions::DEFAULT)
    }

    /// Binds a TCP listener on `addr` with the given options.
    pub fn bind_tcp_with<A: ToSocketAddrs>(addr: A, options: &TcpOptions) -> io::Result<Server> {
        let listener = crate::net::bind_tcp(addr, options)?;
        Server::new(Bound {
            idle: Some(listener.into()),
            registered: None,
            #[cfg(unix)]
            _file: None,
        })
    }

    /// Binds a Unix socket at `path` with the default [`UnixOptions`]: a
    /// stale socket file left by a dead server is removed, the mode is what
    /// the umask gives. The socket file is removed when the listener
    /// closes.
    #[cfg(unix)]
    pub fn bind_unix<P: AsRef<Path>>(path: P) -> io::Result<Server> {
        Server::bind_unix_with(path, &UnixOptions::DEFAULT)
    }

    /// Binds a Unix socket at `path` with the given options, e.g. a mode:
    ///
    /// ```no_run
    /// use scgi_tokio::{Server, UnixOptions};
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
            idle: Some(listener.into()),
            registered: None,
            _file: Some(file),
        })
    }

    /// Adopts a listener bound elsewhere: a std `TcpListener` or
    /// `UnixListener` (socket activation by systemd or a supervisor passes
    /// one as a file descriptor; turn it into a std listener with
    /// `From<OwnedFd>`; a tokio listener converts with `into_std()`). It may
    /// be blocking or not; it joins the reactor when serving starts. Its
    /// socket file, if any, is left in place when the server closes.
    pub fn from_listener(listener: impl Into<Listener>) -> io::Result<Server> {
        Server::new(Bound {
            idle: Some(listener.into()),
            registered: None,
            #[cfg(unix)]
            _file: None,
        })
    }

    fn new(bound: Bound) -> io::Result<Server> {
        let local = match &bound.idle {
            Some(l) => l.local_addr()?,
            None => return Err(io::Error::other("no listener")),
        };
        let config = Config::DEFAULT;
        Ok(Server {
            shared: Arc::new(Shared::new(&config)),
            config: Arc::new(config),
            local,
            bound: Some(bound),
        })
    }

    /// Replaces the configuration. Set it before serving: connections
    /// accepted earlier keep the previous one.
    #[must_use]
    pub fn with_config(mut self, config: Config) -> Server {
        self.shared.reconfigure(&config);
        self.config = Arc::new(config);
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
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
            shared: Arc::clone(&self.shared),
        }
    }

    /// Waits for the next request and returns it with its head read and
    /// validated; the body is left to read from the [`Request`].
    ///
    /// Waits at most `timeout` (`None`: until a request arrives or the
    /// server shuts down), and returns `Ok(None)` when it passes, or once
    /// the server is shut down (the listener is then closed). Malformed
    /// requests are answered (400, 413, 431) and skipped; connections
    /// closed before their first byte are skipped quietly. Fails only if
    /// the listener cannot join the runtime's reactor.
    ///
    /// The head is read here, under
    /// [`head_timeout`](Config::head_timeout) (not `timeout`), so a slow
    /// client delays this call by up to that long; [`run`](Server::run)
    /// reads heads in each connection's task instead. A request finishes
    /// when dropped (in a task of its own) or with [`Request::finish`].
    /// Must be called within a tokio runtime.
    pub async fn next(&mut self, timeout: Option<Duration>) -> io::Result<Option<Request>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.shared.stopping() {
                self.bound = None;
                return Ok(None);
            }
            let Some(bound) = self.bound.as_mut() else {
                return Ok(None);
            };
            let listener = bound.registered()?;
            let accept = accept_one(&self.shared, listener);
            let accepted = match deadline {
                None => accept.await,
                Some(deadline) => match tokio::time::timeout_at(deadline, accept).await {
                    Ok(accepted) => accepted,
                    Err(_) => return Ok(None),
                },
            };
            let Some((slot, stream, peer)) = accepted else {
                continue;
            };
            if let Some(req) = request::read_head(stream, peer, slot, &self.config).await {
                return Ok(Some(req));
            }
        }
    }

    /// Serves requests with `handler`, one task per connection, until the
    /// server is shut down through a [`ShutdownHandle`]; see
    /// [`run_until`](Server::run_until).
    pub async fn run<H, F>(self, handler: H) -> io::Result<()>
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = io::Result<()>> + Send + 'static,
    {
        self.run_until(handler, pending::<()>()).await
    }

    /// Serves requests with `handler`, one task per connection, until
    /// `signal` completes (whatever its output) or the server is shut down
    /// through a [`ShutdownHandle`]; then stops accepting, waits for the
    /// requests in flight (at most
    /// [`shutdown_timeout`](Config::shutdown_timeout), past which their
    /// tasks are cancelled and their connections closed) and returns.
    /// Ctrl-C handling is one argument:
    ///
    /// ```no_run
    /// # async fn f(server: scgi_tokio::Server) -> std::io::Result<()> {
    /// server
    ///     .run_until(
    ///         |mut req: scgi_tokio::Request| async move {
    ///             req.write_status_ok_text_content("text/plain").await
    ///         },
    ///         tokio::signal::ctrl_c(),
    ///     )
    ///     .await
    /// # }
    /// ```
    ///
    /// The handler takes the [`Request`] by value and returns a future (an
    /// `async move` block, or an `async fn(Request) -> io::Result<()>`
    /// passed by name): no boxing, and the request can be moved on. After
    /// the handler's future completes, the server sends what it buffered,
    /// and:
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
    /// A request the handler moved elsewhere (another task) is finished
    /// when it is dropped there. Must be called within a tokio runtime;
    /// fails only if the listener cannot join its reactor.
    pub async fn run_until<H, F, S>(mut self, handler: H, signal: S) -> io::Result<()>
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = io::Result<()>> + Send + 'static,
        S: Future,
    {
        let shared = Arc::clone(&self.shared);
        let config = Arc::clone(&self.config);
        if let Some(mut bound) = self.bound.take()
            && !shared.stopping()
        {
            let listener = match bound.registered() {
                Ok(listener) => listener,
                Err(e) => {
                    shared.shutdown();
                    return Err(e);
                }
            };
            shared.set_accepting(true);
            log::info!("listening on {}", self.local);
            let handler = Arc::new(handler);
            let spawn = |(slot, stream, peer): (Slot, Stream, Addr)| {
                tokio::spawn(serve(
                    stream,
                    peer,
                    slot,
                    Arc::clone(&config),
                    Arc::clone(&handler),
                ));
            };
            let accept_loop = async {
                while let Some(conn) = accept_one(&shared, listener).await {
                    spawn(conn);
                }
            };
            if let Either::Right(_) = race(accept_loop, signal).await {
                shared.shutdown();
            }
            // Connections the kernel completed before shutdown are taken
            // and served rather than reset when the listener closes.
            while let Some(slot) = shared.try_acquire() {
                match poll_fn(|cx| Poll::Ready(listener.poll_accept(cx))).await {
                    Poll::Ready(Ok((stream, peer))) => spawn((slot, stream, peer)),
                    _ => break,
                }
            }
            drop(bound);
            shared.set_accepting(false);
        }
        shared.shutdown();
        if shared.wait_stopped().await {
            log::info!("stopped");
        }
        Ok(())
    }

    /// Stops accepting, closes the listener, and waits for the requests
    /// handed out by [`next`](Server::next) to finish, for at most
    /// [`shutdown_timeout`](Config::shutdown_timeout). Returns whether they
    /// all finished in time.
    pub async fn close(mut self) -> bool {
        self.shared.shutdown();
        self.bound = None;
        self.shared.wait_stopped().await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A dropped server must not leave connections waiting for it.
        self.shared.shutdown();
    }
}

/// One connection's task under [`Server::run_until`].
///
/// The big futures (reading the head, the handler's) are pinned here once
/// and polled by hand next to the shutdown deadline: wrapping them in
/// helper `async fn`s would copy each into the wrapper's state, and this
/// task's size is what tokio allocates per connection.
async fn serve<H, F>(stream: Stream, peer: Addr, slot: Slot, config: Arc<Config>, handler: Arc<H>)
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = io::Result<()>> + Send + 'static,
{
    let shared = Arc::clone(slot.shared());
    let mut forced = pin!(shared.forced_signal());
    let req = {
        let mut read = pin!(request::read_head(stream, peer.clone(), slot, &config));
        poll_fn(|cx| match read.as_mut().poll(cx) {
            Poll::Ready(req) => Poll::Ready(req),
            Poll::Pending => forced.as_mut().poll(cx).map(|()| None),
        })
        .await
    };
    let Some(mut req) = req else {
        return;
    };
    let handback = Handback::new(&mut req);
    let (result, returned) = {
        // The handler runs inside the hand-back scope, and its future is
        // dropped there (when it completes, panics or is cancelled), so the
        // request it held hands its connection back. A panic while the
        // handler builds its future drops the request then too.
        let mut handled = pin!(HANDBACK.scope(handback, async {
            let mut fut = pin!(catch_unwind(AssertUnwindSafe(|| handler(req)))?);
            poll_fn(
                |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
                    Err(panic) => Poll::Ready(Err(panic)),
                },
            )
            .await
        }));
        let result = poll_fn(|cx| match handled.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(Either::Left(result)),
            Poll::Pending => forced.as_mut().poll(cx).map(Either::Right),
        })
        .await;
        let returned = match result {
            // Cancelled: the request is dropped with the scope, unanswered.
            Either::Right(()) => None,
            Either::Left(_) => handled
                .as_mut()
                .take_value()
                .and_then(Handback::into_returned),
        };
        (result, returned)
    };
    let outcome = {
        let described;
        let what: &dyn std::fmt::Display = match &returned {
            Some(r) => {
                described = r.describe();
                &described
            }
            None => &"(a request that outlived its handler)",
        };
        match result {
            Either::Left(Ok(Ok(()))) => Outcome::Done,
            Either::Left(Ok(Err(e))) => {
                log::error!("{peer}: handler failed on {what}: {e}");
                Outcome::Failed
            }
            Either::Left(Err(panic)) => {
                log::error!(
                    "{peer}: handler panicked on {what}: {}",
                    panic_message(&*panic)
                );
                Outcome::Failed
            }
            Either::Right(()) => Outcome::Forced,
        }
    };
    if let Some(mut returned) = returned {
        let _ = returned.conn.complete(outcome, &peer).await;
    }
}

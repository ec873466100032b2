//! The server: listener, accept loop, connection cap, a task per
//! connection, and shutdown.

use std::any::Any;
use std::future::{Future, pending, poll_fn};
use std::io;
use std::marker::PhantomData;
use std::net::ToSocketAddrs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

#[cfg(unix)]
use std::path::Path;

use scgi_net::{Addr, Listener, TcpOptions};
#[cfg(unix)]
use scgi_net::{SocketFile, UnixOptions};
use scgi_proto::server::{Config, Outcome};

use crate::queue::Queue;
use crate::request::{self, Request};
use crate::rt::{self, Accept, Either, Runtime, race};
use crate::shared::{Shared, ShutdownHandle, Slot, Watch};

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string payload)")
}

/// The listener (registered with the reactor on first use), and the socket
/// file to remove when it closes.
struct Bound<R: Runtime> {
    idle: Option<Listener>,
    registered: Option<R::Listener>,
    #[cfg(unix)]
    _file: Option<SocketFile>,
}

impl<R: Runtime> Bound<R> {
    fn registered(&mut self) -> io::Result<&R::Listener> {
        if let Some(listener) = self.idle.take() {
            self.registered = Some(R::Listener::register(listener)?);
        }
        self.registered
            .as_ref()
            .ok_or_else(|| io::Error::other("the listener failed to register"))
    }
}

/// An accepted connection.
type Accepted<R> = (Slot, <R as Runtime>::Stream, Addr);

/// A listener's `poll_accept`.
trait Listen<R: Runtime>: Fn(&mut Context<'_>) -> Poll<io::Result<(R::Stream, Addr)>> {}

impl<R: Runtime, F> Listen<R> for F where
    F: Fn(&mut Context<'_>) -> Poll<io::Result<(R::Stream, Addr)>>
{
}

/// What [`Server::next`] uses: its queue, and its acceptor's listener
/// (none if the server was closed before the first call).
type Next<R> = (Arc<Queue<R>>, Option<SharedBound<R>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts the next connection under the connection cap; `None` once
/// shutdown starts. Accept errors are logged and retried with a backoff
/// (EMFILE and the like would otherwise spin).
async fn accept_one<R: Runtime>(
    shared: &Arc<Shared>,
    listener: &impl Listen<R>,
) -> Option<Accepted<R>> {
    let mut backoff = Duration::ZERO;
    loop {
        let mut waited = false;
        let mut slot = poll_fn(|cx| {
            let acquired = shared.poll_acquire(cx);
            if acquired.is_pending() && !std::mem::replace(&mut waited, true) {
                shared.counters.waited_at_cap();
            }
            acquired
        })
        .await?;
        let accepted = poll_fn(|cx| match listener(cx) {
            Poll::Ready(accepted) => Poll::Ready(Some(accepted)),
            Poll::Pending => shared.poll_stop(cx).map(|()| None),
        });
        match accepted.await? {
            Ok((stream, peer)) => {
                slot.opened();
                return Some((slot, stream, peer));
            }
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
                        let stop = poll_fn(|cx| shared.poll_stop(cx));
                        let sleep = R::sleep_until(R::now() + backoff);
                        if let Either::Right(()) = race(sleep, stop).await {
                            return None;
                        }
                    }
                }
            }
        }
    }
}

/// Connections the kernel completed before shutdown, while slots are free
/// (accepted without waiting, through [`Accept::try_accept`]).
fn backlog<R: Runtime>(
    shared: &Arc<Shared>,
    try_accept: impl Fn() -> Option<io::Result<(R::Stream, Addr)>>,
    mut each: impl FnMut(Accepted<R>),
) {
    while let Some(mut slot) = shared.try_acquire() {
        match try_accept() {
            Some(Ok((stream, peer))) => {
                slot.opened();
                each((slot, stream, peer));
            }
            _ => break,
        }
    }
}

/// An SCGI server on a TCP or Unix socket, served by tasks of the runtime
/// `R` (the runtime crates name it: `scgi_tokio::Server`,
/// `scgi_async_std::Server`).
///
/// Open it with [`bind`](Server::bind), [`bind_tcp`](Server::bind_tcp),
/// [`bind_unix`](Server::bind_unix) or
/// [`from_listener`](Server::from_listener) (these need no runtime: the
/// listener joins the reactor when serving starts); then either serve with
/// a handler, one task per connection ([`run`](Server::run),
/// [`run_until`](Server::run_until)), or take requests one by one
/// ([`next`](Server::next)). Stop it with a [`ShutdownHandle`], the
/// `run_until` future, or [`close`](Server::close).
///
/// At most [`max_connections`](Config::max_connections) connections are
/// open at once; the head of each is read and validated before the handler
/// sees it. Malformed requests are answered with the decoder's status hint
/// (400, 413 or 431) and never reach the handler.
pub struct Server<R: Runtime> {
    shared: Arc<Shared>,
    config: Arc<Config>,
    local: Addr,
    bound: Option<Bound<R>>,
    runtime: R,
    /// Once [`next`](Server::next) is used: its queue, and its acceptor's
    /// listener (`run` then refuses).
    queue: Option<Next<R>>,
}

impl<R: Runtime> std::fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local", &self.local)
            .field("config", &self.config)
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Server<R> {
    /// The default address, `127.0.0.1:4000` (as in Nim's `scgi` module).
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:4000";

    /// Binds the address in `addr`: `"host:port"` or `"[v6]:port"` (TCP,
    /// as [`bind_tcp`](Server::bind_tcp)), `"unix:/path"` (a Unix socket,
    /// as [`bind_unix`](Server::bind_unix)), the form `scgi_pass` takes, or
    /// `"systemd"` / `"systemd:NAME"` (a socket passed by systemd socket
    /// activation, see [`scgi_net::systemd`]). The same on every runtime
    /// crate; see [`scgi_net::ListenAddr`].
    pub fn bind(addr: &str) -> io::Result<Self> {
        let addr = scgi_net::ListenAddr::parse(addr)?;
        if let Some(passed) = addr.passed_listener() {
            return Self::from_listener(passed?);
        }
        match addr {
            scgi_net::ListenAddr::Tcp(a) => Self::bind_tcp(a),
            #[cfg(unix)]
            scgi_net::ListenAddr::Unix(path) => Self::bind_unix(path),
            other => Err(other.unsupported()),
        }
    }

    /// Binds a TCP listener on `addr` (IPv4 or IPv6; the first resolved
    /// address that binds), with the default [`TcpOptions`] (`SO_REUSEADDR`
    /// on). A host name is resolved with the system resolver, which blocks:
    /// inside async code, pass an IP address.
    pub fn bind_tcp<A: ToSocketAddrs>(addr: A) -> io::Result<Self> {
        Self::bind_tcp_with(addr, &TcpOptions::DEFAULT)
    }

    /// Binds a TCP listener on `addr` with the given options.
    pub fn bind_tcp_with<A: ToSocketAddrs>(addr: A, options: &TcpOptions) -> io::Result<Self> {
        let listener = scgi_net::bind_tcp(addr, options)?;
        Self::new(listener.into(), None)
    }

    /// Binds a Unix socket at `path` with the default [`UnixOptions`]: a
    /// stale socket file left by a dead server is removed, the mode is what
    /// the umask gives. The socket file is removed when the listener
    /// closes.
    #[cfg(unix)]
    pub fn bind_unix<P: AsRef<Path>>(path: P) -> io::Result<Self> {
        Self::bind_unix_with(path, &UnixOptions::DEFAULT)
    }

    /// Binds a Unix socket at `path` with the given options, e.g. a mode
    /// (`UnixOptions::DEFAULT.with_mode(0o660)`).
    #[cfg(unix)]
    pub fn bind_unix_with<P: AsRef<Path>>(path: P, options: &UnixOptions) -> io::Result<Self> {
        let (listener, file) = scgi_net::bind_unix(path.as_ref(), options, module_path!())?;
        Self::new(listener.into(), Some(file))
    }

    /// Adopts a listener bound elsewhere: a std `TcpListener` or
    /// `UnixListener` (socket activation by systemd or a supervisor passes
    /// one as a file descriptor; turn it into a std listener with
    /// `From<OwnedFd>`; a runtime's own listener converts to std first). It
    /// may be blocking or not; it joins the reactor when serving starts.
    /// Its socket file, if any, is left in place when the server closes.
    pub fn from_listener(listener: impl Into<Listener>) -> io::Result<Self> {
        Self::new(listener.into(), None)
    }

    fn new(
        listener: Listener,
        #[cfg(unix)] file: Option<SocketFile>,
        #[cfg(not(unix))] _: Option<()>,
    ) -> io::Result<Self> {
        let config = Config::DEFAULT;
        Ok(Server {
            shared: Arc::new(Shared::new(&config)),
            config: Arc::new(config),
            local: listener.local_addr()?,
            bound: Some(Bound {
                idle: Some(listener),
                registered: None,
                #[cfg(unix)]
                _file: file,
            }),
            runtime: R::default(),
            queue: None,
        })
    }

    /// Replaces the configuration. Set it before serving: connections
    /// accepted earlier keep the previous one.
    #[must_use]
    pub fn with_config(mut self, config: Config) -> Self {
        self.shared.reconfigure(&config);
        self.config = Arc::new(config);
        self
    }

    /// Sets how the server spawns its tasks: whatever the runtime takes
    /// (`scgi-async-std`: any `Spawn`, such as `Smol`; `scgi-tokio` needs
    /// none).
    #[must_use]
    pub fn with_spawner<S>(mut self, spawner: S) -> Self
    where
        R: From<S>,
    {
        self.runtime = R::from(spawner);
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

    /// What the server has done so far (see
    /// [`ShutdownHandle::stats`]).
    #[must_use]
    pub fn stats(&self) -> scgi_proto::server::Stats {
        self.shared.counters.snapshot()
    }

    /// A handle to stop the server from another task or thread.
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle<R> {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
            runtime: PhantomData,
        }
    }

    /// Waits for the next request and returns it with its head read and
    /// validated; the body is left to read from the [`Request`].
    ///
    /// Waits at most `timeout` (`None`: until a request arrives or the
    /// server shuts down), and returns `Ok(None)` when it passes, or once
    /// the server is shut down and no accepted connection is left. If the
    /// acceptor task ended before a shutdown was asked for (it panicked, or
    /// the runtime dropped it), the server shuts down on its own, and once
    /// no accepted connection is left this returns an error instead, as
    /// [`run_until`](Server::run_until) does.
    /// Malformed requests are answered (400, 413, 431) and skipped;
    /// connections closed before their first byte are skipped quietly.
    ///
    /// The first call spawns an acceptor task; heads are read by each
    /// connection's task, so a slow client does not delay this call, and
    /// dropping its future (a `select`, a timeout) loses no request. A
    /// request finishes when dropped (in a task of its own) or with
    /// [`Request::finish`]. Fails if the runtime cannot spawn (see
    /// [`Runtime::check`]) or the listener cannot join its reactor.
    pub async fn next(&mut self, timeout: Option<Duration>) -> io::Result<Option<Request<R>>> {
        self.runtime.check()?;
        // A timeout the clock cannot hold waits forever, as `None` does.
        let deadline = timeout.and_then(|t| R::now().checked_add(t));
        if self.queue.is_none() {
            let queue = Queue::new();
            let mut listener = None;
            if let Some(bound) = self.bound.as_mut()
                && !self.shared.stopping()
            {
                bound.registered()?;
                let shared_listener: SharedBound<R> = Arc::new(Mutex::new(self.bound.take()));
                self.shared.set_accepting(true);
                log::info!("listening on {}", self.local);
                self.shared.serving();
                self.runtime.spawn(acceptor(
                    Accepting {
                        shared: Arc::clone(&self.shared),
                        listener: Arc::clone(&shared_listener),
                        queue: Some(Arc::clone(&queue)),
                        runtime: PhantomData,
                    },
                    Arc::clone(&self.config),
                    self.runtime.clone(),
                    Arc::clone(&queue),
                ));
                listener = Some(shared_listener);
            } else {
                queue.accepted_all();
            }
            self.queue = Some((queue, listener));
        }
        let Some((queue, _)) = &self.queue else {
            return Ok(None);
        };
        let pop = poll_fn(|cx| queue.poll_pop(cx));
        match rt::within::<R, _>(deadline, pop).await {
            // No connection left, and none will come: an error if the
            // accept loop ending on its own is what stopped the server.
            Some(None) => self.shared.lost_error().map_or(Ok(None), Err),
            got => Ok(got.flatten()),
        }
    }

    /// Serves requests with `handler`, one task per connection, until the
    /// server is shut down through a [`ShutdownHandle`]; see
    /// [`run_until`](Server::run_until).
    pub async fn run<H, F>(self, handler: H) -> io::Result<()>
    where
        H: Fn(Request<R>) -> F + Send + Sync + 'static,
        F: Future<Output = io::Result<()>> + Send + 'static,
    {
        self.run_until(handler, pending::<()>()).await
    }

    /// Serves requests with `handler`, one task per connection, until
    /// `signal` completes (whatever its output: a Ctrl-C signal, a timer)
    /// or the server is shut down through a [`ShutdownHandle`]; then stops
    /// accepting, serves the connections the kernel had already completed,
    /// waits for the requests in flight (at most
    /// [`shutdown_timeout`](Config::shutdown_timeout), past which their
    /// tasks are cancelled and their connections closed) and returns.
    ///
    /// The handler takes the [`Request`] by value and returns a future (an
    /// `async move` block, or an `async fn(Request) -> io::Result<()>`
    /// passed by name): no boxing, and the request can be moved on. It runs
    /// in the connection's task, and a panic in it costs only its own
    /// connection. After the handler's future completes, the server sends
    /// what it buffered, and:
    ///
    /// - if the handler wrote nothing, sends `Status: 204 No Content`;
    /// - if it returned an error or panicked before anything reached the
    ///   socket, sends `500 Internal Server Error` (or `400` / `408` when
    ///   the error came from a truncated or stalled body); if part of the
    ///   response was already sent, resets the connection so the web server
    ///   sees a failed response, not a short one;
    /// - closes the connection at once when the request was read to its
    ///   end and nothing more is pending; otherwise shuts down its sending
    ///   side and drains what the peer still sends (bounded by
    ///   [`drain_timeout`](Config::drain_timeout) and
    ///   [`drain_limit`](Config::drain_limit)) before closing, since
    ///   closing with unread input would send a reset.
    ///
    /// The accept loop runs as a task of the runtime (spawned when serving
    /// starts), so that each connection's task starts on the thread that
    /// accepted it; the returned future waits for `signal` or a shutdown,
    /// then for the connections to finish.
    ///
    /// A request the handler moved elsewhere (another task) is finished
    /// when it is dropped there. Fails at once if the runtime cannot spawn
    /// (see [`Runtime::check`]) or after [`next`](Server::next) was used,
    /// and if the listener cannot join the runtime's reactor. Once stopped,
    /// returns `Ok(())`, or an error if the accept loop ended before a
    /// shutdown was asked for (it panicked, e.g. in a [`Runtime::spawn`] or
    /// a listener's `accept`, or the runtime dropped its task): the server
    /// then shut down on its own, and a service should exit with a failure
    /// rather than as if asked to stop. A loop lost after shutdown started
    /// only resets the connections it had not taken yet; that returns
    /// `Ok(())`.
    pub async fn run_until<H, F, S>(mut self, handler: H, signal: S) -> io::Result<()>
    where
        H: Fn(Request<R>) -> F + Send + Sync + 'static,
        F: Future<Output = io::Result<()>> + Send + 'static,
        S: Future,
    {
        self.runtime.check()?;
        if self.queue.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "run after next: requests are already taken one by one",
            ));
        }
        let shared = Arc::clone(&self.shared);
        if let Some(mut bound) = self.bound.take()
            && !shared.stopping()
        {
            if let Err(e) = bound.registered() {
                shared.shutdown::<R>();
                return Err(e);
            }
            shared.set_accepting(true);
            log::info!("listening on {}", self.local);
            shared.serving();
            // The accept loop runs as a task of the runtime, not in this
            // future, which callers usually drive with `block_on` on a
            // thread of their own: there, every accepted connection's task
            // went to the runtime's threads through the shared queue and
            // woke one of them. In a task, the new connection's task is
            // scheduled on the accepting thread, next in line.
            let listener: SharedBound<R> = Arc::new(Mutex::new(Some(bound)));
            // Closes the listener when this future ends or is dropped,
            // whether or not the task has run since: neither a cancelled
            // `run_until` nor one past its shutdown deadline leaves it
            // open.
            let _close = CloseListener(Arc::clone(&listener));
            self.runtime.spawn(accept_loop(
                Accepting {
                    shared: Arc::clone(&shared),
                    listener,
                    queue: None,
                    runtime: PhantomData,
                },
                Arc::clone(&self.config),
                Arc::new(handler),
                self.runtime.clone(),
            ));
            let stop = poll_fn(|cx| shared.poll_stop(cx));
            if let Either::Left(_) = race(signal, stop).await {
                shared.shutdown::<R>();
            }
            if shared.wait_stopped::<R>().await {
                log::info!("stopped");
            }
            return shared.lost_error().map_or(Ok(()), Err);
        }
        shared.shutdown::<R>();
        if shared.wait_stopped::<R>().await {
            log::info!("stopped");
        }
        Ok(())
    }

    /// Stops accepting, answers the requests queued for
    /// [`next`](Server::next) but not taken with `503` (call `next` until
    /// it returns `None` first to serve them), as it does the connections
    /// still in the listen backlog, and waits for the requests handed out
    /// to finish, for at most [`shutdown_timeout`](Config::shutdown_timeout).
    /// Returns whether they all finished in time.
    pub async fn close(mut self) -> bool {
        self.shared.shutdown::<R>();
        self.bound = None;
        if let Some((queue, _)) = &self.queue {
            queue.close();
        }
        self.shared.wait_stopped::<R>().await
    }
}

impl<R: Runtime> Drop for Server<R> {
    fn drop(&mut self) {
        // A dropped server must not leave connections waiting for it, nor
        // accept more.
        self.shared.shutdown::<R>();
        if let Some((queue, listener)) = &self.queue {
            if let Some(listener) = listener {
                close_listener(listener);
            }
            queue.close();
        }
    }
}

/// The listener, shared by an accept loop's task (which polls it) and the
/// server (which closes it when dropped, and `run_until`'s future when it
/// ends, in case the task has not).
type SharedBound<R> = Arc<Mutex<Option<Bound<R>>>>;

/// Closes (drops) the listener, removing its socket file.
fn close_listener<R: Runtime>(listener: &SharedBound<R>) {
    let taken = lock(listener).take();
    drop(taken);
}

/// Closes the listener when dropped: see [`Server::run_until`].
struct CloseListener<R: Runtime>(SharedBound<R>);

impl<R: Runtime> Drop for CloseListener<R> {
    fn drop(&mut self) {
        close_listener(&self.0);
    }
}

/// The server is accepting while this lives: shutting down waits (in
/// [`Shared::wait_stopped`]) until it is dropped, which an accept loop's
/// task ([`Server::run_until`]'s or [`Server::next`]'s) does when it ends,
/// or the runtime when it drops the task unfinished (the server then
/// shuts down too, since nothing accepts).
/// Dropping it closes the listener first, so that no one sees the server
/// stopped with its listener still open, then tells [`Server::next`]'s
/// queue (if any) that no more connections come: however the acceptor
/// ended, `next` then returns `None` once the queue is empty rather than
/// wait for requests that cannot arrive.
struct Accepting<R: Runtime> {
    shared: Arc<Shared>,
    listener: SharedBound<R>,
    /// [`Server::next`]'s queue; `None` under `run_until`.
    queue: Option<Arc<Queue<R>>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Drop for Accepting<R> {
    fn drop(&mut self) {
        close_listener(&self.listener);
        if !self.shared.stopping() {
            if std::thread::panicking() {
                log::error!("the accept loop panicked; shutting down");
            } else {
                log::warn!("the accept loop was dropped before shutdown; shutting down");
            }
            self.shared.acceptor_lost::<R>();
        }
        self.shared.set_accepting(false);
        if let Some(queue) = &self.queue {
            queue.accepted_all();
        }
    }
}

/// [`Server::run_until`]'s accept loop, a task of its own: a task per
/// connection, through [`accept_all`]; dropping `accepting` at its end
/// closes the listener (removing its socket file) before the server counts
/// as no longer accepting.
async fn accept_loop<R, H, F>(
    accepting: Accepting<R>,
    config: Arc<Config>,
    handler: Arc<H>,
    runtime: R,
) where
    R: Runtime,
    H: Fn(Request<R>) -> F + Send + Sync + 'static,
    F: Future<Output = io::Result<()>> + Send + 'static,
{
    let shared = &accepting.shared;
    accept_all(&accepting, |(slot, stream, peer): Accepted<R>| {
        runtime.spawn(serve(
            stream,
            peer,
            slot,
            Arc::clone(&config),
            Arc::clone(&handler),
            runtime.clone(),
            shared.watch(),
        ));
    })
    .await;
}

/// Both accept loops' work: accepts under the connection cap and hands each
/// connection to `start` until shutdown starts, then takes the connections
/// the kernel had completed (served rather than reset when the listener
/// closes). A listener already closed (by a dropped or finished server)
/// accepts nothing; it is closed only after the shutdown has started, which
/// ends the loop.
async fn accept_all<R: Runtime>(accepting: &Accepting<R>, mut start: impl FnMut(Accepted<R>)) {
    let listener = || lock(&accepting.listener);
    let poll = |cx: &mut Context<'_>| match listener().as_ref().and_then(|b| b.registered.as_ref())
    {
        Some(l) => l.poll_accept(cx),
        None => Poll::Pending,
    };
    while let Some(conn) = accept_one::<R>(&accepting.shared, &poll).await {
        start(conn);
    }
    let try_accept = || {
        listener()
            .as_ref()
            .and_then(|b| b.registered.as_ref())
            .and_then(|l| l.try_accept())
    };
    backlog::<R>(&accepting.shared, try_accept, start);
}

/// The acceptor behind [`Server::next`]: a task per connection reads its
/// head and queues the request. Once the server shuts down, the
/// connections the kernel had completed are taken too (and, the queue
/// being closed, answered `503`).
async fn acceptor<R: Runtime>(
    accepting: Accepting<R>,
    config: Arc<Config>,
    runtime: R,
    queue: Arc<Queue<R>>,
) {
    let shared = &accepting.shared;
    accept_all(&accepting, |(slot, stream, peer): Accepted<R>| {
        let reading = queue.reading();
        let queue = Arc::clone(&queue);
        let config = Arc::clone(&config);
        let task_runtime = runtime.clone();
        let watch = shared.watch();
        runtime.spawn(watch.guard(async move {
            if let Some(req) = request::read_head(stream, peer, slot, &config, &task_runtime).await
            {
                // Given back when the queue is closed: dropped, it is
                // answered 503.
                drop(queue.push(req));
            }
            drop(reading);
        }));
    })
    .await;
    // Dropping `accepting` (here, or with the task if the runtime drops it
    // unfinished) closes the listener, counts the server as no longer
    // accepting and tells the queue.
}

/// One connection's task under [`Server::run_until`]: reads the head, runs
/// the handler, ends the connection as it came out; gives up when the
/// shutdown is forced. The handler runs (and its future is dropped) as the
/// task of connection `id` (see [`Handback`](crate::Handback)), so that
/// the request it drops (when it returns, fails, panics or is cancelled)
/// hands its connection back here.
///
/// The big futures (reading the head, the handler's, ending) are pinned
/// here once, in place, and polled by [`Watch::or_forced`] through a
/// reference: moving them into helper futures would copy each into the
/// helper's state, and this task's size is what the runtime allocates per
/// connection.
async fn serve<R, H, F>(
    stream: R::Stream,
    peer: Addr,
    slot: Slot,
    config: Arc<Config>,
    handler: Arc<H>,
    runtime: R,
    mut watch: Watch,
) where
    R: Runtime,
    H: Fn(Request<R>) -> F + Send + Sync + 'static,
    F: Future<Output = io::Result<()>> + Send + 'static,
{
    // In a block of its own, so that the head-reading future's place in
    // this task is free again for the handler's: scgi-tokio's hello task
    // went from 6 200 to 5 208 bytes, and callgrind's count from 17 300 to
    // 16 740 instructions a request (bench/icount.sh), most of it memcpy of
    // the task as it is spawned.
    let read = {
        let read = pin!(request::read_head(
            stream,
            peer.clone(),
            slot,
            &config,
            &runtime
        ));
        watch.or_forced(read).await
    };
    let Some(Some(mut req)) = read else {
        return;
    };
    let id = request::handback_id();
    req.hand_back_to(id);
    let result = {
        let mut handled = pin!(None);
        let made = rt::polling::<R, _>(id, || {
            catch_unwind(AssertUnwindSafe(|| handled.set(Some(handler(req)))))
        });
        let ran = match made {
            Ok(()) => {
                let run = poll_fn(|cx| {
                    let polled = rt::polling::<R, _>(id, || {
                        let fut = handled.as_mut().as_pin_mut()?;
                        let polled = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
                        if !matches!(polled, Ok(Poll::Pending)) {
                            // Dropped now, so that a request it holds is
                            // handed back.
                            handled.set(None);
                        }
                        Some(polled)
                    });
                    match polled {
                        None => Poll::Ready(Ok(Ok(()))),
                        Some(Ok(Poll::Pending)) => Poll::Pending,
                        Some(Ok(Poll::Ready(out))) => Poll::Ready(Ok(out)),
                        Some(Err(panic)) => Poll::Ready(Err(panic)),
                    }
                });
                watch.or_forced(pin!(run)).await
            }
            Err(panic) => Some(Err(panic)),
        };
        match ran {
            Some(result) => result,
            None => {
                // Forced: the handler's future goes, and the connection
                // its request hands back closes without a word.
                rt::polling::<R, _>(id, || handled.set(None));
                drop(rt::take_returned::<R>());
                return;
            }
        }
    };
    let returned = rt::take_returned::<R>();
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
            Ok(Ok(())) => Outcome::Done,
            Ok(Err(e)) => {
                let level = returned
                    .as_ref()
                    .map_or(log::Level::Error, |r| r.conn.failure_severity().level());
                log::log!(level, "{peer}: handler failed on {what}: {e}");
                Outcome::Failed
            }
            Err(panic) => {
                log::error!(
                    "{peer}: handler panicked on {what}: {}",
                    panic_message(&*panic)
                );
                Outcome::Failed
            }
        }
    };
    if let Some(mut returned) = returned {
        let _ = watch
            .or_forced(pin!(returned.complete(outcome, &peer)))
            .await;
    }
}

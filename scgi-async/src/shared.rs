//! State shared by a server, its connections and its [`ShutdownHandle`]s:
//! the connection cap, the shutdown phases, and who to wake when they
//! change. Plain wakers under one mutex: nothing here allocates per
//! connection once the lists have grown to the server's peak.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use scgi_proto::server::{Config, Counters, Stats};

use crate::rt::Runtime;

/// Wakers to wake together.
#[derive(Debug, Default)]
struct Wakers(Vec<Waker>);

impl Wakers {
    fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    fn wake_all(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}

#[derive(Debug)]
struct State {
    /// Connections accepted and not yet closed.
    open: usize,
    cap: usize,
    /// Whether a serving loop holds the listener (shutdown waits for it).
    accepting: bool,
    shutdown_timeout: Duration,
    /// When shutting down gives up waiting; set when it starts.
    deadline: Option<Instant>,
    /// Woken when shutdown starts and when it is forced.
    on_stop: Wakers,
    /// Woken when a connection closes or the listener does.
    on_change: Wakers,
    /// Each connection task's waker, by [`Watch`] index: woken when the
    /// shutdown is forced.
    tasks: Vec<Option<Waker>>,
    free: Vec<usize>,
}

/// See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Shared {
    /// What the server is doing (see [`Stats`]).
    pub(crate) counters: Counters,
    /// [`Config::access_log`].
    access_log: AtomicBool,
    /// `READY=1` and `STOPPING=1` to systemd.
    #[cfg(unix)]
    readiness: scgi_net::systemd::Readiness,
    stopping: AtomicBool,
    /// The shutdown deadline passed: connections give up.
    forced: AtomicBool,
    /// An accept loop ended on its own (it panicked, or its runtime dropped
    /// it) and that started the shutdown: `run_until` and `next` report it
    /// as an error.
    acceptor_lost: AtomicBool,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(config: &Config) -> Shared {
        Shared {
            counters: Counters::new(),
            access_log: AtomicBool::new(config.access_log),
            #[cfg(unix)]
            readiness: scgi_net::systemd::Readiness::new(),
            stopping: AtomicBool::new(false),
            forced: AtomicBool::new(false),
            acceptor_lost: AtomicBool::new(false),
            state: Mutex::new(State {
                open: 0,
                cap: config.connection_cap(),
                accepting: false,
                shutdown_timeout: config.shutdown_timeout,
                deadline: None,
                on_stop: Wakers::default(),
                on_change: Wakers::default(),
                tasks: Vec::new(),
                free: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn reconfigure(&self, config: &Config) {
        self.access_log.store(config.access_log, Ordering::Relaxed);
        let mut st = self.lock();
        st.cap = config.connection_cap();
        st.shutdown_timeout = config.shutdown_timeout;
        st.on_change.wake_all();
    }

    /// The server serves: tell systemd (`READY=1`, if it asked).
    pub(crate) fn serving(&self) {
        #[cfg(unix)]
        self.readiness.serving(module_path!());
    }

    /// Whether to log an access line per request.
    pub(crate) fn access_log(&self) -> bool {
        self.access_log.load(Ordering::Relaxed)
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn is_forced(&self) -> bool {
        self.forced.load(Ordering::Acquire)
    }

    /// Shuts down because an accept loop ended on its own; if that is what
    /// starts the shutdown (no requested one came first), `run_until` and
    /// `next` report it ([`lost_error`](Shared::lost_error)).
    pub(crate) fn acceptor_lost<R: Runtime>(&self) {
        self.start_shutdown::<R>(true);
    }

    /// The error `run_until` and `next` return once an accept loop that
    /// ended on its own started the shutdown; `None` after a requested one.
    pub(crate) fn lost_error(&self) -> Option<std::io::Error> {
        self.acceptor_lost.load(Ordering::Acquire).then(|| {
            std::io::Error::other(
                "the accept loop ended before shutdown (it panicked, or the runtime dropped its task)",
            )
        })
    }

    /// Ready once shutdown has started.
    pub(crate) fn poll_stop(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.stopping() {
            return Poll::Ready(());
        }
        let mut st = self.lock();
        if self.stopping() {
            return Poll::Ready(());
        }
        st.on_stop.register(cx.waker());
        Poll::Pending
    }

    /// A free connection slot, waiting for one; `None` once shutdown
    /// starts.
    pub(crate) fn poll_acquire(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<Option<Slot>> {
        let mut st = self.lock();
        if self.stopping() {
            return Poll::Ready(None);
        }
        if st.open < st.cap {
            st.open += 1;
            return Poll::Ready(Some(Slot(Arc::clone(self), false)));
        }
        st.on_change.register(cx.waker());
        st.on_stop.register(cx.waker());
        Poll::Pending
    }

    /// A free slot if there is one, even while shutting down (for the
    /// connections already in the listen backlog).
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        let mut st = self.lock();
        (st.open < st.cap).then(|| {
            st.open += 1;
            Slot(Arc::clone(self), false)
        })
    }

    /// A place to register a connection's task for a forced shutdown.
    pub(crate) fn watch(self: &Arc<Self>) -> Watch {
        let mut st = self.lock();
        let index = st.free.pop().unwrap_or_else(|| {
            st.tasks.push(None);
            st.tasks.len() - 1
        });
        Watch {
            shared: Arc::clone(self),
            index,
            registered: None,
        }
    }

    /// Starts a shutdown: stop accepting, let requests finish until the
    /// deadline. Later calls change nothing.
    pub(crate) fn shutdown<R: Runtime>(&self) {
        self.start_shutdown::<R>(false);
    }

    /// [`shutdown`](Shared::shutdown); `lost`: an accept loop ended on its
    /// own, which is noted if it is what starts the shutdown.
    fn start_shutdown<R: Runtime>(&self, lost: bool) {
        {
            // The flag and the deadline change together, under the lock,
            // so that no waiter sees one without the other.
            let mut st = self.lock();
            if self.stopping.swap(true, Ordering::AcqRel) {
                return;
            }
            if lost {
                self.acceptor_lost.store(true, Ordering::Release);
            }
            st.deadline = R::now().checked_add(st.shutdown_timeout);
            st.on_stop.wake_all();
            st.on_change.wake_all();
        }
        log::info!("shutting down: no new connections");
        #[cfg(unix)]
        self.readiness.stopping(module_path!());
    }

    pub(crate) fn set_accepting(&self, on: bool) {
        let mut st = self.lock();
        st.accepting = on;
        st.on_change.wake_all();
    }

    /// After [`shutdown`](Shared::shutdown): waits until the listener is
    /// closed and every connection is finished, or the deadline passes, in
    /// which case the remaining connections are closed (their tasks give
    /// up; requests elsewhere fail their I/O). Returns whether everything
    /// finished in time.
    pub(crate) async fn wait_stopped<R: Runtime>(&self) -> bool {
        let deadline = {
            let st = self.lock();
            st.deadline
                .or_else(|| R::now().checked_add(st.shutdown_timeout))
        };
        let mut timer = pin!(deadline.map(R::sleep_until));
        poll_fn(|cx| {
            let mut st = self.lock();
            if !st.accepting && st.open == 0 {
                return Poll::Ready(!self.is_forced());
            }
            let passed = match timer.as_mut().as_pin_mut() {
                Some(timer) => timer.poll(cx).is_ready(),
                None => false,
            };
            if !passed {
                st.on_change.register(cx.waker());
                return Poll::Pending;
            }
            log::warn!(
                "shutdown deadline passed with {} connection(s) open: closing them",
                st.open
            );
            self.forced.store(true, Ordering::Release);
            for w in st.tasks.iter_mut().filter_map(Option::take) {
                w.wake();
            }
            st.on_stop.wake_all();
            Poll::Ready(false)
        })
        .await
    }
}

/// One connection's place under
/// [`max_connections`](Config::max_connections); released when dropped
/// (by the finished request, the upgraded stream, or an unanswered
/// connection). Taken before accepting; once a connection holds it,
/// [`opened`](Slot::opened) counts it open until the slot is dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Shared>, bool);

impl Slot {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.0
    }

    /// A connection was accepted into this slot.
    pub(crate) fn opened(&mut self) {
        self.1 = true;
        self.0.counters.opened();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.1 {
            self.0.counters.closed();
        }
        let mut st = self.0.lock();
        st.open -= 1;
        st.on_change.wake_all();
    }
}

/// A connection task's registration for a forced shutdown.
#[derive(Debug)]
pub(crate) struct Watch {
    shared: Arc<Shared>,
    index: usize,
    /// The waker registered last: while it is the task's, polls take no
    /// lock.
    registered: Option<Waker>,
}

impl Watch {
    /// Ready once the shutdown is forced.
    pub(crate) fn poll_forced(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.is_forced() {
            return Poll::Ready(());
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let mut st = self.shared.lock();
        if self.shared.is_forced() {
            return Poll::Ready(());
        }
        st.tasks[self.index] = Some(cx.waker().clone());
        self.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Watch {
    /// Runs `task` until it ends or the shutdown is forced.
    pub(crate) async fn guard<F: Future<Output = ()>>(mut self, task: F) {
        let _ = self.or_forced(pin!(task)).await;
    }

    /// Polls `fut` (pinned by the caller, in place) until it completes
    /// (`Some`) or the shutdown is forced (`None`).
    pub(crate) async fn or_forced<F: Future>(&mut self, mut fut: Pin<&mut F>) -> Option<F::Output> {
        poll_fn(|cx| match fut.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready(Some(out)),
            Poll::Pending => self.poll_forced(cx).map(|()| None),
        })
        .await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.tasks[self.index] = None;
        st.free.push(self.index);
    }
}

/// A handle that stops a [`Server`](crate::Server) from another task or
/// thread: cloneable, `Send` and `Sync`.
///
/// [`Server::run_until`](crate::Server::run_until) takes a future instead,
/// for the common case (a Ctrl-C signal).
#[derive(Debug)]
pub struct ShutdownHandle<R> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) runtime: std::marker::PhantomData<fn() -> R>,
}

impl<R> Clone for ShutdownHandle<R> {
    fn clone(&self) -> Self {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
            runtime: std::marker::PhantomData,
        }
    }
}

impl<R: Runtime> ShutdownHandle<R> {
    /// Stops accepting connections and returns at once. Requests already
    /// accepted (including those the kernel completed before this call)
    /// are still served; [`Server::run`](crate::Server::run) returns when
    /// they are finished or the
    /// [`shutdown_timeout`](Config::shutdown_timeout) passes, and
    /// [`Server::next`](crate::Server::next) returns `None`.
    pub fn shutdown(&self) {
        self.shared.shutdown::<R>();
    }

    /// [`shutdown`](ShutdownHandle::shutdown), then waits until the
    /// listener is closed and every connection is finished, for at most the
    /// [`shutdown_timeout`](Config::shutdown_timeout). Past it the remaining
    /// connections are closed. Returns whether everything finished in time.
    pub async fn close(&self) -> bool {
        self.shared.shutdown::<R>();
        self.shared.wait_stopped::<R>().await
    }

    /// Whether a shutdown was requested.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        self.shared.stopping()
    }

    /// What the server has done so far: connections open and accepted,
    /// requests, responses by status class, timeouts, malformed requests,
    /// waits at the connection cap (see [`Stats`]). A few relaxed atomic
    /// loads: cheap enough to poll for a metrics endpoint.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }
}

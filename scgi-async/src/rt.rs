//! What the server needs from a runtime: a socket, a listener, a timer, a
//! way to spawn a task, and a thread-local slot for dropped requests. A
//! runtime crate implements these in a hundred lines or so; everything
//! else is this crate's.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::LocalKey;
use std::time::Instant;

use bytes::BytesMut;
use scgi_net::Addr;

use crate::request::Returned;

/// An async runtime the server runs on: its socket and listener types, its
/// timer, how it spawns tasks, and where a dropped request waits for its
/// connection's task (see [`Handback`]).
///
/// A value of it is what [`Server`](crate::Server) spawns with (a unit
/// struct for a runtime with a global executor, a spawner handle for
/// others); [`Default`] gives the one a server starts with.
pub trait Runtime: Clone + Default + std::fmt::Debug + Send + Sync + Unpin + 'static {
    /// A connection's socket.
    type Stream: Socket;
    /// A listener registered with the runtime's reactor.
    type Listener: Accept<Stream = Self::Stream>;
    /// A timer that completes at a deadline. Pinned where it is used, so it
    /// need not be `Unpin` (tokio's `Sleep` is not).
    type Sleep: Future<Output = ()> + Send + Sync;

    /// Runs `task` in the background to its end. A runtime that cannot
    /// spawn here (tokio outside a runtime) drops it: the connection it
    /// holds then just closes (and if it is the accept loop of
    /// [`Server::run`](crate::Server::run), the server shuts down).
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F);

    /// Whether [`spawn`](Runtime::spawn) can work: an error here makes
    /// [`Server::run`](crate::Server::run) and
    /// [`Server::next`](crate::Server::next) fail at once (a runtime
    /// crate with no executor configured).
    fn check(&self) -> io::Result<()> {
        Ok(())
    }

    /// The runtime's clock (tokio's, so that a paused test clock applies).
    fn now() -> Instant;

    /// A timer that completes at `deadline`.
    fn sleep_until(deadline: Instant) -> Self::Sleep;

    /// Moves a timer to `deadline`.
    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant);

    /// This runtime's hand-back slot: a `thread_local!` the runtime crate
    /// declares for its own type (statics cannot be generic), e.g.
    ///
    /// ```ignore
    /// thread_local! {
    ///     static HANDBACK: Handback<MyRuntime> = const { Handback::new() };
    /// }
    /// ```
    fn handback() -> &'static LocalKey<Handback<Self>>;
}

/// A connection's socket, as the server reads and writes it: non-blocking
/// reads and writes that register the task for readiness, plus the few
/// socket options ending a connection needs.
pub trait Socket: Send + Sync + Unpin + 'static {
    /// Reads what is available into `buf`.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Reads what is available into `buf`'s spare capacity (reserved by
    /// the caller). The default zeroes the room first; a runtime that can
    /// read into uninitialized memory safely (tokio's `try_read_buf`)
    /// skips that.
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        buf.resize(buf.capacity(), 0);
        let read = self.poll_read(cx, &mut buf[len..]);
        let n = match &read {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        buf.truncate(len + n);
        read
    }

    /// Writes from `bufs`, in order, what the socket takes.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Shuts down the read, write or both halves, without waiting.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;

    /// Whether the peer has sent anything not read yet (peeked, without
    /// waiting: [`scgi_net::has_pending_input`]).
    fn has_pending_input(&self) -> io::Result<bool>;

    /// Makes closing send a reset (linger zero) instead of an orderly end.
    fn set_abortive_close(&self) -> io::Result<()>;
}

/// A listener in the runtime's reactor.
pub trait Accept: Sized + Send + Sync + 'static {
    /// The sockets it accepts.
    type Stream;

    /// Registers `listener` with the reactor (making it non-blocking).
    /// Called inside the runtime, when serving starts.
    fn register(listener: scgi_net::Listener) -> io::Result<Self>;

    /// Accepts a connection, or registers the task to be woken when one
    /// is ready.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Stream, Addr)>>;

    /// Accepts a connection the kernel has completed, without waiting:
    /// `None` when there is none. Used at shutdown, for the connections
    /// left in the listen backlog, so it must ask the socket itself, not a
    /// readiness the reactor may not have caught up with (tokio's
    /// `poll_accept` answers `Pending` until its reactor has seen the
    /// connection arrive). The default polls
    /// [`poll_accept`](Accept::poll_accept) once, right for a listener
    /// that tries the socket first.
    fn try_accept(&self) -> Option<io::Result<(Self::Stream, Addr)>> {
        match self.poll_accept(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(accepted) => Some(accepted),
            Poll::Pending => None,
        }
    }
}

/// Where a request dropped by its handler leaves its connection for the
/// connection's task, without an allocation: one per thread and runtime
/// (see [`Runtime::handback`]). The task names its connection here around
/// each poll (and the drop) of the handler's future; a request of that
/// connection dropped meanwhile puts its connection in, and the task takes
/// it out before the poll returns. A request dropped anywhere else
/// finishes in a task of its own.
pub struct Handback<R: Runtime> {
    /// The connection whose task is polling on this thread.
    polling: Cell<Option<u64>>,
    returned: RefCell<Option<Returned<R>>>,
}

impl<R: Runtime> Handback<R> {
    /// An empty slot.
    #[must_use]
    pub const fn new() -> Self {
        Handback {
            polling: Cell::new(None),
            returned: RefCell::new(None),
        }
    }
}

impl<R: Runtime> Default for Handback<R> {
    fn default() -> Self {
        Handback::new()
    }
}

/// Runs `f` as connection `id`'s task (see [`Handback`]).
pub(crate) fn polling<R: Runtime, T>(id: u64, f: impl FnOnce() -> T) -> T {
    struct Restore<R: Runtime>(Option<u64>, std::marker::PhantomData<R>);
    impl<R: Runtime> Drop for Restore<R> {
        fn drop(&mut self) {
            let _ = R::handback().try_with(|h| h.polling.set(self.0));
        }
    }
    let previous = R::handback()
        .try_with(|h| h.polling.replace(Some(id)))
        .ok()
        .flatten();
    let _restore = Restore::<R>(previous, std::marker::PhantomData);
    f()
}

/// Offers a dropped request's connection to its task: `None` if the task
/// is polling on this thread and took it, else it comes back.
pub(crate) fn hand_back<R: Runtime>(id: u64, returned: Returned<R>) -> Option<Returned<R>> {
    let mut returned = Some(returned);
    let _ = R::handback().try_with(|h| {
        if h.polling.get() == Some(id)
            && let Ok(mut slot) = h.returned.try_borrow_mut()
            && slot.is_none()
        {
            *slot = returned.take();
        }
    });
    returned
}

/// The connection handed back during the last poll, if any.
pub(crate) fn take_returned<R: Runtime>() -> Option<Returned<R>> {
    R::handback()
        .try_with(|h| h.returned.try_borrow_mut().ok()?.take())
        .ok()
        .flatten()
}

/// The result of [`race`].
pub(crate) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Runs two futures until the first completes (`a` wins a tie) and drops
/// the other.
pub(crate) async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        b.as_mut().poll(cx).map(Either::Right)
    })
    .await
}

/// `f`, given up on (`None`) at `deadline` (`None`: never).
pub(crate) async fn within<R: Runtime, F: Future>(
    deadline: Option<Instant>,
    f: F,
) -> Option<F::Output> {
    match deadline {
        None => Some(f.await),
        Some(at) => match race(f, R::sleep_until(at)).await {
            Either::Left(out) => Some(out),
            Either::Right(()) => None,
        },
    }
}

/// The deadline of one wait of a read or a write: armed when the operation
/// first has to wait, disarmed when it completes. Its timer is boxed, once
/// per request and only if an operation ever waits, so that the request
/// stays `Unpin`.
pub(crate) struct Timer<R: Runtime> {
    sleep: Option<Pin<Box<R::Sleep>>>,
    armed: bool,
}

impl<R: Runtime> Timer<R> {
    pub(crate) fn new() -> Self {
        Timer {
            sleep: None,
            armed: false,
        }
    }

    /// Whether the armed deadline has passed (then it is disarmed: a
    /// retried operation waits afresh).
    pub(crate) fn passed(&mut self, cx: &mut Context<'_>) -> bool {
        let passed = self.armed
            && self
                .sleep
                .as_mut()
                .is_some_and(|s| s.as_mut().poll(cx).is_ready());
        if passed {
            self.armed = false;
        }
        passed
    }

    /// The operation must wait: arms the deadline `deadline` gives (`None`:
    /// never), unless armed already, and says whether it has passed (if
    /// not, the timer will wake the task).
    pub(crate) fn pending(
        &mut self,
        cx: &mut Context<'_>,
        deadline: impl FnOnce() -> Option<Instant>,
    ) -> bool {
        if !self.armed {
            let Some(at) = deadline() else {
                return false;
            };
            match &mut self.sleep {
                Some(sleep) => R::reset(sleep.as_mut(), at),
                None => self.sleep = Some(Box::pin(R::sleep_until(at))),
            }
            self.armed = true;
        }
        self.passed(cx)
    }

    /// The operation completed.
    pub(crate) fn done(&mut self) {
        self.armed = false;
    }
}

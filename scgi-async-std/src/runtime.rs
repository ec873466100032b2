//! The binding of `scgi-async`: [`AsyncIo`], sockets and timers on
//! `async-io` (the reactor async-std and smol share) and tasks on any
//! executor, through [`Spawn`]: the only part that differs between
//! async-std and smol.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::LocalKey;
use std::time::Instant;

use scgi_async::{Handback, Runtime};

use crate::net::{AsyncIoListener, Stream};

/// `async-io`'s reactor and timers, with tasks spawned by a [`Spawn`]er:
/// what `scgi-async` runs on here. Set the spawner with
/// [`Server::with_spawner`](scgi_async::Server::with_spawner) (any
/// [`Spawn`] converts into it); without one it spawns on async-std
/// (`AsyncStd`) when the `async-std` feature is on, and serving fails with
/// [`InvalidInput`](io::ErrorKind::InvalidInput) when it is off.
#[derive(Clone, Default)]
pub struct AsyncIo {
    spawner: Option<Arc<dyn Spawn>>,
}

impl fmt::Debug for AsyncIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncIo")
            .field("spawner", &self.spawner.as_ref().map(|_| "Spawn"))
            .finish()
    }
}

impl<S: Spawn> From<S> for AsyncIo {
    fn from(spawner: S) -> Self {
        AsyncIo {
            spawner: Some(Arc::new(spawner)),
        }
    }
}

/// An `async-io` timer that completes at a deadline (the [`AsyncIo`]
/// runtime's).
#[derive(Debug)]
pub struct Sleep(async_io::Timer);

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx).map(drop)
    }
}

thread_local! {
    static HANDBACK: Handback<AsyncIo> = const { Handback::new() };
}

impl Runtime for AsyncIo {
    type Stream = Stream;
    type Listener = AsyncIoListener;
    type Sleep = Sleep;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        match &self.spawner {
            Some(spawner) => spawner.spawn(Box::pin(task)),
            #[cfg(feature = "async-std")]
            None => AsyncStd.spawn(Box::pin(task)),
            #[cfg(not(feature = "async-std"))]
            None => log::error!("no spawner: a task was dropped"),
        }
    }

    fn check(&self) -> io::Result<()> {
        if self.spawner.is_some() || cfg!(feature = "async-std") {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no spawner: call Server::with_spawner (e.g. with scgi_async_std::Smol) \
             or enable the async-std feature",
        ))
    }

    fn now() -> Instant {
        Instant::now()
    }

    fn sleep_until(deadline: Instant) -> Sleep {
        Sleep(async_io::Timer::at(deadline))
    }

    fn reset(sleep: Pin<&mut Sleep>, deadline: Instant) {
        sleep.get_mut().0.set_at(deadline);
    }

    fn handback() -> &'static LocalKey<Handback<Self>> {
        &HANDBACK
    }
}

/// A task the server hands to a [`Spawn`]er: one per connection, one for
/// the accept loop of `Server::run`, and one per request dropped outside
/// its connection's task.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs tasks to completion in the background: the one thing the server
/// needs from an executor.
///
/// Implemented by `AsyncStd` (feature `async-std`), `Smol` and
/// `Arc<smol::Executor<'static>>` (feature `smol`), and by any
/// `Fn(Task) + Send + Sync + 'static` closure, so another executor takes one
/// line:
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use std::sync::Arc;
///
/// // An executor of your own (here smol's, which any `async-executor` is).
/// let ex = Arc::new(smol::Executor::new());
/// let spawner = {
///     let ex = Arc::clone(&ex);
///     move |task| ex.spawn(task).detach()
/// };
/// let server = scgi_async_std::Server::bind_tcp("127.0.0.1:0")?.with_spawner(spawner);
/// # drop(server);
/// # Ok(())
/// # }
/// ```
///
/// A task must not be dropped before it completes: the server counts the
/// connection as open until its task ends.
pub trait Spawn: Send + Sync + 'static {
    /// Starts `task` in the background and returns at once.
    fn spawn(&self, task: Task);
}

impl<F> Spawn for F
where
    F: Fn(Task) + Send + Sync + 'static,
{
    fn spawn(&self, task: Task) {
        self(task);
    }
}

/// Spawns on async-std's global executor (`async_std::task::spawn`): the
/// default spawner when the `async-std` feature is on.
///
/// async-std is discontinued (its 1.13.1 release notes point to smol;
/// advisory RUSTSEC-2025-0052). It keeps working, and this crate keeps its
/// async-std part to this type and the listener conversions.
#[cfg(feature = "async-std")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsyncStd;

#[cfg(feature = "async-std")]
impl Spawn for AsyncStd {
    fn spawn(&self, task: Task) {
        // Dropping async-std's JoinHandle detaches the task.
        drop(async_std::task::spawn(task));
    }
}

/// Spawns on smol's global executor (`smol::spawn`, run by threads smol
/// starts itself, `SMOL_THREADS` of them).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let server = scgi_async_std::Server::bind_tcp("127.0.0.1:0")?
///     .with_spawner(scgi_async_std::Smol);
/// # drop(server);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "smol")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Smol;

#[cfg(feature = "smol")]
impl Spawn for Smol {
    fn spawn(&self, task: Task) {
        smol::spawn(task).detach();
    }
}

/// Spawns on this executor; whoever owns it must keep running it (smol's
/// usual `block_on(ex.run(...))` on one or more threads).
#[cfg(feature = "smol")]
impl Spawn for std::sync::Arc<smol::Executor<'static>> {
    fn spawn(&self, task: Task) {
        smol::Executor::spawn(self, task).detach();
    }
}

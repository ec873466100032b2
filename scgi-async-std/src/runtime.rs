//! The runtime-specific part: how a task is spawned. Everything else
//! (sockets, timers) runs on `async-io`, the reactor async-std and smol
//! share, so this is all that differs between them.

use std::future::Future;
use std::pin::Pin;

/// A task the server hands to a [`Spawn`]er: one per connection, plus the
/// acceptor behind [`Server::next`](crate::Server::next).
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

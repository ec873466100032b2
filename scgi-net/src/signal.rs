//! The graceful stop on `SIGTERM` and `SIGINT`, for every runtime: a
//! future for the async servers, a blocking wait for the threaded one.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use signal_hook::consts::signal::{SIGINT, SIGTERM};

/// What the signal thread shares with every [`ShutdownSignal`].
#[derive(Debug, Default)]
struct Hub {
    state: Mutex<State>,
    fired: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The first signal received.
    signal: Option<i32>,
    /// The waker of each [`ShutdownSignal`] polled and not yet dropped, by
    /// its id.
    wakers: Vec<(u64, Waker)>,
    next_id: u64,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The process's one hub, with its handlers installed on first use (an
/// error then is kept, and every later call gets it again).
static HUB: OnceLock<Result<Arc<Hub>, (io::ErrorKind, String)>> = OnceLock::new();

fn install() -> Result<Arc<Hub>, (io::ErrorKind, String)> {
    let fail = |e: io::Error| (e.kind(), format!("installing SIGTERM/SIGINT handlers: {e}"));
    let armed = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        // Order matters: the conditional default runs first, so the first
        // signal (flag still false) is only recorded and the second one,
        // while the graceful stop runs, terminates as the default would.
        signal_hook::flag::register_conditional_default(sig, Arc::clone(&armed)).map_err(fail)?;
        signal_hook::flag::register(sig, Arc::clone(&armed)).map_err(fail)?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(fail)?;
    let hub = Arc::new(Hub::default());
    let theirs = Arc::clone(&hub);
    std::thread::Builder::new()
        .name("scgi-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
                log::info!("{name} received: stopping gracefully (a second one stops at once)");
                let wakers = {
                    let mut st = theirs.lock();
                    st.signal = Some(sig);
                    std::mem::take(&mut st.wakers)
                };
                theirs.fired.notify_all();
                wakers.into_iter().for_each(|(_, w)| w.wake());
            }
        })
        .map_err(fail)?;
    Ok(hub)
}

/// Resolves when the process receives `SIGTERM` (what systemd, Docker and
/// Kubernetes send to stop a service) or `SIGINT` (Ctrl-C): the signal each
/// server's `run_until` takes for a graceful stop. Each runtime crate hands
/// it out as `shutdown_signal()`.
///
/// The first call installs the handlers, process-wide, and starts one
/// thread that waits for the signals; every `ShutdownSignal` then resolves
/// on the first signal, including one received before it was made. After
/// that first signal, a second `SIGTERM` or `SIGINT` terminates the process
/// at once, as if no handler were installed: the way out of a graceful
/// stop that takes too long. The handlers stay installed for the rest of
/// the process.
///
/// It is a [`Future`] (for the async servers) and has a blocking
/// [`wait`](ShutdownSignal::wait) (for `scgi-blocking`).
#[derive(Debug)]
pub struct ShutdownSignal {
    hub: Arc<Hub>,
    /// This signal's place among the hub's wakers.
    id: u64,
}

impl Clone for ShutdownSignal {
    fn clone(&self) -> Self {
        ShutdownSignal::with_hub(Arc::clone(&self.hub))
    }
}

impl Drop for ShutdownSignal {
    fn drop(&mut self) {
        let id = self.id;
        self.hub.lock().wakers.retain(|(w, _)| *w != id);
    }
}

impl ShutdownSignal {
    /// Installs the handlers if no earlier call did, and returns a signal
    /// to wait for. Fails only if the handlers or the waiting thread
    /// cannot be set up.
    pub fn new() -> io::Result<ShutdownSignal> {
        match HUB.get_or_init(install) {
            Ok(hub) => Ok(ShutdownSignal::with_hub(Arc::clone(hub))),
            Err((kind, message)) => Err(io::Error::new(*kind, message.clone())),
        }
    }

    fn with_hub(hub: Arc<Hub>) -> ShutdownSignal {
        let id = {
            let mut st = hub.lock();
            st.next_id += 1;
            st.next_id
        };
        ShutdownSignal { hub, id }
    }

    /// The signal received (`SIGTERM` is 15, `SIGINT` 2), if one was.
    #[must_use]
    pub fn received(&self) -> Option<i32> {
        self.hub.lock().signal
    }

    /// Blocks the calling thread until a signal is received.
    pub fn wait(self) {
        let hub = Arc::clone(&self.hub);
        drop(self);
        let mut st = hub.lock();
        while st.signal.is_none() {
            st = hub.fired.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Future for ShutdownSignal {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let id = self.id;
        let mut st = self.hub.lock();
        if st.signal.is_some() {
            return Poll::Ready(());
        }
        // One waker per `ShutdownSignal`, the latest, removed when it is
        // dropped: many short-lived signals (one per task) cost nothing
        // once gone.
        match st.wakers.iter_mut().find(|(w, _)| *w == id) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => st.wakers.push((id, cx.waker().clone())),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::ShutdownSignal;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// A signal polled and dropped leaves no waker behind (one per task
    /// would otherwise pile up until the process ends).
    #[test]
    fn dropped_signals_leave_no_wakers() {
        let first = ShutdownSignal::new().expect("handlers");
        let before = first.hub.lock().wakers.len();
        for _ in 0..1000 {
            let signal = pin!(ShutdownSignal::new().expect("handlers"));
            let mut cx = Context::from_waker(Waker::noop());
            assert_eq!(signal.poll(&mut cx), Poll::Pending);
        }
        {
            let mut polled = pin!(first.clone());
            let mut cx = Context::from_waker(Waker::noop());
            assert_eq!(polled.as_mut().poll(&mut cx), Poll::Pending);
            assert_eq!(polled.as_mut().poll(&mut cx), Poll::Pending);
            assert_eq!(first.hub.lock().wakers.len(), before + 1);
        }
        assert_eq!(first.hub.lock().wakers.len(), before);
    }
}

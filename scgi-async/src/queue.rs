//! The requests [`Server::next`](crate::Server::next) hands out: read by
//! connection tasks an acceptor task spawns, and queued until taken.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::request::Request;
use crate::rt::Runtime;

struct State<R: Runtime> {
    items: VecDeque<Request<R>>,
    /// The server was closed: nothing is taken any more.
    closed: bool,
    /// Whether the acceptor has ended (no more connections come).
    accepted_all: bool,
    /// Connection tasks still reading a head.
    reading: usize,
    /// The task waiting in `next`.
    waker: Option<Waker>,
}

/// See the [module docs](self).
pub(crate) struct Queue<R: Runtime> {
    state: Mutex<State<R>>,
}

impl<R: Runtime> Queue<R> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                accepted_all: false,
                reading: 0,
                waker: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(mut st: MutexGuard<'_, State<R>>) {
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Queues `req`; gives it back if the queue is closed (then dropping
    /// it answers `503`: it is marked queued and never taken).
    pub(crate) fn push(&self, mut req: Request<R>) -> Option<Request<R>> {
        req.set_queued(true);
        let mut st = self.lock();
        if st.closed {
            return Some(req);
        }
        st.items.push_back(req);
        Self::wake(st);
        None
    }

    /// The next request; `None` once the queue is closed, or once nothing
    /// more can come (the acceptor ended and no head is being read).
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<Request<R>>> {
        let mut st = self.lock();
        if let Some(mut req) = st.items.pop_front() {
            req.set_queued(false);
            return Poll::Ready(Some(req));
        }
        if st.closed || (st.accepted_all && st.reading == 0) {
            return Poll::Ready(None);
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Closes the queue; the requests in it are dropped (answered `503`)
    /// outside the lock.
    pub(crate) fn close(&self) {
        let items = {
            let mut st = self.lock();
            st.closed = true;
            std::mem::take(&mut st.items)
        };
        drop(items);
    }

    /// The acceptor has ended.
    pub(crate) fn accepted_all(&self) {
        let mut st = self.lock();
        st.accepted_all = true;
        Self::wake(st);
    }

    /// A connection task starts reading a head; the guard says when it is
    /// done.
    pub(crate) fn reading(self: &Arc<Self>) -> Reading<R> {
        self.lock().reading += 1;
        Reading(Arc::clone(self))
    }
}

/// A head being read for the queue (see [`Queue::reading`]).
pub(crate) struct Reading<R: Runtime>(Arc<Queue<R>>);

impl<R: Runtime> Drop for Reading<R> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.reading -= 1;
        Queue::wake(st);
    }
}

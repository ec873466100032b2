//! `run`'s worker threads: at least [`Config::workers`], and one more
//! whenever all of them are busy, up to the connection cap, so that
//! connections that hold a worker without finishing their request (idle
//! ones reading no head yet, bodies that trickle) never keep a fresh
//! request waiting while fewer than `max_connections` are open, as a task
//! per connection never does on the async runtimes. A thread beyond the
//! configured number leaves after [`IDLE_EXIT`] without work.

use std::io;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use scgi_proto::server::Config;

use crate::request::Request;
use crate::server::{Conn, Inner, accept_one, serve};

/// How long a thread beyond the configured number waits for work before
/// it leaves.
pub(crate) const IDLE_EXIT: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The threads of one `run`.
pub(crate) struct Pool<H> {
    inner: Arc<Inner>,
    /// Whether the workers accept on the listener themselves (TCP) before
    /// shutdown; the queue feeds them otherwise, and after it.
    accept: bool,
    queue: Mutex<Receiver<Conn>>,
    handler: H,
    config: Arc<Config>,
    counts: Mutex<Counts>,
    /// The configured number of threads, kept however idle.
    min: usize,
    /// The most threads: one per connection the cap allows.
    max: usize,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Threads started and not yet gone.
    live: usize,
    /// Of those, the ones not serving a connection.
    idle: usize,
    /// Threads ever started, for their names.
    started: usize,
}

/// What a worker got when it looked for work.
enum Taken {
    Conn(Conn),
    /// Nothing for now (an accept that timed out or failed).
    Nothing,
    /// The server stopped: no more connections will come.
    Closed,
}

impl<H> Pool<H>
where
    H: Fn(&mut Request) -> io::Result<()> + Send + Sync + 'static,
{
    /// Starts `min` threads (`max` at least that many).
    pub(crate) fn start(
        inner: Arc<Inner>,
        accept: bool,
        queue: Receiver<Conn>,
        handler: H,
        config: Arc<Config>,
        min: usize,
    ) -> io::Result<Arc<Pool<H>>> {
        let pool = Arc::new(Pool {
            inner,
            accept,
            queue: Mutex::new(queue),
            handler,
            max: config.connection_cap().max(min),
            config,
            counts: Mutex::new(Counts::default()),
            min,
            threads: Mutex::new(Vec::new()),
        });
        for _ in 0..min {
            pool.add()?;
        }
        Ok(pool)
    }

    /// Starts one more thread, counted idle.
    fn add(self: &Arc<Self>) -> io::Result<()> {
        let n = {
            let mut c = lock(&self.counts);
            c.live += 1;
            c.idle += 1;
            c.started += 1;
            c.started
        };
        let pool = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name(format!("scgi-worker-{n}"))
            .spawn(move || pool.work());
        match spawned {
            Ok(t) => {
                lock(&self.threads).push(t);
                Ok(())
            }
            Err(e) => {
                let mut c = lock(&self.counts);
                c.live -= 1;
                c.idle -= 1;
                Err(e)
            }
        }
    }

    fn work(self: Arc<Self>) {
        let mut backoff = Duration::ZERO;
        loop {
            let conn = match self.take(&mut backoff) {
                Taken::Conn(conn) => conn,
                Taken::Nothing if self.retire() => return,
                Taken::Nothing => continue,
                Taken::Closed => {
                    let mut c = lock(&self.counts);
                    c.live -= 1;
                    c.idle -= 1;
                    return;
                }
            };
            self.busy();
            serve(conn, &self.handler, &self.config);
            lock(&self.counts).idle += 1;
        }
    }

    fn take(&self, backoff: &mut Duration) -> Taken {
        if self.accept
            && let Some((slot, bound)) = self.inner.acquire_listener()
        {
            return match accept_one(&self.inner, slot, bound, backoff) {
                Some(conn) => Taken::Conn(conn),
                None => Taken::Nothing,
            };
        }
        match lock(&self.queue).recv_timeout(IDLE_EXIT) {
            Ok(conn) => Taken::Conn(conn),
            Err(RecvTimeoutError::Timeout) => Taken::Nothing,
            Err(RecvTimeoutError::Disconnected) => Taken::Closed,
        }
    }

    /// This thread starts serving: if no other is left waiting for work,
    /// one more is started (within the cap), so the next connection finds
    /// a thread whatever this one's client does.
    fn busy(self: &Arc<Self>) {
        let grow = {
            let mut c = lock(&self.counts);
            c.idle -= 1;
            c.idle == 0 && c.live < self.max && !self.inner.stopping()
        };
        if grow && let Err(e) = self.add() {
            log::warn!("starting another worker thread: {e}");
        }
    }

    /// After waiting [`IDLE_EXIT`] without work: whether this thread is
    /// one too many (beyond the configured number, with another idle) and
    /// leaves.
    fn retire(&self) -> bool {
        let mut c = lock(&self.counts);
        if c.live > self.min && c.idle > 1 {
            c.live -= 1;
            c.idle -= 1;
            return true;
        }
        false
    }

    /// Waits for every thread to end (after the server stopped accepting
    /// and its connections finished).
    pub(crate) fn join(&self) {
        loop {
            let Some(t) = lock(&self.threads).pop() else {
                return;
            };
            let _ = t.join();
        }
    }
}

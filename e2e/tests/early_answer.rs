//! An early answer reaches the client (issue 18 item 1): a request whose
//! body the backend turns down before reading it, with a 413 from the
//! server's own body limit (`max_body`) or from a handler that answers at
//! once (as a tower layer limiting the body size would), gets that 413
//! through nginx, Apache and lighttpd, with the configs DEPLOYING.md quotes
//! (nginx's `client_max_body_size 64m`), for bodies of 10, 20 and 60 MiB:
//! 20 tries of 20 for each front end, size and way of turning down.
//!
//! The backend must read and discard the rest of the body before it
//! closes: a close with unread input resets the connection while the front
//! end is still sending, and the front end drops the answer (nginx:
//! `writev() failed (32: Broken pipe) while sending request to upstream`,
//! 502; Apache: `AH00858`, 503). Under the old drain (at most
//! `drain_limit`, 4 MiB, or `drain_timeout`, 1 s) whether the front end had
//! sent everything by then was a race that load decided. Here the reset is
//! certain, not left to load: a drain that stops after 4 MiB of a 10 MiB
//! body leaves more than the sockets can hold. Over TCP the backend's
//! receive buffer is made small ([`RECV_BUFFER`]) and the front end's send
//! buffer is at most 4 MiB (Linux's `tcp_wmem`); over a Unix socket what
//! is in flight is bounded by the sender's buffer (about 200 KiB). Half of
//! the tries go over each. They run [`CONCURRENT`] at a time, which loads
//! the machine on purpose. The servers keep their default drain settings.
//!
//! Against the old drain (commit 19af2fd^, five runs), nginx lost the
//! answer in 16 to 38 of its 120 tries a run (0 to 11 of the 20 of one
//! size and way: it sometimes reads the answer before its write fails,
//! more often over a Unix socket), Apache in all 120, lighttpd in none.
//!
//! Each front end's tries are spread over the four runtimes (5 each; the
//! drain loops are scgi-blocking's and scgi-async's).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use e2e::app::App;
use e2e::client::{Request, Response};
use e2e::{Backend, BackendSpec, Frontend, Kind, TempDir, Transport, frontend, runtime};
use scgi_proto::Limits;

/// The body sizes, in MiB.
const SIZES_MIB: [usize; 3] = [10, 20, 60];

/// Tries per front end, size, way and runtime: 5 on each of the four
/// runtimes makes 20 per front end, size and way.
const TRIES_PER_RUNTIME: usize = 5;

/// Requests in flight at once.
const CONCURRENT: usize = 4;

/// The backend listener's `SO_RCVBUF` (the kernel doubles it): small, so
/// that the old drain's stop after 4 MiB always leaves the front end with
/// bytes it cannot place.
const RECV_BUFFER: usize = 64 * 1024;

/// The server's body limit for [`Way::Limit`]: every body here is over it.
const MAX_BODY: u64 = 1024 * 1024;

/// How the backend turns the body down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    /// The lifecycle's own 413 (`max_body`), before any handler runs.
    Limit,
    /// A handler (`/refuse`) that answers 413 without reading the body.
    Handler,
}

impl Way {
    /// The backend's settings: the defaults (with the harness's shorter
    /// shutdown grace), plus the body limit for [`Way::Limit`].
    fn spec(self, spec: BackendSpec) -> BackendSpec {
        match self {
            Way::Limit => spec.with_config(
                BackendSpec::CONFIG.with_proto(
                    scgi_proto::Config::DEFAULT
                        .with_limits(Limits::DEFAULT.with_max_body(Some(MAX_BODY))),
                ),
            ),
            Way::Handler => spec,
        }
    }

    /// Where the request goes: `/echo` would read and return the body,
    /// had the limit let it through.
    fn target(self) -> &'static str {
        match self {
            Way::Limit => "/echo",
            Way::Handler => "/refuse",
        }
    }

    /// Whether `r` is the backend's 413 for this way (not the front end's
    /// own 413, nor an error page).
    fn is_answer(self, r: &Response) -> bool {
        r.status == 413
            && match self {
                Way::Limit => r.text().contains("exceeds the limit"),
                Way::Handler => r.header("X-Backend").is_some(),
            }
    }
}

/// What one try got: `413` or what it got instead.
type Tally = BTreeMap<(Way, usize), Vec<String>>;

fn early_answers_reach_the_client(kind: Kind) {
    let what = format!("e2e early 413 behind {kind}");
    if !frontend::require(kind, &what) {
        return;
    }
    let bodies: Vec<Vec<u8>> = SIZES_MIB.iter().map(|mib| vec![b'x'; mib << 20]).collect();
    let dir = TempDir::new("backend").expect("temp dir");
    let tally = Mutex::new(Tally::new());
    let mut logs = Vec::new();
    for (n, (runtime, start)) in runtime::ALL.into_iter().enumerate() {
        for way in [Way::Limit, Way::Handler] {
            // Half of each way's tries over TCP, half over a Unix socket,
            // each runtime on both.
            let transport = if (n + way as usize).is_multiple_of(2) {
                Transport::Tcp
            } else {
                Transport::Unix
            };
            let spec = BackendSpec::new(transport, dir.path(), App::new(runtime))
                .with_tcp_recv_buffer(RECV_BUFFER);
            let backend = Backend::start_spec(start, &way.spec(spec))
                .unwrap_or_else(|e| panic!("{what}: starting {runtime}: {e}"));
            let front = Frontend::start(kind, backend.addr())
                .unwrap_or_else(|e| panic!("{what}: starting {kind}: {e}"));
            let addr = front.addr();
            let tries: Vec<usize> = (0..SIZES_MIB.len())
                .flat_map(|size| [size; TRIES_PER_RUNTIME])
                .collect();
            let next = AtomicUsize::new(0);
            thread::scope(|s| {
                for _ in 0..CONCURRENT {
                    s.spawn(|| {
                        while let Some(&size) = tries.get(next.fetch_add(1, Ordering::Relaxed)) {
                            let req = Request::post(
                                way.target(),
                                "application/octet-stream",
                                bodies[size].clone(),
                            );
                            let got = match req.send(addr) {
                                Ok(r) if way.is_answer(&r) => "413".to_owned(),
                                Ok(r) => format!(
                                    "{runtime}/{}: {} {}",
                                    transport.name(),
                                    r.status,
                                    r.reason
                                ),
                                Err(e) => format!("{runtime}/{}: {e}", transport.name()),
                            };
                            tally
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .entry((way, SIZES_MIB[size]))
                                .or_default()
                                .push(got);
                        }
                    });
                }
            });
            // The backend still serves.
            let r = Request::get("/status/200").send(addr).expect("GET after");
            assert_eq!(
                r.status,
                200,
                "{what} -> {runtime}: {r:?}\n{}",
                front.logs()
            );
            logs.push(front.logs());
        }
    }
    let tally = tally.into_inner().expect("tally");
    let mut report = Vec::new();
    let mut failed = false;
    for ((way, mib), got) in &tally {
        let ok = got.iter().filter(|g| *g == "413").count();
        failed |= ok != got.len() || got.len() != 4 * TRIES_PER_RUNTIME;
        let others: Vec<&String> = got.iter().filter(|g| *g != "413").collect();
        report.push(format!(
            "{way:?} {mib} MiB: {ok} of {} got the 413 {others:?}",
            got.len()
        ));
    }
    assert_eq!(tally.len(), 2 * SIZES_MIB.len(), "{report:?}");
    assert!(
        !failed,
        "{what}:\n  {}\n{}",
        report.join("\n  "),
        logs.join("\n")
    );
}

#[test]
fn nginx() {
    early_answers_reach_the_client(Kind::Nginx);
}

#[test]
fn apache() {
    early_answers_reach_the_client(Kind::Apache);
}

#[test]
fn lighttpd() {
    early_answers_reach_the_client(Kind::Lighttpd);
}

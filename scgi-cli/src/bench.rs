//! `scgi bench`: load straight at the backend.
//!
//! `--connections` tasks each loop: connect, send the whole request (one
//! buffer, built once), read the response head through
//! `scgi_proto::ResponseParser`, read the body (to its `Content-Length`,
//! else to the close), and record the time from connect to the last byte
//! in an HDR histogram (microseconds, 3 significant digits). SCGI has one
//! request per connection, so every request pays a connect, exactly as it
//! does behind nginx. The run stops at `--duration` (requests in flight
//! then are cut and not counted) or after `--requests`.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use scgi_proto::{Decoder, Step};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep_until, timeout};

use crate::addr::BackendAddr;
use crate::request::{Body, vars};
use crate::response::{self, HeadError, READ_CHUNK};
use crate::{BenchArgs, Failure, exit};

/// Latencies above this (an hour, in microseconds) are recorded as it.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Runs `scgi bench`.
pub(crate) async fn run(args: BenchArgs) -> Result<(), Failure> {
    let request = Arc::new(build_request(&args).await?);
    let duration = match (args.duration, args.requests) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let shared = Arc::new(Shared {
        issued: AtomicU64::new(0),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let start = Instant::now();
    let deadline = duration.map(|d| start + d);
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        workers.push(tokio::spawn(worker(
            args.addr.clone(),
            Arc::clone(&request),
            Arc::clone(&shared),
            args.requests,
            deadline,
            args.timeout,
        )));
    }
    let progress = (!args.no_progress && io::stderr().is_terminal()).then(|| {
        let bar = match (args.requests, duration) {
            (Some(n), None) => ProgressBar::new(n),
            (_, Some(d)) => ProgressBar::new(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            (None, None) => ProgressBar::new_spinner(),
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let ticker = progress.clone().map(|bar| {
        let shared = Arc::clone(&shared);
        let by_count = args.requests.is_some() && duration.is_none();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let done = shared.done.load(Ordering::Relaxed);
                let elapsed = start.elapsed();
                bar.set_position(if by_count {
                    done
                } else {
                    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
                });
                bar.set_message(format!(
                    "{done} requests, {:.0}/s, {} errors",
                    done as f64 / elapsed.as_secs_f64().max(1e-9),
                    shared.errors.load(Ordering::Relaxed)
                ));
            }
        })
    });
    let stop_on_ctrl_c = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shared.stop.store(true, Ordering::Relaxed);
            }
        })
    };

    let mut total = Tally::new();
    for w in workers {
        match w.await {
            Ok(t) => total.merge(&t),
            Err(e) => {
                return Err(Failure::new(
                    exit::FAILURE,
                    format!("a load task failed: {e}"),
                ));
            }
        }
    }
    let elapsed = match deadline {
        Some(d) if Instant::now() >= d => d - start,
        _ => start.elapsed(),
    };
    stop_on_ctrl_c.abort();
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    let report = Report::new(&args, elapsed, &total);
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new(exit::FAILURE, format!("encoding the JSON: {e}")))?;
        println!("{json}");
    } else {
        print!("{}", report.text());
    }
    if report.responses == 0 {
        return Err(Failure::new(
            exit::FAILURE,
            format!(
                "no response from {} in {} attempts",
                args.addr,
                report.responses + report.errors.total()
            ),
        ));
    }
    Ok(())
}

/// The bytes each connection sends: a captured `.scgi` file, checked with
/// `scgi_proto::Decoder`, or a request built from the options.
async fn build_request(args: &BenchArgs) -> Result<Vec<u8>, Failure> {
    if let Some(path) = &args.request_file {
        let bytes = tokio::fs::read(path).await.map_err(|e| {
            Failure::new(exit::FAILURE, format!("reading `{}`: {e}", path.display()))
        })?;
        let bad = |why: String| {
            Failure::new(
                exit::USAGE,
                format!("`{}` is not an SCGI request: {why}", path.display()),
            )
        };
        let mut decoder = Decoder::new();
        let head = match decoder.decode(&bytes) {
            Ok(Step::Head(head)) => head,
            Ok(_) => return Err(bad("the header netstring is incomplete".into())),
            Err(e) => return Err(bad(e.to_string())),
        };
        let body = (bytes.len() - head.wire_len()) as u64;
        if body != head.content_length() {
            return Err(bad(format!(
                "CONTENT_LENGTH is {} but {body} body bytes follow the header netstring",
                head.content_length()
            )));
        }
        return Ok(bytes);
    }
    let body = match Body::open(args.spec.data.as_deref(), true).await? {
        Body::Bytes(b) => b,
        Body::None | Body::File(..) => Vec::new(),
    };
    let body_len = args.spec.data.is_some().then_some(body.len() as u64);
    let vars = vars(&args.spec, body_len)?;
    let mut request = vars
        .encode_head(body.len() as u64)
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    request.extend_from_slice(&body);
    Ok(request)
}

/// What the workers share: counters for `--requests` and the progress
/// line, and the Ctrl-C flag.
struct Shared {
    issued: AtomicU64,
    done: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
}

/// One worker's (then the run's) results.
struct Tally {
    latency: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    bytes: u64,
    errors: Errors,
}

/// Failed requests, by what went wrong.
#[derive(Clone, Copy, Debug, Default, Serialize)]
struct Errors {
    /// Could not connect.
    connect: u64,
    /// Reading or writing failed (a reset).
    io: u64,
    /// No complete answer within `--timeout`.
    timeout: u64,
    /// Closed before a complete response head.
    closed: u64,
    /// Not a CGI response head.
    malformed: u64,
    /// The body ended before its `Content-Length`.
    short_body: u64,
}

impl Errors {
    fn total(&self) -> u64 {
        self.connect + self.io + self.timeout + self.closed + self.malformed + self.short_body
    }

    fn add(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.io += o.io;
        self.timeout += o.timeout;
        self.closed += o.closed;
        self.malformed += o.malformed;
        self.short_body += o.short_body;
    }
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("1 us to an hour at 3 digits is a valid histogram"),
            statuses: BTreeMap::new(),
            bytes: 0,
            errors: Errors::default(),
        }
    }

    fn merge(&mut self, o: &Tally) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&o.latency);
        for (s, n) in &o.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        self.bytes += o.bytes;
        self.errors.add(&o.errors);
    }
}

/// How one request failed.
enum Failed {
    Connect,
    Io,
    Closed,
    Malformed,
    ShortBody,
}

/// One request: status and bytes received (head included).
async fn one(addr: &BackendAddr, request: &[u8], buf: &mut Vec<u8>) -> Result<(u16, u64), Failed> {
    let stream = addr.connect().await.map_err(|_| Failed::Connect)?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    // Sent while the answer is read: a backend that streams its answer as
    // it reads a large body (an echo) would otherwise wait for us while we
    // wait for it.
    let write = async { wr.write_all(request).await };
    let read = async {
        let head = response::read_head(&mut rd, std::mem::take(buf)).await?;
        let status = head.view().status();
        let length = head.view().content_length();
        let mut received = head.buf.len() as u64;
        let mut body = head.leftover().len() as u64;
        let mut scratch = head.buf;
        scratch.resize(READ_CHUNK, 0);
        while length.is_none_or(|l| body < l) {
            let n = rd.read(&mut scratch).await.map_err(HeadError::Io)?;
            if n == 0 {
                break;
            }
            received += n as u64;
            body += n as u64;
        }
        Ok::<_, HeadError>((status, received, length.is_some_and(|l| body < l), scratch))
    };
    let (written, read) = tokio::join!(write, read);
    match read {
        Ok((_, _, true, scratch)) => {
            *buf = scratch;
            Err(Failed::ShortBody)
        }
        Ok((status, received, false, scratch)) => {
            *buf = scratch;
            Ok((status, received))
        }
        // A backend may answer before reading everything and close; a
        // write error only counts when no answer came.
        Err(HeadError::Closed { .. }) if written.is_err() => Err(Failed::Io),
        Err(HeadError::Closed { .. }) => Err(Failed::Closed),
        Err(HeadError::Malformed { .. }) => Err(Failed::Malformed),
        Err(HeadError::Io(_)) => Err(Failed::Io),
    }
}

async fn worker(
    addr: BackendAddr,
    request: Arc<Vec<u8>>,
    shared: Arc<Shared>,
    limit: Option<u64>,
    deadline: Option<Instant>,
    per_request: Duration,
) -> Tally {
    let mut tally = Tally::new();
    let mut buf = Vec::with_capacity(READ_CHUNK);
    // A deadline that never comes, for runs bounded by count.
    let end = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400));
    loop {
        // Checked here too, not only through the timer below: a backend
        // that refuses at once (a Unix socket file nobody listens on) never
        // makes a request wait, so the timer might never get its turn.
        if shared.stop.load(Ordering::Relaxed) || Instant::now() >= end {
            break;
        }
        if let Some(n) = limit
            && shared.issued.fetch_add(1, Ordering::Relaxed) >= n
        {
            break;
        }
        let t0 = Instant::now();
        let outcome = tokio::select! {
            r = timeout(per_request, one(&addr, &request, &mut buf)) => r,
            () = sleep_until(end) => break,
        };
        match outcome {
            Ok(Ok((status, bytes))) => {
                let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                tally.latency.saturating_record(us.max(1));
                *tally.statuses.entry(status).or_default() += 1;
                tally.bytes += bytes;
            }
            Ok(Err(f)) => {
                // Let the other connections, the progress line and the
                // timers run between failures that never wait.
                tokio::task::yield_now().await;
                let e = &mut tally.errors;
                match f {
                    Failed::Connect => e.connect += 1,
                    Failed::Io => e.io += 1,
                    Failed::Closed => e.closed += 1,
                    Failed::Malformed => e.malformed += 1,
                    Failed::ShortBody => e.short_body += 1,
                }
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                tally.errors.timeout += 1;
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

/// The results, as printed and as `--json`.
#[derive(Debug, Serialize)]
struct Report {
    /// The backend.
    target: String,
    /// Concurrent connections.
    connections: u32,
    /// Seconds measured.
    duration_s: f64,
    /// Complete responses (any status).
    responses: u64,
    /// Complete responses per second.
    requests_per_s: f64,
    /// Responses with a status of 2xx or 3xx.
    ok: u64,
    /// Responses by status code.
    statuses: BTreeMap<String, u64>,
    /// Bytes received (heads and bodies).
    bytes_received: u64,
    /// Latency of the complete responses, connect to last byte, in
    /// milliseconds.
    latency_ms: Latency,
    /// Failed requests by kind.
    errors: Errors,
}

#[derive(Debug, Serialize)]
struct Latency {
    min: f64,
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p99_9: f64,
    max: f64,
    stdev: f64,
}

impl Report {
    fn new(args: &BenchArgs, elapsed: Duration, t: &Tally) -> Report {
        let responses: u64 = t.statuses.values().sum();
        let ok = t
            .statuses
            .iter()
            .filter(|(s, _)| (200..400).contains(*s))
            .map(|(_, n)| n)
            .sum();
        let h = &t.latency;
        let ms = |us: u64| us as f64 / 1000.0;
        let latency = if responses == 0 {
            Latency {
                min: 0.0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p99_9: 0.0,
                max: 0.0,
                stdev: 0.0,
            }
        } else {
            Latency {
                min: ms(h.min()),
                mean: h.mean() / 1000.0,
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                p99_9: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
                stdev: h.stdev() / 1000.0,
            }
        };
        let secs = elapsed.as_secs_f64();
        Report {
            target: args.addr.to_string(),
            connections: args.connections,
            duration_s: secs,
            responses,
            requests_per_s: if secs > 0.0 {
                responses as f64 / secs
            } else {
                0.0
            },
            ok,
            statuses: t
                .statuses
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            bytes_received: t.bytes,
            latency_ms: latency,
            errors: t.errors,
        }
    }

    fn text(&self) -> String {
        let l = &self.latency_ms;
        let e = &self.errors;
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        format!(
            "scgi bench {}: {} connections, {:.2} s\n\
             \x20 requests   {} ({:.1}/s), {} with 2xx/3xx\n\
             \x20 latency    p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms\n\
             \x20            min {:.3} ms, mean {:.3} ms, max {:.3} ms, stdev {:.3} ms\n\
             \x20 statuses   {}\n\
             \x20 received   {} bytes ({:.1} MB/s)\n\
             \x20 errors     {} (connect {}, io {}, timeout {}, closed early {}, malformed {}, short body {})\n",
            self.target,
            self.connections,
            self.duration_s,
            self.responses,
            self.requests_per_s,
            self.ok,
            l.p50,
            l.p90,
            l.p99,
            l.p99_9,
            l.min,
            l.mean,
            l.max,
            l.stdev,
            if statuses.is_empty() {
                "-".into()
            } else {
                statuses.join(", ")
            },
            self.bytes_received,
            self.bytes_received as f64 / self.duration_s.max(1e-9) / 1e6,
            e.total(),
            e.connect,
            e.io,
            e.timeout,
            e.closed,
            e.malformed,
            e.short_body,
        )
    }
}

//! What a server is doing: counters every connection adds to, their
//! snapshot, and the access-log line of a request.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use super::{BodyError, HeadEnd, Reply};
use crate::Headers;

/// A server's counters, shared by all its connections: relaxed atomic
/// additions, a few per request, no lock. Drivers own one per server and
/// report to it at the points the lifecycle names; [`snapshot`](Counters::snapshot)
/// reads them all.
///
/// On 64-bit targets they never wrap in practice; on 32-bit targets the
/// totals wrap around at 2³² (as a Prometheus counter reset would read).
#[derive(Debug, Default)]
pub struct Counters {
    open: AtomicUsize,
    accepted: AtomicUsize,
    requests: AtomicUsize,
    /// Responses by status class: 1xx to 5xx.
    classes: [AtomicUsize; 5],
    timeouts: AtomicUsize,
    malformed: AtomicUsize,
    at_cap: AtomicUsize,
}

/// A snapshot of a server's [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections accepted and not yet closed (an upgraded connection
    /// counts until it is dropped).
    pub connections_open: u64,
    /// Connections accepted since the server started.
    pub connections_accepted: u64,
    /// Requests whose head was read and valid, and which ended (served,
    /// failed or refused in a queue): one per handler run.
    pub requests: u64,
    /// Responses by status class, `[1xx, 2xx, 3xx, 4xx, 5xx]`: the status
    /// each connection's response carried, whether the handler or the
    /// server wrote it (a `400` for a malformed head, a `408`, a `500` for
    /// a failed handler, a `204` for one that wrote nothing). A response
    /// written as raw bytes, without a head through the writer, has no
    /// status known to the server and is not counted here.
    pub responses: [u64; 5],
    /// Connections cut by a timeout: a head not complete in time (idle or
    /// stalled), a body read that waited past the body timeout or fell
    /// behind the minimum rate.
    pub timeouts: u64,
    /// Requests refused before any handler saw them: a malformed, too
    /// large or truncated head (answered `400`, `413` or `431`).
    pub malformed: u64,
    /// Times a connection had to wait for a free place under
    /// `max_connections` (the server stopped accepting until one closed).
    pub waited_at_cap: u64,
}

impl Stats {
    /// Responses with status class `class` (1 to 5; 0 otherwise).
    #[must_use]
    pub const fn responses_of(&self, class: u16) -> u64 {
        match class {
            1..=5 => self.responses[class as usize - 1],
            _ => 0,
        }
    }
}

fn read(a: &AtomicUsize) -> u64 {
    a.load(Ordering::Relaxed) as u64
}

fn add(a: &AtomicUsize) {
    a.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// All zero.
    #[must_use]
    pub const fn new() -> Counters {
        Counters {
            open: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            classes: [const { AtomicUsize::new(0) }; 5],
            timeouts: AtomicUsize::new(0),
            malformed: AtomicUsize::new(0),
            at_cap: AtomicUsize::new(0),
        }
    }

    /// A connection was accepted.
    pub fn opened(&self) {
        add(&self.open);
        add(&self.accepted);
    }

    /// A connection was closed (each [`opened`](Counters::opened) is
    /// matched by one of these).
    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Accepting waits for a free place under the connection cap.
    pub fn waited_at_cap(&self) {
        add(&self.at_cap);
    }

    /// A connection ended before its head was complete.
    pub fn head_ended(&self, end: &HeadEnd) {
        match end {
            HeadEnd::Closed => {}
            HeadEnd::Idle | HeadEnd::Stalled { .. } => add(&self.timeouts),
            HeadEnd::Refused(_) => add(&self.malformed),
        }
        // The status is the one the lifecycle answers with.
        if let Reply::Answer(answer) = end.ending().reply {
            self.response(answer.status);
        }
    }

    /// A request ended: `status` is what its response carried
    /// ([`Connection::status`](super::Connection::status) after
    /// [`end`](super::Connection::end)), `body_error` why its body could
    /// not be read, if it could not
    /// ([`Connection::body_error`](super::Connection::body_error)).
    pub fn request_ended(&self, status: Option<u16>, body_error: Option<BodyError>) {
        add(&self.requests);
        if let Some(status) = status {
            self.response(status);
        }
        if body_error == Some(BodyError::TimedOut) {
            add(&self.timeouts);
        }
    }

    fn response(&self, status: u16) {
        if let Some(class) = self.classes.get(usize::from(status / 100).wrapping_sub(1)) {
            add(class);
        }
    }

    /// The counters now. Each is read on its own, so a snapshot taken
    /// while requests run may be a request apart between two counters.
    #[must_use]
    pub fn snapshot(&self) -> Stats {
        Stats {
            connections_open: read(&self.open),
            connections_accepted: read(&self.accepted),
            requests: read(&self.requests),
            responses: [
                read(&self.classes[0]),
                read(&self.classes[1]),
                read(&self.classes[2]),
                read(&self.classes[3]),
                read(&self.classes[4]),
            ],
            timeouts: read(&self.timeouts),
            malformed: read(&self.malformed),
            waited_at_cap: read(&self.at_cap),
        }
    }
}

/// The [log target](https://docs.rs/log/latest/log/#metadata) of the
/// access log: every line goes there, at `info`, so a logger can route or
/// silence it apart from the server's other messages.
pub const ACCESS_LOG_TARGET: &str = "scgi::access";

/// One request's access-log line, as its `Display`:
///
/// ```text
/// 127.0.0.1:50312 "GET /items?id=4" 200 1532 3.1ms
/// ```
///
/// The client (`REMOTE_ADDR`:`REMOTE_PORT` as the web server passed them,
/// else the peer, the web server itself), the method and the target
/// (`REQUEST_URI`, else `SCRIPT_NAME` + `PATH_INFO` + `?QUERY_STRING`; bytes
/// that are not printable ASCII are escaped `\xNN`, so the line cannot be
/// split or forged), the status (`-` if unknown: raw bytes written without
/// a head, or a connection cut), the response bytes sent, and the time
/// from accepting the connection to the end of the response.
#[derive(Clone, Copy)]
pub struct AccessLine<'a> {
    /// The request's headers.
    pub headers: Headers<'a>,
    /// The connection's peer (the web server), for when the headers carry
    /// no client address.
    pub peer: &'a dyn fmt::Display,
    /// The response's status, if known.
    pub status: Option<u16>,
    /// Response bytes that reached the socket.
    pub bytes: u64,
    /// Time from accepting the connection to the end of the response.
    pub duration: Duration,
}

impl AccessLine<'_> {
    /// Logs the line through the `log` crate, at `info` under
    /// [`ACCESS_LOG_TARGET`] (feature `log`).
    #[cfg(feature = "log")]
    pub fn log(&self) {
        log::info!(target: ACCESS_LOG_TARGET, "{self}");
    }
}

impl fmt::Debug for AccessLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AccessLine")
            .field(&format_args!("{self}"))
            .finish()
    }
}

/// Writes `bytes` with everything but printable ASCII (and `"` and `\`)
/// as `\xNN`.
fn escaped(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                f.write_fmt(format_args!("{c}"))?;
            } else {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    write!(f, "\\x{b:02x}")?;
                }
            }
        }
        for b in chunk.invalid() {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

impl fmt::Display for AccessLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.headers;
        match (h.get(b"REMOTE_ADDR"), h.get(b"REMOTE_PORT")) {
            (Some(addr), Some(port)) if addr.contains(&b':') => {
                f.write_str("[")?;
                escaped(f, addr)?;
                f.write_str("]:")?;
                escaped(f, port)?;
            }
            (Some(addr), Some(port)) => {
                escaped(f, addr)?;
                f.write_str(":")?;
                escaped(f, port)?;
            }
            (Some(addr), None) => escaped(f, addr)?,
            (None, _) => write!(f, "{}", self.peer)?,
        }
        f.write_str(" \"")?;
        escaped(f, h.get(b"REQUEST_METHOD").unwrap_or(b"-"))?;
        f.write_str(" ")?;
        if let Some(uri) = h.get(b"REQUEST_URI") {
            escaped(f, uri)?;
        } else {
            escaped(f, h.get(b"SCRIPT_NAME").unwrap_or(b""))?;
            escaped(f, h.get(b"PATH_INFO").unwrap_or(b""))?;
            if let Some(q) = h.get(b"QUERY_STRING").filter(|q| !q.is_empty()) {
                f.write_str("?")?;
                escaped(f, q)?;
            }
        }
        f.write_str("\" ")?;
        match self.status {
            Some(s) => write!(f, "{s}")?,
            None => f.write_str("-")?,
        }
        let micros = self.duration.as_micros();
        write!(
            f,
            " {} {}.{}ms",
            self.bytes,
            micros / 1000,
            (micros % 1000) / 100
        )
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::{Decoder, Step};
    use alloc::string::ToString;

    /// Decodes a head and runs `f` on its headers.
    fn with_headers<R>(pairs: &[(&str, &str)], f: impl FnOnce(Headers<'_>) -> R) -> R {
        let wire = crate::encode_request_to_vec(pairs, b"").unwrap();
        match Decoder::new().decode(&wire).unwrap() {
            Step::Head(head) => f(head.headers(&wire)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn counters_add_up_by_what_ended() {
        let c = Counters::new();
        c.opened();
        c.opened();
        c.closed();
        c.waited_at_cap();
        c.head_ended(&HeadEnd::Closed);
        c.head_ended(&HeadEnd::Idle);
        c.head_ended(&HeadEnd::Stalled { received: 3 });
        c.head_ended(&HeadEnd::Refused(crate::Error::EmptyHead));
        c.request_ended(Some(200), None);
        c.request_ended(Some(101), None);
        c.request_ended(Some(408), Some(BodyError::TimedOut));
        c.request_ended(
            Some(500),
            Some(BodyError::Incomplete(crate::Error::EmptyHead)),
        );
        c.request_ended(None, None);
        c.request_ended(Some(999), None);
        let s = c.snapshot();
        assert_eq!(s.connections_open, 1);
        assert_eq!(s.connections_accepted, 2);
        assert_eq!(s.requests, 6);
        // 408 (head) + 400 (missing SCGI) + 408 (body); 999 is no class.
        assert_eq!(s.responses, [1, 1, 0, 3, 1]);
        assert_eq!(s.responses_of(4), 3);
        assert_eq!(s.responses_of(0), 0);
        assert_eq!(s.timeouts, 3);
        assert_eq!(s.malformed, 1);
        assert_eq!(s.waited_at_cap, 1);
    }

    #[test]
    fn access_line_names_client_request_status_bytes_and_time() {
        let line = with_headers(
            &[
                ("REQUEST_METHOD", "GET"),
                ("REQUEST_URI", "/items?id=4"),
                ("REMOTE_ADDR", "2001:db8::1"),
                ("REMOTE_PORT", "50312"),
            ],
            |headers| {
                AccessLine {
                    headers,
                    peer: &"unix:/run/app.sock",
                    status: Some(200),
                    bytes: 1532,
                    duration: Duration::from_micros(3_170),
                }
                .to_string()
            },
        );
        assert_eq!(
            line,
            "[2001:db8::1]:50312 \"GET /items?id=4\" 200 1532 3.1ms"
        );
    }

    #[test]
    fn access_line_falls_back_and_escapes() {
        let line = with_headers(
            &[
                ("REQUEST_METHOD", "POST"),
                ("SCRIPT_NAME", "/app"),
                ("PATH_INFO", "/a b\"\n"),
                ("QUERY_STRING", "x=é"),
            ],
            |headers| {
                AccessLine {
                    headers,
                    peer: &"127.0.0.1:41000",
                    status: None,
                    bytes: 0,
                    duration: Duration::ZERO,
                }
                .to_string()
            },
        );
        assert_eq!(
            line,
            "127.0.0.1:41000 \"POST /app/a\\x20b\\x22\\x0a?x=\\xc3\\xa9\" - 0 0.0ms"
        );
    }
}

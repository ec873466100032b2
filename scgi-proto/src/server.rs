//! The server side of one connection, as a state machine: every decision
//! about how a request lives and dies, written once for every runtime.
//!
//! A runtime crate (`scgi-blocking`, `scgi-tokio`, `scgi-async-std`) owns
//! the socket, the buffers and the timers. It feeds a [`Connection`] what
//! happened (bytes read, end of input, a deadline passed, the handler wrote
//! or ended) and does what the answer says. The machine holds no buffer and
//! never reads a clock: time comes in as a [`Timestamp`] the driver passes
//! (an [`Instant`](std::time::Instant), or a plain
//! [`Duration`] since any origin, which is what the
//! tests use as a fake clock).
//!
//! # The lifecycle
//!
//! 1. **Head.** The driver reads into its buffer and passes the whole
//!    buffer to [`Connection::decode_head`] until it says
//!    [`HeadStep::Ready`]. The whole head must arrive before
//!    [`head_deadline`](Connection::head_deadline) (slowloris defence);
//!    when it passes, [`head_timed_out`](Connection::head_timed_out) says
//!    what to do. End of input goes to [`head_eof`](Connection::head_eof).
//!    All three say how a connection that never made a request ends: a
//!    [`HeadEnd`] (closed, idle, stalled: 408, refused: 400, 413, 431) with
//!    its log line and its [`Ending`]; no handler sees it.
//! 2. **Request.** The handler reads the body: the driver passes the bytes
//!    it holds to [`body`](Connection::body), which says how many of them
//!    are body. Each wait for body bytes is bounded by
//!    [`body_deadline`](Connection::body_deadline); each wait of a write
//!    for the peer, by [`write_deadline`](Connection::write_deadline).
//!    The driver reports the handler's writes ([`wrote`](Connection::wrote))
//!    and the bytes that reached the socket ([`sent`](Connection::sent)).
//! 3. **End.** When the handler returns (or fails, panics, or the request
//!    is dropped), [`end`](Connection::end) gives the [`Ending`]: what to
//!    send (the buffered response, `204 No Content` for a handler that
//!    wrote nothing, an error answer, nothing) and how to close
//!    ([`Then`]): at once, after checking that nothing is pending, after a
//!    half-close and a bounded drain, or with a reset.
//! 4. **Drain.** [`start_drain`](Connection::start_drain) gives the drain's
//!    deadline and byte limit.
//!
//! ```
//! use core::time::Duration;
//! use scgi_proto::server::{Config, Connection, Ending, HeadStep, Outcome, Reply, Then};
//!
//! let config = Config::DEFAULT;
//! let wire = b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,";
//! // Any clock: here the time since the connection was accepted.
//! let mut conn = Connection::new(&config, Duration::ZERO);
//! assert_eq!(conn.head_deadline(), Some(Duration::from_secs(30)));
//! let HeadStep::Ready(head) = conn.decode_head(wire) else { panic!() };
//! assert_eq!(head.content_length(), 0);
//! // The handler returns without writing: the server answers 204, and
//! // closes at once if the peer sent nothing more.
//! let ending = conn.end(Outcome::Done, true);
//! assert_eq!(ending, Ending { reply: Reply::NoContent, then: Then::CloseUnlessPending });
//! ```

use core::fmt;
use core::time::Duration;

use crate::decoder::{Decoder, Head, Step};
use crate::error::{EncodeError, Error};

/// A point in time, as the driver's clock gives it. Implemented for
/// [`Duration`] (time since an origin of the driver's choice, and the fake
/// clock of tests) and, with the `std` feature, for
/// [`std::time::Instant`].
pub trait Timestamp: Copy + Ord {
    /// `self + d`, or `None` when that is past what the clock can hold (a
    /// timeout of [`Duration::MAX`]): the deadline never comes.
    fn checked_add(self, d: Duration) -> Option<Self>;

    /// The time from `earlier` to `self`; zero if `earlier` is later.
    fn since(self, earlier: Self) -> Duration;
}

impl Timestamp for Duration {
    fn checked_add(self, d: Duration) -> Option<Self> {
        Duration::checked_add(self, d)
    }

    fn since(self, earlier: Self) -> Duration {
        self.saturating_sub(earlier)
    }
}

#[cfg(feature = "std")]
impl Timestamp for std::time::Instant {
    fn checked_add(self, d: Duration) -> Option<Self> {
        std::time::Instant::checked_add(&self, d)
    }

    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// The shortest timeout: a zero setting is read as this (a socket refuses a
/// zero timeout, and "expire before the first read" serves no one).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The deadline `timeout` after `now`, as every timeout of a [`Config`] is
/// read: a zero timeout is [`MIN_TIMEOUT`], and one the clock cannot hold
/// ([`Duration::MAX`]) is `None`, never. The drivers take their server-wide
/// deadlines (the shutdown's) with it too, so that no setting can overflow
/// a clock.
#[must_use]
pub fn deadline_after<I: Timestamp>(now: I, timeout: Duration) -> Option<I> {
    now.checked_add(timeout.max(MIN_TIMEOUT))
}

use deadline_after as after;

/// While the head is incomplete, each read asks for room for at least this
/// many bytes: a typical head (nginx and Apache send 0.4-1 KiB) arrives in
/// one read.
pub const HEAD_READ_MIN: usize = 2 * 1024;

/// While the head is incomplete, each read asks for at most this much room
/// (however large the head still to come): a claimed 64 KiB head grows the
/// buffer as the bytes arrive, not up front.
pub const HEAD_READ_MAX: usize = 16 * 1024;

/// A server's settings, the same on every runtime: the lifecycle's
/// timeouts and drain bounds, the connection cap, the shutdown grace, the
/// worker count of thread-pool runtimes, and the decoder's limits and
/// policies. Plain data with documented defaults ([`Config::DEFAULT`]);
/// change a field or use the `with_*` methods.
///
/// | field | default |
/// | --- | --- |
/// | [`head_timeout`](Config::head_timeout) | 30 s |
/// | [`body_timeout`](Config::body_timeout) | 60 s |
/// | [`body_min_rate`](Config::body_min_rate) | 500 bytes/s |
/// | [`write_timeout`](Config::write_timeout) | 60 s |
/// | [`drain_timeout`](Config::drain_timeout) | 1 s |
/// | [`drain_limit`](Config::drain_limit) | 4 MiB |
/// | [`max_connections`](Config::max_connections) | 1 024 |
/// | [`shutdown_timeout`](Config::shutdown_timeout) | 30 s |
/// | [`workers`](Config::workers) | 0: 4 × available parallelism (at least 4) |
/// | [`proto`](Config::proto) | [`crate::Config::DEFAULT`] (64 KiB head, no body limit, strict) |
///
/// The decoder's limits have setters of their own here
/// ([`with_max_body`](Config::with_max_body),
/// [`with_max_head`](Config::with_max_head),
/// [`with_max_headers`](Config::with_max_headers)), so that
/// `Config::DEFAULT.with_max_body(Some(1 << 20))` is the whole of it.
///
/// Extreme values mean something and never panic: a zero timeout is read
/// as [`MIN_TIMEOUT`] (1 ms); a timeout too large for the clock
/// ([`Duration::MAX`]) never expires; a zero `max_connections` is read as 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Config {
    /// The longest a connection may take to deliver its whole header
    /// netstring, from its acceptance: the defence against clients that
    /// trickle a head byte by byte (slowloris). A client that has sent part
    /// of a head by then gets `408 Request Timeout`; one that sent nothing
    /// is closed quietly.
    pub head_timeout: Duration,
    /// The longest one read of the body may wait for data. The read then
    /// fails with a timeout, and a handler that gives up answers `408`.
    pub body_timeout: Duration,
    /// The slowest average rate, in bytes per second, at which a body may
    /// arrive once [`body_timeout`](Config::body_timeout) has passed since
    /// the connection was accepted: each `body_min_rate` bytes received buy
    /// one more second (Apache's `mod_reqtimeout` `MinRate`). A client
    /// that trickles its body (a byte every few seconds, each read well
    /// within `body_timeout`) is cut with a `408` when it falls behind. 0
    /// turns the rate off (only `body_timeout` applies, per read).
    pub body_min_rate: u32,
    /// The longest one write of the response may wait for the peer to
    /// accept data (a peer that stops reading). The write then fails with
    /// a timeout.
    pub write_timeout: Duration,
    /// After a response to a request that was not read to its end, the
    /// server shuts down its sending side and reads (and discards) what the
    /// peer still sends, until the peer closes: each read waits at most
    /// this long, and past it the peer must keep up
    /// [`body_min_rate`](Config::body_min_rate). A connection closed with
    /// unread input makes the kernel send RST, and the peer may lose the
    /// response (an early 413, a handler that ignored the body, nginx's
    /// surplus after a short `CONTENT_LENGTH`); so the rest of the body is
    /// read whatever its size, paced rather than capped (see [`Drain`]). A
    /// request read to its end, with nothing pending behind it, is closed
    /// at once.
    pub drain_timeout: Duration,
    /// The most bytes read while draining past the request's body (see
    /// [`drain_timeout`](Config::drain_timeout)).
    pub drain_limit: u64,
    /// Open connections at most: accepted and not yet closed (an upgraded
    /// connection counts until it is dropped). Past it, new connections
    /// wait in the kernel's listen backlog. Each open connection holds a
    /// file descriptor: keep this under the process's `RLIMIT_NOFILE`.
    pub max_connections: usize,
    /// How long a graceful shutdown waits for the requests in flight. Past
    /// it the remaining connections are closed without a word (their
    /// handlers see I/O errors, or their futures are dropped).
    pub shutdown_timeout: Duration,
    /// Worker threads kept ready, for runtimes that serve on a pool of
    /// threads (`scgi-blocking`, which starts more while all are busy, up
    /// to one per connection). 0, the default, means 4 × the available
    /// parallelism, at least 4. The async runtimes run one task per
    /// connection, bounded by [`max_connections`](Config::max_connections),
    /// and ignore it.
    pub workers: usize,
    /// Log one [`AccessLine`] per request, at `info` under the target
    /// [`ACCESS_LOG_TARGET`] (`scgi::access`): client, method and target,
    /// status, bytes sent, duration. Off by default.
    pub access_log: bool,
    /// Protocol limits and policies, checked by the decoder.
    pub proto: crate::Config,
}

impl Config {
    /// The defaults (see the table above).
    pub const DEFAULT: Config = Config {
        head_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(60),
        body_min_rate: 500,
        write_timeout: Duration::from_secs(60),
        drain_timeout: Duration::from_secs(1),
        drain_limit: 4 * 1024 * 1024,
        max_connections: 1024,
        shutdown_timeout: Duration::from_secs(30),
        workers: 0,
        access_log: false,
        proto: crate::Config::DEFAULT,
    };

    /// [`max_connections`](Config::max_connections), at least 1.
    #[must_use]
    pub const fn connection_cap(&self) -> usize {
        if self.max_connections == 0 {
            1
        } else {
            self.max_connections
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

macro_rules! setters {
    ($($name:ident: $field:ident: $ty:ty;)*) => {
        impl Config {
            $(
                #[doc = concat!("Returns this configuration with [`", stringify!($field), "`](Config::", stringify!($field), ") set.")]
                #[must_use]
                pub const fn $name(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    with_head_timeout: head_timeout: Duration;
    with_body_timeout: body_timeout: Duration;
    with_body_min_rate: body_min_rate: u32;
    with_write_timeout: write_timeout: Duration;
    with_drain_timeout: drain_timeout: Duration;
    with_drain_limit: drain_limit: u64;
    with_max_connections: max_connections: usize;
    with_shutdown_timeout: shutdown_timeout: Duration;
    with_workers: workers: usize;
    with_access_log: access_log: bool;
    with_proto: proto: crate::Config;
}

mod stats;

pub use stats::{ACCESS_LOG_TARGET, AccessLine, Counters, Stats};

/// The decoder's settings in one step each: `Config::DEFAULT.with_max_body(Some(1 << 20))`
/// rather than three nested builders.
impl Config {
    /// Returns this configuration with the decoder's body limit
    /// ([`Limits::max_body`](crate::Limits::max_body)) set: a request whose
    /// `CONTENT_LENGTH` is larger is answered `413 Content Too Large` before
    /// any handler sees it. `None` (the default) for no limit: the server
    /// streams bodies and buffers none, and a handler that reads a body
    /// into memory bounds it itself (the runtime crates' `read_body(limit)`).
    ///
    /// ```
    /// use scgi_proto::server::Config;
    /// let config = Config::DEFAULT.with_max_body(Some(1 << 20)).with_max_head(16 * 1024);
    /// assert_eq!(config.proto.limits.max_body, Some(1 << 20));
    /// assert_eq!(config.proto.limits.max_head, 16 * 1024);
    /// ```
    #[must_use]
    pub const fn with_max_body(mut self, bytes: Option<u64>) -> Self {
        self.proto.limits.max_body = bytes;
        self
    }

    /// Returns this configuration with the decoder's header block limit
    /// ([`Limits::max_head`](crate::Limits::max_head), default 64 KiB;
    /// larger heads are answered `431`) set.
    #[must_use]
    pub const fn with_max_head(mut self, bytes: usize) -> Self {
        self.proto.limits.max_head = bytes;
        self
    }

    /// Returns this configuration with the decoder's header count limit
    /// ([`Limits::max_headers`](crate::Limits::max_headers), default
    /// 1 024; more are answered `431`) set.
    #[must_use]
    pub const fn with_max_headers(mut self, count: usize) -> Self {
        self.proto.limits.max_headers = count;
        self
    }

    /// Returns this configuration with all the decoder's
    /// [`Limits`](crate::Limits) set.
    #[must_use]
    pub const fn with_limits(mut self, limits: crate::Limits) -> Self {
        self.proto.limits = limits;
        self
    }

    /// Returns this configuration with the decoder's
    /// [`Policy`](crate::Policy) (where `CONTENT_LENGTH` may be, whether
    /// `SCGI=1` is required, duplicate names) set.
    #[must_use]
    pub const fn with_policy(mut self, policy: crate::Policy) -> Self {
        self.proto.policy = policy;
        self
    }
}

/// What [`Connection::decode_head`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadStep {
    /// The head is incomplete: read more, append it, and call again with
    /// the whole buffer. `room` is how much free room to offer the read:
    /// at least [`HEAD_READ_MIN`], at most [`HEAD_READ_MAX`] past what the
    /// decoder knows is missing.
    Read {
        /// Free room to offer the next read.
        room: usize,
    },
    /// The head is complete and valid: `buf[..head.wire_len()]`; what
    /// follows it in the buffer is body (pass it to
    /// [`Connection::body`]). Serve the request.
    Ready(Head),
    /// The connection ends without a request: log the [`HeadEnd`] (its
    /// [`severity`](HeadEnd::severity) says how loudly), then carry out its
    /// [`ending`](HeadEnd::ending). No handler sees the request.
    End(HeadEnd),
}

/// Why a connection ended before its head was complete, from
/// [`Connection::decode_head`], [`Connection::head_eof`] or
/// [`Connection::head_timed_out`]. Its `Display` is the log line (prefix
/// it with the peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadEnd {
    /// Closed before the first byte: normal and quiet (Apache opens and
    /// closes a connection without a byte when it answers a chunked
    /// request with 411 itself). Close.
    Closed,
    /// Nothing arrived before the head deadline: an idle connection. Close
    /// quietly.
    Idle,
    /// Part of a head (this many bytes) arrived, then the head deadline
    /// passed: answer `408` and half-close, without draining (the peer is
    /// the one stalling).
    Stalled {
        /// Bytes received.
        received: usize,
    },
    /// The head is malformed, too large, or cut short by the peer's end of
    /// input (the decoder's error): answer with its
    /// [status hint](Error::status_hint) (400, 413, 431), then drain.
    Refused(Error),
}

/// How loudly to log a [`HeadEnd`] or a handler's failure
/// ([`Connection::failure_severity`]); the `log` crate's levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Routine: a connection closed or idle.
    Debug,
    /// Worth noting: a client that stalled, or a handler that failed on a
    /// body the client cut, stalled or sent too large.
    Info,
    /// A bad request: usually a misconfigured web server.
    Warn,
    /// A handler failed on its own: the application's fault.
    Error,
}

impl Severity {
    /// The `log` crate's level of the same name (feature `log`).
    #[cfg(feature = "log")]
    #[must_use]
    pub const fn level(self) -> log::Level {
        match self {
            Severity::Debug => log::Level::Debug,
            Severity::Info => log::Level::Info,
            Severity::Warn => log::Level::Warn,
            Severity::Error => log::Level::Error,
        }
    }
}

impl HeadEnd {
    /// What to send and how to close.
    #[must_use]
    pub const fn ending(&self) -> Ending {
        match self {
            HeadEnd::Closed | HeadEnd::Idle => Ending {
                reply: Reply::Nothing,
                then: Then::Close,
            },
            HeadEnd::Stalled { .. } => Ending {
                reply: Reply::Answer(Answer {
                    status: 408,
                    detail: Detail::Text("request head not received in time"),
                }),
                then: Then::HalfClose,
            },
            HeadEnd::Refused(e) => Ending {
                reply: Reply::Answer(Answer {
                    status: e.status_hint(),
                    detail: Detail::Decoder(*e),
                }),
                then: Then::Drain,
            },
        }
    }

    /// How loudly to log it.
    #[must_use]
    pub const fn severity(&self) -> Severity {
        match self {
            HeadEnd::Closed | HeadEnd::Idle => Severity::Debug,
            HeadEnd::Stalled { .. } => Severity::Info,
            HeadEnd::Refused(_) => Severity::Warn,
        }
    }

    /// Logs it through the `log` crate at its [`severity`](HeadEnd::severity),
    /// as `<peer>: <self>` (feature `log`).
    #[cfg(feature = "log")]
    pub fn log(&self, peer: &dyn fmt::Display) {
        log::log!(self.severity().level(), "{peer}: {self}");
    }
}

impl fmt::Display for HeadEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadEnd::Closed => f.write_str("closed before the first byte"),
            HeadEnd::Idle => f.write_str("no request within the head timeout; closing"),
            HeadEnd::Stalled { received } => write!(
                f,
                "request head incomplete after the head timeout ({received} bytes); closing"
            ),
            HeadEnd::Refused(e) => write!(f, "bad request: {e}"),
        }
    }
}

/// What a handler's run came to, for [`Connection::end`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler returned successfully (or dropped the request).
    Done,
    /// The handler returned an error or panicked (a request dropped while
    /// its thread panics counts as this).
    Failed,
    /// The request was accepted but never handed to a handler: the server
    /// shut down while it waited in a queue.
    Unserved,
    /// The shutdown deadline passed while the request was in flight.
    Forced,
}

/// What to send before closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Nothing more; anything the driver still buffers for the handler is
    /// discarded (a forced shutdown, a reset, a connection that never made
    /// a request).
    Nothing,
    /// The response bytes the driver still buffers for the handler (if
    /// any).
    Buffered,
    /// `Status: 204 No Content` ([`crate::NO_CONTENT`]): the handler wrote
    /// nothing (and no body read failed, else that failure's answer is
    /// sent), and an empty CGI response is not valid.
    NoContent,
    /// A complete error answer instead of anything buffered (which the
    /// driver discards): see [`Answer::encode`].
    Answer(Answer),
}

/// How to close, once what [`Reply`] says is sent. If sending fails, the
/// driver just closes: the peer is gone or stalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Then {
    /// Close now.
    Close,
    /// The request was read to its end: close now if the peer has sent
    /// nothing more (ask the socket without blocking), else as
    /// [`Then::Drain`]. Closing at once saves holding the connection for
    /// one more round trip of the web server's event loop on every request.
    CloseUnlessPending,
    /// Shut down the sending side, read and discard what the peer still
    /// sends until it closes, within [`Connection::start_drain`]'s bounds,
    /// then close: closing a socket with unread input sends RST, and the
    /// peer may then lose the response (an early 413, an unread body,
    /// nginx's surplus after a short `CONTENT_LENGTH`).
    Drain,
    /// Shut down the sending side and close, without draining: the peer
    /// is the one stalling (a head timeout), so waiting on it helps no one.
    HalfClose,
    /// Close with a reset (`SO_LINGER` 0): part of the response is out and
    /// the rest will never be; ending it cleanly would pass a truncated
    /// response off as complete.
    Reset,
}

/// How a connection ends: what to send, then how to close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    /// What to send.
    pub reply: Reply,
    /// How to close after sending it.
    pub then: Then,
}

/// An error answer the server sends itself: a status and a short
/// plain-text detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status: 400, 408, 413, 431, 500 or 503.
    pub status: u16,
    /// What went wrong, for the body of the answer (and the log).
    pub detail: Detail,
}

impl Answer {
    /// The longest answer the lifecycle builds, in bytes.
    pub const MAX_LEN: usize = 512;

    /// The whole answer (head and body) into `buf`, as
    /// [`encode_error_response`](crate::encode_error_response) writes it;
    /// [`Answer::MAX_LEN`] bytes always suffice (the only error is a
    /// smaller buffer).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        crate::encode_error_response(buf, self.status, &self.detail)
    }

    /// The whole answer in a new buffer.
    #[cfg(feature = "alloc")]
    #[must_use]
    pub fn to_vec(&self) -> alloc::vec::Vec<u8> {
        // Only statuses with a reason phrase are ever built here, so
        // encoding cannot fail.
        crate::error_response(self.status, &self.detail).unwrap_or_default()
    }
}

/// The detail of an [`Answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// The decoder's error.
    Decoder(Error),
    /// A fixed explanation.
    Text(&'static str),
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Decoder(e) => e.fmt(f),
            Detail::Text(s) => f.write_str(s),
        }
    }
}

/// Why reading the body failed, from [`Connection::body_eof`],
/// [`Connection::body_timed_out`] or [`Connection::limit_body`]. The
/// connection remembers it: a handler that then fails, or returns without
/// writing anything, gets this answer instead of a 500 or a 204.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The peer closed its side inside the body (the decoder's error);
    /// answered 400.
    #[error("{0}")]
    Incomplete(Error),
    /// No body byte came within the body timeout; answered 408.
    #[error("no request body data within the body timeout")]
    TimedOut,
    /// The body is larger than the handler's limit
    /// ([`Error::BodyTooLarge`], whose `content_length` is the body bytes
    /// that were left); answered 413, as the decoder's own body limit is.
    #[error("{0}")]
    TooLarge(Error),
}

impl BodyError {
    /// The answer a handler that fails after this error gets.
    #[must_use]
    pub const fn answer(&self) -> Answer {
        match self {
            BodyError::Incomplete(_) => Answer {
                status: 400,
                detail: Detail::Text("request body incomplete"),
            },
            BodyError::TimedOut => Answer {
                status: 408,
                detail: Detail::Text("request body not received in time"),
            },
            BodyError::TooLarge(e) => Answer {
                status: e.status_hint(),
                detail: Detail::Decoder(*e),
            },
        }
    }
}

/// The I/O error a body read fails with, wrapping the [`BodyError`] (get
/// it back with [`get_ref`](std::io::Error::get_ref) and `downcast_ref`):
/// [`UnexpectedEof`](std::io::ErrorKind::UnexpectedEof) for
/// [`Incomplete`](BodyError::Incomplete),
/// [`TimedOut`](std::io::ErrorKind::TimedOut) for
/// [`TimedOut`](BodyError::TimedOut),
/// [`InvalidData`](std::io::ErrorKind::InvalidData) for
/// [`TooLarge`](BodyError::TooLarge).
#[cfg(feature = "std")]
impl From<BodyError> for std::io::Error {
    fn from(e: BodyError) -> Self {
        let kind = match e {
            BodyError::Incomplete(_) => std::io::ErrorKind::UnexpectedEof,
            BodyError::TimedOut => std::io::ErrorKind::TimedOut,
            BodyError::TooLarge(_) => std::io::ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, e)
    }
}

/// The first room a body read into memory makes: a form or a small JSON
/// document fits, and a peer that claims a large body and sends little
/// costs no more than this.
pub const BODY_READ_FIRST: usize = 16 * 1024;

/// How much room to add to a full in-memory body of `len` bytes with
/// `left` bytes still to come: as much again (at least
/// [`BODY_READ_FIRST`]), never past the body's end. So memory grows with
/// what arrives, not with what `CONTENT_LENGTH` claims, and ends at most
/// at the body's size (`Vec::reserve_exact` with this never overshoots).
///
/// ```
/// use scgi_proto::server::body_room;
/// assert_eq!(body_room(0, 100), 100);
/// assert_eq!(body_room(0, 1 << 30), 16 * 1024);
/// assert_eq!(body_room(64 * 1024, 1 << 30), 64 * 1024);
/// assert_eq!(body_room(64 * 1024, 10), 10);
/// ```
#[must_use]
pub fn body_room(len: usize, left: u64) -> usize {
    let want = len.max(BODY_READ_FIRST);
    usize::try_from(left).map_or(want, |left| want.min(left))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the head; `received` bytes so far.
    Head { received: usize },
    /// The head is out; a handler has the request.
    Request,
    /// [`Connection::end`] was called.
    Ended,
}

/// The server side of one SCGI connection, from its acceptance to its
/// close (see the [module docs](self) for the lifecycle). `I` is the
/// driver's clock ([`Timestamp`]).
///
/// It holds the decoder, the deadlines and what the handler did (wrote,
/// sent, failed to read the body), and makes every decision a server makes
/// about a connection; it allocates nothing and never panics.
#[derive(Clone, Debug)]
pub struct Connection<I> {
    decoder: Decoder,
    phase: Phase,
    accepted: I,
    head_deadline: Option<I>,
    body_timeout: Duration,
    body_min_rate: u32,
    /// Body bytes passed through [`body`](Connection::body).
    body_received: u64,
    write_timeout: Duration,
    drain_timeout: Duration,
    drain_limit: u64,
    /// The handler wrote response bytes (buffered or not).
    written: bool,
    /// Response bytes that reached the socket.
    sent: u64,
    /// The status of the response's head, once written; after
    /// [`end`](Connection::end), the status the response carried.
    status: Option<u16>,
    body_error: Option<BodyError>,
}

impl<I: Timestamp> Connection<I> {
    /// A connection accepted at `now`: its head is due by `now +`
    /// [`head_timeout`](Config::head_timeout).
    #[must_use]
    pub fn new(config: &Config, now: I) -> Self {
        Connection {
            decoder: Decoder::with_config(config.proto),
            phase: Phase::Head { received: 0 },
            accepted: now,
            head_deadline: after(now, config.head_timeout),
            body_timeout: config.body_timeout,
            body_min_rate: config.body_min_rate,
            body_received: 0,
            write_timeout: config.write_timeout,
            drain_timeout: config.drain_timeout,
            drain_limit: config.drain_limit,
            written: false,
            sent: 0,
            status: None,
            body_error: None,
        }
    }

    /// When the whole head must have arrived (`None`: never). Bound every
    /// read of the head by it; once it passes, call
    /// [`head_timed_out`](Connection::head_timed_out).
    #[must_use]
    pub fn head_deadline(&self) -> Option<I> {
        self.head_deadline
    }

    /// Decodes the head from the driver's buffer (everything received so
    /// far, from its first byte). See [`HeadStep`].
    pub fn decode_head(&mut self, buf: &[u8]) -> HeadStep {
        if let Phase::Head { received } = &mut self.phase {
            *received = buf.len();
        }
        match self.decoder.decode(buf) {
            Ok(Step::Head(head)) => {
                self.phase = Phase::Request;
                HeadStep::Ready(head)
            }
            Ok(Step::Partial { needed }) => HeadStep::Read {
                room: needed.clamp(HEAD_READ_MIN, HEAD_READ_MAX),
            },
            Err(e) => self.head_end(HeadEnd::Refused(e)),
            // The decoder reports the head before any body step; reaching
            // here means the head was already delivered.
            Ok(Step::Body(_) | Step::End) => self.head_end(HeadEnd::Refused(Error::IncompleteHead)),
        }
    }

    fn head_end(&mut self, end: HeadEnd) -> HeadStep {
        self.phase = Phase::Ended;
        HeadStep::End(end)
    }

    /// The peer ended its side before the head was complete:
    /// [`HeadEnd::Closed`] before any byte, else [`HeadEnd::Refused`].
    pub fn head_eof(&mut self) -> HeadEnd {
        self.phase = Phase::Ended;
        match self.decoder.finish() {
            Ok(_) => HeadEnd::Closed,
            Err(e) => HeadEnd::Refused(e),
        }
    }

    /// The head deadline passed before the head was complete:
    /// [`HeadEnd::Idle`] if nothing arrived, else [`HeadEnd::Stalled`].
    pub fn head_timed_out(&mut self) -> HeadEnd {
        let received = match self.phase {
            Phase::Head { received } => received,
            _ => 0,
        };
        self.phase = Phase::Ended;
        match received {
            0 => HeadEnd::Idle,
            received => HeadEnd::Stalled { received },
        }
    }

    /// How many bytes at the front of `avail` (bytes received after the
    /// head, not yet consumed) are body; 0 once the body is complete. The
    /// driver hands those to the handler and keeps the rest: bytes past the
    /// body are the peer's (a `101` tunnel, nginx's surplus after a short
    /// `CONTENT_LENGTH`).
    pub fn body(&mut self, avail: &[u8]) -> usize {
        match self.decoder.decode(avail) {
            Ok(Step::Body(n)) => {
                self.body_received += n as u64;
                n
            }
            _ => 0,
        }
    }

    /// Body bytes not passed through [`body`](Connection::body) yet.
    #[must_use]
    pub fn body_remaining(&self) -> u64 {
        self.decoder.remaining_body().unwrap_or(0)
    }

    /// The longest a body read that starts waiting at `now` may wait
    /// (`None`: forever): [`body_timeout`](Config::body_timeout) from
    /// `now`, or earlier when the body has fallen behind
    /// [`body_min_rate`](Config::body_min_rate). Past it, call
    /// [`body_timed_out`](Connection::body_timed_out).
    #[must_use]
    pub fn body_deadline(&self, now: I) -> Option<I> {
        paced_deadline(
            now,
            self.accepted,
            self.body_timeout,
            self.body_min_rate,
            self.body_received,
        )
    }

    /// The peer ended its side with body bytes outstanding: the read
    /// fails with this error, and a handler that fails after it gets a
    /// 400 (not a 500).
    pub fn body_eof(&mut self) -> BodyError {
        let e = match self.decoder.finish() {
            Err(e) => e,
            // With body bytes outstanding `finish` always errs; keep an
            // accurate error all the same.
            Ok(_) => Error::IncompleteBody {
                missing: self.body_remaining(),
            },
        };
        let error = BodyError::Incomplete(e);
        self.body_error = Some(error);
        error
    }

    /// A body read waited past its deadline: the read fails with this
    /// error, and a handler that fails after it gets a 408.
    pub fn body_timed_out(&mut self) -> BodyError {
        self.body_error = Some(BodyError::TimedOut);
        BodyError::TimedOut
    }

    /// The handler is about to read the rest of the body into memory, at
    /// most `limit` bytes: `Ok` if what is left fits, else the read fails
    /// with [`BodyError::TooLarge`] before reading a byte, and the request
    /// is answered `413` (unless the handler writes another answer first),
    /// then drained. The runtime crates' `read_body(limit)` asks this, so
    /// the decision and its answer are the same on every runtime.
    ///
    /// `limit` counts the body bytes still to read, so that memory stays
    /// within `limit`; `0` accepts only an empty (or fully read) body, and
    /// `u64::MAX` accepts any, which leaves memory to the peer's
    /// `CONTENT_LENGTH`.
    ///
    /// ```
    /// use core::time::Duration;
    /// use scgi_proto::server::{Config, Connection, HeadStep, Outcome, Reply};
    ///
    /// let wire = b"24:CONTENT_LENGTH\x009\x00SCGI\x001\x00,too large";
    /// let mut conn = Connection::new(&Config::DEFAULT, Duration::ZERO);
    /// let HeadStep::Ready(_) = conn.decode_head(wire) else { panic!() };
    /// assert!(conn.limit_body(9).is_ok());
    /// let e = conn.limit_body(8).unwrap_err();
    /// // The handler returns the error, or nothing at all: 413.
    /// let Reply::Answer(answer) = conn.end(Outcome::Done, false).reply else { panic!() };
    /// assert_eq!(answer.status, 413);
    /// assert_eq!(answer, e.answer());
    /// ```
    pub fn limit_body(&mut self, limit: u64) -> Result<(), BodyError> {
        let remaining = self.body_remaining();
        if remaining <= limit {
            return Ok(());
        }
        let error = BodyError::TooLarge(Error::BodyTooLarge {
            limit,
            content_length: remaining,
        });
        self.body_error = Some(error);
        Err(error)
    }

    /// The longest a write that starts waiting for the peer at `now` may
    /// wait (`None`: forever). Past it the write fails with a timeout.
    ///
    /// Take the deadline when a write first has to wait, and check it
    /// before retrying the write when the task wakes: a stalled peer's
    /// socket often takes a few bytes when the timer wakes the task, and
    /// counting those as progress (re-arming) would let a peer that never
    /// reads hold the connection for twice the timeout or more.
    #[must_use]
    pub fn write_deadline(&self, now: I) -> Option<I> {
        after(now, self.write_timeout)
    }

    /// The handler wrote response bytes (into the driver's buffer or
    /// straight to the socket).
    pub fn wrote(&mut self) {
        self.written = true;
    }

    /// `n` response bytes reached the socket: from now on (if `n` > 0) a
    /// failure can no longer become a clean error answer. Report the
    /// server's own answers too, so [`sent_bytes`](Connection::sent_bytes)
    /// counts the whole response.
    pub fn sent(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n as u64);
    }

    /// The handler wrote a response head with `status` (through the head
    /// writer): the status the access log and the counters report.
    pub fn wrote_head(&mut self, status: u16) {
        self.status = Some(status);
    }

    /// Response bytes that reached the socket so far.
    #[must_use]
    pub fn sent_bytes(&self) -> u64 {
        self.sent
    }

    /// The response's status: before [`end`](Connection::end), the one of
    /// the head the handler wrote ([`wrote_head`](Connection::wrote_head));
    /// after it, the one the response carried (the server's own answer, a
    /// `204` for a handler that wrote nothing, the handler's head). `None`
    /// when unknown: raw bytes written without the head writer, or a
    /// connection closed without a response.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The request's [`AccessLine`] at `now`, after [`end`](Connection::end)
    /// and the response's last byte: its status, bytes sent and age.
    #[must_use]
    pub fn access_line<'a>(
        &self,
        headers: crate::Headers<'a>,
        peer: &'a dyn fmt::Display,
        now: I,
    ) -> AccessLine<'a> {
        AccessLine {
            headers,
            peer,
            status: self.status,
            bytes: self.sent,
            duration: self.age(now),
        }
    }

    /// The time since the connection was accepted, at `now`.
    #[must_use]
    pub fn age(&self, now: I) -> Duration {
        now.since(self.accepted)
    }

    /// Whether the handler wrote anything.
    #[must_use]
    pub fn has_written(&self) -> bool {
        self.written
    }

    /// Whether response bytes reached the socket.
    #[must_use]
    pub fn has_sent(&self) -> bool {
        self.sent > 0
    }

    /// Why the body could not be read, if it could not.
    #[must_use]
    pub fn body_error(&self) -> Option<BodyError> {
        self.body_error
    }

    /// How loudly to log the handler's failure: [`Severity::Info`] when it
    /// failed on a body the client cut, stalled or sent too large (the
    /// server answers 400, 408 or 413: the client's doing), else
    /// [`Severity::Error`].
    #[must_use]
    pub fn failure_severity(&self) -> Severity {
        match self.body_error {
            Some(_) => Severity::Info,
            None => Severity::Error,
        }
    }

    /// The request is over: the handler ended with `outcome`. `read_to_end`
    /// says whether the driver buffers no received byte it has not handed
    /// out (nothing past the body); with the body read too (which the
    /// connection knows), it may close without draining. Call once; later
    /// calls say to close.
    pub fn end(&mut self, outcome: Outcome, read_to_end: bool) -> Ending {
        if self.phase == Phase::Ended {
            return Ending {
                reply: Reply::Nothing,
                then: Then::Close,
            };
        }
        self.phase = Phase::Ended;
        let then = if read_to_end && self.body_remaining() == 0 {
            Then::CloseUnlessPending
        } else {
            Then::Drain
        };
        let reply = match outcome {
            Outcome::Forced => {
                if !self.has_sent() {
                    self.status = None;
                }
                return Ending {
                    reply: Reply::Nothing,
                    then: Then::Close,
                };
            }
            Outcome::Failed if self.has_sent() => {
                return Ending {
                    reply: Reply::Nothing,
                    then: Then::Reset,
                };
            }
            Outcome::Done if self.written => Reply::Buffered,
            // A body read failed and the handler said nothing: the
            // failure's answer, not a "handled" 204.
            Outcome::Done => self
                .body_error
                .map_or(Reply::NoContent, |e| Reply::Answer(e.answer())),
            Outcome::Failed => Reply::Answer(self.body_error.map_or(
                Answer {
                    status: 500,
                    detail: Detail::Text("the handler failed"),
                },
                |e| e.answer(),
            )),
            Outcome::Unserved => Reply::Answer(Answer {
                status: 503,
                detail: Detail::Text("the server shut down before handling the request"),
            }),
        };
        match reply {
            Reply::Answer(a) => self.status = Some(a.status),
            Reply::NoContent => self.status = Some(204),
            Reply::Buffered | Reply::Nothing => {}
        }
        Ending { reply, then }
    }

    /// Starts draining at `now` (see [`Then::Drain`]): read and discard
    /// until the peer closes, a read waits past [`Drain::deadline`], or
    /// [`Drain::limit`] bytes were read, whichever comes first.
    #[must_use]
    pub fn start_drain(&self, now: I) -> Drain<I> {
        Drain {
            started: now,
            idle: self.drain_timeout,
            min_rate: self.body_min_rate,
            // A head refused for its body's size (413): all of that body
            // is still to come.
            limit: match self.decoder.error() {
                Some(Error::BodyTooLarge { content_length, .. }) => content_length,
                _ => self.body_remaining(),
            }
            .saturating_add(self.drain_limit),
        }
    }
}

/// `timeout` from `now` (an idle peer), or earlier once `received` bytes
/// fall behind `min_rate` bytes a second after `timeout` of grace from
/// `start` (`None`: never).
fn paced_deadline<I: Timestamp>(
    now: I,
    start: I,
    timeout: Duration,
    min_rate: u32,
    received: u64,
) -> Option<I> {
    let idle = after(now, timeout);
    let Some(rate) = core::num::NonZeroU32::new(min_rate) else {
        return idle;
    };
    let rate = u64::from(rate.get());
    let earned = Duration::from_secs(received / rate)
        + Duration::from_nanos((received % rate) * 1_000_000_000 / rate);
    let overall = after(start, timeout).and_then(|grace| grace.checked_add(earned));
    match (idle, overall) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A drain's bounds, from [`Connection::start_drain`]. The rest of an
/// unread body is read whatever its size (the front end accepted it, and
/// closing before it is sent would reset the connection and lose the
/// answer: issue 18 saw nginx turn an early 413 into a 502), paced rather
/// than capped: each read may wait [`drain_timeout`](Config::drain_timeout),
/// and after that long the peer must keep up
/// [`body_min_rate`](Config::body_min_rate), so an idle or trickling
/// peer is still cut; [`drain_limit`](Config::drain_limit) more bytes are
/// read past the body (nginx's surplus after a short `CONTENT_LENGTH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain<I> {
    started: I,
    idle: Duration,
    min_rate: u32,
    limit: u64,
}

impl<I: Timestamp> Drain<I> {
    /// The most bytes to read: what is left of the body (all of it after
    /// a head refused for its size), and
    /// [`drain_limit`](Config::drain_limit) more.
    #[must_use]
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// How long a read that starts waiting at `now`, after `drained`
    /// bytes, may wait (`None`: never); past it, stop draining and close.
    #[must_use]
    pub fn deadline(&self, now: I, drained: u64) -> Option<I> {
        paced_deadline(now, self.started, self.idle, self.min_rate, drained)
    }
}

/// `METHOD URI` of a request, for log lines: `GET /path?q`, with bytes
/// that are not printable ASCII escaped, `-` for what is missing.
#[derive(Clone, Copy, Debug)]
pub struct Describe<'a>(pub crate::Headers<'a>);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.0.method().unwrap_or("-"),
            self.0.request_uri().unwrap_or(b"-").escape_ascii()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn get() -> &'static [u8] {
        b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,"
    }

    fn post5() -> &'static [u8] {
        b"24:CONTENT_LENGTH\x005\x00SCGI\x001\x00,hello"
    }

    fn conn() -> Connection<Duration> {
        Connection::new(&Config::DEFAULT, S(100))
    }

    fn ready(conn: &mut Connection<Duration>, wire: &[u8]) -> Head {
        match conn.decode_head(wire) {
            HeadStep::Ready(head) => head,
            other => panic!("{other:?}"),
        }
    }

    fn answer(ending: Ending) -> (u16, Then) {
        match ending.reply {
            Reply::Answer(a) => (a.status, ending.then),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c, Config::DEFAULT);
        assert_eq!(c.head_timeout, S(30));
        assert_eq!(c.body_timeout, S(60));
        assert_eq!(c.body_min_rate, 500);
        assert_eq!(c.write_timeout, S(60));
        assert_eq!(c.drain_timeout, S(1));
        assert_eq!(c.drain_limit, 4 << 20);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.shutdown_timeout, S(30));
        assert_eq!(c.workers, 0);
        assert_eq!(c.connection_cap(), 1024);
        assert_eq!(c.with_max_connections(0).connection_cap(), 1);
    }

    #[test]
    fn head_deadline_counts_from_acceptance() {
        let c = conn();
        assert_eq!(c.head_deadline(), Some(S(130)));
        let c = Connection::new(&Config::DEFAULT.with_head_timeout(S(5)), S(7));
        assert_eq!(c.head_deadline(), Some(S(12)));
    }

    #[test]
    fn zero_timeouts_mean_one_millisecond() {
        let config = Config::DEFAULT
            .with_head_timeout(Duration::ZERO)
            .with_body_timeout(Duration::ZERO)
            .with_write_timeout(Duration::ZERO)
            .with_drain_timeout(Duration::ZERO);
        let c = Connection::new(&config, S(1));
        let ms = S(1) + MIN_TIMEOUT;
        assert_eq!(c.head_deadline(), Some(ms));
        assert_eq!(c.body_deadline(S(1)), Some(ms));
        assert_eq!(c.write_deadline(S(1)), Some(ms));
        assert_eq!(c.start_drain(S(1)).deadline(S(1), 0), Some(ms));
    }

    #[test]
    fn huge_timeouts_never_expire() {
        let config = Config::DEFAULT
            .with_head_timeout(Duration::MAX)
            .with_body_timeout(Duration::MAX)
            .with_write_timeout(Duration::MAX)
            .with_drain_timeout(Duration::MAX);
        let c = Connection::new(&config, S(1));
        assert_eq!(c.head_deadline(), None);
        assert_eq!(c.body_deadline(S(1)), None);
        assert_eq!(c.write_deadline(S(1)), None);
        assert_eq!(c.start_drain(S(1)).deadline(S(1), 0), None);
    }

    #[cfg(feature = "std")]
    #[test]
    fn instants_work_and_do_not_overflow() {
        let now = std::time::Instant::now();
        let c = Connection::new(&Config::DEFAULT.with_head_timeout(Duration::MAX), now);
        assert_eq!(c.head_deadline(), None);
        assert_eq!(c.body_deadline(now), Some(now + S(60)));
    }

    #[test]
    fn head_reads_ask_for_bounded_room() {
        let mut c = conn();
        assert_eq!(
            c.decode_head(b""),
            HeadStep::Read {
                room: HEAD_READ_MIN
            }
        );
        // A claimed 60 000-byte block: room grows with what arrives, not up
        // front.
        assert_eq!(
            c.decode_head(b"60000:"),
            HeadStep::Read {
                room: HEAD_READ_MAX
            }
        );
    }

    #[test]
    fn a_head_in_pieces_is_ready_once_whole() {
        let wire = post5();
        let mut c = conn();
        for end in 0..28 {
            assert!(
                matches!(c.decode_head(&wire[..end]), HeadStep::Read { .. }),
                "{end}"
            );
        }
        let head = ready(&mut c, wire);
        assert_eq!(head.wire_len(), 28);
        assert_eq!(c.body_remaining(), 5);
        assert_eq!(c.body(&wire[28..30]), 2);
        assert_eq!(c.body(b"llo, and more"), 3);
        assert_eq!(c.body(b", and more"), 0);
        assert_eq!(c.body_remaining(), 0);
    }

    #[test]
    fn refused_heads_get_the_decoder_status_then_a_drain() {
        let cases: [(&[u8], u16); 3] = [
            (b"GET / HTTP/1.1\r\n", 400),
            (b"99999999:", 431),
            (b"24:CONTENT_LENGTH\x009\x00SCGI\x001\x00,", 413),
        ];
        for (wire, status) in cases {
            let config = Config::DEFAULT.with_proto(
                crate::Config::DEFAULT.with_limits(crate::Limits::DEFAULT.with_max_body(Some(8))),
            );
            let mut c = Connection::new(&config, S(0));
            let HeadStep::End(end @ HeadEnd::Refused(e)) = c.decode_head(wire) else {
                panic!("{wire:?}")
            };
            assert_eq!(e.status_hint(), status);
            assert_eq!(end.severity(), Severity::Warn);
            let ending = end.ending();
            assert_eq!(answer(ending), (status, Then::Drain));
            let Reply::Answer(a) = ending.reply else {
                unreachable!()
            };
            assert_eq!(a.detail, Detail::Decoder(e));
            // Nothing else happens on this connection.
            assert_eq!(c.end(Outcome::Done, true).then, Then::Close);
        }
    }

    #[test]
    fn eof_before_any_byte_is_quiet() {
        let mut c = conn();
        assert_eq!(
            c.decode_head(b""),
            HeadStep::Read {
                room: HEAD_READ_MIN
            }
        );
        let end = c.head_eof();
        assert_eq!(end, HeadEnd::Closed);
        assert_eq!(end.severity(), Severity::Debug);
        assert_eq!(
            end.ending(),
            Ending {
                reply: Reply::Nothing,
                then: Then::Close
            }
        );
    }

    #[test]
    fn eof_inside_the_head_is_a_400_then_a_drain() {
        let mut c = conn();
        let _ = c.decode_head(b"24:CONT");
        let end = c.head_eof();
        assert_eq!(end, HeadEnd::Refused(Error::IncompleteHead));
        assert_eq!(answer(end.ending()), (400, Then::Drain));
    }

    #[test]
    fn head_timeout_is_quiet_when_idle_and_408_when_partial() {
        let mut c = conn();
        let _ = c.decode_head(b"");
        let end = c.head_timed_out();
        assert_eq!(end, HeadEnd::Idle);
        assert_eq!(end.ending().reply, Reply::Nothing);

        let mut c = conn();
        let _ = c.decode_head(b"24:CON");
        let end = c.head_timed_out();
        assert_eq!(end, HeadEnd::Stalled { received: 6 });
        assert_eq!(end.severity(), Severity::Info);
        // The peer is stalling: no drain.
        assert_eq!(answer(end.ending()), (408, Then::HalfClose));
        let mut out = [0u8; 128];
        let mut w = Buf(&mut out, 0);
        use core::fmt::Write as _;
        write!(w, "{end}").expect("fits");
        assert_eq!(
            &w.0[..w.1],
            b"request head incomplete after the head timeout (6 bytes); closing"
        );
    }

    #[test]
    fn a_handler_that_wrote_nothing_gets_204() {
        let mut c = conn();
        ready(&mut c, get());
        assert_eq!(
            c.end(Outcome::Done, true),
            Ending {
                reply: Reply::NoContent,
                then: Then::CloseUnlessPending
            }
        );
    }

    #[test]
    fn a_handler_that_wrote_gets_its_buffer_flushed() {
        let mut c = conn();
        ready(&mut c, get());
        c.wrote();
        assert_eq!(
            c.end(Outcome::Done, true),
            Ending {
                reply: Reply::Buffered,
                then: Then::CloseUnlessPending
            }
        );
    }

    #[test]
    fn unread_body_or_surplus_means_drain() {
        let mut c = conn();
        ready(&mut c, post5());
        c.wrote();
        // The body was not read.
        assert_eq!(c.end(Outcome::Done, true).then, Then::Drain);

        let mut c = conn();
        ready(&mut c, post5());
        assert_eq!(c.body(b"hello"), 5);
        // Bytes past the body sit in the driver's buffer.
        assert_eq!(c.end(Outcome::Done, false).then, Then::Drain);
    }

    #[test]
    fn failure_before_sending_is_500() {
        let mut c = conn();
        ready(&mut c, get());
        c.wrote(); // buffered, not sent: discarded for the answer
        assert_eq!(
            answer(c.end(Outcome::Failed, true)),
            (500, Then::CloseUnlessPending)
        );
    }

    #[test]
    fn failure_after_sending_is_a_reset() {
        let mut c = conn();
        ready(&mut c, get());
        c.wrote();
        c.sent(10);
        assert_eq!(
            c.end(Outcome::Failed, true),
            Ending {
                reply: Reply::Nothing,
                then: Then::Reset
            }
        );
    }

    #[test]
    fn status_and_bytes_are_what_the_response_carried() {
        // The handler's head.
        let mut c = conn();
        ready(&mut c, get());
        c.wrote_head(201);
        c.wrote();
        c.sent(40);
        c.sent(2);
        assert_eq!(c.status(), Some(201));
        assert_eq!(c.end(Outcome::Done, true).reply, Reply::Buffered);
        assert_eq!((c.status(), c.sent_bytes()), (Some(201), 42));
        assert_eq!(
            c.age(S(101) + Duration::from_millis(500)),
            Duration::from_millis(1500)
        );
        assert_eq!(c.age(S(1)), Duration::ZERO);
        // The server's own answers replace a head that never went out.
        let mut c = conn();
        ready(&mut c, get());
        c.wrote_head(200);
        c.end(Outcome::Failed, true);
        assert_eq!(c.status(), Some(500));
        let mut c = conn();
        ready(&mut c, get());
        c.end(Outcome::Done, true);
        assert_eq!(c.status(), Some(204));
        // Cut before anything was sent: no response.
        let mut c = conn();
        ready(&mut c, get());
        c.wrote_head(200);
        c.end(Outcome::Forced, false);
        assert_eq!(c.status(), None);
    }

    #[test]
    fn a_failure_on_the_clients_body_is_logged_lower() {
        let mut c = conn();
        ready(&mut c, post5());
        assert_eq!(c.failure_severity(), Severity::Error);
        c.body_timed_out();
        assert_eq!(c.failure_severity(), Severity::Info);
    }

    #[test]
    fn failure_after_a_body_error_answers_for_the_body() {
        let mut c = conn();
        ready(&mut c, post5());
        assert_eq!(c.body(b"he"), 2);
        let e = c.body_eof();
        assert_eq!(
            e,
            BodyError::Incomplete(Error::IncompleteBody { missing: 3 })
        );
        assert_eq!(c.body_error(), Some(e));
        // The peer closed its side: nothing to drain.
        assert_eq!(
            answer(c.end(Outcome::Failed, true)),
            (400, Then::CloseUnlessPending)
        );

        let mut c = conn();
        ready(&mut c, post5());
        assert_eq!(c.body_timed_out(), BodyError::TimedOut);
        assert_eq!(answer(c.end(Outcome::Failed, true)), (408, Then::Drain));

        // A handler that recovers from the body error and answers itself
        // keeps its answer.
        let mut c = conn();
        ready(&mut c, post5());
        let _ = c.body_timed_out();
        c.wrote();
        assert_eq!(c.end(Outcome::Done, true).reply, Reply::Buffered);
    }

    #[test]
    fn flat_limit_setters_reach_the_decoder() {
        let c = Config::DEFAULT
            .with_max_body(Some(8))
            .with_max_head(100)
            .with_max_headers(3);
        assert_eq!(
            c.proto.limits,
            crate::Limits::DEFAULT
                .with_max_body(Some(8))
                .with_max_head(100)
                .with_max_headers(3)
        );
        assert_eq!(Config::DEFAULT.with_limits(c.proto.limits), c);
        let strict = crate::Policy::DEFAULT.with_duplicates(crate::Duplicates::Reject);
        assert_eq!(Config::DEFAULT.with_policy(strict).proto.policy, strict);
        // The decoder applies the flat limit.
        let mut conn = Connection::new(&c, S(0));
        assert_eq!(
            conn.decode_head(b"24:CONTENT_LENGTH\x009\x00SCGI\x001\x00,"),
            HeadStep::End(HeadEnd::Refused(Error::BodyTooLarge {
                limit: 8,
                content_length: 9
            }))
        );
    }

    #[test]
    fn a_body_over_the_handler_limit_is_413_then_drained() {
        let mut c = conn();
        ready(&mut c, post5());
        assert_eq!(c.limit_body(5), Ok(()));
        assert_eq!(c.body_error(), None);
        let e = c.limit_body(4).expect_err("5 > 4");
        assert_eq!(
            e,
            BodyError::TooLarge(Error::BodyTooLarge {
                limit: 4,
                content_length: 5
            })
        );
        assert_eq!(e.answer().status, 413);
        assert_eq!(c.body_error(), Some(e));
        // Propagated or swallowed, the handler that wrote nothing gets the
        // 413; the unread body is drained.
        assert_eq!(
            answer(c.clone().end(Outcome::Failed, true)),
            (413, Then::Drain)
        );
        assert_eq!(answer(c.end(Outcome::Done, true)), (413, Then::Drain));
    }

    #[test]
    fn the_handler_limit_counts_what_is_left() {
        let mut c = conn();
        ready(&mut c, post5());
        assert_eq!(c.body(b"hel"), 3);
        assert_eq!(c.limit_body(2), Ok(()));
        assert!(c.limit_body(1).is_err());
        // 0 takes an empty body only; u64::MAX any.
        let mut c = conn();
        ready(&mut c, get());
        assert_eq!(c.limit_body(0), Ok(()));
        let mut c = conn();
        ready(&mut c, post5());
        assert!(c.limit_body(0).is_err());
        assert_eq!(c.limit_body(u64::MAX), Ok(()));
    }

    #[test]
    fn an_answer_written_after_a_refused_body_is_kept() {
        let mut c = conn();
        ready(&mut c, post5());
        let _ = c.limit_body(1);
        c.wrote();
        assert_eq!(c.end(Outcome::Done, true).reply, Reply::Buffered);
        // Sent, then failed: too late for the 413.
        let mut c = conn();
        ready(&mut c, post5());
        c.wrote();
        c.sent(1);
        let _ = c.limit_body(1);
        assert_eq!(c.end(Outcome::Failed, true).then, Then::Reset);
    }

    #[test]
    fn a_silent_handler_after_a_body_timeout_gets_408_not_204() {
        let mut c = conn();
        ready(&mut c, post5());
        let _ = c.body_timed_out();
        assert_eq!(answer(c.end(Outcome::Done, true)), (408, Then::Drain));
    }

    #[test]
    fn unserved_requests_get_503() {
        let mut c = conn();
        ready(&mut c, get());
        assert_eq!(
            answer(c.end(Outcome::Unserved, true)),
            (503, Then::CloseUnlessPending)
        );
    }

    #[test]
    fn forced_requests_close_without_a_word() {
        let mut c = conn();
        ready(&mut c, get());
        c.wrote();
        assert_eq!(
            c.end(Outcome::Forced, true),
            Ending {
                reply: Reply::Nothing,
                then: Then::Close
            }
        );
    }

    #[test]
    fn end_happens_once() {
        let mut c = conn();
        ready(&mut c, get());
        assert_eq!(c.end(Outcome::Done, true).reply, Reply::NoContent);
        assert_eq!(
            c.end(Outcome::Failed, true),
            Ending {
                reply: Reply::Nothing,
                then: Then::Close
            }
        );
    }

    #[test]
    fn body_and_write_deadlines_count_from_each_wait() {
        let config = Config::DEFAULT
            .with_body_timeout(S(3))
            .with_body_min_rate(0)
            .with_write_timeout(S(4))
            .with_drain_timeout(S(2))
            .with_drain_limit(10);
        let c = Connection::new(&config, S(0));
        assert_eq!(c.body_deadline(S(50)), Some(S(53)));
        assert_eq!(c.write_deadline(S(50)), Some(S(54)));
        let drain = c.start_drain(S(60));
        assert_eq!(drain.deadline(S(60), 0), Some(S(62)));
        assert_eq!(drain.deadline(S(61), 0), Some(S(63)));
        assert_eq!(drain.limit(), 10);
    }

    #[test]
    fn a_drain_after_a_413_head_reads_the_declared_body() {
        let config = Config::DEFAULT.with_proto(
            crate::Config::DEFAULT.with_limits(crate::Limits::DEFAULT.with_max_body(Some(8))),
        );
        let mut c = Connection::new(&config, S(0));
        let HeadStep::End(end) = c.decode_head(b"31:CONTENT_LENGTH\x0060000000\x00SCGI\x001\x00,")
        else {
            panic!("not refused")
        };
        assert_eq!(answer(end.ending()), (413, Then::Drain));
        assert_eq!(c.start_drain(S(1)).limit(), 60_000_000 + (4 << 20));
    }

    #[test]
    fn a_drain_reads_the_rest_of_the_body_at_its_pace() {
        // An early answer to a 60 MB body the handler never read: the
        // whole body is drained (plus drain_limit), each read may wait 1 s,
        // and after 1 s the peer must keep up 500 bytes a second.
        let config = Config::DEFAULT
            .with_drain_timeout(S(1))
            .with_drain_limit(4 << 20)
            .with_body_min_rate(500);
        let mut c = Connection::new(&config, S(0));
        let wire = b"31:CONTENT_LENGTH\x0060000000\x00SCGI\x001\x00,";
        ready(&mut c, wire);
        assert_eq!(c.body(&[0u8; 1000]), 1000);
        let _ = c.end(Outcome::Done, true);
        let drain = c.start_drain(S(10));
        assert_eq!(drain.limit(), 60_000_000 - 1000 + (4 << 20));
        // Idle: a second per read.
        assert_eq!(drain.deadline(S(10), 0), Some(S(11)));
        // A fast sender (30 MB in 2 s) is far ahead of the rate: the idle
        // bound applies.
        assert_eq!(drain.deadline(S(12), 30_000_000), Some(S(13)));
        // A trickler (1 000 bytes in 5 s) fell behind: cut at once.
        assert_eq!(drain.deadline(S(15), 1000), Some(S(13)));
    }

    #[test]
    fn a_trickling_body_falls_behind_the_minimum_rate() {
        // Accepted at 0; 10 s of grace, then 500 bytes buy a second.
        let config = Config::DEFAULT
            .with_body_timeout(S(10))
            .with_body_min_rate(500);
        let mut c = Connection::new(&config, S(0));
        let wire = b"28:CONTENT_LENGTH\x0010000\x00SCGI\x001\x00,";
        ready(&mut c, wire);
        // Within the grace, the idle timeout or the grace's end applies.
        assert_eq!(c.body_deadline(S(1)), Some(S(10)));
        // 1 000 bytes in: two more seconds.
        assert_eq!(c.body(&[7u8; 1000]), 1000);
        assert_eq!(c.body_deadline(S(9)), Some(S(12)));
        // 250 more: half a second more.
        assert_eq!(c.body(&[7u8; 250]), 250);
        assert_eq!(c.body_deadline(S(9)), Some(Duration::from_millis(12_500)));
        // A body that keeps up is bound by the idle timeout alone.
        assert_eq!(c.body(&[7u8; 8000]), 8000);
        assert_eq!(c.body_deadline(S(11)), Some(S(21)));
        // Off: per-read idle only, whatever the time.
        let c = Connection::new(&config.with_body_min_rate(0), S(0));
        assert_eq!(c.body_deadline(S(100)), Some(S(110)));
    }

    #[test]
    fn answers_encode_in_512_bytes() {
        let answers = [
            Answer {
                status: 400,
                detail: Detail::Decoder(Error::MissingScgi),
            },
            BodyError::TimedOut.answer(),
            BodyError::Incomplete(Error::IncompleteBody { missing: u64::MAX }).answer(),
            Answer {
                status: 431,
                detail: Detail::Decoder(Error::HeadTooLarge {
                    limit: usize::MAX,
                    claimed: usize::MAX,
                }),
            },
        ];
        for a in answers {
            let mut buf = [0u8; 512];
            let n = a.encode(&mut buf).expect("fits");
            let text = core::str::from_utf8(&buf[..n]).expect("utf-8");
            assert!(text.starts_with("Status: "), "{text}");
        }
    }

    #[test]
    fn describe_escapes() {
        let wire = b"58:CONTENT_LENGTH\x000\x00SCGI\x001\x00REQUEST_METHOD\x00GET\x00REQUEST_URI\x00/\xff\x00,";
        let mut c = conn();
        let head = ready(&mut c, wire);
        let mut out = [0u8; 32];
        let mut w = Buf(&mut out, 0);
        use core::fmt::Write as _;
        write!(w, "{}", Describe(head.headers(wire))).expect("fits");
        assert_eq!(&w.0[..w.1], b"GET /\\xff");
    }

    struct Buf<'a>(&'a mut [u8], usize);
    impl core::fmt::Write for Buf<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.1 + s.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
}

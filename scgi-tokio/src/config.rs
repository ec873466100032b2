//! Server settings.

use std::time::Duration;

/// A [`Server`](crate::Server)'s settings: timeouts, the connection cap,
/// and the protocol limits and policies of [`scgi_proto::Config`]. Plain
/// data with documented defaults; change a field or use the `with_*`
/// methods. The same fields and defaults as `scgi_blocking::Config`, less
/// `workers`: here every connection is a task, and how many threads run
/// them is the tokio runtime's business.
///
/// | field | default |
/// | --- | --- |
/// | [`head_timeout`](Config::head_timeout) | 30 s |
/// | [`body_timeout`](Config::body_timeout) | 60 s |
/// | [`write_timeout`](Config::write_timeout) | 60 s |
/// | [`max_connections`](Config::max_connections) | 1 024 |
/// | [`drain_timeout`](Config::drain_timeout) | 1 s |
/// | [`drain_limit`](Config::drain_limit) | 4 MiB |
/// | [`shutdown_timeout`](Config::shutdown_timeout) | 30 s |
/// | [`proto`](Config::proto) | [`scgi_proto::Config::DEFAULT`] (64 KiB head, no body limit, strict) |
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The longest a connection may take to deliver its whole header
    /// netstring, from its acceptance: the defence against clients that
    /// trickle a head byte by byte (slowloris). A client that has sent part
    /// of a head by then gets `408 Request Timeout`; one that sent nothing
    /// is closed quietly.
    pub head_timeout: Duration,
    /// The longest one read of the body may wait for data. The read then
    /// fails with [`TimedOut`](std::io::ErrorKind::TimedOut).
    pub body_timeout: Duration,
    /// The longest one write of the response may wait for the peer to
    /// accept data (a peer that stops reading). The write then fails with
    /// [`TimedOut`](std::io::ErrorKind::TimedOut).
    pub write_timeout: Duration,
    /// Open connections at most: accepted and not yet closed (an upgraded
    /// connection counts until its [`Upgraded`](crate::Upgraded) is
    /// dropped). Past it, new connections wait in the kernel's listen
    /// backlog. Each open connection holds a file descriptor: keep this
    /// under the process's `RLIMIT_NOFILE`.
    pub max_connections: usize,
    /// After a response to a request that was not read to its end, the
    /// server shuts down its sending side and reads (and discards) what the
    /// peer still sends, until the peer closes, for at most this long. A
    /// connection closed with unread input makes the kernel send RST, and
    /// the peer may lose the response (an early 413, a handler that ignored
    /// the body, nginx's surplus after a short `CONTENT_LENGTH`). A request
    /// read to its end, with nothing pending behind it, is closed at once.
    pub drain_timeout: Duration,
    /// The most bytes read while draining (see
    /// [`drain_timeout`](Config::drain_timeout)).
    pub drain_limit: u64,
    /// How long a graceful shutdown waits for in-flight requests to finish.
    /// Past it the remaining connections are closed (their handler futures
    /// are dropped) and shutting down completes.
    pub shutdown_timeout: Duration,
    /// Protocol limits and policies, checked by the decoder.
    pub proto: scgi_proto::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            head_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            max_connections: 1024,
            drain_timeout: Duration::from_secs(1),
            drain_limit: 4 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(30),
            proto: scgi_proto::Config::DEFAULT,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta] $name:ident: $field:ident: $ty:ty;)*) => {
        $(
            #[$doc]
            #[must_use]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$field = value;
                self
            }
        )*
    };
}

impl Config {
    setter! {
        /// Returns this configuration with `head_timeout` set.
        with_head_timeout: head_timeout: Duration;
        /// Returns this configuration with `body_timeout` set.
        with_body_timeout: body_timeout: Duration;
        /// Returns this configuration with `write_timeout` set.
        with_write_timeout: write_timeout: Duration;
        /// Returns this configuration with `max_connections` set (at least 1 is used).
        with_max_connections: max_connections: usize;
        /// Returns this configuration with `drain_timeout` set.
        with_drain_timeout: drain_timeout: Duration;
        /// Returns this configuration with `drain_limit` set.
        with_drain_limit: drain_limit: u64;
        /// Returns this configuration with `shutdown_timeout` set.
        with_shutdown_timeout: shutdown_timeout: Duration;
        /// Returns this configuration with the protocol configuration set.
        with_proto: proto: scgi_proto::Config;
    }

    /// The connection cap as the semaphore holds it: at least 1, at most
    /// what a tokio semaphore can count.
    pub(crate) fn permits(&self) -> usize {
        self.max_connections
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS)
    }
}

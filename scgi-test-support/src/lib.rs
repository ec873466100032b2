//! SCGI server test scenarios, written once and run by every runtime crate
//! (`scgi-blocking`, and later `scgi-tokio`, `scgi-async-std`).
//!
//! A scenario is a client: it talks to a real server over real sockets
//! (TCP on `127.0.0.1` or `::1`, or a Unix socket in the temp directory)
//! and checks the bytes that come back. It knows nothing of the runtime: a
//! runtime crate supplies one function that starts its server on the
//! address a [`Setup`] asks for, with the settings it carries and the
//! [standard test app](#the-standard-test-app), and returns a [`Running`]
//! (the address, and a way to stop it). The [`scenarios!`] macro then
//! expands one `#[test]` per scenario and transport:
//!
//! ```ignore
//! fn start(setup: &scgi_test_support::Setup) -> scgi_test_support::Running {
//!     // Server::bind(&setup.bind_addr()), with setup.config,
//!     // serve the standard app, return the address and a stop closure
//! }
//! scgi_test_support::scenarios!(start);
//! ```
//!
//! # The standard test app
//!
//! Each runtime serves these routes, picked by [`Route::of`] from the
//! request's headers; everything else is [`Route::Inspect`]:
//!
//! | path | the handler |
//! | --- | --- |
//! | `/deepthought` | reads the whole body, then writes `write_status_ok_text_content("text/plain")` and `42` (the spec's example) |
//! | `/echo` | writes a 200 head (`application/octet-stream`), then echoes the body chunk by chunk, flushing each chunk |
//! | `/panic` | panics before writing anything |
//! | `/error` | returns an error before writing anything |
//! | `/nothing` | returns successfully without writing |
//! | `/upgrade` | reads the body, writes a `101` head with `Upgrade: echo`, upgrades, and echoes raw bytes (those sent after the request first) until end of input |
//! | `/form` | `read_body(`[`FORM_LIMIT`]`)?` (so a larger body is the server's `413`), then `respond(200, [("Content-Type", "text/plain; charset=utf-8")], `[`form_reply`]`(..))`: the decoded query and form pairs, one a line (no body for `HEAD`); with the query parameter `again`, a second `respond` whose error (it must refuse) the handler returns |
//! | anything else | [`Route::Inspect`]: a 200 head (`application/octet-stream`), the raw header block it carries, then the body echoed as for `/echo` |
//!
//! The server must behave as SCGI.md says: a failing or panicking handler
//! that wrote nothing gets a 500 (a 400 when its body read failed because
//! the peer closed early, a 408 when it stalled, a 413 when `read_body`
//! refused it), a handler that wrote nothing gets a valid
//! response, bad heads get the decoder's status hint, and so on; the
//! [`scenarios`](mod@scenarios) say exactly what each one checks.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use scgi_proto::server::{Config, Stats};
use scgi_proto::{Headers, ResponseParser, ResponseStep};

pub mod process;
pub mod scenarios;

/// The access-log lines (target `scgi::access`) this process logged, from
/// [`capture_access_log`].
#[derive(Debug, Clone, Copy)]
pub struct AccessLines(&'static std::sync::Mutex<Vec<String>>);

impl AccessLines {
    /// The first line that contains `needle`.
    #[must_use]
    pub fn find(&self, needle: &str) -> Option<String> {
        let lines = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lines.iter().find(|l| l.contains(needle)).cloned()
    }
}

struct Capture(std::sync::Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == scgi_proto::server::ACCESS_LOG_TARGET
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let mut lines = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            lines.push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(std::sync::Mutex::new(Vec::new()));

/// Installs, once per process, a logger that keeps the access-log lines
/// (and drops everything else).
///
/// # Panics
///
/// If another logger was installed first.
#[must_use]
pub fn capture_access_log() -> AccessLines {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in the test process");
        log::set_max_level(log::LevelFilter::Info);
    });
    AccessLines(&CAPTURE.0)
}

/// A fresh path in the temp directory (`scgi-<what>-<pid>-<n>.sock`),
/// nothing at it.
#[must_use]
pub fn temp_path(what: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "scgi-{what}-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// How long a scenario's client waits on any one read or write before it
/// fails: a bound on every test, not a timing assertion.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The socket kind a scenario runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP on `127.0.0.1`, port 0 (any free port).
    Tcp,
    /// TCP on `[::1]`, port 0.
    Tcp6,
    /// A Unix socket at a fresh path in the temp directory.
    Unix,
}

/// The settings scenarios start from: the shared server
/// [`Config`] of every runtime, with generous
/// test values, so that only the setting a scenario is about is short:
/// 5 s head, body and write timeouts, 4 workers, 64 connections, 1 s and
/// 4 MiB of draining, 10 s to shut down, scgi-proto's decoder defaults.
#[must_use]
pub fn test_config() -> Config {
    Config::DEFAULT
        .with_head_timeout(Duration::from_secs(5))
        .with_body_timeout(Duration::from_secs(5))
        .with_write_timeout(Duration::from_secs(5))
        .with_workers(4)
        .with_max_connections(64)
        .with_drain_timeout(Duration::from_secs(1))
        .with_drain_limit(4 * 1024 * 1024)
        .with_shutdown_timeout(Duration::from_secs(10))
}

/// What a runtime's start function is asked for: where to listen and with
/// which settings.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The socket kind.
    pub transport: Transport,
    /// The settings.
    pub config: Config,
    unix_path: PathBuf,
}

impl Setup {
    /// The TCP address to bind (port 0) for [`Transport::Tcp`] and
    /// [`Transport::Tcp6`].
    #[must_use]
    pub fn tcp_addr(&self) -> SocketAddr {
        match self.transport {
            Transport::Tcp6 => "[::1]:0".parse().expect("valid address"),
            _ => "127.0.0.1:0".parse().expect("valid address"),
        }
    }

    /// The address to bind as one string, the form every runtime's
    /// `Server::bind` takes: `127.0.0.1:0`, `[::1]:0` or `unix:<path>`.
    #[must_use]
    pub fn bind_addr(&self) -> String {
        match self.transport {
            Transport::Unix => format!("unix:{}", self.unix_path.display()),
            _ => self.tcp_addr().to_string(),
        }
    }

    /// The path to bind for [`Transport::Unix`]: fresh and unused.
    #[must_use]
    pub fn unix_path(&self) -> &std::path::Path {
        &self.unix_path
    }
}

/// Where a server under test listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(a) => a.fmt(f),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl Target {
    /// Connects, with [`CLIENT_TIMEOUT`] on reads and writes.
    pub fn connect(&self) -> io::Result<Client> {
        let stream = match self {
            Target::Tcp(a) => ClientStream::Tcp(TcpStream::connect_timeout(a, CLIENT_TIMEOUT)?),
            Target::Unix(p) => ClientStream::Unix(UnixStream::connect(p)?),
        };
        stream.set_timeouts(Some(CLIENT_TIMEOUT))?;
        Ok(Client { stream })
    }
}

/// A server started for a scenario: its address, and how to stop it.
pub struct Running {
    /// Where it listens.
    pub target: Target,
    stop: Option<Box<dyn FnOnce() -> bool + Send>>,
    stats: Option<Box<dyn Fn() -> Stats + Send + Sync>>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// A running server at `target`. `stop` must stop accepting, let the
    /// requests in flight finish (up to the configured shutdown timeout),
    /// and return only when the server is stopped, saying whether every
    /// request finished in time.
    pub fn new(target: Target, stop: impl FnOnce() -> bool + Send + 'static) -> Running {
        Running {
            target,
            stop: Some(Box::new(stop)),
            stats: None,
        }
    }

    /// Gives the scenarios the server's counters (its
    /// `ShutdownHandle::stats`).
    #[must_use]
    pub fn with_stats(mut self, stats: impl Fn() -> Stats + Send + Sync + 'static) -> Running {
        self.stats = Some(Box::new(stats));
        self
    }

    /// The server's counters now.
    ///
    /// # Panics
    ///
    /// If the runtime did not give them ([`with_stats`](Running::with_stats)).
    #[must_use]
    pub fn stats(&self) -> Stats {
        (self.stats.as_ref().expect("the runtime gave no stats"))()
    }

    /// Stops the server (see [`Running::new`]).
    pub fn stop(mut self) -> bool {
        self.stop.take().is_some_and(|stop| stop())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take()
            && !thread::panicking()
        {
            stop();
        }
    }
}

/// A scenario's view of the runtime under test.
pub struct Harness<'a> {
    transport: Transport,
    start: &'a dyn Fn(&Setup) -> Running,
}

impl fmt::Debug for Harness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Harness<'_> {
    /// The transport this run uses.
    #[must_use]
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Starts a server with `config` on this run's transport.
    pub fn start(&self, config: Config) -> Running {
        let unix_path = temp_path("test");
        (self.start)(&Setup {
            transport: self.transport,
            config,
            unix_path,
        })
    }
}

/// Runs one scenario against the runtime whose start function is `start`.
/// Skips (passes) [`Transport::Tcp6`] when the machine has no IPv6
/// loopback.
pub fn run(transport: Transport, start: &dyn Fn(&Setup) -> Running, scenario: fn(&Harness<'_>)) {
    if transport == Transport::Tcp6 && TcpListener::bind("[::1]:0").is_err() {
        return;
    }
    scenario(&Harness { transport, start });
}

/// Expands one `#[test]` per scenario and transport (modules `tcp`, `unix`,
/// and `tcp6` for a few), each calling `run` with the given start function,
/// which must be a function in scope: `fn(&Setup) -> Running`.
#[macro_export]
macro_rules! scenarios {
    ($start:ident) => {
        $crate::__every_scenario!(tcp, $crate::Transport::Tcp, $start);
        $crate::__every_scenario!(unix, $crate::Transport::Unix, $start);
        $crate::__scenario_tests!(
            tcp6,
            $crate::Transport::Tcp6,
            $start,
            [spec_example, upgrade_tunnel]
        );
    };
}

/// The full scenario list, written once, expanded for one transport.
#[doc(hidden)]
#[macro_export]
macro_rules! __every_scenario {
    ($module:ident, $transport:expr, $start:ident) => {
        $crate::__scenario_tests!(
            $module,
            $transport,
            $start,
            [
                spec_example,
                corpus_replay,
                nginx_short_content_length,
                big_body_streamed,
                malformed_heads_400,
                oversized_head_431,
                too_many_headers_431,
                body_too_large_413,
                slow_head_cut_off,
                idle_clients_do_not_stall_others,
                panic_500,
                handler_error_500,
                handler_writes_nothing,
                eof_before_first_byte,
                eof_mid_head_400,
                eof_mid_body_400,
                body_idle_timeout_408,
                trickling_body_408,
                stats_count_what_happened,
                access_log_line_per_request,
                huge_timeouts_never_panic,
                early_answer_drains_a_large_body,
                read_body_and_form,
                read_body_over_the_limit_413,
                respond_to_head,
                respond_twice_is_refused,
                half_close_after_request,
                upgrade_tunnel,
                concurrent_clients,
                close_with_requests_in_flight,
                close_deadline_cuts_stragglers
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __scenario_tests {
    ($module:ident, $transport:expr, $start:ident, [$($name:ident),* $(,)?]) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    $crate::run($transport, &super::$start, $crate::scenarios::$name);
                }
            )*
        }
    };
}

/// The standard test app's routes (see the crate docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/deepthought`: read the body, answer `42` as text/plain.
    DeepThought,
    /// `/echo`: 200 head, then the body echoed chunk by chunk.
    Echo,
    /// `/panic`: panic before writing.
    Panic,
    /// `/error`: fail before writing.
    Error,
    /// `/nothing`: succeed without writing.
    Nothing,
    /// `/upgrade`: read the body, write a 101 head, upgrade, echo raw bytes.
    Upgrade,
    /// `/form`: `read_body(FORM_LIMIT)`, then `respond` with
    /// [`form_reply`].
    Form,
    /// Anything else: 200 head, this raw header block, then the body
    /// echoed.
    Inspect(Vec<u8>),
}

/// The `Content-Type` of the echo and inspect responses.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The headers of the `/upgrade` route's `101` head.
pub const UPGRADE_HEADERS: &[(&str, &str)] = &[("Upgrade", "echo"), ("Connection", "Upgrade")];

impl Route {
    /// The route for a request.
    #[must_use]
    pub fn of(headers: &Headers<'_>) -> Route {
        match headers.path() {
            Some(b"/deepthought") => Route::DeepThought,
            Some(b"/echo") => Route::Echo,
            Some(b"/panic") => Route::Panic,
            Some(b"/error") => Route::Error,
            Some(b"/nothing") => Route::Nothing,
            Some(b"/upgrade") => Route::Upgrade,
            Some(b"/form") => Route::Form,
            _ => Route::Inspect(headers.as_bytes().to_vec()),
        }
    }
}

/// The body limit of the `/form` route's `read_body`.
pub const FORM_LIMIT: u64 = 1024;

/// The `Content-Type` of the `/form` route's answer.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// The `/form` route's answer to a request with `headers` and `body`: a
/// line `query <name>=<value>` per decoded query pair, then `form
/// <name>=<value>` per decoded body pair. Owned, so that the handler can
/// `respond` with it (the headers borrow the request).
#[must_use]
pub fn form_reply(headers: &Headers<'_>, body: &[u8]) -> String {
    let mut text = String::new();
    for (k, v) in headers.query_pairs() {
        text.push_str(&format!("query {k}={v}\n"));
    }
    for (k, v) in scgi_proto::form_pairs(body) {
        text.push_str(&format!("form {k}={v}\n"));
    }
    text
}

/// A blocking implementation of the standard app's echo loop, for runtimes
/// whose request is `Read + Write`: copies `req`'s body back to it in 64 KiB
/// chunks, flushing each.
pub fn echo_body<T: Read + Write + ?Sized>(req: &mut T) -> io::Result<()> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = req.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        req.write_all(&chunk[..n])?;
        req.flush()?;
    }
}

/// A client connection (TCP or Unix).
#[derive(Debug)]
pub struct Client {
    stream: ClientStream,
}

#[derive(Debug)]
enum ClientStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl ClientStream {
    fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            ClientStream::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            ClientStream::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }
}

impl Client {
    /// Another handle to the same connection (for a writer thread).
    pub fn try_clone(&self) -> io::Result<Client> {
        let stream = match &self.stream {
            ClientStream::Tcp(s) => ClientStream::Tcp(s.try_clone()?),
            ClientStream::Unix(s) => ClientStream::Unix(s.try_clone()?),
        };
        Ok(Client { stream })
    }

    /// Shuts down the read, write or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match &self.stream {
            ClientStream::Tcp(s) => s.shutdown(how),
            ClientStream::Unix(s) => s.shutdown(how),
        }
    }

    /// Sets the read timeout.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match &self.stream {
            ClientStream::Tcp(s) => s.set_read_timeout(t),
            ClientStream::Unix(s) => s.set_read_timeout(t),
        }
    }

    /// Writes `bytes` on a thread of its own (as a web server sends while
    /// it reads), ignoring errors: a server may answer and close before
    /// reading everything. Join the handle to wait for it.
    pub fn send_in_background(&self, bytes: Vec<u8>) -> io::Result<thread::JoinHandle<()>> {
        let mut writer = self.try_clone()?;
        Ok(thread::spawn(move || {
            let _ = writer.write_all(&bytes);
        }))
    }

    /// Whether the server still holds the connection open: no end of input
    /// and no error within 50 ms (bytes that arrive meanwhile are consumed;
    /// the read timeout is set back to [`CLIENT_TIMEOUT`] afterwards).
    pub fn is_open(&mut self) -> io::Result<bool> {
        self.set_read_timeout(Some(Duration::from_millis(50)))?;
        let mut byte = [0u8; 1];
        let open = match self.read(&mut byte) {
            Ok(n) => n > 0,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        self.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        Ok(open)
    }

    /// Reads until the server closes.
    pub fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut raw = Vec::new();
        self.read_to_end(&mut raw)?;
        Ok(raw)
    }
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.stream {
            ClientStream::Tcp(s) => s.read(buf),
            ClientStream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stream {
            ClientStream::Tcp(s) => s.write(buf),
            ClientStream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends `request` (from a writer thread) and returns everything the server
/// sent until it closed.
pub fn exchange(target: &Target, request: &[u8]) -> io::Result<Vec<u8>> {
    let mut client = target.connect()?;
    let writer = client.send_in_background(request.to_vec())?;
    let raw = client.read_all();
    let _ = writer.join();
    raw
}

/// A response as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The effective status.
    pub status: u16,
    /// The headers, without the status, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Everything after the head.
    pub body: Vec<u8>,
}

impl Reply {
    /// Parses a whole response with [`ResponseParser`]; panics (failing the
    /// test) if it is not a valid CGI response.
    #[must_use]
    pub fn parse(raw: &[u8]) -> Reply {
        let mut parser = ResponseParser::new();
        let head = match parser.parse(raw) {
            Ok(ResponseStep::Complete(head)) => head,
            other => panic!(
                "not a complete CGI response ({other:?}): {:?}",
                raw[..raw.len().min(300)].escape_ascii().to_string()
            ),
        };
        let view = head.view(raw);
        Reply {
            status: view.status(),
            headers: view
                .headers()
                .map(|(n, v)| (n.to_owned(), v.to_vec()))
                .collect(),
            body: raw[head.head_len()..].to_vec(),
        }
    }

    /// The first value of a header (case-insensitive name).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Checks an error answer: the status, a non-empty body, and a
    /// `Content-Length` (if sent) that matches the body.
    pub fn assert_error(&self, status: u16) {
        assert_eq!(self.status, status, "status of {self:?}");
        assert!(!self.body.is_empty(), "error response without a body");
        if let Some(len) = self.header("Content-Length") {
            let len: usize = std::str::from_utf8(len)
                .ok()
                .and_then(|l| l.parse().ok())
                .expect("numeric Content-Length");
            assert_eq!(len, self.body.len(), "Content-Length of {self:?}");
        }
    }
}

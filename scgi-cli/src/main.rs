//! `scgi`: call, front and load any SCGI backend.
//!
//! - `scgi request ADDR [PATH]`: one request with the CGI variables nginx's
//!   `scgi_params` sends; prints the response (`-i`: its head too);
//!   `--fail` and `--timeout` make it a health check.
//! - `scgi gateway --listen 127.0.0.1:8080 --backend ADDR`: an HTTP/1.1
//!   development server that forwards every request as nginx does.
//! - `scgi bench ADDR`: a load generator straight at the backend:
//!   requests per second, latency percentiles, errors; `--json` for
//!   scripts.
//!
//! `ADDR` is `host:port`, `[v6]:port` or `unix:/path`. The SCGI request
//! encoder and the response head parser are `scgi-proto`'s.
//!
//! Exit codes follow curl's where there is one: 0 success, 1 another
//! failure, 2 a bad command line, 7 cannot connect, 8 a malformed answer,
//! 18 a body shorter than its `Content-Length`, 22 a status of 400 or more
//! under `--fail`, 23 cannot write the output, 28 timeout, 52 the backend
//! closed the connection before a complete head.

// A command-line tool's output is its job: printing to stdout and stderr
// is what it is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod addr;
mod bench;
mod cgi;
mod gateway;
mod request;
mod response;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::addr::BackendAddr;

/// Exit codes (curl's where curl has one).
pub(crate) mod exit {
    /// Any other failure (a file that cannot be read, a port that cannot
    /// be bound...).
    pub(crate) const FAILURE: u8 = 1;
    /// A bad command line (clap's own code for usage errors).
    pub(crate) const USAGE: u8 = 2;
    /// Could not connect to the backend.
    pub(crate) const CONNECT: u8 = 7;
    /// The backend's answer is not a CGI response.
    pub(crate) const MALFORMED: u8 = 8;
    /// The body ended before its `Content-Length`.
    pub(crate) const PARTIAL: u8 = 18;
    /// `--fail` and a status of 400 or more.
    pub(crate) const HTTP_ERROR: u8 = 22;
    /// Writing the output failed.
    pub(crate) const WRITE: u8 = 23;
    /// The timeout passed.
    pub(crate) const TIMEOUT: u8 = 28;
    /// The backend closed the connection before a complete head.
    pub(crate) const EMPTY: u8 = 52;
}

/// A failure to report: a message for stderr and an exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The exit code.
    pub(crate) code: u8,
    /// What went wrong, for a person.
    pub(crate) message: String,
}

impl Failure {
    /// A failure with `code`.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// Call, front and load any SCGI backend.
#[derive(Debug, Parser)]
#[command(
    name = "scgi",
    version,
    propagate_version = true,
    after_help = "ADDR is host:port, [v6]:port or unix:/path."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send one request and print the response (health checks: --fail
    /// --timeout).
    ///
    /// The backend sees the CGI variables nginx's `scgi_params` would send
    /// for the same request from a client on 127.0.0.1 (override any with
    /// --var). Exit codes: 0 success, 7 cannot connect, 8 malformed answer,
    /// 18 body shorter than its Content-Length, 22 status >= 400 with
    /// --fail, 28 timeout, 52 closed before a complete head.
    Request(RequestArgs),
    /// Serve HTTP/1.1 and forward every request to the backend as nginx
    /// does (a development server).
    Gateway(GatewayArgs),
    /// Load the backend straight, without a web server in front:
    /// requests/s, latency percentiles, errors.
    Bench(BenchArgs),
}

/// The request to send, for `request` and `bench`.
#[derive(Debug, Args)]
pub(crate) struct RequestSpec {
    /// The request target: a path with an optional query string.
    #[arg(default_value = "/", value_name = "PATH")]
    pub(crate) path: String,
    /// The method [default: GET, POST with --data].
    #[arg(short = 'X', long, value_name = "METHOD")]
    pub(crate) method: Option<String>,
    /// A request header (repeatable), sent as HTTP_NAME. Host, User-Agent
    /// and Accept have defaults; Content-Type also sets CONTENT_TYPE.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// The body: literal text, @FILE, or @- for stdin.
    #[arg(short = 'd', long = "data", value_name = "DATA|@FILE|@-")]
    pub(crate) data: Option<String>,
    /// Set or override a CGI variable (repeatable), e.g. HTTPS=on or
    /// REMOTE_ADDR=10.0.0.7.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = units::parse_var)]
    pub(crate) vars: Vec<(String, String)>,
    /// DOCUMENT_ROOT [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub(crate) document_root: Option<String>,
}

/// `scgi request`.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    #[arg(
        value_parser = BackendAddr::parse,
        value_name = "ADDR",
        help = "The backend: host:port, [v6]:port or unix:/path"
    )]
    pub(crate) addr: BackendAddr,
    #[command(flatten)]
    pub(crate) spec: RequestSpec,
    /// Print the response head (as the backend sent it) before the body.
    #[arg(short = 'i', long = "include")]
    pub(crate) include: bool,
    /// Exit 22 on a status of 400 or more, without printing the body.
    #[arg(short = 'f', long)]
    pub(crate) fail: bool,
    /// Give up after this long in all (connect, send, answer): 500ms, 5s,
    /// 1m.
    #[arg(short = 'm', long, default_value = "30s", value_parser = units::parse_duration)]
    pub(crate) timeout: Duration,
}

/// `scgi gateway`.
#[derive(Debug, Args)]
pub(crate) struct GatewayArgs {
    /// Where to serve HTTP.
    #[arg(
        short,
        long,
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT"
    )]
    pub(crate) listen: String,
    #[arg(
        short,
        long,
        value_parser = BackendAddr::parse,
        value_name = "ADDR",
        help = "The SCGI backend: host:port, [v6]:port or unix:/path"
    )]
    pub(crate) backend: BackendAddr,
    /// The largest request body accepted (413 beyond): 1048576, 512k, 64m.
    /// Chunked bodies are buffered in memory up to it, since SCGI needs
    /// CONTENT_LENGTH first.
    #[arg(long, default_value = "64m", value_name = "SIZE", value_parser = units::parse_size)]
    pub(crate) max_body_size: u64,
    /// The largest request head accepted (431 beyond).
    #[arg(long, default_value = "64k", value_name = "SIZE", value_parser = units::parse_size)]
    pub(crate) max_head_size: u64,
    /// Give up connecting to the backend after this long (502).
    #[arg(long, default_value = "5s", value_parser = units::parse_duration)]
    pub(crate) connect_timeout: Duration,
    /// Give up on a backend that sends nothing for this long: 504 before
    /// the head, a cut response after it (nginx's scgi_read_timeout).
    #[arg(long, default_value = "60s", value_parser = units::parse_duration)]
    pub(crate) timeout: Duration,
    /// SERVER_NAME (nginx's server_name).
    #[arg(long, default_value = "localhost", value_name = "NAME")]
    pub(crate) server_name: String,
    /// DOCUMENT_ROOT [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub(crate) document_root: Option<String>,
    /// Set or override a CGI variable on every request (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = units::parse_var)]
    pub(crate) vars: Vec<(String, String)>,
    /// No access log on stderr.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

/// `scgi bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[arg(
        value_parser = BackendAddr::parse,
        value_name = "ADDR",
        help = "The backend: host:port, [v6]:port or unix:/path"
    )]
    pub(crate) addr: BackendAddr,
    #[command(flatten)]
    pub(crate) spec: RequestSpec,
    /// Send this captured request (a raw `.scgi` file: netstring and body)
    /// instead of one built from PATH and the options.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["method", "headers", "data", "vars", "document_root"])]
    pub(crate) request_file: Option<PathBuf>,
    /// Concurrent connections (each sends one request at a time; SCGI has
    /// one request per connection).
    #[arg(short, long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) connections: u32,
    /// How long to run [default: 10s unless --requests is given].
    #[arg(short = 'z', long, value_parser = units::parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Stop after this many requests (with --duration: whichever comes
    /// first).
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) requests: Option<u64>,
    /// A request that takes longer is cut and counted as a timeout.
    #[arg(long, default_value = "10s", value_parser = units::parse_duration)]
    pub(crate) timeout: Duration,
    /// Runtime threads [default: one per core].
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: Option<u16>,
    /// Print the results as one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// No live progress line (it only shows when stderr is a terminal).
    #[arg(long)]
    pub(crate) no_progress: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match &cli.command {
        Command::Request(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Command::Gateway(_) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        Command::Bench(args) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(t) = args.threads {
                b.worker_threads(usize::from(t));
            }
            b.enable_all().build()
        }
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scgi: cannot start the runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Request(args) => request::run(args).await,
            Command::Gateway(args) => gateway::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    // Do not wait for tasks still parked on a dead peer.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("scgi: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

//! `scgi gateway`: an HTTP/1.1 server (hyper) that forwards every request
//! to an SCGI backend as nginx does.
//!
//! Per request: the CGI variables of [`cgi::nginx_vars`]; a body with a
//! `Content-Length` streamed to the backend as it arrives (a chunked one is
//! read whole first, up to `--max-body-size`, because SCGI needs
//! `CONTENT_LENGTH` before the body, which is what nginx does too); the
//! backend's answer read at the same time, its CGI head turned into the
//! HTTP response head and its body streamed back as hyper writes it
//! (backpressure both ways: nothing is read faster than the other side
//! takes it). A backend that cannot be reached, closes early, sends
//! garbage or an unsupported status gets a 502 that says which; one that
//! sends nothing for `--timeout` a 504.
//!
//! Unlike nginx, the request body keeps flowing after the response head
//! has arrived, so a backend that echoes as it reads does not stall (see
//! BENCHMARKS.md on nginx and the streamed echo).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf, ReadHalf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep, timeout};

use crate::addr::{BackendAddr, Stream};
use crate::cgi::{self, Vars};
use crate::response::{self, HeadError, READ_CHUNK};
use crate::{Failure, GatewayArgs, exit};

/// What every response body is.
type RespBody = BoxBody<Bytes, io::Error>;

/// How much of a refused body is read and thrown away before the 413, and
/// for how long at most, so that the client reads the answer instead of a
/// reset (SCGI.md: drain before closing on an early answer).
const DRAIN_BYTES: u64 = 1 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// The gateway's settings, shared by every connection.
#[derive(Debug)]
struct Config {
    backend: BackendAddr,
    max_body: u64,
    connect_timeout: Duration,
    timeout: Duration,
    server_name: String,
    document_root: String,
    vars: Vec<(String, String)>,
    quiet: bool,
}

/// Runs `scgi gateway` until Ctrl-C.
pub(crate) async fn run(args: GatewayArgs) -> Result<(), Failure> {
    let listener = TcpListener::bind(&args.listen).await.map_err(|e| {
        Failure::new(
            exit::FAILURE,
            format!("cannot listen on {}: {e}", args.listen),
        )
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::new(exit::FAILURE, format!("listening: {e}")))?;
    let max_head = usize::try_from(args.max_head_size)
        .unwrap_or(usize::MAX)
        // hyper's floor.
        .max(8192);
    let config = Arc::new(Config {
        backend: args.backend,
        max_body: args.max_body_size,
        connect_timeout: args.connect_timeout,
        timeout: args.timeout,
        server_name: args.server_name,
        document_root: crate::request::document_root(args.document_root.as_deref()),
        vars: args.vars,
        quiet: args.quiet,
    });
    eprintln!(
        "scgi gateway: listening on http://{local}/, forwarding to {} (Ctrl-C stops)",
        config.backend
    );
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: wait rather
                    // than spin.
                    eprintln!("scgi gateway: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut ctrl_c => {
                eprintln!("scgi gateway: stopping");
                return Ok(());
            }
        };
        let _ = tcp.set_nodelay(true);
        let config = Arc::clone(&config);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let config = Arc::clone(&config);
                async move { Ok::<_, Infallible>(handle(&config, peer, local, req).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .max_buf_size(max_head)
                .max_headers(1000);
            // Errors here are the client's (a reset, a timeout, a
            // malformed request hyper already answered with 400).
            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

/// Why a request got no answer from the backend.
#[derive(Debug)]
enum GatewayError {
    /// 400: the request cannot become an SCGI request.
    BadRequest(String),
    /// 413: the body is over `--max-body-size`.
    TooLarge(u64),
    /// 502: cannot connect.
    Connect(String),
    /// 502: no usable answer.
    BadGateway(String),
    /// 504: no answer in time.
    Timeout(String),
}

impl GatewayError {
    fn response(&self) -> Response<RespBody> {
        let (status, detail) = match self {
            GatewayError::BadRequest(d) => (StatusCode::BAD_REQUEST, d.clone()),
            GatewayError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is larger than the gateway's limit of {limit} bytes (--max-body-size)"
                ),
            ),
            GatewayError::Connect(d) | GatewayError::BadGateway(d) => {
                (StatusCode::BAD_GATEWAY, d.clone())
            }
            GatewayError::Timeout(d) => (StatusCode::GATEWAY_TIMEOUT, d.clone()),
        };
        let body = format!(
            "{} {}\n\nscgi gateway: {detail}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        );
        let mut resp = Response::new(full(body));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if matches!(
            self,
            GatewayError::BadRequest(_) | GatewayError::TooLarge(_)
        ) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }

    fn detail(&self) -> String {
        match self {
            GatewayError::TooLarge(limit) => format!("body over {limit} bytes"),
            GatewayError::BadRequest(d)
            | GatewayError::Connect(d)
            | GatewayError::BadGateway(d)
            | GatewayError::Timeout(d) => d.clone(),
        }
    }
}

fn full(body: impl Into<Bytes>) -> RespBody {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// One request: forwarded, or answered with the gateway's error; logged.
async fn handle(
    config: &Config,
    peer: SocketAddr,
    local: SocketAddr,
    req: Request<Incoming>,
) -> Response<RespBody> {
    let started = Instant::now();
    let line = format!("{} {} {:?}", req.method(), req.uri(), req.version());
    let (resp, note) = match forward(config, peer, local, req).await {
        Ok(resp) => (resp, String::new()),
        Err(e) => (e.response(), format!(" ({})", e.detail())),
    };
    if !config.quiet {
        eprintln!(
            "{peer} \"{line}\" {} {:.1} ms{note}",
            resp.status().as_u16(),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    resp
}

/// The request's body, as it goes to the backend.
enum Outgoing {
    /// Streamed as it arrives; `CONTENT_LENGTH` is the client's.
    Stream(Incoming),
    /// Read whole first (chunked).
    Whole(Vec<u8>),
}

async fn forward(
    config: &Config,
    peer: SocketAddr,
    local: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, GatewayError> {
    let (parts, mut body) = req.into_parts();
    let protocol = match parts.version {
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned());
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));

    // The body's length: hyper knows it from Content-Length (0 when there
    // is no body); a chunked body has none until it is all in.
    let (outgoing, content_length) = match body.size_hint().exact() {
        Some(n) if n > config.max_body => {
            if !expects_continue {
                drain(&mut body, DRAIN_BYTES).await;
            }
            return Err(GatewayError::TooLarge(config.max_body));
        }
        Some(n) => (Outgoing::Stream(body), n),
        None => {
            let whole = read_whole(&mut body, config.max_body).await?;
            let n = whole.len() as u64;
            (Outgoing::Whole(whole), n)
        }
    };

    let cgi_req = cgi::Request {
        method: parts.method.as_str(),
        target: target.as_bytes(),
        protocol,
        remote_addr: peer.ip().to_string(),
        remote_port: peer.port().to_string(),
        server_port: local.port().to_string(),
        server_name: &config.server_name,
        document_root: &config.document_root,
        https: false,
    };
    let mut vars: Vars = cgi::nginx_vars(
        &cgi_req,
        parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    )
    .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    for (name, value) in &config.vars {
        vars.set(name.as_str(), value.as_str());
    }
    let head = vars
        .encode_head(content_length)
        .map_err(|e| GatewayError::BadRequest(e.to_string()))?;

    let backend = &config.backend;
    let stream = match timeout(config.connect_timeout, backend.connect()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(GatewayError::Connect(format!(
                "cannot connect to the backend {backend}: {e}"
            )));
        }
        Err(_) => {
            return Err(GatewayError::Connect(format!(
                "cannot connect to the backend {backend}: no answer within {}",
                crate::request::show(config.connect_timeout)
            )));
        }
    };
    let (mut rd, wr) = tokio::io::split(stream);
    tokio::spawn(send_request(wr, head, outgoing, config.timeout));

    let head = match timeout(config.timeout, response::read_head(&mut rd, Vec::new())).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => {
            let e = match e {
                HeadError::Io(e) => format!("the backend {backend}: reading its answer: {e}"),
                e => format!("the backend {backend}: {e}"),
            };
            return Err(GatewayError::BadGateway(e));
        }
        Err(_) => {
            return Err(GatewayError::Timeout(format!(
                "the backend {backend} sent no response head within {} (--timeout)",
                crate::request::show(config.timeout)
            )));
        }
    };

    let view = head.view();
    let status = view.status();
    let status = match StatusCode::from_u16(status) {
        Ok(s) if s.as_u16() >= 200 => s,
        _ => {
            return Err(GatewayError::BadGateway(format!(
                "the backend {backend} answered {}, which the gateway does not forward \
                 (no 1xx, no upgrades)",
                head.status_line()
            )));
        }
    };
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = status;
    let reason = view.reason();
    if !reason.is_empty()
        && status.canonical_reason().map(str::as_bytes) != Some(reason)
        && let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.to_vec())
    {
        resp.extensions_mut().insert(phrase);
    }
    let mut length: Option<u64> = None;
    for (name, value) in view.headers() {
        let bad = |what: &str| {
            GatewayError::BadGateway(format!(
                "the backend {backend} sent {what}: `{name}: {}`",
                value.escape_ascii()
            ))
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("a bad header"))?;
        if is_hop_by_hop(&name) {
            continue;
        }
        if name == header::CONTENT_LENGTH {
            let n = std::str::from_utf8(value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| bad("an invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(bad("two different Content-Lengths"));
            }
            if length.is_some() {
                continue;
            }
            length = Some(n);
        }
        let value = HeaderValue::from_bytes(value).map_err(|_| bad("a bad header value"))?;
        resp.headers_mut().append(name, value);
    }

    let no_body = parts.method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if !no_body {
        let leftover = Bytes::copy_from_slice(head.leftover());
        *resp.body_mut() = BackendBody::new(rd, leftover, length, config.timeout).boxed();
    }
    Ok(resp)
}

/// Connection-level headers a proxy does not forward (RFC 9110 section
/// 7.6.1); `Transfer-Encoding` because the body is re-framed here.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Reads a body of unknown length whole, up to `limit` bytes.
async fn read_whole(body: &mut Incoming, limit: u64) -> Result<Vec<u8>, GatewayError> {
    let mut whole = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| GatewayError::BadRequest(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if whole.len() as u64 + data.len() as u64 > limit {
                drain(body, DRAIN_BYTES).await;
                return Err(GatewayError::TooLarge(limit));
            }
            whole.extend_from_slice(&data);
        }
    }
    Ok(whole)
}

/// Reads and drops up to `cap` bytes of a refused body, for at most
/// [`DRAIN_TIME`].
async fn drain(body: &mut Incoming, cap: u64) {
    let _ = timeout(DRAIN_TIME, async {
        let mut seen = 0u64;
        while seen <= cap {
            match body.frame().await {
                Some(Ok(frame)) => {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                _ => return,
            }
        }
    })
    .await;
}

/// Sends the SCGI head and the body to the backend; each write may wait
/// `idle` at most. Failures end it quietly: the response side reports what
/// the backend did.
async fn send_request(
    mut wr: tokio::io::WriteHalf<Stream>,
    head: Vec<u8>,
    body: Outgoing,
    idle: Duration,
) {
    let result: io::Result<()> = async {
        match body {
            Outgoing::Whole(mut whole) => {
                let mut all = head;
                all.append(&mut whole);
                write_within(&mut wr, &all, idle).await?;
            }
            Outgoing::Stream(mut body) => {
                write_within(&mut wr, &head, idle).await?;
                while let Some(frame) = body.frame().await {
                    // The client went away mid-body: the backend sees its
                    // input end early, as behind nginx.
                    let frame = frame.map_err(io::Error::other)?;
                    if let Ok(data) = frame.into_data() {
                        write_within(&mut wr, &data, idle).await?;
                    }
                }
            }
        }
        wr.flush().await
    }
    .await;
    if result.is_err() {
        let _ = timeout(Duration::from_secs(1), wr.shutdown()).await;
    }
}

async fn write_within(
    wr: &mut tokio::io::WriteHalf<Stream>,
    bytes: &[u8],
    idle: Duration,
) -> io::Result<()> {
    timeout(idle, wr.write_all(bytes))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the backend stopped reading"))?
}

/// The backend's response body, read as hyper asks for it: the bytes that
/// came with the head, then the socket, up to `Content-Length` if there is
/// one (a body that ends short is an error, and hyper cuts the response so
/// the client sees it). Reading waits `idle` at most for each piece.
struct BackendBody {
    rd: ReadHalf<Stream>,
    leftover: Bytes,
    remaining: Option<u64>,
    scratch: Vec<u8>,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
    done: bool,
}

impl BackendBody {
    fn new(
        rd: ReadHalf<Stream>,
        leftover: Bytes,
        length: Option<u64>,
        idle: Duration,
    ) -> BackendBody {
        BackendBody {
            rd,
            leftover,
            remaining: length,
            scratch: Vec::new(),
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            done: length == Some(0),
        }
    }

    /// Takes up to `remaining` of `bytes` as the next frame.
    fn take(&mut self, mut bytes: Bytes) -> Bytes {
        if let Some(rem) = &mut self.remaining {
            let n = usize::try_from(*rem).map_or(bytes.len(), |r| r.min(bytes.len()));
            bytes.truncate(n);
            *rem -= n as u64;
            if *rem == 0 {
                self.done = true;
            }
        }
        bytes
    }
}

impl Body for BackendBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if !this.leftover.is_empty() {
            let first = std::mem::take(&mut this.leftover);
            let first = this.take(first);
            if !first.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(first))));
            }
        }
        if this.scratch.is_empty() {
            this.scratch = vec![0; READ_CHUNK];
        }
        let mut buf = ReadBuf::new(&mut this.scratch);
        match Pin::new(&mut this.rd).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                let idle = this.idle;
                this.sleep.as_mut().reset(Instant::now() + idle);
                if n == 0 {
                    this.done = true;
                    return match this.remaining {
                        Some(rem) if rem > 0 => Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "the backend closed the connection {rem} bytes before the end of its Content-Length"
                            ),
                        )))),
                        _ => Poll::Ready(None),
                    };
                }
                let chunk = Bytes::copy_from_slice(&this.scratch[..n]);
                let chunk = this.take(chunk);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => {
                ready!(this.sleep.as_mut().poll(cx));
                this.done = true;
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the backend sent nothing for the --timeout",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

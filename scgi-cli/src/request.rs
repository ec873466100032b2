//! `scgi request`: one request, the response on stdout.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use crate::cgi::{self, Vars};
use crate::response::{self, HeadError, READ_CHUNK};
use crate::{Failure, RequestArgs, RequestSpec, exit};

/// The headers a request gets unless `-H` gives them (curl's, with our
/// name).
fn default_headers() -> [(String, String); 3] {
    [
        ("Host".into(), "localhost".into()),
        (
            "User-Agent".into(),
            concat!("scgi/", env!("CARGO_PKG_VERSION")).into(),
        ),
        ("Accept".into(), "*/*".into()),
    ]
}

/// Where the body comes from.
#[derive(Debug)]
pub(crate) enum Body {
    /// No body: `CONTENT_LENGTH` 0, no `HTTP_CONTENT_LENGTH`.
    None,
    /// These bytes (literal `--data`, stdin, or a file read whole).
    Bytes(Vec<u8>),
    /// A regular file of this length, streamed.
    File(tokio::fs::File, u64),
}

impl Body {
    /// `CONTENT_LENGTH`.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Body::None => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File(_, n) => *n,
        }
    }

    /// Opens `--data`: literal text, `@FILE` or `@-`. A regular file is
    /// streamed unless `whole`; anything else is read whole first, since
    /// `CONTENT_LENGTH` goes before the body.
    pub(crate) async fn open(data: Option<&str>, whole: bool) -> Result<Body, Failure> {
        let Some(data) = data else {
            return Ok(Body::None);
        };
        let Some(path) = data.strip_prefix('@') else {
            return Ok(Body::Bytes(data.as_bytes().to_vec()));
        };
        if path == "-" {
            let mut buf = Vec::new();
            tokio::io::stdin()
                .read_to_end(&mut buf)
                .await
                .map_err(|e| Failure::new(exit::FAILURE, format!("reading stdin: {e}")))?;
            return Ok(Body::Bytes(buf));
        }
        let fail = |e: io::Error| Failure::new(exit::FAILURE, format!("reading `{path}`: {e}"));
        let mut file = tokio::fs::File::open(path).await.map_err(fail)?;
        let meta = file.metadata().await.map_err(fail)?;
        if meta.is_file() && !whole {
            return Ok(Body::File(file, meta.len()));
        }
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).await.map_err(fail)?;
        Ok(Body::Bytes(buf))
    }
}

/// The CGI variables for `spec` with a body of `body_len` bytes (`None`:
/// no body), as nginx would send them for the same request from curl on
/// 127.0.0.1.
pub(crate) fn vars(spec: &RequestSpec, body_len: Option<u64>) -> Result<Vars, Failure> {
    let usage = |m: String| Failure::new(exit::USAGE, m);
    if !(spec.path.starts_with('/') || spec.path == "*") {
        return Err(usage(format!(
            "the path `{}` must start with `/`",
            spec.path
        )));
    }
    let mut headers: Vec<(String, String)> = default_headers().into();
    let mut given: Vec<String> = Vec::new();
    for h in &spec.headers {
        let Some((name, value)) = h.split_once(':') else {
            return Err(usage(format!("the header `{h}` is not `Name: value`")));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.contains('_') {
            eprintln!(
                "scgi: warning: nginx drops the header `{name}` (underscores_in_headers off); \
                 use --var {}=... to send it anyway",
                String::from_utf8_lossy(&cgi::http_var(name))
            );
        }
        let lower = name.to_ascii_lowercase();
        // A -H replaces a default header of the same name; two -H of the
        // same name are both sent (and joined, as nginx 1.23 does).
        if !given.contains(&lower) {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            given.push(lower);
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    if let Some(len) = body_len
        && !given.iter().any(|n| n == "content-length")
    {
        headers.push(("Content-Length".into(), len.to_string()));
    }
    let method = spec.method.clone().unwrap_or_else(|| {
        if body_len.is_some() {
            "POST".into()
        } else {
            "GET".into()
        }
    });
    let root = document_root(spec.document_root.as_deref());
    let req = cgi::Request {
        method: &method,
        target: spec.path.as_bytes(),
        protocol: "HTTP/1.1",
        remote_addr: "127.0.0.1".into(),
        remote_port: "0".into(),
        server_port: "80".into(),
        server_name: "localhost",
        document_root: &root,
        https: false,
    };
    let mut vars = cgi::nginx_vars(
        &req,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
    )
    .map_err(|e| usage(e.to_string()))?;
    for (name, value) in &spec.vars {
        vars.set(name.as_str(), value.as_str());
    }
    Ok(vars)
}

/// `--document-root`, or the current directory.
pub(crate) fn document_root(given: Option<&str>) -> String {
    given.map_or_else(
        || {
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "/".into())
        },
        str::to_owned,
    )
}

/// Runs `scgi request`.
pub(crate) async fn run(args: RequestArgs) -> Result<(), Failure> {
    let mut body = Body::open(args.spec.data.as_deref(), false).await?;
    let body_len = args.spec.data.is_some().then(|| body.len());
    let vars = vars(&args.spec, body_len)?;
    let head = vars
        .encode_head(body.len())
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;

    let deadline = Instant::now() + args.timeout;
    let timed_out = |what: &str| {
        Failure::new(
            exit::TIMEOUT,
            format!(
                "timed out after {} {what} ({})",
                show(args.timeout),
                args.addr
            ),
        )
    };
    let stream = match timeout_at(deadline, args.addr.connect()).await {
        Err(_) => return Err(timed_out("connecting")),
        Ok(Err(e)) => {
            return Err(Failure::new(
                exit::CONNECT,
                format!("cannot connect to {}: {e}", args.addr),
            ));
        }
        Ok(Ok(s)) => s,
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    // The body goes out while the answer comes in: a backend may answer
    // before it has read everything (an early 413), or stream its answer
    // as it reads (an echo).
    let writer = tokio::spawn(async move {
        wr.write_all(&head).await?;
        match &mut body {
            Body::None => {}
            Body::Bytes(b) => wr.write_all(b).await?,
            Body::File(f, n) => {
                let sent = tokio::io::copy(&mut f.take(*n), &mut wr).await?;
                if sent < *n {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the file ended after {sent} of its {n} bytes"),
                    ));
                }
            }
        }
        wr.flush().await?;
        // Keep the write half (and so the connection) until the answer is
        // read.
        Ok::<_, io::Error>(wr)
    });
    let _abort = AbortOnDrop(writer.abort_handle());

    let head = match timeout_at(deadline, response::read_head(&mut rd, Vec::new())).await {
        Err(_) => return Err(timed_out("waiting for the response head")),
        Ok(Ok(head)) => head,
        Ok(Err(e)) => {
            let code = match e {
                HeadError::Closed { .. } => exit::EMPTY,
                HeadError::Malformed { .. } => exit::MALFORMED,
                HeadError::Io(_) => exit::FAILURE,
            };
            let mut message = format!("{}: {e}", args.addr);
            if writer.is_finished()
                && let Ok(Err(w)) = writer.await
            {
                message.push_str(&format!(" (sending the request: {w})"));
            }
            return Err(Failure::new(code, message));
        }
    };

    let mut out = tokio::io::stdout();
    let write_failed = |e: io::Error| Failure::new(exit::WRITE, format!("writing the output: {e}"));
    let status = head.view().status();
    if args.include {
        out.write_all(head.head_bytes())
            .await
            .map_err(write_failed)?;
    }
    if args.fail && status >= 400 {
        out.flush().await.map_err(write_failed)?;
        return Err(Failure::new(
            exit::HTTP_ERROR,
            format!("the backend answered {}", head.status_line()),
        ));
    }
    let length = head.view().content_length();
    let copied = copy_body(&mut rd, head.leftover(), length, &mut out, deadline).await;
    out.flush().await.map_err(write_failed)?;
    let received = match copied {
        Ok(n) => n,
        Err(CopyError::Timeout(n)) => {
            return Err(timed_out(&format!(
                "receiving the body ({n} bytes received)"
            )));
        }
        Err(CopyError::Read(e, n)) => {
            return Err(Failure::new(
                exit::FAILURE,
                format!("reading the body after {n} bytes: {e}"),
            ));
        }
        Err(CopyError::Write(e)) => return Err(write_failed(e)),
    };
    if let Some(length) = length
        && received < length
    {
        return Err(Failure::new(
            exit::PARTIAL,
            format!("the body ended after {received} of its {length} bytes (Content-Length)"),
        ));
    }
    Ok(())
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a body copy stopped early (with the bytes copied so far).
#[derive(Debug)]
enum CopyError {
    Timeout(u64),
    Read(io::Error, u64),
    Write(io::Error),
}

/// Copies the body to `out`: `leftover` first, then from `rd`, up to
/// `length` bytes if known (a backend that keeps the connection open after
/// them is not waited for), else to the end. Returns the bytes copied.
async fn copy_body<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    rd: &mut R,
    leftover: &[u8],
    length: Option<u64>,
    out: &mut W,
    deadline: Instant,
) -> Result<u64, CopyError> {
    let limit = length.unwrap_or(u64::MAX);
    let first = &leftover[..leftover
        .len()
        .min(usize::try_from(limit).unwrap_or(usize::MAX))];
    out.write_all(first).await.map_err(CopyError::Write)?;
    let mut copied = first.len() as u64;
    let mut buf = vec![0u8; READ_CHUNK];
    while copied < limit {
        let want = usize::try_from(limit - copied).map_or(buf.len(), |n| n.min(buf.len()));
        let n = match timeout_at(deadline, rd.read(&mut buf[..want])).await {
            Err(_) => return Err(CopyError::Timeout(copied)),
            Ok(Err(e)) => return Err(CopyError::Read(e, copied)),
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
        };
        out.write_all(&buf[..n]).await.map_err(CopyError::Write)?;
        copied += n as u64;
    }
    Ok(copied)
}

/// A duration as a person writes it.
pub(crate) fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

//! A small HTTP/1.x client over `std::net::TcpStream`.
//!
//! Hand-written rather than curl or an HTTP crate: the cases need exact
//! control of what goes on the wire (HTTP/1.0 without `Host`, duplicate
//! header lines, a chunked request body, HEAD then GET on one kept-alive
//! connection) and the raw response (every `Set-Cookie` line, how the body
//! was framed), with no process per request. It writes the request on a
//! second thread while it reads, so a server that answers before reading
//! the whole body (Apache's 411) cannot deadlock it. Every read and write
//! has a timeout ([`TIMEOUT`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

/// The longest one read or write may block: a bound on each case, not a
/// timing assertion.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A response head larger than this is refused.
const MAX_HEAD: usize = 256 * 1024;

/// How the request body goes on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Body {
    /// No body and no `Content-Length`.
    None,
    /// `Content-Length` and the bytes.
    Length(Vec<u8>),
    /// `Transfer-Encoding: chunked`, in chunks of at most the given size.
    Chunked(Vec<u8>, usize),
}

/// An HTTP request to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    target: String,
    version: &'static str,
    host: bool,
    headers: Vec<(String, Vec<u8>)>,
    body: Body,
    pause: Option<Duration>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.method, self.target, self.version)?;
        for (name, value) in &self.headers {
            let shown = &value[..value.len().min(64)];
            write!(
                f,
                " [{name}: {}{}]",
                shown.escape_ascii(),
                if value.len() > 64 { "..." } else { "" }
            )?;
        }
        match &self.body {
            Body::None => Ok(()),
            Body::Length(b) => write!(f, " + {} body bytes", b.len()),
            Body::Chunked(b, size) => write!(f, " + {} body bytes in chunks of {size}", b.len()),
        }
    }
}

impl Request {
    /// `METHOD target HTTP/1.1` with a `Host` header.
    #[must_use]
    pub fn new(method: &str, target: &str) -> Request {
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            version: "HTTP/1.1",
            host: true,
            headers: Vec::new(),
            body: Body::None,
            pause: None,
        }
    }

    /// `GET target`.
    #[must_use]
    pub fn get(target: &str) -> Request {
        Request::new("GET", target)
    }

    /// `POST target` with a `Content-Type` and a `Content-Length` body.
    #[must_use]
    pub fn post(target: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Request {
        Request::new("POST", target)
            .header("Content-Type", content_type)
            .body(body)
    }

    /// Sends it as HTTP/1.0, without a `Host` header (add one with
    /// [`header`](Request::header)).
    #[must_use]
    pub fn http10(mut self) -> Request {
        self.version = "HTTP/1.0";
        self.host = false;
        self
    }

    /// Adds a header line (repeat a name to send it twice).
    #[must_use]
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Sets a body sent with `Content-Length`.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Body::Length(body.into());
        self
    }

    /// Sets a body sent with `Transfer-Encoding: chunked`, in chunks of
    /// `chunk` bytes.
    #[must_use]
    pub fn chunked(mut self, body: impl Into<Vec<u8>>, chunk: usize) -> Request {
        self.body = Body::Chunked(body.into(), chunk.max(1));
        self
    }

    /// Sends the head, waits `pause`, then sends the body: the way to make a
    /// front end start passing the request on before the body is there.
    #[must_use]
    pub fn pause_before_body(mut self, pause: Duration) -> Request {
        self.pause = Some(pause);
        self
    }

    /// Whether it is a HEAD request (its response has no body).
    #[must_use]
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The request's bytes, for a server at `addr` (`Host: addr`).
    #[must_use]
    pub fn to_bytes(&self, addr: SocketAddr) -> Vec<u8> {
        self.to_parts(addr).0
    }

    /// The request's bytes and where its body starts.
    fn to_parts(&self, addr: SocketAddr) -> (Vec<u8>, usize) {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version).into_bytes();
        if self.host {
            out.extend_from_slice(format!("Host: {addr}\r\n").as_bytes());
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        let head_len;
        match &self.body {
            Body::None => {
                out.extend_from_slice(b"\r\n");
                head_len = out.len();
            }
            Body::Length(body) => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                head_len = out.len();
                out.extend_from_slice(body);
            }
            Body::Chunked(body, size) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                head_len = out.len();
                for chunk in body.chunks(*size) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        (out, head_len)
    }

    /// Sends it on a new connection and reads the response.
    pub fn send(&self, addr: SocketAddr) -> io::Result<Response> {
        Connection::open(addr)?.exchange(self)
    }
}

/// How a response body was delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body by definition (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Read until the server closed the connection.
    Close,
}

/// A response as the client received it.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The status line's version, e.g. `HTTP/1.1`.
    pub version: String,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The de-framed body.
    pub body: Vec<u8>,
    /// How the body was delimited.
    pub framing: Framing,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Response");
        d.field(
            "status",
            &format_args!("{} {} {}", self.version, self.status, self.reason),
        );
        for (name, value) in &self.headers {
            d.field(name, &format_args!("{}", value.escape_ascii()));
        }
        let shown = &self.body[..self.body.len().min(512)];
        d.field("framing", &self.framing)
            .field("body_len", &self.body.len())
            .field("body", &format_args!("{}", shown.escape_ascii()))
            .finish()
    }
}

impl Response {
    /// The first value of header `name` (case-insensitive), if UTF-8.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).into_iter().next()
    }

    /// Every value of header `name` (case-insensitive), in order.
    #[must_use]
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .collect()
    }

    /// The body as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection: requests one after the other (keep-alive).
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    addr: SocketAddr,
    /// Bytes read and not consumed yet.
    buf: Vec<u8>,
}

impl Connection {
    /// Connects to `addr`.
    pub fn open(addr: SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            addr,
            buf: Vec::new(),
        })
    }

    /// Sends `req` (on another thread) while reading its response.
    pub fn exchange(&mut self, req: &Request) -> io::Result<Response> {
        let (bytes, head_len) = req.to_parts(self.addr);
        let pause = req.pause;
        let mut writer = self.stream.try_clone()?;
        thread::scope(|s| {
            let sending = s.spawn(move || match pause {
                None => writer.write_all(&bytes),
                Some(pause) => {
                    writer.write_all(&bytes[..head_len])?;
                    thread::sleep(pause);
                    writer.write_all(&bytes[head_len..])
                }
            });
            let response = self.read_response(req.is_head());
            let sent = sending
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("writer panicked")));
            // A server may answer before reading everything and close (411,
            // 413): the response is what counts then.
            match (response, sent) {
                (Ok(r), _) => Ok(r),
                (Err(e), Ok(())) => Err(e),
                (Err(e), Err(w)) => Err(io::Error::new(e.kind(), format!("{e} (sending: {w})"))),
            }
        })
    }

    /// Sends `req` without reading anything: for a response read piece by
    /// piece ([`Connection::wait_for`], then
    /// [`Connection::read_response`]).
    pub fn send(&mut self, req: &Request) -> io::Result<()> {
        self.stream.write_all(&req.to_bytes(self.addr))
    }

    /// Reads until `needle` is among the bytes received (and not yet taken
    /// by [`Connection::read_response`]), or the server closes: whether it
    /// came. Each read waits at most [`TIMEOUT`].
    pub fn wait_for(&mut self, needle: &[u8]) -> io::Result<bool> {
        loop {
            if self.buf.windows(needle.len()).any(|w| w == needle) {
                return Ok(true);
            }
            if self.fill()? == 0 {
                return Ok(false);
            }
        }
    }

    /// Reads until at least one more byte is buffered; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes `n` buffered bytes, reading more as needed.
    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(eof(format!(
                    "body ended after {} of {n} bytes",
                    self.buf.len()
                )));
            }
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Takes one CRLF-terminated line (without the CRLF).
    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(i + 2)?;
                return Ok(line[..i].to_vec());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(bad("line too long"));
            }
            if self.fill()? == 0 {
                return Err(eof("connection closed inside a line".into()));
            }
        }
    }

    /// Reads one response; `head` says whether it answers a HEAD request.
    pub fn read_response(&mut self, head: bool) -> io::Result<Response> {
        loop {
            let response = self.read_one(head)?;
            // Interim responses (100 Continue) precede the real one.
            if !(100..200).contains(&response.status) || response.status == 101 {
                return Ok(response);
            }
        }
    }

    fn read_one(&mut self, head: bool) -> io::Result<Response> {
        let status_line = self.line()?;
        let status_line =
            String::from_utf8(status_line).map_err(|_| bad("status line not UTF-8"))?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        if !version.starts_with("HTTP/1.") {
            return Err(bad(&format!("not an HTTP/1 status line: {status_line:?}")));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
        let reason = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let colon = line.iter().position(|&b| b == b':').ok_or_else(|| {
                bad(&format!(
                    "header line without a colon: {}",
                    line.escape_ascii()
                ))
            })?;
            let name = String::from_utf8_lossy(&line[..colon]).into_owned();
            let value = line[colon + 1..].trim_ascii().to_vec();
            headers.push((name, value));
        }
        let mut response = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            framing: Framing::None,
        };
        if head || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header_all("Transfer-Encoding")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            response.framing = Framing::Chunked;
            response.body = self.read_chunked()?;
        } else if let Some(length) = response.header("Content-Length") {
            let length = length
                .parse()
                .map_err(|_| bad(&format!("bad Content-Length {length:?}")))?;
            response.framing = Framing::Length;
            response.body = self.take(length)?;
        } else {
            response.framing = Framing::Close;
            while self.fill()? != 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| bad(&format!("bad chunk size line {}", line.escape_ascii())))?;
            if size == 0 {
                // Trailer fields, then an empty line.
                while !self.line()?.is_empty() {}
                return Ok(body);
            }
            body.extend_from_slice(&self.take(size)?);
            if !self.line()?.is_empty() {
                return Err(bad("chunk not followed by CRLF"));
            }
        }
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn eof(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection server that reads one request head and answers
    /// with `response`.
    fn serve_once(response: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut seen = Vec::new();
            let mut byte = [0u8; 1];
            while !seen.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                seen.push(byte[0]);
            }
            let _ = conn.write_all(response);
        });
        addr
    }

    #[test]
    fn reads_chunked_length_and_close_delimited_bodies() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n1\r\nd\r\n0\r\nT: 1\r\n\r\n");
        let r = Request::get("/").send(addr).expect("chunked");
        assert_eq!(
            (r.framing, r.body.as_slice()),
            (Framing::Chunked, &b"abcd"[..])
        );

        let addr = serve_once(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\nSet-Cookie: a\r\nset-cookie: b\r\n\r\nhi");
        let r = Request::get("/").send(addr).expect("length");
        assert_eq!(
            (r.status, r.framing, r.text().as_str()),
            (201, Framing::Length, "hi")
        );
        assert_eq!(r.header_all("Set-Cookie"), ["a", "b"]);

        let addr = serve_once(b"HTTP/1.0 200 OK\r\n\r\nuntil close");
        let r = Request::get("/").http10().send(addr).expect("close");
        assert_eq!(
            (r.framing, r.text().as_str()),
            (Framing::Close, "until close")
        );
    }

    #[test]
    fn writes_chunked_and_http10_requests() {
        let addr: SocketAddr = "127.0.0.1:80".parse().expect("addr");
        let bytes = Request::new("POST", "/p")
            .chunked(*b"hello", 2)
            .to_bytes(addr);
        assert_eq!(
            bytes,
            b"POST /p HTTP/1.1\r\nHost: 127.0.0.1:80\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n2\r\nll\r\n1\r\no\r\n0\r\n\r\n"
        );
        let bytes = Request::get("/")
            .http10()
            .header("X", "1")
            .header("X", "2")
            .to_bytes(addr);
        assert_eq!(bytes, b"GET / HTTP/1.0\r\nX: 1\r\nX: 2\r\n\r\n");
    }
}

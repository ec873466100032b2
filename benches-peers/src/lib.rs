//! The contenders of the decoder benchmarks (issue 9), each wrapped the way
//! its documentation shows, and the inputs they all read.
//!
//! - [`scgi_proto`](fn@scgi_proto): this workspace's decoder with its default
//!   configuration, run to [`Step::End`] (full validation, framing, body).
//!   [`scgi_proto_walk`] also walks every header of the view afterwards, the
//!   work the map-building peers do on top of parsing.
//! - [`scgi_crate`]: `scgi` 0.3: `read_headers` over a stream, `str_map`.
//! - [`tokio_scgi`](fn@tokio_scgi): `tokio-scgi` 0.2: its codec driven directly on a
//!   `BytesMut`, as its README and tests show (no runtime needed).
//! - [`async_scgi`](fn@async_scgi): `async-scgi` 1.0: `read_request` over a `BufReader`
//!   of the bytes under `block_on`, as its own test does.
//! - [`httparse_request`]: `httparse` on the HTTP/1.1 request that produced
//!   the same header set ([`Input::http`]).
//! - Floors on the bare header block: [`naive_split`] (memchr from NUL to
//!   NUL, pairs pushed into a reused `Vec`, no validation) and
//!   [`count_nuls`] (one memchr pass).
//!
//! Every contender gets the whole request already in memory and reads its
//! body to the end. The benchmark is `benches/peers.rs`; the test checks
//! that all contenders agree on every input.

use std::io::{self, Read, Write};
use std::ops::Range;

use bytes::BytesMut;
use scgi_proto::{Decoder, Step};
use tokio_util::codec::Decoder as _;

/// What a contender found in one request: enough to check that it read it
/// all, and a value the optimiser cannot discard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Headers (or map entries) the contender produced.
    pub headers: usize,
    /// Total length of the names and values seen, where the contender walks
    /// them (0 for those that build a map instead).
    pub header_bytes: usize,
    /// The request's `CONTENT_LENGTH` (HTTP `Content-Length`).
    pub content_length: u64,
    /// Body bytes read.
    pub body: u64,
}

/// One benchmark input: an SCGI request and its HTTP/1.1 equivalent.
#[derive(Clone, Debug)]
pub struct Input {
    /// A name for the benchmark group, e.g. `nginx_get_root`.
    pub name: String,
    /// The whole SCGI request: netstring and body.
    pub scgi: Vec<u8>,
    /// Where the header block (the netstring's content) is in `scgi`.
    pub block: Range<usize>,
    /// How many SCGI headers the block holds.
    pub scgi_headers: usize,
    /// The HTTP/1.1 request with the same header set, and the same body.
    pub http: Vec<u8>,
    /// How many header fields `http` holds.
    pub http_headers: usize,
}

/// The captured requests used, as `<frontend>/<case>` under
/// `scgi-proto/tests/data/corpus`.
pub const CAPTURES: [&str; 7] = [
    "nginx/get_root",
    "apache/get_root",
    "lighttpd/get_root",
    "nginx/many_headers",
    "nginx/long_header",
    "apache/post_form",
    "apache/post_json",
];

/// Every input: [`CAPTURES`], then [`synthetic_max`].
#[must_use]
pub fn inputs() -> Vec<Input> {
    let mut all: Vec<Input> = CAPTURES
        .iter()
        .map(|case| {
            let path = format!(
                "{}/../scgi-proto/tests/data/corpus/{case}.scgi",
                env!("CARGO_MANIFEST_DIR")
            );
            let wire = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            Input::new(case.replace('/', "_"), wire)
        })
        .collect();
    all.push(Input::new("synthetic_64k_1024".into(), synthetic_max()));
    all
}

/// The largest request the default limits accept, made of as many small
/// headers as they allow: a 65 536-byte header block (`max_head`) holding
/// 1 024 headers (`max_headers`) of about 64 bytes each, nginx-style.
#[must_use]
pub fn synthetic_max() -> Vec<u8> {
    const BLOCK: usize = 64 * 1024;
    const COUNT: usize = 1024;
    let mut block = Vec::with_capacity(BLOCK);
    for (name, value) in [
        ("CONTENT_LENGTH", "0"),
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/"),
        ("SCGI", "1"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("HTTP_HOST", "example.test"),
    ] {
        push_header(&mut block, name.as_bytes(), value.as_bytes());
    }
    let fillers = COUNT - 6;
    for i in 0..fillers {
        let name = format!("HTTP_X_FILL_{i:04}");
        // Spread what is left evenly; the last header takes the remainder.
        let left = BLOCK - block.len();
        let share = if i + 1 == fillers {
            left
        } else {
            left / (fillers - i)
        };
        let value = vec![b'v'; share - name.len() - 2];
        push_header(&mut block, name.as_bytes(), &value);
    }
    assert_eq!(block.len(), BLOCK);
    let mut wire = format!("{BLOCK}:").into_bytes();
    wire.extend_from_slice(&block);
    wire.push(b',');
    wire
}

fn push_header(block: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    block.extend_from_slice(name);
    block.push(0);
    block.extend_from_slice(value);
    block.push(0);
}

impl Input {
    /// Builds an input from a whole SCGI request, reconstructing its HTTP
    /// equivalent.
    ///
    /// # Panics
    ///
    /// If the request does not decode with the default configuration.
    #[must_use]
    pub fn new(name: String, scgi: Vec<u8>) -> Input {
        let Ok(Step::Head(head)) = Decoder::new().decode(&scgi) else {
            panic!("{name}: not a complete, valid SCGI request");
        };
        let body = &scgi[head.wire_len()..];
        assert_eq!(body.len() as u64, head.content_length(), "{name}");
        let (http, http_headers) = http_equivalent(&head.headers(&scgi), body);
        Input {
            block: head.block_range(),
            scgi_headers: head.header_count(),
            http,
            http_headers,
            name,
            scgi,
        }
    }

    /// The header block alone: what the floors read.
    #[must_use]
    pub fn block(&self) -> &[u8] {
        &self.scgi[self.block.clone()]
    }
}

/// Rebuilds the HTTP/1.1 request a web server turned into these CGI
/// variables: the request line from `REQUEST_METHOD`, `REQUEST_URI` and
/// `SERVER_PROTOCOL`; each `HTTP_*` variable back to its field name
/// (`HTTP_USER_AGENT` to `User-Agent`); `CONTENT_TYPE` and a non-zero
/// `CONTENT_LENGTH` as their fields (CGI passes them without the prefix);
/// then the body. Returns the bytes and the field count.
fn http_equivalent(headers: &scgi_proto::Headers<'_>, body: &[u8]) -> (Vec<u8>, usize) {
    let var = |n: &str| headers.get(n).unwrap_or_else(|| panic!("no {n}"));
    let mut out = Vec::new();
    for part in [var("REQUEST_METHOD"), b" ", var("REQUEST_URI"), b" "] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(var("SERVER_PROTOCOL"));
    out.extend_from_slice(b"\r\n");
    let mut fields = 0;
    for h in headers {
        let field: Vec<u8> = match h.name() {
            b"CONTENT_TYPE" if !h.value().is_empty() => b"Content-Type".to_vec(),
            b"CONTENT_LENGTH" if h.value() != b"0" => b"Content-Length".to_vec(),
            name => match name.strip_prefix(b"HTTP_") {
                Some(rest) => field_name(rest),
                None => continue,
            },
        };
        out.extend_from_slice(&field);
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value());
        out.extend_from_slice(b"\r\n");
        fields += 1;
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    (out, fields)
}

/// `USER_AGENT` to `User-Agent`.
fn field_name(cgi: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cgi.len());
    for (i, word) in cgi.split(|&b| b == b'_').enumerate() {
        if i > 0 {
            out.push(b'-');
        }
        for (j, &b) in word.iter().enumerate() {
            out.push(if j == 0 { b } else { b.to_ascii_lowercase() });
        }
    }
    out
}

/// `scgi-proto`: decodes the request to [`Step::End`] with the default
/// configuration: the block fully validated, the body framed.
///
/// # Panics
///
/// If the request is not complete and valid.
#[must_use]
pub fn scgi_proto(wire: &[u8]) -> Summary {
    decode(wire, false)
}

/// [`scgi_proto`](fn@scgi_proto), then every header of the view walked (name and value
/// lengths summed).
///
/// # Panics
///
/// If the request is not complete and valid.
#[must_use]
pub fn scgi_proto_walk(wire: &[u8]) -> Summary {
    decode(wire, true)
}

#[inline(always)]
fn decode(wire: &[u8], walk: bool) -> Summary {
    let mut decoder = Decoder::new();
    let mut s = Summary::default();
    let mut at = 0;
    loop {
        match decoder.decode(&wire[at..]) {
            Ok(Step::Head(head)) => {
                s.headers = head.header_count();
                s.content_length = head.content_length();
                if walk {
                    for h in head.headers(&wire[at..]) {
                        s.header_bytes += h.name().len() + h.value().len();
                    }
                }
                at += head.wire_len();
            }
            Ok(Step::Body(n)) => {
                s.body += n as u64;
                at += n;
            }
            Ok(Step::End) => return s,
            Ok(Step::Partial { .. }) | Err(_) => panic!("not a complete, valid request"),
        }
    }
}

/// A connection made of bytes already received: reads them, swallows
/// writes. `scgi::read_headers` wants `Read + Write`.
struct Received<'a>(&'a [u8]);

impl Read for Received<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Received<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `scgi` 0.3, as its example does: `read_headers` on the connection, then
/// `str_map`; `CONTENT_LENGTH` parsed from the map and the body read from
/// the stream `read_headers` returns.
///
/// # Panics
///
/// If the crate rejects the request.
#[must_use]
pub fn scgi_crate(wire: &[u8]) -> Summary {
    let (raw, mut stream) = scgi::read_headers(Received(wire)).expect("scgi::read_headers");
    let map = scgi::str_map(&raw).expect("scgi::str_map");
    let content_length: u64 = map["CONTENT_LENGTH"].parse().expect("CONTENT_LENGTH");
    let body = io::copy(&mut (&mut stream).take(content_length), &mut io::sink()).expect("body");
    Summary {
        headers: map.len(),
        header_bytes: 0,
        content_length,
        body,
    }
}

/// `tokio-scgi` 0.2: its `SCGICodec` fed the received bytes, as
/// `Framed` would after a read (the benchmark builds the `BytesMut` outside
/// the timed part); `CONTENT_LENGTH` looked up in the header list, body
/// counted from the request and any fragments.
///
/// # Panics
///
/// If the codec rejects the request.
#[must_use]
pub fn tokio_scgi(mut buf: BytesMut) -> Summary {
    use tokio_scgi::server::{SCGICodec, SCGIRequest};
    let mut codec = SCGICodec::new();
    let mut s = Summary::default();
    loop {
        match codec.decode(&mut buf).expect("tokio-scgi decode") {
            Some(SCGIRequest::Request(headers, body)) => {
                s.headers = headers.len();
                s.content_length = headers
                    .iter()
                    .find(|(n, _)| n == "CONTENT_LENGTH")
                    .and_then(|(_, v)| v.parse().ok())
                    .expect("CONTENT_LENGTH");
                s.body += body.len() as u64;
            }
            Some(SCGIRequest::BodyFragment(body)) => s.body += body.len() as u64,
            None => panic!("tokio-scgi wants more input"),
        }
        if s.headers > 0 && s.body >= s.content_length {
            return s;
        }
    }
}

/// `async-scgi` 1.0, as its own test does: `read_request` on a `BufReader`
/// over the bytes, under `futures_lite::future::block_on`. It reads the
/// body into the returned request.
///
/// # Panics
///
/// If the crate rejects the request.
#[must_use]
pub fn async_scgi(wire: &[u8]) -> Summary {
    futures_lite::future::block_on(async {
        let mut stream = futures_lite::io::BufReader::new(wire);
        let req = async_scgi::read_request(&mut stream)
            .await
            .expect("async_scgi::read_request");
        Summary {
            headers: req.headers.len(),
            header_bytes: 0,
            content_length: req.body.len() as u64,
            body: req.body.len() as u64,
        }
    })
}

/// `httparse` on the equivalent HTTP/1.1 request, as its docs show
/// (`Request::new` over a caller's header array, `parse`), then
/// `Content-Length` found among the fields to frame the body (which
/// [`scgi_proto`](fn@scgi_proto) also does); the body is that many bytes after the head.
///
/// # Panics
///
/// If the request is incomplete or invalid, or has more fields than
/// `headers` holds.
#[must_use]
pub fn httparse_request<'b>(http: &'b [u8], headers: &mut [httparse::Header<'b>]) -> Summary {
    let mut req = httparse::Request::new(headers);
    let httparse::Status::Complete(head_len) = req.parse(http).expect("httparse") else {
        panic!("httparse: partial");
    };
    let mut s = Summary {
        headers: req.headers.len(),
        ..Summary::default()
    };
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            s.content_length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.parse().ok())
                .expect("Content-Length");
        }
    }
    let body = &http[head_len..];
    s.body = body
        .len()
        .min(usize::try_from(s.content_length).unwrap_or(usize::MAX)) as u64;
    s
}

/// The naive-split floor: memchr from NUL to NUL over the header block,
/// each (name, value) pushed into `out` (cleared first, so its capacity is
/// reused), nothing validated. Returns the pair count.
pub fn naive_split<'a>(block: &'a [u8], out: &mut Vec<(&'a [u8], &'a [u8])>) -> usize {
    out.clear();
    let mut rest = block;
    while let Some(n) = memchr::memchr(0, rest) {
        let name = &rest[..n];
        rest = &rest[n + 1..];
        let Some(v) = memchr::memchr(0, rest) else {
            break;
        };
        out.push((name, &rest[..v]));
        rest = &rest[v + 1..];
    }
    out.len()
}

/// The read-every-byte floor: one memchr pass counting the NULs of the
/// header block.
#[must_use]
pub fn count_nuls(block: &[u8]) -> usize {
    memchr::memchr_iter(0, block).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every contender reads every input whole and agrees with the others
    /// on what is in it.
    #[test]
    fn contenders_agree() {
        for input in inputs() {
            let n = &input.name;
            let ours = scgi_proto_walk(&input.scgi);
            assert_eq!(ours.headers, input.scgi_headers, "{n}");
            assert_eq!(ours.body, ours.content_length, "{n}");
            let decoded = scgi_proto(&input.scgi);
            assert_eq!(
                decoded,
                Summary {
                    header_bytes: 0,
                    ..ours
                },
                "{n}"
            );

            let mut pairs = Vec::new();
            assert_eq!(naive_split(input.block(), &mut pairs), ours.headers, "{n}");
            let walked: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert_eq!(walked, ours.header_bytes, "{n}");
            assert_eq!(count_nuls(input.block()), 2 * ours.headers, "{n}");

            let mut distinct: Vec<&[u8]> = pairs.iter().map(|(k, _)| *k).collect();
            distinct.sort_unstable();
            distinct.dedup();

            let tokio = tokio_scgi(BytesMut::from(&input.scgi[..]));
            assert_eq!(tokio.headers, ours.headers, "{n}");
            assert_eq!(
                (tokio.content_length, tokio.body),
                (ours.content_length, ours.body),
                "{n}"
            );

            // A map keeps one entry per name.
            let scgi = scgi_crate(&input.scgi);
            assert_eq!(scgi.headers, distinct.len(), "{n}");
            assert_eq!(
                (scgi.content_length, scgi.body),
                (ours.content_length, ours.body)
            );

            // async-scgi also drops SCGI and CONTENT_LENGTH from its map.
            let asyn = async_scgi(&input.scgi);
            assert_eq!(asyn.headers, distinct.len() - 2, "{n}");
            assert_eq!(
                (asyn.content_length, asyn.body),
                (ours.content_length, ours.body)
            );

            let mut fields = vec![httparse::EMPTY_HEADER; input.http_headers];
            let http = httparse_request(&input.http, &mut fields);
            assert_eq!(http.headers, input.http_headers, "{n}");
            assert_eq!(
                (http.content_length, http.body),
                (ours.content_length, ours.body)
            );
        }
    }

    #[test]
    fn http_equivalent_of_a_post() {
        let input = inputs()
            .into_iter()
            .find(|i| i.name == "apache_post_form")
            .unwrap();
        let text = String::from_utf8(input.http).unwrap();
        assert!(text.starts_with("POST /submit HTTP/1.1\r\nContent-Length: 26\r\n"));
        assert!(text.contains("\r\nUser-Agent: curl/7.88.1\r\n"));
        assert!(text.contains("\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
        assert_eq!(text.split_once("\r\n\r\n").unwrap().1.len(), 26);
    }

    #[test]
    fn synthetic_sits_at_the_default_limits() {
        let input = Input::new("s".into(), synthetic_max());
        assert_eq!(input.block.len(), scgi_proto::Limits::DEFAULT.max_head);
        assert_eq!(input.scgi_headers, scgi_proto::Limits::DEFAULT.max_headers);
    }
}

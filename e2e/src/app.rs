//! The e2e app: what every backend serves, whatever its runtime.
//!
//! It is sans-IO, so that each runtime's glue stays a few lines: the glue
//! reads the whole body with `read_body(`[`MAX_BODY`]`)` (a larger one is
//! the server's `413`; none for a route [`App::reads_body`] says does not
//! read it), calls [`App::respond`], sleeps for [`Response::delay`], writes
//! [`Response::head`] (through its `write_head`, or raw bytes for
//! [`Head::Raw`]) and then each chunk of [`Response::body`], flushing after
//! each; then, for a [`Response::hold`], it waits (polling
//! [`Hold::poll`]) and writes and flushes [`Hold::last_piece`].
//!
//! | route | response |
//! | --- | --- |
//! | `/echo` | 200, the body back with `Content-Type` copied and a `Content-Length` |
//! | `/inspect` | 200, the raw SCGI header block the app received (`NAME\0VALUE\0`...); `X-Body-Length` is the body's length |
//! | `/headers?NAME` | 200, `first=<value>` (the header view's lookup) and `all=<v1>\|<v2>...` (every occurrence, wire order) |
//! | `/status/NNN` | status NNN; a short text body, none for 204 and 304 |
//! | `/redirect/NNN` | status NNN with `Location: /target?from=redirect` |
//! | `/location-only` | a raw CGI head with `Location: /target?from=location-only` and no `Status` (a front-end quirk); with the query `absolute`, `Location: http://example.test/target?...` |
//! | `/cookies` | 200 with three `Set-Cookie` headers |
//! | `/stream?chunks=N` | 200 without `Content-Length`: N lines of [`stream_body`], each flushed (ends when the backend closes) |
//! | `/slow?ms=N` | waits N ms (at most 5 s), then 200 `slow N` |
//! | `/refuse` | 413 at once, the body left unread (as a tower layer limiting the body size answers) |
//! | `/hold?id=N&ms=M` | 200 without `Content-Length`: [`FIRST_PIECE`], flushed; then it waits until the test calls [`App::open`]`(N)` or M ms pass (at most 60 s), and ends with [`Hold::last_piece`] saying which; `&accel=no` adds `X-Accel-Buffering: no` |
//! | anything else | 404 `no route for <path>` |
//!
//! Every CGI head also carries `X-Backend` (the app's name) and
//! `X-Request-Method`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use scgi_proto::Headers;

/// The most body the glue reads into memory (`read_body`): the largest
/// bodies of the cases and of scgi-cli's tests (8 MiB and a bit) fit; a
/// larger one is answered `413`.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Longest `/slow` wait.
const MAX_DELAY_MS: u64 = 5_000;
/// Longest `/hold` wait.
const MAX_HOLD_MS: u64 = 60_000;
/// How often the runtime glue polls a [`Hold`].
pub const HOLD_POLL: Duration = Duration::from_millis(5);
/// What `/hold` writes (and flushes) first.
pub const FIRST_PIECE: &str = "first piece\n";
/// Body chunk size for `/echo`.
const ECHO_CHUNK: usize = 64 * 1024;

/// The e2e app, named so that a test behind a load balancer can tell the
/// backends apart (`X-Backend`).
///
/// Clones share the `/hold` gates: keep a clone to [`open`](App::open) them
/// while a backend serves the app.
#[derive(Clone, Debug)]
pub struct App {
    name: String,
    gates: Arc<Mutex<HashSet<u64>>>,
}

/// What the app answers: the runtime glue performs it in order.
#[derive(Clone, Debug)]
pub struct Response {
    /// Sleep this long before writing anything (`/slow`).
    pub delay: Duration,
    /// The response head.
    pub head: Head,
    /// Body chunks: write each, then flush.
    pub body: Vec<Vec<u8>>,
    /// After the body chunks: wait, then write the last piece (`/hold`).
    pub hold: Option<Hold>,
}

/// A wait in the middle of a streamed response (`/hold`): until the test
/// [opens](App::open) the gate, or a bound passes.
#[derive(Clone, Debug)]
pub struct Hold {
    id: u64,
    gates: Arc<Mutex<HashSet<u64>>>,
    until: Instant,
}

impl Hold {
    /// `Some(true)` once the gate is open, `Some(false)` once the bound has
    /// passed without that, `None` while waiting: sleep [`HOLD_POLL`] and
    /// ask again.
    #[must_use]
    pub fn poll(&self) -> Option<bool> {
        let open = self
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&self.id);
        (open || Instant::now() >= self.until).then_some(open)
    }

    /// The response's last piece, saying whether the gate was opened
    /// before it was written: `go-ahead: yes` or `go-ahead: no`.
    #[must_use]
    pub fn last_piece(opened: bool) -> Vec<u8> {
        format!("go-ahead: {}\n", if opened { "yes" } else { "no" }).into_bytes()
    }
}

/// A response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    /// A `Status:` head, written with the runtime's `write_head`.
    Cgi {
        /// The status code.
        status: u16,
        /// The header lines, in order.
        headers: Vec<(String, String)>,
    },
    /// Bytes written as they are, head and blank line included: a CGI
    /// response the runtime's head writer would refuse to produce.
    Raw(Vec<u8>),
}

impl Response {
    /// The head's headers as borrowed pairs, the shape `write_head` takes.
    #[must_use]
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        match &self.head {
            Head::Cgi { headers, .. } => headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect(),
            Head::Raw(_) => Vec::new(),
        }
    }
}

/// The body of `/stream?chunks=n`: `n` lines of 1 KiB each, so a client
/// can check every byte of a close-delimited or re-chunked response.
#[must_use]
pub fn stream_body(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut line = format!("chunk {i:05} ").into_bytes();
            line.resize(1023, b'a' + (i % 26) as u8);
            line.push(b'\n');
            line
        })
        .collect()
}

/// The value of `key` in a query string (`key=value` or a bare `key`).
fn query_param<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then_some(v)
    })
}

impl App {
    /// An app called `name` (sent back as `X-Backend`).
    #[must_use]
    pub fn new(name: impl Into<String>) -> App {
        App {
            name: name.into(),
            gates: Arc::default(),
        }
    }

    /// Opens `/hold?id=<id>`'s gate: the response waiting on it (or the
    /// next one with that id) goes on to its last piece.
    pub fn open(&self, id: u64) {
        self.gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
    }

    /// Whether the runtime glue reads the body before [`App::respond`]:
    /// not for `/refuse`, which answers without it (its body is then
    /// passed as empty).
    #[must_use]
    pub fn reads_body(&self, headers: &Headers<'_>) -> bool {
        headers.path() != Some(&b"/refuse"[..])
    }

    /// The app's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    fn head(&self, headers: &Headers<'_>, status: u16, extra: &[(&str, &str)]) -> Head {
        let mut all = vec![
            ("X-Backend".to_owned(), self.name.clone()),
            (
                "X-Request-Method".to_owned(),
                headers.method().unwrap_or("-").to_owned(),
            ),
        ];
        all.extend(extra.iter().map(|&(n, v)| (n.to_owned(), v.to_owned())));
        Head::Cgi {
            status,
            headers: all,
        }
    }

    fn text(
        &self,
        headers: &Headers<'_>,
        status: u16,
        extra: &[(&str, &str)],
        body: String,
    ) -> Response {
        let mut all = vec![("Content-Type", "text/plain")];
        all.extend_from_slice(extra);
        Response {
            delay: Duration::ZERO,
            head: self.head(headers, status, &all),
            body: vec![body.into_bytes()],
            hold: None,
        }
    }

    /// The answer to a request with these headers and this whole body.
    #[must_use]
    pub fn respond(&self, headers: &Headers<'_>, body: &[u8]) -> Response {
        let path = String::from_utf8_lossy(headers.path().unwrap_or(b"/")).into_owned();
        let query = String::from_utf8_lossy(headers.query_string().unwrap_or(b"")).into_owned();
        let (route, arg) = match path.strip_prefix('/').unwrap_or(&path).split_once('/') {
            Some((route, arg)) => (route.to_owned(), arg.to_owned()),
            None => (path.trim_start_matches('/').to_owned(), String::new()),
        };
        match route.as_str() {
            "echo" => {
                let content_type = headers.content_type().unwrap_or("application/octet-stream");
                let length = body.len().to_string();
                Response {
                    delay: Duration::ZERO,
                    head: self.head(
                        headers,
                        200,
                        &[("Content-Type", content_type), ("Content-Length", &length)],
                    ),
                    body: body.chunks(ECHO_CHUNK).map(<[u8]>::to_vec).collect(),
                    hold: None,
                }
            }
            "inspect" => Response {
                delay: Duration::ZERO,
                head: self.head(
                    headers,
                    200,
                    &[
                        ("Content-Type", "application/octet-stream"),
                        ("X-Body-Length", &body.len().to_string()),
                    ],
                ),
                body: vec![headers.as_bytes().to_vec()],
                hold: None,
            },
            "headers" => {
                let show = |v: &[u8]| v.escape_ascii().to_string();
                let first = headers.get(&query).map_or_else(|| "-".to_owned(), show);
                let all: Vec<String> = headers.get_all(&query).map(show).collect();
                let text = format!("first={first}\nall={}\n", all.join("|"));
                self.text(headers, 200, &[], text)
            }
            "status" => match arg.parse::<u16>() {
                Ok(status @ (204 | 304)) => Response {
                    delay: Duration::ZERO,
                    head: self.head(headers, status, &[]),
                    body: Vec::new(),
                    hold: None,
                },
                Ok(503) => self.text(headers, 503, &[("Retry-After", "5")], "status 503\n".into()),
                Ok(status @ 200..=599) => {
                    self.text(headers, status, &[], format!("status {status}\n"))
                }
                _ => self.text(headers, 400, &[], format!("bad status {arg:?}\n")),
            },
            "redirect" => match arg.parse::<u16>() {
                Ok(status @ 300..=399) => self.text(
                    headers,
                    status,
                    &[("Location", "/target?from=redirect")],
                    "redirecting\n".into(),
                ),
                _ => self.text(headers, 400, &[], format!("bad status {arg:?}\n")),
            },
            "location-only" => {
                let target = if query == "absolute" {
                    "http://example.test/target?from=location-only"
                } else {
                    "/target?from=location-only"
                };
                Response {
                    delay: Duration::ZERO,
                    head: Head::Raw(
                        format!("Location: {target}\r\nContent-Type: text/plain\r\n\r\nmoved\n")
                            .into_bytes(),
                    ),
                    body: Vec::new(),
                    hold: None,
                }
            }
            "cookies" => self.text(
                headers,
                200,
                &[
                    ("Set-Cookie", "a=1; Path=/"),
                    ("Set-Cookie", "b=2; HttpOnly"),
                    ("Set-Cookie", "c=3; Max-Age=60"),
                ],
                "three cookies\n".into(),
            ),
            "stream" => {
                let n = query_param(&query, "chunks")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(16usize)
                    .min(4096);
                Response {
                    delay: Duration::ZERO,
                    head: self.head(headers, 200, &[("Content-Type", "text/plain")]),
                    body: stream_body(n),
                    hold: None,
                }
            }
            "refuse" => self.text(headers, 413, &[], "refused unread\n".into()),
            "hold" => {
                let param = |key| query_param(&query, key).and_then(|v| v.parse().ok());
                let ms = param("ms").unwrap_or(10_000u64).min(MAX_HOLD_MS);
                let mut extra = vec![("Content-Type", "text/plain")];
                if query_param(&query, "accel") == Some("no") {
                    extra.push(("X-Accel-Buffering", "no"));
                }
                Response {
                    delay: Duration::ZERO,
                    head: self.head(headers, 200, &extra),
                    body: vec![FIRST_PIECE.as_bytes().to_vec()],
                    hold: Some(Hold {
                        id: param("id").unwrap_or(0),
                        gates: Arc::clone(&self.gates),
                        until: Instant::now() + Duration::from_millis(ms),
                    }),
                }
            }
            "slow" => {
                let ms = query_param(&query, "ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(300u64)
                    .min(MAX_DELAY_MS);
                let mut response = self.text(headers, 200, &[], format!("slow {ms}\n"));
                response.delay = Duration::from_millis(ms);
                response
            }
            _ => self.text(headers, 404, &[], format!("no route for {path}\n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request as a web server sends it (by hand: the encoder refuses
    /// the duplicate names nginx sends).
    fn respond(wire_headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut block = format!("CONTENT_LENGTH\0{}\0SCGI\01\0", body.len());
        for (name, value) in wire_headers {
            block.push_str(&format!("{name}\0{value}\0"));
        }
        let mut wire = format!("{}:{block},", block.len()).into_bytes();
        wire.extend_from_slice(body);
        let mut decoder = scgi_proto::Decoder::new();
        let Ok(scgi_proto::Step::Head(head)) = decoder.decode(&wire) else {
            panic!("not a head")
        };
        App::new("t").respond(&head.headers(&wire), body)
    }

    #[test]
    fn echo_copies_the_body_in_chunks() {
        let body = vec![7u8; ECHO_CHUNK + 1];
        let r = respond(
            &[("REQUEST_URI", "/echo"), ("REQUEST_METHOD", "POST")],
            &body,
        );
        assert_eq!(r.body.concat(), body);
        assert_eq!(r.body.len(), 2);
        assert!(r.header_pairs().contains(&("Content-Length", "65537")));
    }

    #[test]
    fn routes_by_path_and_query() {
        let r = respond(&[("REQUEST_URI", "/status/204")], b"");
        assert!(matches!(r.head, Head::Cgi { status: 204, .. }));
        assert!(r.body.is_empty());
        let r = respond(
            &[("REQUEST_URI", "/slow?ms=9"), ("QUERY_STRING", "ms=9")],
            b"",
        );
        assert_eq!(r.delay, Duration::from_millis(9));
        let r = respond(&[("REQUEST_URI", "/nope")], b"");
        assert!(matches!(r.head, Head::Cgi { status: 404, .. }));
        let r = respond(
            &[
                ("REQUEST_URI", "/headers?HTTP_X"),
                ("QUERY_STRING", "HTTP_X"),
                ("HTTP_X", "1"),
                ("HTTP_X", "2"),
            ],
            b"",
        );
        assert_eq!(r.body.concat(), b"first=1\nall=1|2\n");
    }

    #[test]
    fn refuse_reads_no_body_and_hold_waits_for_its_gate() {
        let r = respond(&[("REQUEST_URI", "/refuse")], b"");
        assert!(matches!(r.head, Head::Cgi { status: 413, .. }));
        let r = respond(
            &[
                ("REQUEST_URI", "/hold?id=7&ms=60000&accel=no"),
                ("QUERY_STRING", "id=7&ms=60000&accel=no"),
            ],
            b"",
        );
        assert!(r.header_pairs().contains(&("X-Accel-Buffering", "no")));
        assert_eq!(r.body.concat(), FIRST_PIECE.as_bytes());
        let hold = r.hold.expect("a hold");
        assert_eq!(hold.poll(), None);
        App::open(&App::new("other"), 7);
        assert_eq!(hold.poll(), None, "another app's gate");
        let gates = App {
            name: String::new(),
            gates: Arc::clone(&hold.gates),
        };
        gates.open(7);
        assert_eq!(hold.poll(), Some(true));
        let r = respond(
            &[
                ("REQUEST_URI", "/hold?id=1&ms=0"),
                ("QUERY_STRING", "id=1&ms=0"),
            ],
            b"",
        );
        assert_eq!(r.hold.expect("a hold").poll(), Some(false));
        assert_eq!(Hold::last_piece(true), b"go-ahead: yes\n");
    }

    #[test]
    fn stream_lines_are_one_kib() {
        let body = stream_body(3);
        assert!(body.iter().all(|l| l.len() == 1024 && l.ends_with(b"\n")));
        assert!(body[2].starts_with(b"chunk 00002 c"));
    }
}

//! The scenarios. Each starts its own server through the [`Harness`] and
//! plays the web server's part over real sockets.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use scgi_proto::server::Stats;
use scgi_proto::{Decoder, Limits, ResponseParser, ResponseStep, Step};

use crate::{CLIENT_TIMEOUT, Client, Harness, OCTET_STREAM, Reply, Target, exchange, test_config};

/// The worked example of the SCGI spec.
pub const SPEC_REQUEST: &[u8] = b"70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00\
    REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,What is the answer to life?";

/// The spec's answer to [`SPEC_REQUEST`], byte for byte.
pub const SPEC_RESPONSE: &[u8] = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n42";

/// The captured corpus (`<frontend>/<case>.scgi`), kept in scgi-proto's test
/// data.
#[must_use]
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scgi-proto/tests/data/corpus"
    ))
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let frontends = std::fs::read_dir(corpus_dir()).expect("corpus directory");
    for frontend in frontends {
        let frontend = frontend.expect("corpus entry").path();
        if !frontend.is_dir() {
            continue;
        }
        for case in std::fs::read_dir(&frontend).expect("frontend directory") {
            let case = case.expect("corpus entry").path();
            if case.extension().is_some_and(|e| e == "scgi") {
                files.push(case);
            }
        }
    }
    files.sort();
    assert!(
        files.len() > 100,
        "corpus incomplete: {} files",
        files.len()
    );
    files
}

/// An encoded request with `REQUEST_METHOD` and `REQUEST_URI`.
#[must_use]
pub fn request(method: &str, uri: &str, body: &[u8]) -> Vec<u8> {
    scgi_proto::encode_request_to_vec(&[("REQUEST_METHOD", method), ("REQUEST_URI", uri)], body)
        .expect("valid request")
}

/// Only the head of a request announcing `content_length` body bytes.
fn request_head(uri: &str, content_length: u64) -> Vec<u8> {
    let headers = [("REQUEST_METHOD", "POST"), ("REQUEST_URI", uri)];
    let len = scgi_proto::encoded_request_len(content_length, &headers).expect("valid");
    let mut head = vec![0; len];
    scgi_proto::encode_request(&mut head, content_length, &headers).expect("valid");
    head
}

fn netstring(block: &[u8]) -> Vec<u8> {
    let mut v = format!("{}:", block.len()).into_bytes();
    v.extend_from_slice(block);
    v.push(b',');
    v
}

fn show(bytes: &[u8]) -> String {
    bytes[..bytes.len().min(400)].escape_ascii().to_string()
}

/// Checks the server answers the spec example exactly.
fn assert_serves(target: &Target) {
    let raw = exchange(target, SPEC_REQUEST).expect("spec request");
    assert_eq!(
        show(&raw),
        show(SPEC_RESPONSE),
        "the server stopped serving"
    );
}

/// Reads until a whole response head has arrived; returns it and the bytes
/// after it.
fn read_response_head(client: &mut Client) -> (Reply, Vec<u8>) {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut parser = ResponseParser::new();
    loop {
        if let ResponseStep::Complete(head) = parser.parse(&raw).expect("valid response head") {
            let rest = raw.split_off(head.head_len());
            return (Reply::parse(&raw), rest);
        }
        let n = client.read(&mut chunk).expect("reading the response head");
        assert!(
            n > 0,
            "connection closed inside the response head: {}",
            show(&raw)
        );
        raw.extend_from_slice(&chunk[..n]);
    }
}

/// Reads exactly `n` bytes, after those already in `have`.
fn read_n(client: &mut Client, mut have: Vec<u8>, n: usize) -> Vec<u8> {
    let start = have.len();
    assert!(start <= n, "more bytes than expected: {}", show(&have));
    have.resize(n, 0);
    client
        .read_exact(&mut have[start..])
        .expect("reading the response");
    have
}

fn assert_cut_off(result: io::Result<Vec<u8>>, what: &str) {
    match result {
        Ok(raw) if raw.is_empty() => {}
        Ok(raw) => assert_eq!(Reply::parse(&raw).status, 408, "{what}: {}", show(&raw)),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{what}: the server never closed the connection"
        ),
    }
}

/// The spec's worked example, answered byte for byte.
pub fn spec_example(h: &Harness<'_>) {
    let server = h.start(test_config());
    assert_serves(&server.target);
}

/// Every captured request (nginx, nginx unbuffered, Apache, lighttpd,
/// lighttpd streaming), replayed byte-exact on its own connection to the
/// inspect route: the server must hand the handler the exact header block
/// and exactly `CONTENT_LENGTH` body bytes. Apache's empty captures
/// (connections closed before a byte) must get no answer at all.
pub fn corpus_replay(h: &Harness<'_>) {
    let server = h.start(test_config());
    for file in corpus_files() {
        let wire = std::fs::read(&file).expect("corpus file");
        let name = file.display();
        if wire.is_empty() {
            let mut client = server.target.connect().expect("connect");
            client.shutdown(Shutdown::Write).expect("half-close");
            let raw = client.read_all().expect("read");
            assert!(
                raw.is_empty(),
                "{name}: answered an empty connection: {}",
                show(&raw)
            );
            continue;
        }
        let mut decoder = Decoder::new();
        let Ok(Step::Head(head)) = decoder.decode(&wire) else {
            panic!("{name}: not a complete valid head");
        };
        let body_start = head.wire_len();
        let body_len = usize::try_from(head.content_length()).expect("small body");
        let mut expected = wire[head.block_range()].to_vec();
        expected.extend_from_slice(&wire[body_start..body_start + body_len]);

        let raw = exchange(&server.target, &wire).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reply = Reply::parse(&raw);
        assert_eq!(reply.status, 200, "{name}: {}", show(&raw));
        assert_eq!(reply.header("Content-Type"), Some(OCTET_STREAM.as_bytes()));
        assert!(
            reply.body == expected,
            "{name}: the handler saw other bytes ({} instead of {})",
            reply.body.len(),
            expected.len()
        );
    }
    assert_serves(&server.target);
}

/// nginx 1.22 with `scgi_request_buffering off` sends `CONTENT_LENGTH=0`
/// followed by the whole 1 MiB body. The request is the head alone; the
/// server answers it without hanging, the surplus is not body, and the
/// server goes on serving.
pub fn nginx_short_content_length(h: &Harness<'_>) {
    let server = h.start(test_config());
    let wire = std::fs::read(corpus_dir().join("nginx-nobuf/post_1mib.scgi")).expect("corpus");
    let Ok(Step::Head(head)) = Decoder::new().decode(&wire) else {
        panic!("corpus file has no valid head");
    };
    assert_eq!(head.content_length(), 0);
    assert_eq!(wire.len() - head.wire_len(), 1024 * 1024);
    let raw = exchange(&server.target, &wire).expect("exchange");
    let reply = Reply::parse(&raw);
    assert_eq!(reply.status, 200);
    assert!(
        reply.body == wire[head.block_range()],
        "the surplus was read as body"
    );
    assert_serves(&server.target);
}

/// A 100 MiB body streamed through the echo route while the client keeps at
/// most 4 MiB unacknowledged: a server that buffered the body (or the
/// response) would stall the client, which then fails. The echo is checked
/// byte for byte.
pub fn big_body_streamed(h: &Harness<'_>) {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 1600; // 100 MiB
    const WINDOW: usize = 64; // chunks in flight: 4 MiB
    let total = (CHUNK * CHUNKS) as u64;

    // A pseudo-random block, stamped with its index so that a lost, doubled
    // or reordered chunk shows.
    let mut base = vec![0u8; CHUNK];
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for b in &mut base {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 24) as u8;
    }
    let chunk = move |k: usize, buf: &mut Vec<u8>| {
        buf.clear();
        buf.extend_from_slice(&base);
        buf[..8].copy_from_slice(&(k as u64).to_le_bytes());
        buf[CHUNK - 8..].copy_from_slice(&(k as u64).to_le_bytes());
    };

    let server = h.start(test_config());
    let mut client = server.target.connect().expect("connect");
    let mut writer = client.try_clone().expect("clone");
    let (credit, credits) = mpsc::channel::<()>();
    let sender = {
        let chunk = chunk.clone();
        thread::spawn(move || -> io::Result<()> {
            writer.write_all(&request_head("/echo", total))?;
            let mut buf = Vec::with_capacity(CHUNK);
            for k in 0..CHUNKS {
                if k >= WINDOW {
                    credits.recv_timeout(CLIENT_TIMEOUT).map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the echo stalled: is the server buffering the body?",
                        )
                    })?;
                }
                chunk(k, &mut buf);
                writer.write_all(&buf)?;
            }
            Ok(())
        })
    };

    let (reply, mut pending) = read_response_head(&mut client);
    assert_eq!(reply.status, 200);
    let mut expected = Vec::with_capacity(CHUNK);
    let mut got = vec![0u8; CHUNK];
    for k in 0..CHUNKS {
        let have = pending.len().min(CHUNK);
        got[..have].copy_from_slice(&pending[..have]);
        pending.drain(..have);
        client.read_exact(&mut got[have..]).unwrap_or_else(|e| {
            panic!("echo ended at chunk {k}: {e}");
        });
        chunk(k, &mut expected);
        assert!(got == expected, "echoed chunk {k} differs");
        let _ = credit.send(());
    }
    assert!(pending.is_empty(), "more bytes than the body");
    let rest = client.read_all().expect("end of response");
    assert!(rest.is_empty(), "{} bytes after the echo", rest.len());
    sender
        .join()
        .expect("writer thread")
        .expect("sending the body");
}

/// Malformed heads are answered 400 with a proper response (status, text
/// body, matching `Content-Length`), and the server keeps serving.
pub fn malformed_heads_400(h: &Harness<'_>) {
    let server = h.start(test_config());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".to_vec(),
        ),
        ("an empty netstring", b"0:,".to_vec()),
        ("a leading zero", b"070:CONTENT_LENGTH\x000\x00".to_vec()),
        ("a bad length byte", b"7x:".to_vec()),
        (
            "no SCGI header",
            netstring(b"CONTENT_LENGTH\x000\x00REQUEST_METHOD\x00GET\x00"),
        ),
        ("SCGI=2", netstring(b"CONTENT_LENGTH\x000\x00SCGI\x002\x00")),
        (
            "CONTENT_LENGTH second",
            netstring(b"SCGI\x001\x00CONTENT_LENGTH\x000\x00"),
        ),
        (
            "CONTENT_LENGTH not a number",
            netstring(b"CONTENT_LENGTH\x00-1\x00SCGI\x001\x00"),
        ),
        (
            "CONTENT_LENGTH twice",
            netstring(b"CONTENT_LENGTH\x000\x00SCGI\x001\x00CONTENT_LENGTH\x000\x00"),
        ),
        (
            "an unterminated block",
            netstring(b"CONTENT_LENGTH\x000\x00SCGI\x001"),
        ),
        (
            "a missing comma",
            b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00;".to_vec(),
        ),
    ];
    for (what, wire) in cases {
        let raw = exchange(&server.target, &wire).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(!raw.is_empty(), "{what}: no answer");
        Reply::parse(&raw).assert_error(400);
    }
    assert_serves(&server.target);
}

/// A header netstring over the 64 KiB limit is answered 431 as soon as its
/// length prefix passes the limit, while the client is still sending it;
/// the client still gets the whole answer (no reset).
pub fn oversized_head_431(h: &Harness<'_>) {
    let server = h.start(test_config());
    let big = "x".repeat(70 * 1024);
    let real = scgi_proto::encode_request_to_vec(&[("HTTP_X_BIG", big.as_str())], b"")
        .expect("valid request");
    let mut claimed = b"1000000:".to_vec();
    claimed.extend(std::iter::repeat_n(b'a', 200 * 1024));
    for (what, wire) in [("a 70 KiB head", real), ("a 1 MB claim", claimed)] {
        let raw = exchange(&server.target, &wire).unwrap_or_else(|e| panic!("{what}: {e}"));
        Reply::parse(&raw).assert_error(431);
    }
    assert_serves(&server.target);
}

/// More headers than the limit (1 024 by default) is answered 431.
pub fn too_many_headers_431(h: &Harness<'_>) {
    let server = h.start(test_config());
    let names: Vec<String> = (0..1100).map(|i| format!("HTTP_X_{i}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let wire = scgi_proto::encode_request_to_vec(&headers, b"").expect("valid request");
    let raw = exchange(&server.target, &wire).expect("exchange");
    Reply::parse(&raw).assert_error(431);
    assert_serves(&server.target);
}

/// With a 1 KiB body limit, a 1 MiB body is answered 413 before it is read,
/// and the client gets that answer while it is still sending (the server
/// drains instead of resetting). A body at the limit is served.
pub fn body_too_large_413(h: &Harness<'_>) {
    let mut config = test_config();
    config.proto = config
        .proto
        .with_limits(Limits::DEFAULT.with_max_body(Some(1024)));
    let server = h.start(config);
    let raw = exchange(
        &server.target,
        &request("POST", "/echo", &vec![7u8; 1024 * 1024]),
    )
    .expect("exchange");
    Reply::parse(&raw).assert_error(413);
    let raw = exchange(&server.target, &request("POST", "/echo", &[7u8; 1024])).expect("exchange");
    let reply = Reply::parse(&raw);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, vec![7u8; 1024]);
}

/// With a 300 ms head timeout, clients that stall mid-head (and one that
/// sends nothing) are cut off (408 or a plain close), while the others are
/// served meanwhile.
pub fn slow_head_cut_off(h: &Harness<'_>) {
    let config = test_config()
        .with_head_timeout(Duration::from_millis(300))
        .with_workers(2);
    let server = h.start(config);
    let stalled: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = server.target.connect().expect("connect");
            c.write_all(b"70:CONTENT_LENGTH\x00").expect("partial head");
            c
        })
        .collect();
    let idle = server.target.connect().expect("connect");
    for _ in 0..5 {
        assert_serves(&server.target);
    }
    for mut c in stalled {
        assert_cut_off(c.read_all(), "a client stalled mid-head");
    }
    let mut idle = idle;
    assert_cut_off(idle.read_all(), "a client that sent nothing");
    assert_serves(&server.target);
}

/// Clients that hold connections without finishing their request (idle
/// ones that sent nothing, and ones stalled inside the body while the
/// handler waits for it), many more than the server has workers, do not
/// keep a fresh request from being served at once (issue 14: scgi-blocking
/// served it only when their head timeout cut the idle ones). The head and
/// body timeouts are twice the client's own, so a server that waited for
/// them fails the exchange; and none of the held connections is cut
/// meanwhile.
pub fn idle_clients_do_not_stall_others(h: &Harness<'_>) {
    let config = test_config()
        .with_head_timeout(CLIENT_TIMEOUT * 2)
        .with_body_timeout(CLIENT_TIMEOUT * 2)
        .with_workers(2);
    let server = h.start(config);
    let mut held: Vec<Client> = (0..6)
        .map(|_| server.target.connect().expect("connect"))
        .collect();
    for _ in 0..6 {
        let mut c = server.target.connect().expect("connect");
        c.write_all(&request_head("/echo", 1000)).expect("head");
        c.write_all(&[1u8; 10]).expect("part of the body");
        held.push(c);
    }
    for _ in 0..3 {
        assert_serves(&server.target);
    }
    for (i, c) in held.iter_mut().enumerate() {
        assert!(c.is_open().expect("probe"), "held connection {i} was cut");
    }
}

/// A handler that panics before writing costs its request a 500, nothing
/// more: repeated more times than there are workers, then the server
/// still serves.
pub fn panic_500(h: &Harness<'_>) {
    let config = test_config();
    let rounds = config.workers + 2;
    let server = h.start(config);
    for _ in 0..rounds {
        let raw = exchange(&server.target, &request("GET", "/panic", b"")).expect("exchange");
        Reply::parse(&raw).assert_error(500);
    }
    assert_serves(&server.target);
}

/// A handler that returns an error before writing gets a 500.
pub fn handler_error_500(h: &Harness<'_>) {
    let server = h.start(test_config());
    let raw = exchange(&server.target, &request("GET", "/error", b"")).expect("exchange");
    Reply::parse(&raw).assert_error(500);
    assert_serves(&server.target);
}

/// A handler that writes nothing still produces a valid, complete response
/// (200 or 204, empty body), and the connection ends.
pub fn handler_writes_nothing(h: &Harness<'_>) {
    let server = h.start(test_config());
    let raw =
        exchange(&server.target, &request("POST", "/nothing", b"unread body")).expect("exchange");
    let reply = Reply::parse(&raw);
    assert!(matches!(reply.status, 200 | 204), "status {}", reply.status);
    assert!(reply.body.is_empty());
}

/// Connections closed before their first byte get no answer and do not
/// disturb the server.
pub fn eof_before_first_byte(h: &Harness<'_>) {
    let server = h.start(test_config());
    for _ in 0..5 {
        let mut c = server.target.connect().expect("connect");
        c.shutdown(Shutdown::Write).expect("half-close");
        let raw = c.read_all().expect("read");
        assert!(
            raw.is_empty(),
            "answered an empty connection: {}",
            show(&raw)
        );
    }
    for _ in 0..5 {
        drop(server.target.connect().expect("connect"));
    }
    assert_serves(&server.target);
}

/// A connection that ends inside the head is answered 400.
pub fn eof_mid_head_400(h: &Harness<'_>) {
    let server = h.start(test_config());
    let mut c = server.target.connect().expect("connect");
    c.write_all(b"70:CONTENT_LENGTH\x0027\x00")
        .expect("partial head");
    c.shutdown(Shutdown::Write).expect("half-close");
    Reply::parse(&c.read_all().expect("read")).assert_error(400);
    assert_serves(&server.target);
}

/// A connection that ends inside the body makes the handler's body read
/// fail (unexpected end of input); the handler's error is answered 400.
pub fn eof_mid_body_400(h: &Harness<'_>) {
    let server = h.start(test_config());
    let mut c = server.target.connect().expect("connect");
    c.write_all(&SPEC_REQUEST[..SPEC_REQUEST.len() - 10])
        .expect("partial body");
    c.shutdown(Shutdown::Write).expect("half-close");
    Reply::parse(&c.read_all().expect("read")).assert_error(400);
    assert_serves(&server.target);
}

/// A 20 MiB body the handler never reads (it answers at once, as an early
/// 413 would), sent in pieces over about 2 s, longer than the 1 s drain
/// timeout and five times the 4 MiB drain limit: the server reads and
/// discards all of it while it keeps coming, so the whole body is taken
/// and the answer is read, where a drain capped at 4 MiB or 1 s closed on
/// unread input and reset the connection under the sender (issue 18: an
/// early 413 reached clients as 502).
pub fn early_answer_drains_a_large_body(h: &Harness<'_>) {
    let server = h.start(test_config());
    let mut c = server.target.connect().expect("connect");
    const PIECE: usize = 512 * 1024;
    c.write_all(&request_head("/nothing", 40 * PIECE as u64))
        .expect("head");
    let mut writer = c.try_clone().expect("clone");
    let sender = thread::spawn(move || -> io::Result<()> {
        let piece = vec![9u8; PIECE];
        for _ in 0..40 {
            writer.write_all(&piece)?;
            thread::sleep(Duration::from_millis(50));
        }
        writer.shutdown(std::net::Shutdown::Write)
    });
    let raw = c.read_all().expect("the answer, then the close");
    assert_eq!(Reply::parse(&raw).status, 204);
    sender
        .join()
        .expect("sender")
        .expect("the whole body was taken");
    assert_serves(&server.target);
}

/// `read_body` within its limit and `respond`: the `/form` route decodes
/// the query (`+`, `%C3%A9`, a bare name) and the form body, and answers
/// with a `Content-Length` that frames its body exactly; a body exactly at
/// the limit is read whole, and a request without a body reads an empty
/// one.
pub fn read_body_and_form(h: &Harness<'_>) {
    let server = h.start(test_config());
    let raw = exchange(
        &server.target,
        &scgi_proto::encode_request_to_vec(
            &[
                ("REQUEST_METHOD", "POST"),
                ("REQUEST_URI", "/form?q=caf%C3%A9+au+lait&flag"),
                ("QUERY_STRING", "q=caf%C3%A9+au+lait&flag"),
                ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ],
            b"name=Ada+Lovelace&lang=en%2Dgb",
        )
        .expect("valid"),
    )
    .expect("exchange");
    let reply = Reply::parse(&raw);
    assert_eq!(reply.status, 200, "{}", show(&raw));
    assert_eq!(
        reply.header("Content-Type"),
        Some(crate::TEXT_PLAIN.as_bytes())
    );
    let text = "query q=café au lait\nquery flag=\nform name=Ada Lovelace\nform lang=en-gb\n";
    assert_eq!(String::from_utf8_lossy(&reply.body), text);
    assert_eq!(
        reply.header("Content-Length"),
        Some(text.len().to_string().as_bytes())
    );

    let limit = usize::try_from(crate::FORM_LIMIT).expect("small");
    let at_limit = format!("k={}", "v".repeat(limit - 2));
    let raw = exchange(
        &server.target,
        &request("POST", "/form", at_limit.as_bytes()),
    )
    .expect("exchange");
    let reply = Reply::parse(&raw);
    assert_eq!(reply.status, 200, "{}", show(&raw));
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        format!("form {at_limit}\n")
    );

    // The same body in pieces, so that it is read in several reads.
    let wire = request("POST", "/form", at_limit.as_bytes());
    let mut c = server.target.connect().expect("connect");
    let split = wire.len() - limit + 10;
    c.write_all(&wire[..split]).expect("head and a piece");
    thread::sleep(Duration::from_millis(100));
    c.write_all(&wire[split..]).expect("the rest");
    let reply = Reply::parse(&c.read_all().expect("read"));
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        format!("form {at_limit}\n")
    );

    let raw = exchange(&server.target, &request("GET", "/form", b"")).expect("exchange");
    let reply = Reply::parse(&raw);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Content-Length"), Some(&b"0"[..]));
    assert!(reply.body.is_empty());
}

/// `read_body(limit)` with a larger body: the server answers `413` itself
/// (the handler only propagates the error), before reading the body, and
/// drains the body so the answer arrives whole while the client still
/// sends; a 1 MiB body and a body one byte over the limit alike. The
/// server goes on serving.
pub fn read_body_over_the_limit_413(h: &Harness<'_>) {
    let server = h.start(test_config());
    let limit = usize::try_from(crate::FORM_LIMIT).expect("small");
    for size in [limit + 1, 1024 * 1024] {
        let raw = exchange(&server.target, &request("POST", "/form", &vec![b'a'; size]))
            .expect("exchange");
        let reply = Reply::parse(&raw);
        reply.assert_error(413);
        let text = String::from_utf8_lossy(&reply.body);
        assert!(
            text.contains(&format!(
                "body of {size} bytes exceeds the limit of {limit} bytes"
            )),
            "{text}"
        );
    }
    assert_serves(&server.target);
}

/// `respond` to `HEAD`: the same head as the `GET` (status, headers,
/// `Content-Length` of the body a `GET` gets) and no body.
pub fn respond_to_head(h: &Harness<'_>) {
    let server = h.start(test_config());
    let uri = "/form?a=1&b=2";
    let headers = |method| {
        scgi_proto::encode_request_to_vec(
            &[
                ("REQUEST_METHOD", method),
                ("REQUEST_URI", uri),
                ("QUERY_STRING", "a=1&b=2"),
            ],
            b"",
        )
        .expect("valid")
    };
    let get = Reply::parse(&exchange(&server.target, &headers("GET")).expect("exchange"));
    let head = Reply::parse(&exchange(&server.target, &headers("HEAD")).expect("exchange"));
    assert_eq!(get.status, 200);
    assert_eq!(get.body, b"query a=1\nquery b=2\n");
    assert_eq!(get.header("Content-Length"), Some(&b"20"[..]));
    assert_eq!(head.status, get.status);
    assert_eq!(head.headers, get.headers);
    assert!(head.body.is_empty(), "a body for HEAD: {:?}", head.body);
}

/// A second `respond` is refused (it would append a second response to
/// the first): the handler returns its error while the first response is
/// still buffered, so the request is answered `500` alone.
pub fn respond_twice_is_refused(h: &Harness<'_>) {
    let server = h.start(test_config());
    let raw = exchange(&server.target, &request("GET", "/form?again", b"")).expect("exchange");
    Reply::parse(&raw).assert_error(500);
    assert_serves(&server.target);
}

/// Every timeout set to `Duration::MAX` (a natural way to say "never")
/// means never and panics nowhere (issue 14: `Instant::now() + timeout`
/// overflowed): requests are served, bodies read, and stopping returns.
pub fn huge_timeouts_never_panic(h: &Harness<'_>) {
    let config = test_config()
        .with_head_timeout(Duration::MAX)
        .with_body_timeout(Duration::MAX)
        .with_write_timeout(Duration::MAX)
        .with_drain_timeout(Duration::MAX)
        .with_shutdown_timeout(Duration::MAX);
    let server = h.start(config);
    assert_serves(&server.target);
    let raw = exchange(&server.target, &request("POST", "/echo", &[5u8; 100_000])).expect("echo");
    assert_eq!(Reply::parse(&raw).body, vec![5u8; 100_000]);
    // An unread body: the drain, then the close.
    let raw = exchange(
        &server.target,
        &request("POST", "/nothing", &[5u8; 100_000]),
    )
    .expect("nothing");
    assert_eq!(Reply::parse(&raw).status, 204);
    assert_serves(&server.target);
    assert!(server.stop(), "stop reported unfinished requests");
}

/// A client that trickles its body (a byte every 100 ms, each read well
/// within the 1 s idle timeout) falls behind the minimum rate (500 bytes/s
/// after 1 s of grace) and is answered 408, where an idle timeout alone
/// would wait for the whole body (issue 14).
pub fn trickling_body_408(h: &Harness<'_>) {
    let config = test_config().with_body_timeout(Duration::from_secs(1));
    assert_eq!(config.body_min_rate, 500);
    let server = h.start(config);
    let mut c = server.target.connect().expect("connect");
    let mut wire = request_head("/deepthought", 1000);
    wire.push(b'x');
    c.write_all(&wire).expect("head");
    let mut writer = c.try_clone().expect("clone");
    let trickle = thread::spawn(move || {
        for _ in 1..1000 {
            thread::sleep(Duration::from_millis(100));
            if writer.write_all(b"x").is_err() {
                return;
            }
        }
    });
    Reply::parse(&c.read_all().expect("read")).assert_error(408);
    drop(c);
    trickle.join().expect("trickler");
    assert_serves(&server.target);
}

/// A client that stops sending inside the body, longer than the body idle
/// timeout (300 ms), makes the handler's body read fail; the handler's
/// error is answered 408.
pub fn body_idle_timeout_408(h: &Harness<'_>) {
    let config = test_config().with_body_timeout(Duration::from_millis(300));
    let server = h.start(config);
    let mut c = server.target.connect().expect("connect");
    c.write_all(&SPEC_REQUEST[..SPEC_REQUEST.len() - 10])
        .expect("partial body");
    Reply::parse(&c.read_all().expect("read")).assert_error(408);
    assert_serves(&server.target);
}

/// lighttpd 1.4.40-41 half-closes after sending the request: the response
/// still goes out.
pub fn half_close_after_request(h: &Harness<'_>) {
    let server = h.start(test_config());
    let mut c = server.target.connect().expect("connect");
    c.write_all(SPEC_REQUEST).expect("request");
    c.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(show(&c.read_all().expect("read")), show(SPEC_RESPONSE));
}

/// After a `101` head the connection is a raw tunnel: bytes sent right
/// behind the request reach the handler, and both directions flow.
pub fn upgrade_tunnel(h: &Harness<'_>) {
    let server = h.start(test_config());
    let mut c = server.target.connect().expect("connect");
    let mut wire = request("GET", "/upgrade", b"");
    wire.extend_from_slice(b"ping");
    c.write_all(&wire).expect("request");
    let (reply, rest) = read_response_head(&mut c);
    assert_eq!(reply.status, 101);
    assert_eq!(reply.header("Upgrade"), Some(&b"echo"[..]));
    assert_eq!(read_n(&mut c, rest, 4), b"ping");
    c.write_all(b"pong").expect("tunnel write");
    assert_eq!(read_n(&mut c, Vec::new(), 4), b"pong");
    c.shutdown(Shutdown::Write).expect("half-close");
    assert!(c.read_all().expect("end of tunnel").is_empty());
}

/// Sixteen clients at once, four requests each, all served.
pub fn concurrent_clients(h: &Harness<'_>) {
    let server = h.start(test_config());
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let target = server.target.clone();
            thread::spawn(move || {
                for _ in 0..4 {
                    assert_serves(&target);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
}

/// Waits (bounded) until the server no longer accepts connections.
fn wait_until_refused(target: &Target) {
    let start = Instant::now();
    while target.connect().is_ok() {
        assert!(
            start.elapsed() < CLIENT_TIMEOUT,
            "the server kept accepting after stop"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Stopping the server with a request in flight (its handler running, half
/// of its body still to come) stops accepting at once, but lets that
/// request finish; stop returns afterwards and reports success.
pub fn close_with_requests_in_flight(h: &Harness<'_>) {
    let config = test_config().with_shutdown_timeout(Duration::from_secs(30));
    let server = h.start(config);
    let target = server.target.clone();
    let mut c = target.connect().expect("connect");
    c.write_all(&request_head("/echo", 2000)).expect("head");
    c.write_all(&[1u8; 1000]).expect("first half");
    let (reply, rest) = read_response_head(&mut c);
    assert_eq!(reply.status, 200);
    assert_eq!(read_n(&mut c, rest, 1000), [1u8; 1000]);

    let stopper = thread::spawn(move || server.stop());
    wait_until_refused(&target);
    assert!(
        !stopper.is_finished(),
        "stop returned with a request in flight"
    );
    c.write_all(&[2u8; 1000]).expect("second half");
    assert_eq!(c.read_all().expect("rest of the echo"), [2u8; 1000]);
    drop(c);
    assert!(
        stopper.join().expect("stopper"),
        "stop reported unfinished requests"
    );
}

/// A request still in flight when the shutdown deadline (300 ms) passes is
/// cut off, and stop returns (reporting it).
pub fn close_deadline_cuts_stragglers(h: &Harness<'_>) {
    let config = test_config()
        .with_shutdown_timeout(Duration::from_millis(300))
        .with_body_timeout(CLIENT_TIMEOUT);
    let server = h.start(config);
    let mut c = server.target.connect().expect("connect");
    c.write_all(&request_head("/echo", 2000)).expect("head");
    c.write_all(&[1u8; 1000]).expect("first half");
    let (reply, rest) = read_response_head(&mut c);
    assert_eq!(reply.status, 200);
    assert_eq!(read_n(&mut c, rest, 1000), [1u8; 1000]);

    let (done, stopped) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(server.stop());
    });
    let finished = stopped
        .recv_timeout(CLIENT_TIMEOUT)
        .expect("stop did not return after its deadline");
    assert!(!finished, "stop reported a cut-off request as finished");
    let mut rest = Vec::new();
    let end = c.read_to_end(&mut rest);
    if let Err(e) = end {
        assert!(
            !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "the straggler's connection was left open"
        );
    }
}

/// Polls the server's counters every 10 ms until `done` holds, at most
/// [`CLIENT_TIMEOUT`] (connections close a moment after their response).
fn stats_when(server: &crate::Running, done: impl Fn(&Stats) -> bool) -> Stats {
    let start = Instant::now();
    loop {
        let stats = server.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < CLIENT_TIMEOUT,
            "the counters never settled: {stats:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// The server's counters ([`Stats`]) say what happened, one connection at
/// a time: a 200, a 204 (a handler that wrote nothing), a 500 (a failing
/// handler), a malformed head (400), a stalled head (408, a timeout), a
/// connection closed before its first byte (counted as a connection,
/// nothing else); then no connection is left open.
pub fn stats_count_what_happened(h: &Harness<'_>) {
    let server = h.start(test_config().with_head_timeout(Duration::from_millis(300)));
    assert_eq!(server.stats(), Stats::default());
    for (uri, status) in [("/", 200), ("/nothing", 204), ("/error", 500)] {
        let raw = exchange(&server.target, &request("GET", uri, b"")).expect("exchange");
        assert_eq!(Reply::parse(&raw).status, status, "{uri}");
    }
    let raw = exchange(&server.target, b"0:,").expect("exchange");
    Reply::parse(&raw).assert_error(400);
    let mut stalled = server.target.connect().expect("connect");
    stalled
        .write_all(b"70:CONTENT_LENGTH\x00")
        .expect("part of a head");
    assert_cut_off(stalled.read_all(), "a client stalled mid-head");
    drop(server.target.connect().expect("connect"));

    let stats = stats_when(&server, |s| {
        s.connections_accepted == 6 && s.connections_open == 0
    });
    assert_eq!(stats.requests, 3, "{stats:?}");
    assert_eq!(stats.responses, [0, 2, 0, 2, 1], "{stats:?}");
    assert_eq!(stats.responses_of(2), 2);
    assert_eq!(stats.malformed, 1, "{stats:?}");
    assert_eq!(stats.timeouts, 1, "{stats:?}");
    assert_eq!(stats.waited_at_cap, 0, "{stats:?}");
}

/// With `access_log` on, each request logs one line under the target
/// `scgi::access`: client, method and target, status, the bytes the client
/// received, the duration.
pub fn access_log_line_per_request(h: &Harness<'_>) {
    let lines = crate::capture_access_log();
    let server = h.start(test_config().with_access_log(true));
    let marker = crate::temp_path("access");
    let marker = marker.file_stem().expect("a name").to_string_lossy();
    let uri = format!("/{marker}?q=1");
    let wire = scgi_proto::encode_request_to_vec(
        &[
            ("REQUEST_METHOD", "POST"),
            ("REQUEST_URI", &uri),
            ("REMOTE_ADDR", "192.0.2.7"),
            ("REMOTE_PORT", "4711"),
        ],
        b"hello",
    )
    .expect("a request");
    let raw = exchange(&server.target, &wire).expect("exchange");
    assert_eq!(Reply::parse(&raw).status, 200);
    let start = Instant::now();
    let line = loop {
        if let Some(line) = lines.find(&uri) {
            break line;
        }
        assert!(start.elapsed() < CLIENT_TIMEOUT, "no access line for {uri}");
        thread::sleep(Duration::from_millis(10));
    };
    let want = format!("192.0.2.7:4711 \"POST {uri}\" 200 {} ", raw.len());
    assert!(
        line.starts_with(&want) && line.ends_with("ms"),
        "{line:?} is not {want:?}<duration>ms"
    );
    // Off by default: a request to a server without it logs nothing.
    let quiet = h.start(test_config());
    let uri = format!("/{marker}-quiet");
    exchange(&quiet.target, &request("GET", &uri, b"")).expect("exchange");
    // Counted before the access line would be logged: wait for the
    // connection's end too.
    let _ = stats_when(&quiet, |s| s.requests == 1 && s.connections_open == 0);
    assert!(
        lines.find(&uri).is_none(),
        "an access line without access_log"
    );
}

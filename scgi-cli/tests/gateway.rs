//! `scgi gateway` with a real HTTP client over real sockets: the e2e cases
//! the project runs behind nginx, and the gateway's own errors.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

use common::{AppBackend, Gateway, RawBackend, Transport, inspect_vars, noise, raw_http, var};
use e2e::Kind;
use e2e::cases::{CASES, Ctx};
use e2e::client::Request;

/// Every case of `e2e::cases` that nginx passes, through the gateway in
/// front of the e2e app on scgi-blocking, as `tests/e2e.rs` runs them
/// behind nginx. The cases read as nginx's, with one exception:
/// `duplicate_request_headers` expects the values joined (`one, two`,
/// cookies with `; `), as nginx 1.23+ and lighttpd send them, since the
/// SCGI spec forbids repeated names (nginx 1.22 repeats them).
fn run_e2e_cases(transport: Transport) {
    let app = AppBackend::start(transport);
    let gateway = Gateway::start(&app.addr(), &[]);
    let mut failed = Vec::new();
    for case in CASES {
        let kind = if case.name == "duplicate_request_headers" {
            Kind::Lighttpd
        } else {
            Kind::Nginx
        };
        let ctx = Ctx {
            kind,
            transport,
            addr: gateway.addr,
        };
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| (case.run)(&ctx))) {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("{}: {msg}", case.name));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} e2e cases failed through the gateway over {}:\n  {}\n{}",
        failed.len(),
        CASES.len(),
        transport.name(),
        failed.join("\n  "),
        gateway.log()
    );
}

#[test]
fn e2e_cases_over_tcp() {
    run_e2e_cases(Transport::Tcp);
}

#[test]
fn e2e_cases_over_unix() {
    run_e2e_cases(Transport::Unix);
}

#[test]
fn variables_are_nginx_s() {
    let app = AppBackend::start(Transport::Tcp);
    let gateway = Gateway::start(
        &app.addr(),
        &["--server-name", "dev.test", "--var", "HTTPS=on"],
    );
    let r = Request::get("/inspect?q=1")
        .header("User-Agent", "test/1")
        .send(gateway.addr)
        .expect("request");
    assert_eq!(r.status, 200, "{r:?}");
    let vars = inspect_vars(&r.body);
    assert_eq!(var(&vars, "REQUEST_URI"), Some("/inspect?q=1"));
    assert_eq!(var(&vars, "DOCUMENT_URI"), Some("/inspect"));
    assert_eq!(var(&vars, "QUERY_STRING"), Some("q=1"));
    assert_eq!(var(&vars, "SERVER_NAME"), Some("dev.test"));
    assert_eq!(
        var(&vars, "SERVER_PORT"),
        Some(gateway.addr.port().to_string().as_str())
    );
    assert_eq!(var(&vars, "REMOTE_ADDR"), Some("127.0.0.1"));
    assert_eq!(
        var(&vars, "HTTP_HOST"),
        Some(gateway.addr.to_string().as_str())
    );
    assert_eq!(var(&vars, "HTTP_USER_AGENT"), Some("test/1"));
    assert_eq!(var(&vars, "HTTPS"), Some("on"));
    assert!(
        gateway.log_shows("\"GET /inspect?q=1 HTTP/1.1\" 200"),
        "{}",
        gateway.log()
    );
}

/// A backend that writes its head at once and then echoes the body as it
/// reads it (64 KiB at a time): through nginx this stalls after a socket
/// buffer (BENCHMARKS.md), through the gateway it streams both ways.
#[test]
fn streaming_echo_flows_both_ways() {
    let echo = common::StreamingEcho::start();
    let gateway = Gateway::start(&echo.addr, &[]);
    let body = noise(8 * 1024 * 1024 + 5, 8);
    let r = Request::post("/", "application/octet-stream", body.clone())
        .send(gateway.addr)
        .expect("request");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body == body,
        "{} of {} bytes back",
        r.body.len(),
        body.len()
    );
}

fn text_of(resp: &[u8]) -> String {
    String::from_utf8_lossy(resp).into_owned()
}

#[test]
fn dead_backend_is_a_clear_502() {
    let gateway = Gateway::start(&common::dead_addr(), &[]);
    let r = Request::get("/").send(gateway.addr).expect("request");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.text().contains("cannot connect to the backend"), "{r:?}");
    // The connection stays usable for the next request.
    let r = Request::get("/again").send(gateway.addr).expect("request");
    assert_eq!(r.status, 502, "{r:?}");
}

#[test]
fn misbehaving_backends_are_502_or_504() {
    let cases: [(common::Behaviour, &[&str], u16, &str); 4] = [
        (common::garbage, &[], 502, "not a CGI response head"),
        (
            common::close_early,
            &[],
            502,
            "closed the connection without answering",
        ),
        (
            common::half_head,
            &[],
            502,
            "in the middle of the response head",
        ),
        (
            common::never_answer,
            &["--timeout", "300ms"],
            504,
            "sent no response head within 300 ms",
        ),
    ];
    for (behave, extra, status, message) in cases {
        let backend = RawBackend::start(behave);
        let gateway = Gateway::start(&backend.addr(), extra);
        let r = Request::get("/").send(gateway.addr).expect("request");
        assert_eq!(r.status, status, "{message}: {r:?}");
        assert!(r.text().contains(message), "{r:?}");
    }
}

/// A body that ends before its Content-Length: the response is cut (hyper
/// closes the connection, with or without the part it had), so the client
/// never takes it for a whole one.
#[test]
fn short_backend_body_cuts_the_response() {
    let backend = RawBackend::start(common::short_body);
    let gateway = Gateway::start(&backend.addr(), &[]);
    let raw = raw_http(gateway.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("exchange");
    let text = text_of(&raw);
    if !text.is_empty() {
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("content-length: 100\r\n"), "{text}");
        let (_, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(body.len() < 100, "{text}");
    }
    assert!(
        gateway.log_shows("\"GET / HTTP/1.1\" 200"),
        "{}",
        gateway.log()
    );
}

#[test]
fn malformed_http_is_400() {
    let app = AppBackend::start(Transport::Tcp);
    let gateway = Gateway::start(&app.addr(), &[]);
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let resp = raw_http(gateway.addr, raw).expect("exchange");
        let text = text_of(&resp);
        assert!(
            text.starts_with("HTTP/1.1 400 "),
            "{}: {text}",
            raw.escape_ascii()
        );
    }
    // An oversized head: 431.
    let mut huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 100 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let text = text_of(&raw_http(gateway.addr, &huge).expect("exchange"));
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    // Still serving.
    let r = Request::get("/status/200")
        .send(gateway.addr)
        .expect("request");
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn body_over_the_limit_is_413() {
    let app = AppBackend::start(Transport::Tcp);
    let gateway = Gateway::start(&app.addr(), &["--max-body-size", "1k"]);
    let body = noise(64 * 1024, 4);
    let r = Request::post("/echo", "application/octet-stream", body.clone())
        .send(gateway.addr)
        .expect("request");
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.text().contains("--max-body-size"), "{r:?}");
    let r = Request::new("POST", "/echo")
        .chunked(body, 1000)
        .send(gateway.addr)
        .expect("request");
    assert_eq!(r.status, 413, "{r:?}");
    // At the limit: passes.
    let body = noise(1024, 5);
    let r = Request::post("/echo", "application/octet-stream", body.clone())
        .send(gateway.addr)
        .expect("request");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, body);
}

/// A client that goes away in the middle of its body: the gateway keeps
/// serving.
#[test]
fn client_gone_mid_body() {
    let app = AppBackend::start(Transport::Tcp);
    let gateway = Gateway::start(&app.addr(), &[]);
    {
        let mut s = TcpStream::connect(gateway.addr).expect("connect");
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
            .expect("write");
        thread::sleep(Duration::from_millis(50));
    }
    let r = Request::get("/status/200")
        .send(gateway.addr)
        .expect("request");
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn bad_command_lines() {
    for args in [
        &["gateway", "--backend", "localhost"][..],
        &["gateway", "--backend", "tcp://127.0.0.1:4000"],
        &["gateway"],
        &[
            "gateway",
            "--backend",
            "127.0.0.1:4000",
            "--max-body-size",
            "lots",
        ],
    ] {
        let out = common::run(common::scgi().args(args), b"");
        assert_eq!(out.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
    let out = common::run(
        common::scgi().args([
            "gateway",
            "--backend",
            "127.0.0.1:4000",
            "--listen",
            "256.0.0.1:80",
        ]),
        b"",
    );
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot listen on 256.0.0.1:80"),
        "{out:?}"
    );
}

//! The cases, run against one front end and one backend, and the matrix
//! driver.
//!
//! Each case sends HTTP requests through the front end and asserts what the
//! client receives: status, headers, body bytes, and (through the app's
//! `/inspect` and `/headers` routes) what the backend saw. Where the three
//! servers differ, the case says how, citing the quirk.

use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

use crate::app::{App, stream_body};
use crate::backend::{Backend, StartBackend, Transport};
use crate::client::{Connection, Framing, Request, Response};
use crate::frontend::{self, Frontend, Kind};
use crate::tmp::TempDir;

/// What a case runs against.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// The front end.
    pub kind: Kind,
    /// Front end to backend.
    pub transport: Transport,
    /// The front end's HTTP address.
    pub addr: SocketAddr,
}

/// A named case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Its name (`E2E_CASE=<part of it>` runs only matching cases).
    pub name: &'static str,
    /// It, panicking on failure.
    pub run: fn(&Ctx),
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case, in the order they run.
        pub const CASES: &[Case] = &[$(Case { name: stringify!($name), run: $name }),*];
    };
}

cases![
    get_with_query_string,
    post_form,
    post_json,
    post_all_byte_values,
    post_large_body_both_ways,
    body_over_the_handler_limit_413,
    empty_body,
    head_then_get_on_one_connection,
    status_404,
    status_503,
    status_204,
    redirects,
    location_without_status,
    streamed_without_content_length,
    multiple_set_cookie,
    many_and_long_request_headers,
    duplicate_request_headers,
    underscore_and_dash_header,
    chunked_request,
    http10_clients,
    concurrent_clients,
    slow_handler,
];

/// Runs every case against `kind` in front of the backend `start` runs,
/// over `transport`: one front end and one backend for all cases. Reports
/// every failed case at the end.
///
/// Skips (loudly) when `kind` is not installed, except under CI.
///
/// # Panics
///
/// When a case fails, or the front end or the backend cannot start.
pub fn run_matrix(kind: Kind, transport: Transport, runtime: &str, start: StartBackend) {
    let what = format!("e2e {kind} -> {runtime} over {}", transport.name());
    if !frontend::require(kind, &what) {
        return;
    }
    let dir = TempDir::new("backend").expect("temp dir");
    let backend = Backend::start(
        start,
        transport,
        dir.path(),
        App::new(format!("{runtime}-1")),
    )
    .unwrap_or_else(|e| panic!("{what}: starting the backend: {e}"));
    let frontend = Frontend::start(kind, backend.addr())
        .unwrap_or_else(|e| panic!("{what}: starting {kind}: {e}"));
    let ctx = Ctx {
        kind,
        transport,
        addr: frontend.addr(),
    };
    let filter = std::env::var("E2E_CASE").ok();
    let mut failed = Vec::new();
    let mut ran = 0;
    for case in CASES {
        if filter.as_deref().is_some_and(|f| !case.name.contains(f)) {
            continue;
        }
        ran += 1;
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| (case.run)(&ctx))) {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("{}: {msg}", case.name));
        }
    }
    let logs = frontend.logs();
    drop(frontend);
    drop(backend);
    assert!(
        failed.is_empty(),
        "{what}: {} of {ran} cases failed:\n  {}\n{logs}",
        failed.len(),
        failed.join("\n  ")
    );
}

/// Scale-out: nginx with an `upstream` of two backends (one on TCP, one on
/// a Unix socket), both started with `start`. Requests reach both; after
/// one backend stops, every request still succeeds on the other.
///
/// # Panics
///
/// When a check fails, or a server cannot start.
pub fn run_scale_out(runtime: &str, start: StartBackend) {
    let what = format!("e2e nginx upstream -> 2 x {runtime}");
    if !frontend::require(Kind::Nginx, &what) {
        return;
    }
    let dir = TempDir::new("backend").expect("temp dir");
    let one = Backend::start(
        start,
        Transport::Tcp,
        dir.path(),
        App::new(format!("{runtime}-1")),
    )
    .unwrap_or_else(|e| panic!("{what}: starting backend 1: {e}"));
    let two = Backend::start(
        start,
        Transport::Unix,
        dir.path(),
        App::new(format!("{runtime}-2")),
    )
    .unwrap_or_else(|e| panic!("{what}: starting backend 2: {e}"));
    let (b1, b2) = (
        Kind::Nginx.backend_directive(one.addr()),
        Kind::Nginx.backend_directive(two.addr()),
    );
    let nginx = Frontend::start_with(Kind::Nginx, |listen| {
        frontend::render(
            frontend::templates::NGINX_UPSTREAM_SITE,
            &[("LISTEN", listen), ("BACKEND_1", &b1), ("BACKEND_2", &b2)],
        )
    })
    .unwrap_or_else(|e| panic!("{what}: starting nginx: {e}"));
    let names = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| {
                let r = send(nginx.addr(), &Request::get(&format!("/status/200?i={i}")));
                assert_eq!(r.status, 200, "{what}: {r:?}\n{}", nginx.logs());
                r.header("X-Backend").unwrap_or_default().to_owned()
            })
            .collect()
    };
    let seen = names(8);
    for name in [format!("{runtime}-1"), format!("{runtime}-2")] {
        assert!(
            seen.contains(&name),
            "{what}: {name} got no request: {seen:?}"
        );
    }
    drop(one);
    let seen = names(8);
    assert!(
        seen.iter().all(|n| *n == format!("{runtime}-2")),
        "{what}: after backend 1 stopped: {seen:?}"
    );
}

/// nginx 1.22 with `scgi_request_buffering off` passes a request on as
/// soon as its head is in, with `CONTENT_LENGTH` set to the body bytes it
/// has so far (often 0) and the whole body behind it (SCGI.md; fixed in
/// nginx 1.29.6). The backend must read `CONTENT_LENGTH` bytes, answer,
/// and drain the rest without hanging: the client gets a 200 with a prefix
/// of its body, and the next requests are served.
///
/// # Panics
///
/// When a check fails, or a server cannot start.
pub fn run_nginx_unbuffered(runtime: &str, start: StartBackend) {
    let what = format!("e2e nginx (scgi_request_buffering off) -> {runtime}");
    if !frontend::require(Kind::Nginx, &what) {
        return;
    }
    let dir = TempDir::new("backend").expect("temp dir");
    let backend = Backend::start(
        start,
        Transport::Tcp,
        dir.path(),
        App::new(format!("{runtime}-1")),
    )
    .unwrap_or_else(|e| panic!("{what}: starting the backend: {e}"));
    let nginx = Frontend::start_with(Kind::Nginx, |listen| {
        frontend::with_directive(
            &Kind::Nginx.site(listen, backend.addr()),
            "include scgi_params;",
            "\n        scgi_request_buffering off;",
        )
    })
    .unwrap_or_else(|e| panic!("{what}: starting nginx: {e}"));
    let body = noise(256 * 1024 + 3, 3);
    let real = [body.len().to_string()];
    // The pause makes nginx start the backend request before the body
    // arrives, so that the short CONTENT_LENGTH shows; nothing below
    // depends on how short it is.
    let post = |target: &str| {
        Request::post(target, "application/octet-stream", body.clone())
            .pause_before_body(Duration::from_millis(100))
    };
    for _ in 0..2 {
        let r = send(nginx.addr(), &post("/inspect"));
        expect(&r, 200);
        let h = scgi_headers(&r);
        let short = scgi_one(&h, "CONTENT_LENGTH");
        assert!(
            short.parse::<usize>().is_ok_and(|n| n <= body.len()),
            "{h:?}"
        );
        assert_eq!(r.header("X-Body-Length"), Some(short.as_str()), "{r:?}");
        // The client's own Content-Length comes along as an HTTP_ header.
        assert_eq!(scgi_values(&h, "HTTP_CONTENT_LENGTH"), real, "{h:?}");

        let r = send(nginx.addr(), &post("/echo"));
        expect(&r, 200);
        assert!(
            body.starts_with(&r.body),
            "not a prefix of the body sent: {r:?}"
        );
    }
    // A chunked body is read whole first: its CONTENT_LENGTH is right.
    let r = send(
        nginx.addr(),
        &Request::new("POST", "/echo").chunked(body.clone(), 8000),
    );
    expect(&r, 200);
    assert_body(&r, &body);
    expect(&send(nginx.addr(), &Request::get("/status/200")), 200);
}

// ---- helpers ----

fn send(addr: SocketAddr, req: &Request) -> Response {
    req.send(addr)
        .unwrap_or_else(|e| panic!("request {req:?} failed: {e}"))
}

/// Asserts the response came from the backend with `status`.
#[track_caller]
fn expect(r: &Response, status: u16) {
    assert_eq!(r.status, status, "{r:?}");
    assert!(
        r.header("X-Backend").is_some(),
        "not from the backend: {r:?}"
    );
}

/// The SCGI headers an `/inspect` response carries, in wire order.
fn scgi_headers(r: &Response) -> Vec<(String, String)> {
    let mut fields = r.body.split(|&b| b == 0);
    let mut out = Vec::new();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        out.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    out
}

/// Every value of SCGI header `name`, in wire order.
fn scgi_values(headers: &[(String, String)], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .collect()
}

#[track_caller]
fn scgi_one(headers: &[(String, String)], name: &str) -> String {
    let values = scgi_values(headers, name);
    assert_eq!(values.len(), 1, "{name} in {headers:?}");
    values.into_iter().next().unwrap_or_default()
}

#[track_caller]
fn assert_body(r: &Response, want: &[u8]) {
    if r.body != want {
        let at = r.body.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "body differs: got {} bytes, want {}, first difference at {at:?}; {r:?}",
            r.body.len(),
            want.len()
        );
    }
}

/// Deterministic pseudo-random bytes (xorshift64).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[0]
        })
        .collect()
}

// ---- the cases ----

fn get_with_query_string(ctx: &Ctx) {
    let query = "a=1&b=two%20words&flag&empty=&check=%E2%9C%93";
    let r = send(ctx.addr, &Request::get(&format!("/inspect?{query}")));
    expect(&r, 200);
    assert_eq!(r.header("X-Request-Method"), Some("GET"));
    assert_eq!(r.header("X-Body-Length"), Some("0"));
    let h = scgi_headers(&r);
    // Every front end puts CONTENT_LENGTH first, as the spec requires.
    assert_eq!(
        h.first(),
        Some(&("CONTENT_LENGTH".into(), "0".into())),
        "{h:?}"
    );
    assert_eq!(scgi_one(&h, "SCGI"), "1");
    assert_eq!(scgi_one(&h, "REQUEST_METHOD"), "GET");
    assert_eq!(scgi_one(&h, "QUERY_STRING"), query);
    assert_eq!(scgi_one(&h, "REQUEST_URI"), format!("/inspect?{query}"));
    assert_eq!(scgi_one(&h, "SERVER_PROTOCOL"), "HTTP/1.1");
}

fn post_form(ctx: &Ctx) {
    let form = "name=J%C3%BCrgen+M&answer=42&list=a%2Cb&empty=";
    let ct = "application/x-www-form-urlencoded";
    let r = send(ctx.addr, &Request::post("/echo", ct, form));
    expect(&r, 200);
    assert_eq!(r.header("Content-Type"), Some(ct));
    assert_body(&r, form.as_bytes());

    let r = send(ctx.addr, &Request::post("/inspect", ct, form));
    expect(&r, 200);
    let h = scgi_headers(&r);
    assert_eq!(scgi_one(&h, "CONTENT_LENGTH"), form.len().to_string());
    assert_eq!(scgi_one(&h, "CONTENT_TYPE"), ct);
    assert_eq!(scgi_one(&h, "REQUEST_METHOD"), "POST");
    assert_eq!(
        r.header("X-Body-Length"),
        Some(form.len().to_string().as_str())
    );
}

fn post_json(ctx: &Ctx) {
    let json = "{\"name\":\"caf\u{e9} \u{2713}\",\"n\":[1,2,3],\"nested\":{\"ok\":true,\"s\":\"a\\\"b\"}}\n";
    let ct = "application/json; charset=utf-8";
    let r = send(ctx.addr, &Request::post("/echo", ct, json));
    expect(&r, 200);
    assert_eq!(r.header("Content-Type"), Some(ct));
    assert_body(&r, json.as_bytes());
}

fn post_all_byte_values(ctx: &Ctx) {
    // Every byte value, then again reversed: NUL, CR, LF, 0xff and the rest
    // pass through untouched.
    let mut body: Vec<u8> = (0..=255u8).collect();
    body.extend((0..=255u8).rev());
    let r = send(
        ctx.addr,
        &Request::post("/echo", "application/octet-stream", body.clone()),
    );
    expect(&r, 200);
    assert_body(&r, &body);
}

fn post_large_body_both_ways(ctx: &Ctx) {
    let body = noise(1024 * 1024 + 4099, 0x5eed);
    let r = send(
        ctx.addr,
        &Request::post("/echo", "application/octet-stream", body.clone()),
    );
    expect(&r, 200);
    assert_body(&r, &body);
}

/// A body over the glue's `read_body` limit: the backend answers `413`
/// before reading it and drains it, and the front end passes the `413` on
/// (not a 502 for a reset connection).
fn body_over_the_handler_limit_413(ctx: &Ctx) {
    let size = usize::try_from(crate::app::MAX_BODY).expect("small") + 1;
    let r = send(
        ctx.addr,
        &Request::post("/echo", "application/octet-stream", vec![b'x'; size]),
    );
    // The server's own answer: no X-Backend, its detail in the body.
    assert_eq!(r.status, 413, "{r:?}");
    let text = String::from_utf8_lossy(&r.body);
    let detail = format!(
        "body of {size} bytes exceeds the limit of {} bytes",
        size - 1
    );
    assert!(text.contains(&detail), "{r:?}");
}

fn empty_body(ctx: &Ctx) {
    let r = send(ctx.addr, &Request::new("POST", "/echo").body(Vec::new()));
    expect(&r, 200);
    assert_body(&r, b"");
    let r = send(ctx.addr, &Request::new("POST", "/inspect").body(Vec::new()));
    expect(&r, 200);
    assert_eq!(scgi_one(&scgi_headers(&r), "CONTENT_LENGTH"), "0");
    assert_eq!(r.header("X-Body-Length"), Some("0"));
}

fn head_then_get_on_one_connection(ctx: &Ctx) {
    let mut conn = Connection::open(ctx.addr).expect("connect");
    let r = conn
        .exchange(&Request::new("HEAD", "/inspect?head=1"))
        .expect("HEAD");
    expect(&r, 200);
    // The app wrote a body; the front end must not pass it on.
    assert_eq!(r.header("X-Request-Method"), Some("HEAD"));
    assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
    assert!(r.body.is_empty());
    // Had body bytes leaked after the HEAD response, this GET's response
    // would not parse.
    let r = conn
        .exchange(&Request::get("/inspect?after=head"))
        .expect("GET after HEAD");
    expect(&r, 200);
    assert_eq!(r.header("X-Request-Method"), Some("GET"));
    assert_eq!(scgi_one(&scgi_headers(&r), "QUERY_STRING"), "after=head");
}

fn status_404(ctx: &Ctx) {
    let r = send(ctx.addr, &Request::get("/no/such/route"));
    expect(&r, 404);
    assert_body(&r, b"no route for /no/such/route\n");
}

fn status_503(ctx: &Ctx) {
    let r = send(ctx.addr, &Request::get("/status/503"));
    expect(&r, 503);
    assert_eq!(r.header("Retry-After"), Some("5"));
    assert_body(&r, b"status 503\n");
}

fn status_204(ctx: &Ctx) {
    let r = send(ctx.addr, &Request::get("/status/204"));
    expect(&r, 204);
    assert!(r.body.is_empty());
    assert!(r.header("Content-Length").is_none_or(|v| v == "0"), "{r:?}");
    // The connection is still usable: nothing followed the 204's head.
    let mut conn = Connection::open(ctx.addr).expect("connect");
    expect(
        &conn.exchange(&Request::get("/status/204")).expect("204"),
        204,
    );
    expect(
        &conn
            .exchange(&Request::get("/status/200"))
            .expect("200 after 204"),
        200,
    );
}

fn redirects(ctx: &Ctx) {
    for status in [301, 302, 303, 307, 308] {
        let r = send(ctx.addr, &Request::get(&format!("/redirect/{status}")));
        expect(&r, status);
        // All three pass a relative Location on as it is.
        assert_eq!(r.header("Location"), Some("/target?from=redirect"), "{r:?}");
        assert_body(&r, b"redirecting\n");
    }
}

/// SCGI.md: `Location` without `Status` means 302 in nginx and lighttpd,
/// not in Apache. Our head writer always sends `Status`; this is the raw
/// head an application writing bytes itself would send.
fn location_without_status(ctx: &Ctx) {
    for (query, location) in [
        ("", "/target?from=location-only"),
        ("?absolute", "http://example.test/target?from=location-only"),
    ] {
        let r = send(ctx.addr, &Request::get(&format!("/location-only{query}")));
        match (ctx.kind, query) {
            (Kind::Nginx | Kind::Lighttpd, _) => {
                assert_eq!(r.status, 302, "{r:?}");
                assert_eq!(r.header("Location"), Some(location), "{r:?}");
                assert_body(&r, b"moved\n");
            }
            // Apache takes a local Location without Status for a CGI
            // internal redirect, and mod_proxy_scgi re-sends the original
            // request to the backend, which answers the same again: after
            // 10 rounds (AH00124) the client gets a 500.
            (Kind::Apache, "") => assert_eq!(r.status, 500, "{r:?}"),
            // An absolute one is passed on, but the status stays 200.
            (Kind::Apache, _) => {
                assert_eq!(r.status, 200, "{r:?}");
                assert_eq!(r.header("Location"), Some(location), "{r:?}");
                assert_body(&r, b"moved\n");
            }
        }
    }
}

fn streamed_without_content_length(ctx: &Ctx) {
    let want = stream_body(96).concat();
    let r = send(ctx.addr, &Request::get("/stream?chunks=96"));
    expect(&r, 200);
    assert_body(&r, &want);
    // To an HTTP/1.1 client the front end re-frames the close-delimited
    // backend response: chunked, or a Content-Length once it has it all.
    assert_ne!(r.framing, Framing::Close, "{r:?}");
}

fn multiple_set_cookie(ctx: &Ctx) {
    let r = send(ctx.addr, &Request::get("/cookies"));
    expect(&r, 200);
    assert_eq!(
        r.header_all("Set-Cookie"),
        ["a=1; Path=/", "b=2; HttpOnly", "c=3; Max-Age=60"],
        "{r:?}"
    );
    assert_body(&r, b"three cookies\n");
}

fn many_and_long_request_headers(ctx: &Ctx) {
    let mut req = Request::get("/inspect");
    for i in 0..45 {
        req = req.header(&format!("X-Many-{i:02}"), format!("value {i}"));
    }
    let long = noise(4500, 7)
        .iter()
        .map(|b| b'a' + b % 26)
        .collect::<Vec<u8>>();
    req = req.header("X-Long", &long);
    let r = send(ctx.addr, &req);
    expect(&r, 200);
    let h = scgi_headers(&r);
    for i in 0..45 {
        assert_eq!(
            scgi_one(&h, &format!("HTTP_X_MANY_{i:02}")),
            format!("value {i}")
        );
    }
    assert_eq!(scgi_one(&h, "HTTP_X_LONG").as_bytes(), long.as_slice());
}

fn duplicate_request_headers(ctx: &Ctx) {
    let req = |target: &str| {
        Request::get(target)
            .header("X-Dup", "one")
            .header("X-Dup", "two")
            .header("Cookie", "a=1")
            .header("Cookie", "b=2")
    };
    let r = send(ctx.addr, &req("/inspect"));
    expect(&r, 200);
    let h = scgi_headers(&r);
    let (dup, cookie): (&[&str], &[&str]) = match ctx.kind {
        // nginx before 1.23 forwards repeated client headers as repeated
        // SCGI names (SCGI.md).
        Kind::Nginx => (&["one", "two"], &["a=1", "b=2"]),
        // Apache joins them with ", " (Cookie too).
        Kind::Apache => (&["one, two"], &["a=1, b=2"]),
        // lighttpd joins with ", ", and Cookie with "; ".
        Kind::Lighttpd => (&["one, two"], &["a=1; b=2"]),
    };
    assert_eq!(scgi_values(&h, "HTTP_X_DUP"), dup, "{h:?}");
    assert_eq!(scgi_values(&h, "HTTP_COOKIE"), cookie, "{h:?}");

    // What the app sees through the header view: the first occurrence,
    // and all of them in wire order.
    let r = send(ctx.addr, &req("/headers?HTTP_X_DUP"));
    expect(&r, 200);
    let want = match ctx.kind {
        Kind::Nginx => "first=one\nall=one|two\n",
        Kind::Apache | Kind::Lighttpd => "first=one, two\nall=one, two\n",
    };
    assert_eq!(r.text(), want);
}

/// `X_Under` and `X-Under` both map to `HTTP_X_UNDER` (SCGI.md): nginx
/// and Apache drop the underscore one, lighttpd sends both.
fn underscore_and_dash_header(ctx: &Ctx) {
    let req = Request::get("/inspect")
        .header("X_Under", "underscore")
        .header("X-Under", "dash");
    let r = send(ctx.addr, &req);
    expect(&r, 200);
    let want: &[&str] = match ctx.kind {
        Kind::Nginx | Kind::Apache => &["dash"],
        Kind::Lighttpd => &["underscore", "dash"],
    };
    assert_eq!(scgi_values(&scgi_headers(&r), "HTTP_X_UNDER"), want);
}

fn chunked_request(ctx: &Ctx) {
    let body = noise(100 * 1024 + 17, 99);
    let r = send(
        ctx.addr,
        &Request::new("POST", "/echo")
            .header("Content-Type", "application/octet-stream")
            .chunked(body.clone(), 4000),
    );
    match ctx.kind {
        // Apache's mod_proxy_scgi cannot send a body of unknown length:
        // Apache answers 411 itself (after opening and closing a backend
        // connection without a byte).
        Kind::Apache => {
            assert_eq!(r.status, 411, "{r:?}");
            assert!(r.header("X-Backend").is_none(), "{r:?}");
        }
        // nginx and lighttpd de-chunk it and send a real CONTENT_LENGTH.
        Kind::Nginx | Kind::Lighttpd => {
            expect(&r, 200);
            assert_body(&r, &body);
            let r = send(
                ctx.addr,
                &Request::new("POST", "/inspect").chunked(*b"hello, chunked world", 7),
            );
            expect(&r, 200);
            let h = scgi_headers(&r);
            assert_eq!(scgi_one(&h, "CONTENT_LENGTH"), "20");
            assert_eq!(r.header("X-Body-Length"), Some("20"));
            // nginx also passes the client's Transfer-Encoding (to be
            // ignored); lighttpd does not.
            let te: &[&str] = if ctx.kind == Kind::Nginx {
                &["chunked"]
            } else {
                &[]
            };
            assert_eq!(scgi_values(&h, "HTTP_TRANSFER_ENCODING"), te);
        }
    }
}

fn http10_clients(ctx: &Ctx) {
    // No Host at all: legal in HTTP/1.0.
    let r = send(ctx.addr, &Request::get("/inspect?v=10").http10());
    expect(&r, 200);
    assert_ne!(
        r.framing,
        Framing::Chunked,
        "no chunked to a 1.0 client: {r:?}"
    );
    let h = scgi_headers(&r);
    assert_eq!(scgi_one(&h, "SERVER_PROTOCOL"), "HTTP/1.0");
    assert_eq!(scgi_one(&h, "QUERY_STRING"), "v=10");

    let body = noise(3000, 10);
    let r = send(
        ctx.addr,
        &Request::post("/echo", "application/octet-stream", body.clone())
            .http10()
            .header("Host", "localhost"),
    );
    expect(&r, 200);
    assert_body(&r, &body);

    // A response without Content-Length reaches a 1.0 client delimited by
    // the close (or with a length the front end computed).
    let r = send(ctx.addr, &Request::get("/stream?chunks=40").http10());
    expect(&r, 200);
    assert!(
        matches!(r.framing, Framing::Close | Framing::Length),
        "{r:?}"
    );
    assert_body(&r, &stream_body(40).concat());
}

fn concurrent_clients(ctx: &Ctx) {
    let addr = ctx.addr;
    thread::scope(|s| {
        let clients: Vec<_> = (0..12u64)
            .map(|client| {
                s.spawn(move || {
                    for round in 0..3u64 {
                        let len = usize::try_from((client * 7919 + round * 104_729) % 50_000)
                            .unwrap_or(0);
                        let body = noise(len, client * 100 + round);
                        let target = format!("/echo?client={client}&round={round}");
                        let r = send(
                            addr,
                            &Request::post(&target, "application/octet-stream", body.clone()),
                        );
                        expect(&r, 200);
                        assert_body(&r, &body);
                    }
                    let r = send(
                        addr,
                        &Request::get(&format!("/slow?ms=100&client={client}")),
                    );
                    expect(&r, 200);
                    assert_body(&r, b"slow 100\n");
                })
            })
            .collect();
        for client in clients {
            if let Err(payload) = client.join() {
                panic::resume_unwind(payload);
            }
        }
    });
}

fn slow_handler(ctx: &Ctx) {
    let addr = ctx.addr;
    thread::scope(|s| {
        let slow = s.spawn(move || send(addr, &Request::get("/slow?ms=1500")));
        // Other requests are served while the slow one waits.
        for i in 0..5 {
            let r = send(addr, &Request::get(&format!("/status/200?while-slow={i}")));
            expect(&r, 200);
        }
        let r = slow.join().unwrap_or_else(|p| panic::resume_unwind(p));
        expect(&r, 200);
        assert_body(&r, b"slow 1500\n");
    });
}

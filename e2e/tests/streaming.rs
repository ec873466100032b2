//! A streamed response's first piece reaches the HTTP client before its
//! last piece is written, behind each front end set up to pass it on
//! (issue 18 item 6), on every runtime; and, as controls, nginx's and
//! lighttpd's default configs hold it back.
//!
//! Deterministic, with no timing assertion: the app's `/hold` route writes
//! and flushes its first piece, then waits until this test (the backend
//! runs in this process) opens its gate, which the test does only once its
//! HTTP client has received the first piece; the last piece says whether
//! the gate was open before it was written. Behind a front end that holds
//! the first piece back until the response ends, the gate opens too late
//! and the last piece says `go-ahead: no` once the handler's bound has
//! passed: a failing assertion, not a hang.

use e2e::app::{App, FIRST_PIECE, Hold};
use e2e::client::{Connection, Request};
use e2e::{Backend, BackendAddr, Frontend, Kind, TempDir, Transport, frontend};
use e2e::{frontend::with_directive, runtime};

/// How long `/hold` waits for the go-ahead where the front end should pass
/// the first piece on: only a front end that holds it back makes the wait
/// run out (or a machine too loaded to move 12 bytes in this long).
const HOLD_MS: u64 = 20_000;

/// The control's wait: a buffering front end holds the first piece back
/// however long the handler waits, so a short wait shows it as well.
const CONTROL_HOLD_MS: u64 = 2_000;

/// What the client must see: the first piece, then whether the handler got
/// the go-ahead before it wrote the last.
fn expected(streamed: bool) -> String {
    let last = Hold::last_piece(streamed);
    format!("{FIRST_PIECE}{}", String::from_utf8_lossy(&last))
}

/// Runs `/hold` (with `X-Accel-Buffering: no` in its head if `accel_no`)
/// through `kind` with the site config `site` builds, on every runtime, and
/// checks whether the first piece reached the client before the last was
/// written (`streamed`).
fn check(
    kind: Kind,
    what: &str,
    site: impl Fn(&str, &BackendAddr) -> String,
    accel_no: bool,
    streamed: bool,
) {
    if !frontend::require(kind, what) {
        return;
    }
    let hold_ms = if streamed { HOLD_MS } else { CONTROL_HOLD_MS };
    let dir = TempDir::new("backend").expect("temp dir");
    for (id, (runtime, start)) in (1..).zip(runtime::ALL) {
        let app = App::new(runtime);
        let backend = Backend::start(start, Transport::Tcp, dir.path(), app.clone())
            .unwrap_or_else(|e| panic!("{what}: starting {runtime}: {e}"));
        let front = Frontend::start_with(kind, |listen| site(listen, backend.addr()))
            .unwrap_or_else(|e| panic!("{what}: starting {kind}: {e}"));
        let accel = if accel_no { "&accel=no" } else { "" };
        let target = format!("/hold?id={id}&ms={hold_ms}{accel}");
        let mut conn = Connection::open(front.addr()).expect("connect");
        conn.send(&Request::get(&target)).expect("send");
        // The go-ahead: the first piece is here. Behind a buffering front
        // end it comes with the last one, after the handler gave up.
        if conn.wait_for(FIRST_PIECE.as_bytes()).expect("reading") {
            app.open(id);
        }
        let r = conn.read_response(false).expect("the response");
        assert_eq!(
            r.status,
            200,
            "{what} -> {runtime}: {r:?}\n{}",
            front.logs()
        );
        // nginx keeps its X-Accel-* instructions to itself.
        assert_eq!(r.header("X-Accel-Buffering"), None, "{what}: {r:?}");
        assert_eq!(
            r.text(),
            expected(streamed),
            "{what} -> {runtime}: the first piece {} the client before the last was written\n{}",
            if streamed { "did not reach" } else { "reached" },
            front.logs()
        );
    }
}

fn nginx_site(listen: &str, backend: &BackendAddr) -> String {
    Kind::Nginx.site(listen, backend)
}

#[test]
fn nginx_default_holds_the_first_piece_back() {
    check(
        Kind::Nginx,
        "e2e streaming: nginx, default scgi_buffering on",
        nginx_site,
        false,
        false,
    );
}

#[test]
fn nginx_passes_it_on_with_x_accel_buffering_no() {
    check(
        Kind::Nginx,
        "e2e streaming: nginx, X-Accel-Buffering: no",
        nginx_site,
        true,
        true,
    );
}

#[test]
fn nginx_passes_it_on_with_scgi_buffering_off() {
    check(
        Kind::Nginx,
        "e2e streaming: nginx, scgi_buffering off",
        |listen, backend| {
            with_directive(
                &Kind::Nginx.site(listen, backend),
                "include scgi_params;",
                "\n        scgi_buffering off;",
            )
        },
        false,
        true,
    );
}

#[test]
fn apache_passes_it_on() {
    check(
        Kind::Apache,
        "e2e streaming: Apache",
        |_, backend| Kind::Apache.site("", backend),
        false,
        true,
    );
}

#[test]
fn lighttpd_default_holds_the_first_piece_back() {
    check(
        Kind::Lighttpd,
        "e2e streaming: lighttpd, default server.stream-response-body = 0",
        |_, backend| Kind::Lighttpd.site("", backend),
        false,
        false,
    );
}

fn lighttpd_streaming(mode: u8) {
    check(
        Kind::Lighttpd,
        &format!("e2e streaming: lighttpd, server.stream-response-body = {mode}"),
        |_, backend| {
            format!(
                "{}\nserver.stream-response-body = {mode}\n",
                Kind::Lighttpd.site("", backend)
            )
        },
        false,
        true,
    );
}

#[test]
fn lighttpd_passes_it_on_with_stream_response_body_1() {
    lighttpd_streaming(1);
}

#[test]
fn lighttpd_passes_it_on_with_stream_response_body_2() {
    lighttpd_streaming(2);
}

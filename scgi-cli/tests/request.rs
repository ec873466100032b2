//! `scgi request` against real backends: the e2e app on scgi-blocking (TCP
//! and Unix) and misbehaving raw servers.

mod common;

use common::{AppBackend, RawBackend, Transport, inspect_vars, noise, run, scgi, var};

#[test]
fn get_sends_what_nginx_sends() {
    let app = AppBackend::start(Transport::Tcp);
    let out = run(
        scgi().args(["request", &app.addr(), "/inspect?a=1&b=two%20words"]),
        b"",
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let vars = inspect_vars(&out.stdout);
    let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
    // nginx's order (scgi-proto/tests/data/corpus/nginx/get_query.txt),
    // SCGI right after CONTENT_LENGTH where the encoder puts it.
    assert_eq!(
        names,
        [
            "CONTENT_LENGTH",
            "SCGI",
            "REQUEST_METHOD",
            "REQUEST_URI",
            "QUERY_STRING",
            "CONTENT_TYPE",
            "DOCUMENT_URI",
            "DOCUMENT_ROOT",
            "SERVER_PROTOCOL",
            "REQUEST_SCHEME",
            "REMOTE_ADDR",
            "REMOTE_PORT",
            "SERVER_PORT",
            "SERVER_NAME",
            "HTTP_HOST",
            "HTTP_USER_AGENT",
            "HTTP_ACCEPT",
        ],
        "{vars:?}"
    );
    assert_eq!(var(&vars, "CONTENT_LENGTH"), Some("0"));
    assert_eq!(var(&vars, "REQUEST_METHOD"), Some("GET"));
    assert_eq!(
        var(&vars, "REQUEST_URI"),
        Some("/inspect?a=1&b=two%20words")
    );
    assert_eq!(var(&vars, "QUERY_STRING"), Some("a=1&b=two%20words"));
    assert_eq!(var(&vars, "DOCUMENT_URI"), Some("/inspect"));
    assert_eq!(var(&vars, "SERVER_PROTOCOL"), Some("HTTP/1.1"));
    assert_eq!(var(&vars, "HTTP_HOST"), Some("localhost"));
}

#[test]
fn headers_and_vars_override() {
    let app = AppBackend::start(Transport::Unix);
    let out = run(
        scgi().args([
            "request",
            &app.addr(),
            "/inspect",
            "-H",
            "Host: example.test:8080",
            "-H",
            "X-Dup: one",
            "-H",
            "X-Dup: two",
            "-H",
            "X_Under: dropped",
            "--var",
            "HTTPS=on",
            "--var",
            "REMOTE_ADDR=10.0.0.7",
            "--document-root",
            "/srv/www",
        ]),
        b"",
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let vars = inspect_vars(&out.stdout);
    assert_eq!(var(&vars, "HTTP_HOST"), Some("example.test:8080"));
    assert_eq!(var(&vars, "HTTP_X_DUP"), Some("one, two"));
    assert_eq!(var(&vars, "HTTP_X_UNDER"), None);
    assert!(out.stderr.contains("underscores_in_headers"), "{out:?}");
    assert_eq!(var(&vars, "HTTPS"), Some("on"));
    assert_eq!(var(&vars, "REMOTE_ADDR"), Some("10.0.0.7"));
    assert_eq!(var(&vars, "DOCUMENT_ROOT"), Some("/srv/www"));
}

#[test]
fn post_body_from_stdin() {
    for transport in [Transport::Tcp, Transport::Unix] {
        let app = AppBackend::start(transport);
        let body = noise(70_000, 1);
        let out = run(
            scgi().args([
                "request",
                &app.addr(),
                "/echo",
                "-d",
                "@-",
                "-H",
                "Content-Type: application/octet-stream",
            ]),
            &body,
        );
        assert_eq!(out.code(), Some(0), "{out:?}");
        assert!(out.stdout == body, "{} bytes back", out.stdout.len());

        let out = run(
            scgi().args(["request", &app.addr(), "/inspect", "-d", "@-"]),
            b"12345",
        );
        let vars = inspect_vars(&out.stdout);
        assert_eq!(var(&vars, "REQUEST_METHOD"), Some("POST"));
        assert_eq!(var(&vars, "CONTENT_LENGTH"), Some("5"));
        assert_eq!(var(&vars, "HTTP_CONTENT_LENGTH"), Some("5"));
    }
}

#[test]
fn post_large_body_from_file_streams_both_ways() {
    let app = AppBackend::start(Transport::Unix);
    let dir = common::TempDir::new("cli-file").expect("temp dir");
    let path = dir.path().join("body.bin");
    let body = noise(3 * 1024 * 1024 + 7, 2);
    std::fs::write(&path, &body).expect("write body");
    let data = format!("@{}", path.display());
    let out = run(
        scgi().args(["request", &app.addr(), "/echo", "-X", "PUT", "-d", &data]),
        b"",
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(out.stdout == body, "{} bytes back", out.stdout.len());
}

#[test]
fn include_prints_the_head() {
    let app = AppBackend::start(Transport::Tcp);
    let out = run(
        scgi().args(["request", "-i", &app.addr(), "/status/503"]),
        b"",
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let text = out.stdout_text();
    assert!(text.starts_with("Status: 503 "), "{text}");
    assert!(text.contains("\r\nRetry-After: 5\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nstatus 503\n"), "{text}");
}

#[test]
fn fail_exits_22_on_4xx_and_5xx() {
    let app = AppBackend::start(Transport::Tcp);
    for (path, code) in [
        ("/status/200", 0),
        ("/status/404", 22),
        ("/status/503", 22),
        ("/redirect/302", 0),
    ] {
        let out = run(scgi().args(["request", "--fail", &app.addr(), path]), b"");
        assert_eq!(out.code(), Some(code), "{path}: {out:?}");
        if code == 22 {
            assert!(out.stdout.is_empty(), "{out:?}");
            assert!(out.stderr.contains("the backend answered"), "{out:?}");
        }
    }
    // Without --fail, a 503 is a successful exchange.
    let out = run(scgi().args(["request", &app.addr(), "/status/503"]), b"");
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, b"status 503\n");
}

#[test]
fn timeout_against_a_backend_that_never_answers() {
    let backend = RawBackend::start(common::never_answer);
    let out = run(
        scgi().args(["request", "--fail", "--timeout", "300ms", &backend.addr()]),
        b"",
    );
    assert_eq!(out.code(), Some(28), "{out:?}");
    assert!(out.stderr.contains("timed out after 300 ms"), "{out:?}");
}

#[test]
fn bad_backends_get_clear_errors() {
    let cases: [(common::Behaviour, i32, &str); 4] = [
        (common::garbage, 8, "not a CGI response head"),
        (
            common::close_early,
            52,
            "closed the connection without answering",
        ),
        (common::half_head, 52, "in the middle of the response head"),
        (
            common::short_body,
            18,
            "the body ended after 5 of its 100 bytes",
        ),
    ];
    for (behave, code, message) in cases {
        let backend = RawBackend::start(behave);
        let out = run(scgi().args(["request", &backend.addr()]), b"");
        assert_eq!(out.code(), Some(code), "{message}: {out:?}");
        assert!(out.stderr.contains(message), "{out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
}

#[test]
fn connection_refused_and_bad_addresses() {
    let out = run(scgi().args(["request", &common::dead_addr()]), b"");
    assert_eq!(out.code(), Some(7), "{out:?}");
    assert!(out.stderr.contains("cannot connect"), "{out:?}");

    for bad in [
        "localhost",
        "http://127.0.0.1:4000",
        "unix:",
        "[::1:4000",
        "127.0.0.1:port",
    ] {
        let out = run(scgi().args(["request", bad]), b"");
        assert_eq!(out.code(), Some(2), "{bad}: {out:?}");
        assert!(
            out.stderr.contains("host:port, [v6]:port or unix:/path")
                || out.stderr.contains("unix:"),
            "{bad}: {out:?}"
        );
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
    let out = run(
        scgi().args(["request", "unix:/nonexistent/scgi-cli.sock"]),
        b"",
    );
    assert_eq!(out.code(), Some(7), "{out:?}");

    // A path that is not one, a header that is not one.
    let out = run(scgi().args(["request", "127.0.0.1:9", "no-slash"]), b"");
    assert_eq!(out.code(), Some(2), "{out:?}");
    let out = run(
        scgi().args(["request", "127.0.0.1:9", "-H", "no colon"]),
        b"",
    );
    assert_eq!(out.code(), Some(2), "{out:?}");
}

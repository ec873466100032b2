//! `scgi bench`: short bounded runs against the e2e app on scgi-blocking,
//! `--json` parsed and checked. No figure is asserted beyond "it ran and
//! counted right": benchmarks are not timed assertions.

mod common;

use common::{AppBackend, RawBackend, Transport, run, scgi};
use serde_json::Value;

fn json(out: &common::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout_text(), out.stderr))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

#[test]
fn counted_run_json() {
    let app = AppBackend::start(Transport::Tcp);
    let out = run(
        scgi().args([
            "bench",
            &app.addr(),
            "/status/200",
            "-n",
            "300",
            "-c",
            "4",
            "--json",
        ]),
        b"",
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["target"], app.addr());
    assert_eq!(num(&v, &["connections"]), 4.0);
    assert_eq!(num(&v, &["responses"]), 300.0, "{v}");
    assert_eq!(num(&v, &["ok"]), 300.0, "{v}");
    assert_eq!(num(&v, &["statuses", "200"]), 300.0, "{v}");
    for kind in [
        "connect",
        "io",
        "timeout",
        "closed",
        "malformed",
        "short_body",
    ] {
        assert_eq!(num(&v, &["errors", kind]), 0.0, "{kind}: {v}");
    }
    assert!(num(&v, &["requests_per_s"]) > 0.0, "{v}");
    assert!(num(&v, &["bytes_received"]) > 300.0 * 11.0, "{v}");
    let l = |p: &str| num(&v, &["latency_ms", p]);
    assert!(l("min") > 0.0, "{v}");
    assert!(
        l("min") <= l("p50") && l("p50") <= l("p90") && l("p90") <= l("p99"),
        "{v}"
    );
    assert!(l("p99") <= l("p99_9") && l("p99_9") <= l("max"), "{v}");
}

#[test]
fn timed_run_over_unix_with_a_body() {
    let app = AppBackend::start(Transport::Unix);
    let out = run(
        scgi().args([
            "bench",
            &app.addr(),
            "/echo",
            "-d",
            "0123456789",
            "--duration",
            "500ms",
            "-c",
            "2",
            "--json",
        ]),
        b"",
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let v = json(&out);
    let responses = num(&v, &["responses"]);
    assert!(responses > 0.0, "{v}");
    assert_eq!(num(&v, &["statuses", "200"]), responses, "{v}");
    let secs = num(&v, &["duration_s"]);
    assert!((0.5..5.0).contains(&secs), "{v}");
}

/// A body larger than the socket buffers to a backend that echoes as it
/// reads: sent while the answer is read, so neither side waits for the
/// other.
#[test]
fn large_body_to_a_streaming_echo() {
    let echo = common::StreamingEcho::start();
    let dir = common::TempDir::new("cli-bench").expect("temp dir");
    let path = dir.path().join("body.bin");
    std::fs::write(&path, common::noise(2 * 1024 * 1024, 6)).expect("write");
    let data = format!("@{}", path.display());
    let out = run(
        scgi().args([
            "bench",
            &echo.addr,
            "-d",
            &data,
            "-n",
            "6",
            "-c",
            "2",
            "--timeout",
            "20s",
            "--json",
        ]),
        b"",
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(num(&v, &["statuses", "200"]), 6.0, "{v}");
    assert!(
        num(&v, &["bytes_received"]) > 6.0 * 2.0 * 1024.0 * 1024.0,
        "{v}"
    );
}

#[test]
fn text_report() {
    let app = AppBackend::start(Transport::Tcp);
    let out = run(
        scgi().args(["bench", &app.addr(), "/status/404", "-n", "20", "-c", "2"]),
        b"",
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let text = out.stdout_text();
    assert!(text.contains("requests   20 ("), "{text}");
    assert!(text.contains("0 with 2xx/3xx"), "{text}");
    assert!(text.contains("statuses   404: 20"), "{text}");
    assert!(text.contains("p99"), "{text}");
    // Not a terminal: no progress line.
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

/// A request captured from nginx (scgi-proto's corpus), sent as it is.
#[test]
fn captured_request_file() {
    let app = AppBackend::start(Transport::Tcp);
    let capture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scgi-proto/tests/data/corpus/nginx/post_form.scgi"
    );
    let out = run(
        scgi().args([
            "bench",
            &app.addr(),
            "--request-file",
            capture,
            "-n",
            "10",
            "-c",
            "2",
            "--json",
        ]),
        b"",
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let v = json(&out);
    // The capture is a POST to /submit, which the e2e app does not route.
    assert_eq!(num(&v, &["statuses", "404"]), 10.0, "{v}");

    let dir = common::TempDir::new("cli-bench").expect("temp dir");
    let bad = dir.path().join("bad.scgi");
    std::fs::write(&bad, b"GET / HTTP/1.1\r\n\r\n").expect("write");
    let out = run(
        scgi().args([
            "bench",
            &app.addr(),
            "--request-file",
            bad.to_str().expect("utf-8"),
            "-n",
            "1",
        ]),
        b"",
    );
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("is not an SCGI request"), "{out:?}");
}

#[test]
fn errors_are_counted() {
    let out = run(
        scgi().args([
            "bench",
            &common::dead_addr(),
            "-n",
            "5",
            "-c",
            "1",
            "--json",
        ]),
        b"",
    );
    // Nothing measured: a failure, with the report still printed.
    assert_eq!(out.code(), Some(1), "{out:?}");
    let v = json(&out);
    assert_eq!(num(&v, &["errors", "connect"]), 5.0, "{v}");
    assert_eq!(num(&v, &["responses"]), 0.0, "{v}");

    let garbage = RawBackend::start(common::garbage);
    let out = run(
        scgi().args(["bench", &garbage.addr(), "-n", "4", "-c", "2", "--json"]),
        b"",
    );
    let v = json(&out);
    assert_eq!(num(&v, &["errors", "malformed"]), 4.0, "{v}");

    let silent = RawBackend::start(common::never_answer);
    let out = run(
        scgi().args([
            "bench",
            &silent.addr(),
            "-n",
            "2",
            "-c",
            "2",
            "--timeout",
            "200ms",
            "--json",
        ]),
        b"",
    );
    let v = json(&out);
    assert_eq!(num(&v, &["errors", "timeout"]), 2.0, "{v}");
}

/// A Unix socket file nobody listens on refuses at once: the run still
/// ends on time.
#[test]
fn refused_at_once_still_ends() {
    let dir = common::TempDir::new("cli-bench").expect("temp dir");
    let path = dir.path().join("stale.sock");
    // std leaves the socket file behind when the listener is dropped.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    let addr = format!("unix:{}", path.display());
    let out = run(
        scgi().args(["bench", &addr, "-z", "300ms", "-c", "4", "--json"]),
        b"",
    );
    assert_eq!(out.code(), Some(1), "{out:?}");
    let v = json(&out);
    assert!(num(&v, &["errors", "connect"]) > 0.0, "{v}");
    assert_eq!(num(&v, &["responses"]), 0.0, "{v}");
}

#[test]
fn bad_command_lines() {
    for args in [
        &["bench", "nowhere"][..],
        &["bench", "127.0.0.1:4000", "-c", "0"],
        &["bench", "127.0.0.1:4000", "--duration", "soon"],
        &[
            "bench",
            "127.0.0.1:4000",
            "--request-file",
            "x.scgi",
            "-d",
            "body",
        ],
    ] {
        let out = run(scgi().args(args), b"");
        assert_eq!(out.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
}

//! scgi-tokio's axum example (`scgi-tokio/examples/axum`), its router
//! compiled in as is, served with `Server::serve` behind a real nginx: the
//! JSON round trip and the streamed body as an HTTP client sees them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e::client::Request;
use e2e::{Backend, BackendAddr, Frontend, Kind, frontend};
use scgi_tokio::{Addr, Config, Server};

#[allow(dead_code, unreachable_pub)]
#[path = "../../scgi-tokio/examples/axum/app.rs"]
mod app;

/// The example's router on a runtime of its own, as a harness backend.
fn start_backend() -> Backend {
    let server = Server::bind_tcp("127.0.0.1:0")
        .expect("bind")
        .with_config(Config::default().with_shutdown_timeout(Duration::from_secs(5)));
    let Addr::Tcp(addr) = *server.local_addr() else {
        unreachable!()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let handle = server.shutdown_handle();
    let serving = runtime.spawn(server.serve(app::router()));
    Backend::new(BackendAddr::Tcp(addr), move || {
        if runtime.block_on(handle.close()) {
            let _ = runtime.block_on(serving);
        }
        runtime.shutdown_timeout(Duration::from_secs(5));
    })
}

#[test]
fn axum_example_behind_nginx() {
    if !frontend::require(Kind::Nginx, "e2e nginx -> axum example") {
        return;
    }
    let backend = start_backend();
    let nginx = Frontend::start(Kind::Nginx, backend.addr()).expect("starting nginx");
    let addr = nginx.addr();
    let logs = || nginx.logs();

    let r = Request::get("/").send(addr).expect("GET /");
    assert_eq!(r.status, 200, "{r:?}\n{}", logs());
    assert_eq!(r.text(), "Hello from axum over SCGI\n");

    let r = Request::get("/hello/caf%C3%A9")
        .send(addr)
        .expect("GET /hello");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "Hello, caf\u{e9}!\n");

    // JSON in, JSON out.
    let r = Request::post(
        "/items",
        "application/json",
        r#"{"name":"widget","quantity":3}"#,
    )
    .send(addr)
    .expect("POST /items");
    assert_eq!(r.status, 201, "{r:?}\n{}", logs());
    assert_eq!(r.header("Content-Type"), Some("application/json"), "{r:?}");
    let json: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON body");
    assert_eq!(
        json,
        serde_json::json!({"id": 42, "name": "widget", "quantity": 3, "label": "WIDGET"})
    );
    // axum's own rejection of a body that is not the JSON it wants.
    let r = Request::post("/items", "application/json", r#"{"name":1}"#)
        .send(addr)
        .expect("POST /items, bad");
    assert_eq!(r.status, 422, "{r:?}");
    let r = Request::get("/nowhere").send(addr).expect("GET /nowhere");
    assert_eq!(r.status, 404, "{r:?}");

    // The request extensions: the HTTP client is this test, on loopback.
    let r = Request::get("/whoami").send(addr).expect("GET /whoami");
    assert!(
        r.text().starts_with("client 127.0.0.1:") && r.text().ends_with(", server localhost\n"),
        "{r:?}"
    );

    // The stream, whole and in order.
    let r = Request::get("/stream").send(addr).expect("GET /stream");
    assert_eq!(r.status, 200, "{r:?}");
    let want: String = (1..=app::STREAM_PIECES)
        .map(|i| format!("piece {i} of {}\n", app::STREAM_PIECES))
        .collect();
    assert_eq!(r.text(), want);

    // And piece by piece: the first reaches the client well before the
    // last is produced.
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /stream HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 1024];
    loop {
        let n = c.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if first.is_none() && String::from_utf8_lossy(&seen).contains("piece 1 of") {
            first = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    let first = first.expect("piece 1 arrived");
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains(&format!("piece {0} of {0}", app::STREAM_PIECES)),
        "{text}"
    );
    // Four more pauses follow the first piece.
    assert!(
        total - first >= app::STREAM_PAUSE * 3,
        "not streamed: first piece after {first:?}, all after {total:?}"
    );

    drop(nginx);
    drop(backend);
}

//! scgi-async-std's axum example on smol (`scgi-async-std/examples/axum`),
//! its router compiled in as is, served with `Server::serve` behind a real
//! nginx: the same `tower` layer as scgi-tokio's, on another runtime.

use std::thread;
use std::time::Duration;

use e2e::client::Request;
use e2e::{Backend, BackendAddr, Frontend, Kind, frontend};
use scgi_async_std::{Addr, Config, Server, Smol};

#[allow(dead_code, unreachable_pub)]
#[path = "../../scgi-async-std/examples/axum/app.rs"]
mod app;

/// The example's router on smol, as a harness backend.
fn start_backend() -> Backend {
    let server = Server::bind("127.0.0.1:0")
        .expect("bind")
        .with_config(Config::default().with_shutdown_timeout(Duration::from_secs(5)))
        .with_spawner(Smol);
    let Addr::Tcp(addr) = *server.local_addr() else {
        unreachable!()
    };
    let handle = server.shutdown_handle();
    let serving = thread::spawn(move || smol::block_on(server.serve(app::router())));
    Backend::new(BackendAddr::Tcp(addr), move || {
        if smol::block_on(handle.close()) {
            let _ = serving.join();
        }
    })
}

#[test]
fn axum_on_smol_behind_nginx() {
    if !frontend::require(Kind::Nginx, "e2e nginx -> axum on smol") {
        return;
    }
    let backend = start_backend();
    let nginx = Frontend::start(Kind::Nginx, backend.addr()).expect("starting nginx");
    let addr = nginx.addr();
    let logs = || nginx.logs();

    let r = Request::get("/").send(addr).expect("GET /");
    assert_eq!(r.status, 200, "{r:?}\n{}", logs());
    assert_eq!(r.text(), "Hello from axum on smol over SCGI\n");

    // JSON in, JSON out.
    let r = Request::post("/shout", "application/json", r#"{"word":"smol"}"#)
        .send(addr)
        .expect("POST /shout");
    assert_eq!(r.status, 200, "{r:?}\n{}", logs());
    assert_eq!(r.header("Content-Type"), Some("application/json"), "{r:?}");
    let json: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON body");
    assert_eq!(json, serde_json::json!({"shout": "SMOL"}));

    // A body streamed through and counted.
    let big = "x".repeat(300_000);
    let r = Request::post("/count", "application/octet-stream", big)
        .send(addr)
        .expect("POST /count");
    assert_eq!(r.status, 200, "{r:?}\n{}", logs());
    assert_eq!(r.text(), "300000 bytes\n");

    let r = Request::get("/nowhere").send(addr).expect("GET /nowhere");
    assert_eq!(r.status, 404, "{r:?}");

    drop(nginx);
    drop(backend);
}

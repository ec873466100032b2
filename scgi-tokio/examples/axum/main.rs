//! An axum `Router`, unchanged, served over SCGI (feature `tower`).
//!
//! ```text
//! cargo run -p scgi-tokio --features axum --example axum [HOST:PORT | unix:PATH]
//! ```
//!
//! Listens on `127.0.0.1:4000` unless an address is given as the argument
//! or in `SCGI_ADDR`; SIGTERM or Ctrl-C stops it gracefully (requests in flight
//! finish). Put nginx in front of it:
//!
//! ```nginx
//! location / { include scgi_params; scgi_pass 127.0.0.1:4000; }
//! ```
//!
//! Then, through nginx:
//!
//! ```text
//! curl http://localhost/
//! curl -d '{"name":"widget","quantity":3}' -H 'Content-Type: application/json' http://localhost/items
//! curl -N http://localhost/stream
//! curl http://localhost/whoami
//! ```
//!
//! The routes are in `app.rs` (the e2e tests serve the same router behind
//! real nginx).

#[path = "../common/mod.rs"]
mod common;

mod app;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Before binding: a SIGTERM from then on stops the server gracefully.
    let stop = scgi_tokio::shutdown_signal()?;
    let server = common::bind_from_args()?;
    server.serve_until(app::router(), stop).await
}

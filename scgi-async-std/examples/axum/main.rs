//! An axum `Router`, unchanged, served over SCGI on smol (features `smol`
//! and `tower`): the same `tower` layer as scgi-tokio's, on another
//! runtime.
//!
//! ```text
//! cargo run -p scgi-async-std --no-default-features --features smol,tower --example axum [HOST:PORT | unix:PATH]
//! ```
//!
//! Listens on `127.0.0.1:4000` unless an address is given as the argument
//! or in `SCGI_ADDR`. Put nginx in front of it:
//!
//! ```nginx
//! location / { include scgi_params; scgi_pass 127.0.0.1:4000; }
//! ```
//!
//! Then, through nginx:
//!
//! ```text
//! curl http://localhost/
//! curl -d '{"word":"smol"}' -H 'Content-Type: application/json' http://localhost/shout
//! curl --data-binary @some-file http://localhost/count
//! ```
//!
//! The routes are in `app.rs` (the e2e tests serve the same router behind
//! real nginx).

#[path = "../common/mod.rs"]
mod common;

mod app;

fn main() -> std::io::Result<()> {
    // Before binding: a SIGTERM from then on stops the server gracefully.
    let stop = scgi_async_std::shutdown_signal()?;
    let server = common::bind_from_args()?.with_spawner(scgi_async_std::Smol);
    smol::block_on(server.serve_until(app::router(), stop))
}

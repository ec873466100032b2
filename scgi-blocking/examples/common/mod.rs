//! What the examples share: where to listen, and a logger (`env_logger`)
//! so that the server's `log` lines show on stderr, at `info` unless
//! `RUST_LOG` says otherwise (`RUST_LOG=debug` shows every connection).

use scgi_blocking::Server;

/// Binds the address given as the first argument or in `SCGI_ADDR`
/// (`HOST:PORT`, or `unix:PATH`), else `127.0.0.1:4000`.
pub(crate) fn bind_from_args() -> std::io::Result<Server> {
    // A second call (an example that sets up its own logger) is harmless.
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("SCGI_ADDR").ok())
        .unwrap_or_else(|| Server::DEFAULT_ADDR.to_owned());
    Server::bind(&addr)
}

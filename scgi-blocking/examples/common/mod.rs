//! What the examples share: where to listen, and a minimal logger so that
//! the server's `log` lines show on stderr (a real program would use
//! `env_logger`, `syslog` or `tracing-log`).

use scgi_blocking::Server;

/// Binds the address given as the first argument or in `SCGI_ADDR`
/// (`HOST:PORT`, or `unix:PATH`), else `127.0.0.1:4000`.
pub(crate) fn bind_from_args() -> std::io::Result<Server> {
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("SCGI_ADDR").ok())
        .unwrap_or_else(|| Server::DEFAULT_ADDR.to_owned());
    Server::bind(&addr)
}

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "[{}] {}", record.level(), record.args());
    }

    fn flush(&self) {}
}

//! One [`StartBackend`](crate::StartBackend) function per runtime crate.
//!
//! To add a runtime: a module here with a `start` function that binds as
//! the [`BackendSpec`](crate::BackendSpec) says (its `config`, and for TCP
//! its `tcp_listener`) and serves [`App::respond`](crate::app::App::respond)
//! (read the whole body unless `reads_body` says not, call it, sleep for
//! `delay`, write the head, write and flush each body chunk, then wait out
//! a `hold` and write and flush its last piece), then a line in the
//! `matrix!` of `tests/e2e.rs`.

pub mod async_std;
pub mod blocking;
pub mod tokio;

/// Every runtime, by name: for tests that run a few requests on each
/// rather than the whole matrix.
pub const ALL: [(&str, crate::StartBackend); 4] = [
    ("blocking", blocking::start),
    ("tokio", tokio::start),
    ("async_std", async_std::start),
    ("smol", async_std::start_smol),
];

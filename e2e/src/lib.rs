//! End-to-end tests: the SCGI runtime crates behind real web servers.
//!
//! Each test starts its own front end (nginx, Apache httpd with
//! `mod_proxy_scgi`, or lighttpd with `mod_scgi`) from a config rendered
//! into a temp directory, on a free loopback port, in front of a backend
//! built with one runtime crate and serving the [e2e app](app), over TCP or
//! a Unix socket. An HTTP/1.x [client] then runs the [cases] against it and
//! checks what an HTTP client receives. Nothing is started system-wide:
//! the front end is a foreground process in its own process group, stopped
//! (`SIGTERM`, then `SIGKILL`) when its [`Frontend`] is dropped.
//!
//! # Plugging in a runtime
//!
//! A runtime is one function of type [`StartBackend`]: bind where the
//! [`BackendSpec`] says (TCP on `127.0.0.1`, or a Unix socket path with the
//! given mode), serve [`App::respond`](app::App::respond) on every
//! request, and return a [`Backend`] that stops the server when dropped.
//! [`runtime::blocking`] is the model (about 50 lines); `tests/e2e.rs`
//! lists the runtimes in its `matrix!`.
//!
//! # Missing servers
//!
//! A front end whose binary is missing is skipped with a loud `SKIPPED`
//! line on stderr, unless `CI=true`, where it is a failure.
//! `.ci/install-webservers.sh` installs all three from Debian's packages.

/// DEPLOYING.md's Rust examples, compiled as doctests.
#[doc = include_str!("../../DEPLOYING.md")]
#[cfg(doctest)]
pub struct DeployingDoctests;

/// The workspace README's Rust examples, compiled and run as doctests
/// (here, in an unpublished crate, so no published package names a file
/// outside itself).
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod app;
pub mod backend;
pub mod cases;
pub mod client;
pub mod frontend;
pub mod runtime;
mod tmp;

pub use backend::{Backend, BackendAddr, BackendSpec, StartBackend, Transport};
pub use frontend::{Frontend, Kind};
pub use tmp::TempDir;

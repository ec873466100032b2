//! The counter from Nim's `scgi` docs: answers "Hello for the Nth time".
//!
//! ```text
//! cargo run -p scgi-blocking --example hello [HOST:PORT | unix:PATH]
//! ```
//!
//! Listens on `127.0.0.1:4000` unless an address is given as the argument
//! or in `SCGI_ADDR`; SIGTERM or Ctrl-C stops it gracefully. Put nginx in front of it:
//!
//! ```nginx
//! location / { include scgi_params; scgi_pass 127.0.0.1:4000; }
//! ```

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

fn main() -> std::io::Result<()> {
    // Before binding: a SIGTERM from then on stops the server gracefully.
    let stop = scgi_blocking::shutdown_signal()?;
    let server = common::bind_from_args()?;
    let counter = AtomicU64::new(0);
    server.run_until(
        move |req| {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            // `respond` sends the head with its `Content-Length` and the
            // body in one write.
            let text = format!("Hello for the {n}th time");
            req.respond(200, [("Content-Type", "text/plain")], text)
        },
        stop,
    )
}

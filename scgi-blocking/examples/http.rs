//! Handlers over the `http` crate's types on std threads (feature `http`):
//! a page, a JSON-ish echo of the request's head, and a streamed body.
//!
//! ```sh
//! cargo run -p scgi-blocking --features http --example http [ADDR]
//! ```
//!
//! `ADDR` defaults to `127.0.0.1:4000`; `unix:/path` listens on a Unix
//! socket. Put nginx in front (`scgi_pass 127.0.0.1:4000;`). SIGTERM or
//! Ctrl-C stops it gracefully.

use std::io::Read;

use scgi_blocking::{ResponseBody, Server};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| Server::DEFAULT_ADDR.to_owned());
    let stop = scgi_blocking::shutdown_signal()?;
    Server::bind(&addr)?.serve_http_until(
        |req| {
            let response = match req.uri().path() {
                "/" => http::Response::new(ResponseBody::from("hello from std threads\n")),
                "/echo" => {
                    let (parts, mut body) = req.into_parts();
                    let mut bytes = Vec::new();
                    body.read_to_end(&mut bytes)?;
                    let head = format!("{} {}\n", parts.method, parts.uri);
                    let mut out = head.into_bytes();
                    out.extend_from_slice(&bytes);
                    http::Response::new(out.into())
                }
                "/stream" => {
                    http::Response::new(ResponseBody::reader(std::io::repeat(b'x').take(1 << 20)))
                }
                _ => http::Response::builder()
                    .status(404)
                    .body("not found\n".into())?,
            };
            Ok(response)
        },
        stop,
    )
}

//! A form handler with the request API every runtime shares: the query
//! decoded, the body read with a limit (`413` from the server beyond it),
//! the form decoded, and the whole answer in one `respond` (with
//! `Content-Length`, and without the body for `HEAD`).
//!
//! ```text
//! cargo run -p scgi-tokio --example greet [HOST:PORT | unix:PATH]
//! curl 'http://localhost/?name=Ada' --data 'lang=en&colour=blue'   # through nginx
//! ```
//!
//! Listens on `127.0.0.1:4000` unless an address is given as the argument
//! or in `SCGI_ADDR`; SIGTERM or Ctrl-C stops it gracefully.

mod common;

use scgi_tokio::{Config, Request};

/// The most a handler buffers of a body.
const FORM_LIMIT: u64 = 64 * 1024;

async fn greet(mut req: Request) -> std::io::Result<()> {
    // The headers borrow the request, which writing borrows mutably: copy
    // what the answer needs before the first write.
    let name = req
        .headers()
        .query_param("name")
        .unwrap_or(std::borrow::Cow::Borrowed("stranger"))
        .into_owned();
    // Not `Vec::with_capacity(req.content_length())`: the peer picks that
    // number. A body over the limit is answered 413 by the server.
    let body = req.read_body(FORM_LIMIT).await?;
    let mut text = format!("Hello, {name}!\n");
    for (field, value) in scgi_tokio::form_pairs(&body) {
        text.push_str(&format!("{field} = {value}\n"));
    }
    req.respond(200, [("Content-Type", "text/plain; charset=utf-8")], text)
        .await
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Before binding: a SIGTERM from then on stops the server gracefully.
    let stop = scgi_tokio::shutdown_signal()?;
    common::bind_from_args()?
        // No body over 1 MiB reaches a handler: the decoder answers 413.
        .with_config(Config::DEFAULT.with_max_body(Some(1 << 20)))
        .run_until(greet, stop)
        .await
}

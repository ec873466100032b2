//! A sans-IO implementation of SCGI, the protocol web servers (nginx
//! `scgi_pass`, Apache `mod_proxy_scgi`, lighttpd `mod_scgi`) use to hand
//! requests to a backend.
//!
//! This crate is the protocol and nothing else: it reads and writes byte
//! slices, never a socket or a clock. It is `#![no_std]` and allocation-free
//! at its core, so it runs in any runtime (the `scgi-blocking`,
//! `scgi-tokio` and `scgi-async-std` crates bind it to theirs).
//!
//! - [`Decoder`]: the server side. Validates a request's header netstring
//!   and streams its body, borrowing from the caller's buffer.
//! - [`HeadWriter`], [`ResponseHead`], [`status_ok_text_content`]: write the
//!   `Status:` CGI response head that all three web servers accept;
//!   [`encode_error_response`] writes a whole plain-text error answer.
//! - [`encode_request`]: the client side, for proxies, tests and fuzzing.
//! - [`ResponseParser`]: reads a backend's response head (client side).
//! - [`server`]: the server side of a connection as a state machine (every
//!   decision about how a request lives and dies: deadlines, error answers,
//!   `204` for a handler that wrote nothing, reset, drain), which the
//!   runtime crates drive.
//!
//! # The decoder's contract
//!
//! The caller owns a buffer of bytes received and not yet consumed. It
//! passes that buffer, from its front, to [`Decoder::decode`], which returns
//! one [`Step`] and holds no borrow:
//!
//! - [`Step::Partial`]: nothing is consumed. Read more, append it, and call
//!   again with the whole buffer (the decoder remembers how far it got).
//! - [`Step::Head`]: the header netstring is complete and valid: it is
//!   `buf[..head.wire_len()]`. [`Head::headers`] views it in the same buffer.
//!   Drop those bytes when done with the view.
//! - [`Step::Body`]`(n)`: `buf[..n]` is body. Use it and drop it.
//! - [`Step::End`]: the request is complete (`CONTENT_LENGTH` body bytes
//!   seen). Nothing is consumed: any bytes left, or sent later, follow the
//!   request and are the caller's (a `101` tunnel, nginx's surplus after a
//!   short `CONTENT_LENGTH`). The decoder neither reads nor rejects them.
//! - `Err(e)`: the request is malformed; answer with
//!   [`e.status_hint()`](Error::status_hint). Every later call returns `e`.
//!
//! When the peer closes its side, call [`Decoder::finish`]: before any byte
//! it says [`Closed::Idle`] (normal and quiet), after a whole request
//! [`Closed::Complete`], otherwise an `Incomplete*` error.
//!
//! The head must sit contiguously in the buffer (so views are zero-copy): at
//! most [`Limits::max_head`] plus the prefix (at most 21 bytes) and comma. A
//! claim over the limit fails as soon as the length prefix passes it.
//!
//! # The driving loop
//!
//! 1. Read from the connection, appending to `buf`.
//! 2. Call `decoder.decode(&buf)`.
//! 3. On `Partial`, go to 1 (on end of input, call `finish`).
//! 4. On `Head(head)`, use `head.headers(&buf)`, then drop
//!    `head.wire_len()` bytes and go to 2.
//! 5. On `Body(n)`, use `buf[..n]`, drop `n` bytes and go to 2 (or to 1 if
//!    `buf` is empty).
//! 6. On `End`, answer the request; `buf` holds whatever followed it.
//!
//! Because [`Step`] borrows nothing, this loop compiles on stable Rust (a
//! decoder returning borrowed events from inside a read loop does not:
//! rust-lang/rust#51132).
//!
//! ```
//! use scgi_proto::{Decoder, Step};
//! # #[cfg(feature = "std")]
//! use std::io::Read;
//!
//! # #[cfg(not(feature = "std"))] fn main() {}
//! # #[cfg(feature = "std")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The worked example from the SCGI spec, arriving in 7-byte reads.
//! let wire = b"70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00\
//!              REQUEST_URI\x00/deepthought\x00,What is the answer to life?";
//! let mut conn = std::io::Cursor::new(&wire[..]);
//!
//! let mut decoder = Decoder::new();
//! let mut buf = Vec::new();
//! let mut body = Vec::new();
//! let mut chunk = [0u8; 7];
//! loop {
//!     match decoder.decode(&buf)? {
//!         Step::Partial { .. } => {
//!             let n = conn.read(&mut chunk)?;
//!             if n == 0 {
//!                 decoder.finish()?; // an error unless the request was complete
//!                 break;
//!             }
//!             buf.extend_from_slice(&chunk[..n]);
//!         }
//!         Step::Head(head) => {
//!             let headers = head.headers(&buf);
//!             assert_eq!(headers.method(), Some("POST"));
//!             assert_eq!(headers.get("REQUEST_URI"), Some(&b"/deepthought"[..]));
//!             assert_eq!(headers.content_length(), 27);
//!             buf.drain(..head.wire_len());
//!         }
//!         Step::Body(n) => {
//!             body.extend_from_slice(&buf[..n]);
//!             buf.drain(..n);
//!         }
//!         Step::End => break,
//!     }
//! }
//! assert_eq!(body, b"What is the answer to life?");
//!
//! let mut response = Vec::new();
//! scgi_proto::write_status_ok_text_content(&mut response, "text/plain")?;
//! response.extend_from_slice(b"42");
//! assert_eq!(response, b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n42");
//! # Ok(())
//! # }
//! ```
//!
//! # Limits and policies
//!
//! Runtime settings in [`Config`], never Cargo features.
//!
//! | setting | default | also offered |
//! | --- | --- | --- |
//! | [`Limits::max_head`] | 64 KiB | any |
//! | [`Limits::max_headers`] | 1 024 | any |
//! | [`Limits::max_body`] | none (the body is streamed, never buffered) | any |
//! | [`Policy::content_length`] | must be first | anywhere |
//! | [`Policy::scgi`] | `SCGI=1` required | optional |
//! | [`Policy::duplicates`] | kept, first wins | kept, last wins; rejected |
//!
//! The netstring length is always strict: ASCII digits, no leading zero,
//! never above `max_head`. A second `CONTENT_LENGTH` is always refused.
//!
//! # Errors and status hints
//!
//! | [`Error`] | [`status_hint`](Error::status_hint) |
//! | --- | --- |
//! | malformed netstring, headers, `CONTENT_LENGTH` or `SCGI`; end of input mid-request | 400 Bad Request |
//! | [`Error::BodyTooLarge`] | 413 Content Too Large |
//! | [`Error::HeadTooLarge`], [`Error::TooManyHeaders`] | 431 Request Header Fields Too Large |
//!
//! # Cost
//!
//! Decoding never allocates and never copies header bytes. A complete
//! header block is validated 64 bytes at a time on bit masks (where the
//! NULs are, which end a name, where names start), with no per-header step:
//! only names of exactly 4 or 14 bytes are compared with `SCGI` and
//! `CONTENT_LENGTH`. The NUL masks come from SSE2 on x86_64 (through the
//! `safe_arch` crate, so this crate has no `unsafe` code) and from
//! word-at-a-time integer arithmetic elsewhere; a long NUL-free stretch is
//! skipped with `memchr`. A block with a fault, or decoded under
//! [`ContentLengthPosition::Anywhere`] or [`Duplicates::Reject`], is
//! checked header by header, which names the first fault in wire order.
//! `BENCHMARKS.md` in the repository compares this with the other SCGI
//! parsers on crates.io.
//!
//! # Features
//!
//! Features only add API; they never change behaviour.
//!
//! | feature | default | adds |
//! | --- | --- | --- |
//! | `std` | yes | [`ResponseHead::write_to`], [`write_status_ok_text_content`], [`write_response_head`] (one `write_all` into any `io::Write`); implies `alloc` |
//! | `alloc` | via `std` | [`ResponseHead::to_vec`], [`append_head`], [`encode_request_to_vec`], [`error_response`] |
//! | `form` | no | `Headers::query_pairs`, `Headers::query_param`, `form_pairs`: query strings and form bodies percent-decoded (the `form_urlencoded` crate); implies `alloc` |
//! | `http` | no | the `http` module: an `http::Request` head from the SCGI headers, an `http::Response` head as a `Status:` head; implies `alloc` |
//! | `log` | no | `server::HeadEnd::log`: the log line of a connection that ended before its head, through the `log` facade |
//!
//! Without features the crate needs neither `std` nor an allocator. The
//! error types implement `core::error::Error` (which `std` re-exports as
//! `std::error::Error`) in every configuration, `no_std` included; the `std`
//! feature adds `From<EncodeError> for std::io::Error`.
#![no_std]
// docs.rs (`--cfg docsrs`, nightly) labels each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod client;
mod decoder;
mod error;
#[cfg(feature = "form")]
mod form;
mod headers;
#[cfg(feature = "http")]
pub mod http;
mod request;
mod response;
pub mod server;
mod status;

pub use client::{
    ParsedResponse, Response, ResponseError, ResponseHeaders, ResponseParser, ResponseStep,
};
pub use decoder::{
    Closed, Config, ContentLengthPosition, Decoder, Duplicates, Head, Limits, Policy, ScgiHeader,
    Step,
};
pub use error::{EncodeError, Error};
#[cfg(feature = "form")]
pub use form::form_pairs;
/// The `form_urlencoded` crate (feature `form`), whose [`Parse`](form_urlencoded::Parse)
/// iterators [`Headers::query_pairs`] and [`form_pairs`] return, and whose
/// `Serializer` builds query strings.
#[cfg(feature = "form")]
pub use form_urlencoded;
pub use headers::{GetAll, Header, Headers, Iter};
#[cfg(feature = "alloc")]
pub use request::encode_request_to_vec;
pub use request::{encode_request, encoded_request_len};
#[cfg(feature = "alloc")]
pub use response::append_head;
#[cfg(feature = "alloc")]
pub use response::error_response;
pub use response::{
    Framing, HeadWriter, NO_CONTENT, ResponseHead, encode_error_response, is_bodiless,
    status_ok_text_content,
};
#[cfg(feature = "std")]
pub use response::{write_response_head, write_status_ok_text_content};
pub use status::reason_phrase;

/// The crate README's example, compiled and run as a doctest. (The
/// workspace README's are e2e's: a path outside this crate would break its
/// doctests once packaged.)
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

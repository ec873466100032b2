//! A small load generator: plays nginx against a server and reports
//! requests per second. Loopback only; bounded by its arguments.
//!
//! ```text
//! cargo run --release -p scgi-blocking --example hello &
//! cargo run --release -p scgi-blocking --example load -- 127.0.0.1:4000 8 20000
//! ```
//!
//! Arguments: address, client threads, requests per thread.
#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:4000".into());
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let each: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    // A typical nginx GET: about 20 CGI variables.
    let wire = scgi_blocking::scgi_proto::encode_request_to_vec(
        &[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/hello?name=world"),
            ("QUERY_STRING", "name=world"),
            ("CONTENT_TYPE", ""),
            ("DOCUMENT_URI", "/hello"),
            ("DOCUMENT_ROOT", "/var/www/html"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", "51234"),
            ("SERVER_PORT", "80"),
            ("SERVER_NAME", "localhost"),
            ("HTTP_HOST", "localhost"),
            ("HTTP_USER_AGENT", "load/1.0"),
            ("HTTP_ACCEPT", "*/*"),
        ],
        b"",
    )
    .expect("valid request");
    let start = Instant::now();
    let clients: Vec<_> = (0..threads)
        .map(|_| {
            let (addr, wire) = (addr.clone(), wire.clone());
            std::thread::spawn(move || -> std::io::Result<usize> {
                let mut bytes = 0;
                let mut response = Vec::new();
                for _ in 0..each {
                    let mut c = TcpStream::connect(addr.as_str())?;
                    c.write_all(&wire)?;
                    response.clear();
                    c.read_to_end(&mut response)?;
                    assert!(response.starts_with(b"Status: 200 OK\r\n"));
                    bytes += response.len();
                }
                Ok(bytes)
            })
        })
        .collect();
    let mut bytes = 0;
    for c in clients {
        bytes += c.join().expect("client thread")?;
    }
    let secs = start.elapsed().as_secs_f64();
    let total = threads * each;
    println!(
        "{total} requests ({threads} clients x {each}) in {secs:.2} s: {:.0} requests/s, {bytes} response bytes",
        total as f64 / secs
    );
    Ok(())
}

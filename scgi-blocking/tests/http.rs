//! Handlers over the `http` types (feature `http`), over real sockets:
//! the head mapping reaches the handler, the body reads, the response is
//! framed (Content-Length, HEAD, 204), failures get `run`'s answers.
#![cfg(feature = "http")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;

use scgi_blocking::{Addr, ResponseBody, Server, ShutdownHandle};
use scgi_test_support::CLIENT_TIMEOUT;

fn wire(method: &str, uri: &str, body: &[u8]) -> Vec<u8> {
    scgi_proto::encode_request_to_vec(
        &[
            ("REQUEST_METHOD", method),
            ("REQUEST_URI", uri),
            ("HTTP_HOST", "example.com"),
        ],
        body,
    )
    .expect("encode")
}

fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
    c.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn start() -> (SocketAddr, ShutdownHandle, thread::JoinHandle<()>) {
    let server = Server::bind("127.0.0.1:0").expect("bind");
    let Addr::Tcp(addr) = *server.local_addr() else {
        unreachable!()
    };
    let handle = server.shutdown_handle();
    let t = thread::spawn(move || {
        server
            .serve_http(|req| {
                let response = match req.uri().path() {
                    "/echo" => {
                        let (parts, mut body) = req.into_parts();
                        let mut bytes = Vec::new();
                        body.read_to_end(&mut bytes)?;
                        let peer = parts.extensions.get::<Addr>().is_some();
                        let head = format!("{} {} peer={peer}\n", parts.method, parts.uri);
                        let mut out = head.into_bytes();
                        out.extend_from_slice(&bytes);
                        http::Response::new(out.into())
                    }
                    "/empty" => http::Response::builder()
                        .status(204)
                        .header("content-length", "0")
                        .body(ResponseBody::empty())?,
                    "/stream" => http::Response::new(ResponseBody::reader(
                        std::io::repeat(b'x').take(100_000),
                    )),
                    "/fail" => return Err("no".into()),
                    // Two different lengths: which one frames the body?
                    "/cl-conflict" => http::Response::builder()
                        .header("content-length", "11")
                        .header("content-length", "5")
                        .body(ResponseBody::from("hello world"))?,
                    // Longer than declared: cut to the declared length.
                    "/cl-long" => http::Response::builder()
                        .header("content-length", "3")
                        .body(ResponseBody::reader(&b"hello world"[..]))?,
                    // Shorter than declared: the response fails.
                    "/cl-short" => http::Response::builder()
                        .header("content-length", "100")
                        .body(ResponseBody::reader(&b"hello world"[..]))?,
                    _ => http::Response::new("hello".into()),
                };
                Ok(response)
            })
            .expect("serve");
    });
    (addr, handle, t)
}

#[test]
fn http_handlers_map_frame_and_fail_like_run() {
    let (addr, handle, t) = start();

    let got = exchange(addr, &wire("POST", "/echo?x=1", b"body!"));
    assert!(got.starts_with("Status: 200 OK\r\n"), "{got}");
    let cl = "POST http://example.com/echo?x=1 peer=true\nbody!".len();
    assert!(got.contains(&format!("content-length: {cl}\r\n")), "{got}");
    assert!(
        got.ends_with("\r\n\r\nPOST http://example.com/echo?x=1 peer=true\nbody!"),
        "{got}"
    );

    // HEAD: the GET's head, no body.
    let got = exchange(addr, &wire("HEAD", "/", b""));
    assert!(got.starts_with("Status: 200 OK\r\n"), "{got}");
    assert!(got.ends_with("\r\n\r\n"), "{got}");
    assert!(!got.contains("hello"), "{got}");

    // 204: the handler's Content-Length: 0 is dropped (RFC 9110).
    let got = exchange(addr, &wire("GET", "/empty", b""));
    assert_eq!(got, "Status: 204 No Content\r\n\r\n");

    // A streamed body of unknown length: no Content-Length, all of it.
    let got = exchange(addr, &wire("GET", "/stream", b""));
    assert!(
        !got.to_ascii_lowercase().contains("content-length"),
        "{}",
        &got[..64]
    );
    assert!(got.ends_with(&"x".repeat(100_000)));

    // A handler error before anything was sent: 500.
    let got = exchange(addr, &wire("GET", "/fail", b""));
    assert!(
        got.starts_with("Status: 500 Internal Server Error\r\n"),
        "{got}"
    );

    // Content-Length is the library's: conflicting values are a 500, a
    // longer body is cut to it, a shorter one fails the response (before
    // anything reached the socket here: a 500).
    let got = exchange(addr, &wire("GET", "/cl-conflict", b""));
    assert!(
        got.starts_with("Status: 500 Internal Server Error\r\n"),
        "{got}"
    );
    let got = exchange(addr, &wire("GET", "/cl-long", b""));
    assert!(got.starts_with("Status: 200 OK\r\n"), "{got}");
    assert!(
        got.contains("content-length: 3\r\n") && got.ends_with("\r\n\r\nhel"),
        "{got}"
    );
    let got = exchange(addr, &wire("GET", "/cl-short", b""));
    assert!(
        got.starts_with("Status: 500 Internal Server Error\r\n"),
        "{got}"
    );

    // A head that does not map to an http::Request: 400, no handler call.
    let no_method = scgi_proto::encode_request_to_vec(&[("REQUEST_URI", "/")], b"").unwrap();
    let got = exchange(addr, &no_method);
    assert!(got.starts_with("Status: 400 Bad Request\r\n"), "{got}");

    assert!(handle.close());
    t.join().expect("server thread");
}

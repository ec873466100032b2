//! Serving `tower::Service`s (feature `tower`) on smol over real sockets,
//! through the same `scgi-tower` layer as scgi-tokio: the head mapping
//! reaches the service, the body streams, the response is framed, and
//! failures get `run`'s answers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;

use http_body_util::BodyExt;
use scgi_async_std::{Addr, RequestBody, Server, Smol};
use scgi_test_support::CLIENT_TIMEOUT;
use tower::service_fn;

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

async fn app(req: http::Request<RequestBody>) -> Result<http::Response<String>, std::io::Error> {
    let peer = req.extensions().get::<Addr>().is_some();
    let (parts, body) = req.into_parts();
    let response = match parts.uri.path() {
        "/echo" => {
            let bytes = body.collect().await?.to_bytes();
            let text = format!(
                "{} {} peer={peer} {}",
                parts.method,
                parts.uri,
                String::from_utf8_lossy(&bytes)
            );
            http::Response::new(text)
        }
        // What axum does for an empty answer: Content-Length: 0.
        "/empty" => http::Response::builder()
            .status(204)
            .header("content-length", "0")
            .body(String::new())
            .expect("valid"),
        "/fail" => return Err(std::io::Error::other("the service fails")),
        // Two different lengths: which one frames the body?
        "/cl-conflict" => http::Response::builder()
            .header("content-length", "11")
            .header("content-length", "5")
            .body("hello world".to_owned())
            .expect("valid"),
        // Declared longer than the body is: the response fails.
        "/cl-short" => http::Response::builder()
            .header("content-length", "100")
            .body("hello world".to_owned())
            .expect("valid"),
        _ => http::Response::new("hello".to_owned()),
    };
    Ok(response)
}

#[test]
fn tower_services_serve_on_smol() {
    let server = Server::bind("127.0.0.1:0")
        .expect("bind")
        .with_spawner(Smol);
    let Addr::Tcp(addr) = *server.local_addr() else {
        unreachable!()
    };
    let handle = server.shutdown_handle();
    let serving = thread::spawn(move || smol::block_on(server.serve(service_fn(app))));

    let got = exchange(addr, &wire("POST", "/echo?q=1", b"smol body"));
    let text = "POST http://example.com/echo?q=1 peer=true smol body";
    assert!(got.starts_with("Status: 200 OK\r\n"), "{got}");
    assert!(
        got.contains(&format!("content-length: {}\r\n", text.len())),
        "{got}"
    );
    assert!(got.ends_with(&format!("\r\n\r\n{text}")), "{got}");

    // 204: the service's Content-Length: 0 is dropped (RFC 9110).
    assert_eq!(
        exchange(addr, &wire("GET", "/empty", b"")),
        "Status: 204 No Content\r\n\r\n"
    );

    // HEAD: no body.
    let got = exchange(addr, &wire("HEAD", "/", b""));
    assert!(
        got.starts_with("Status: 200 OK\r\n") && got.ends_with("\r\n\r\n"),
        "{got}"
    );

    // A service error before anything was sent: 500, as a failed handler.
    let got = exchange(addr, &wire("GET", "/fail", b""));
    assert!(
        got.starts_with("Status: 500 Internal Server Error\r\n"),
        "{got}"
    );

    // Content-Length is the library's: a conflict with itself or with the
    // body's size is a 500 before anything is sent.
    for uri in ["/cl-conflict", "/cl-short"] {
        let got = exchange(addr, &wire("GET", uri, b""));
        assert!(
            got.starts_with("Status: 500 Internal Server Error\r\n"),
            "{uri}: {got}"
        );
    }

    assert!(smol::block_on(handle.close()));
    serving.join().expect("server thread").expect("serve");
}

/// A streamed body (size unknown up front) longer than its
/// `Content-Length` is cut to it; one that ends short after part of it
/// was sent resets the connection, so the client sees a failed response,
/// not a short one.
#[test]
fn streamed_bodies_keep_to_their_content_length() {
    use bytes::Bytes;
    use http_body_util::StreamBody;

    type Frames = StreamBody<
        futures_lite::stream::Iter<
            std::vec::IntoIter<Result<http_body::Frame<Bytes>, std::io::Error>>,
        >,
    >;
    async fn streamed(
        req: http::Request<RequestBody>,
    ) -> Result<http::Response<Frames>, std::io::Error> {
        let (declared, pieces): (&str, Vec<Bytes>) = match req.uri().path() {
            "/long" => ("3", vec![Bytes::from("hello"), Bytes::from(" world")]),
            // Over the response buffer, so part of it reaches the socket
            // before the body ends short.
            _ => ("200000", vec![Bytes::from(vec![b'x'; 100_000])]),
        };
        let frames: Vec<_> = pieces
            .into_iter()
            .map(|b| Ok(http_body::Frame::data(b)))
            .collect();
        Ok(http::Response::builder()
            .header("content-length", declared)
            .body(StreamBody::new(futures_lite::stream::iter(frames)))
            .expect("valid"))
    }

    let server = Server::bind("127.0.0.1:0")
        .expect("bind")
        .with_spawner(Smol);
    let Addr::Tcp(addr) = *server.local_addr() else {
        unreachable!()
    };
    let handle = server.shutdown_handle();
    let serving = thread::spawn(move || smol::block_on(server.serve(service_fn(streamed))));

    let got = exchange(addr, &wire("GET", "/long", b""));
    assert!(got.starts_with("Status: 200 OK\r\n"), "{got}");
    assert!(got.ends_with("\r\n\r\nhel"), "{got}");

    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
    c.write_all(&wire("GET", "/short", b"")).expect("write");
    let mut out = Vec::new();
    let read = c.read_to_end(&mut out);
    assert!(
        read.is_err() || out.len() < 200_000,
        "a short body passed as whole: {read:?}, {} bytes",
        out.len()
    );
    assert_eq!(
        read.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionReset),
        "the connection was not reset"
    );

    assert!(smol::block_on(handle.close()));
    serving.join().expect("server thread").expect("serve");
}

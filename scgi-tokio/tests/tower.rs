//! Serving `tower::Service`s (feature `tower`) over real sockets: the head
//! mapping reaches the service, request and response bodies stream, and
//! failures get `run`'s answers.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use scgi_proto::http::{RemoteAddr, ScgiHeaders};
use scgi_tokio::{Addr, Config, RequestBody, Server, ShutdownHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::service_fn;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

type Req = http::Request<RequestBody>;

async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(CLIENT_TIMEOUT * 2, fut)
        .await
        .expect("the test took too long")
}

/// A request netstring built by hand (the encoder refuses duplicates,
/// which nginx 1.22 sends).
fn wire(headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    let len = body.len().to_string();
    let first: [(&str, &[u8]); 2] = [("CONTENT_LENGTH", len.as_bytes()), ("SCGI", b"1")];
    for (n, v) in first.iter().chain(headers) {
        block.extend_from_slice(n.as_bytes());
        block.push(0);
        block.extend_from_slice(v);
        block.push(0);
    }
    let mut out = format!("{}:", block.len()).into_bytes();
    out.extend_from_slice(&block);
    out.push(b',');
    out.extend_from_slice(body);
    out
}

fn get(uri: &str) -> Vec<u8> {
    wire(
        &[("REQUEST_METHOD", b"GET"), ("REQUEST_URI", uri.as_bytes())],
        b"",
    )
}

/// Serves `service` on a fresh port.
fn start<S: scgi_tokio::HttpService<scgi_tokio::Request>>(
    service: S,
    config: Config,
) -> (SocketAddr, ShutdownHandle, JoinHandle<io::Result<()>>) {
    let server = Server::bind_tcp("127.0.0.1:0").unwrap().with_config(config);
    let Addr::Tcp(addr) = *server.local_addr() else {
        unreachable!()
    };
    let handle = server.shutdown_handle();
    (addr, handle, tokio::spawn(server.serve(service)))
}

async fn stop(handle: ShutdownHandle, serving: JoinHandle<io::Result<()>>) {
    assert!(handle.close().await);
    serving.await.unwrap().unwrap();
}

async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(CLIENT_TIMEOUT, c.read_to_end(&mut out))
        .await
        .expect("response in time")
        .unwrap();
    out
}

fn text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

#[tokio::test]
async fn head_mapping_reaches_the_service() {
    bounded(async {
        let svc = service_fn(|req: Req| async move {
            let h = req.headers();
            let cookies: Vec<_> = h.get_all("cookie").iter().map(|v| v.to_str().unwrap()).collect();
            let remote = req.extensions().get::<RemoteAddr>().map(|r| r.0);
            let raw = req.extensions().get::<ScgiHeaders>().unwrap();
            let peer = req.extensions().get::<Addr>().is_some();
            let out = format!(
                "{} {} {:?}\ncookies={cookies:?}\nx-foo={:?}\nlatin={:?}\nct={:?} cl={:?}\nremote={remote:?}\nserver={:?}\npeer={peer}\n",
                req.method(),
                req.uri(),
                req.version(),
                h.get_all("x-foo").iter().collect::<Vec<_>>(),
                h["x-latin"].as_bytes(),
                h.get("content-type"),
                h.get("content-length"),
                raw.headers().server_name(),
            );
            Ok::<_, Infallible>(http::Response::new(out))
        });
        let (addr, handle, serving) = start(svc, Config::default());
        let request = wire(
            &[
                ("REQUEST_METHOD", b"PUT"),
                ("REQUEST_URI", b"/caf\xc3\xa9?x=1"),
                ("SERVER_PROTOCOL", b"HTTP/1.0"),
                ("HTTPS", b"on"),
                ("HTTP_HOST", b"example.com"),
                ("HTTP_COOKIE", b"a=1"),
                ("HTTP_COOKIE", b"b=2"),
                ("HTTP_X_FOO", b"1"),
                ("HTTP_X_LATIN", b"\xe9t\xe9"),
                ("CONTENT_TYPE", b"text/plain"),
                ("REMOTE_ADDR", b"192.0.2.1"),
                ("REMOTE_PORT", b"5555"),
                ("SERVER_NAME", b"front"),
            ],
            b"abc",
        );
        let got = text(&exchange(addr, &request).await);
        assert!(got.starts_with("Status: 200 OK\r\n"), "{got}");
        for want in [
            "PUT https://example.com/caf\u{e9}?x=1 HTTP/1.0\n",
            "cookies=[\"a=1\", \"b=2\"]\n",
            "x-foo=[\"1\"]\n",
            "latin=[233, 116, 233]\n",
            "ct=Some(\"text/plain\") cl=Some(\"3\")\n",
            "remote=Some(192.0.2.1:5555)\n",
            "server=Some(\"front\")\n",
            "peer=true\n",
        ] {
            assert!(got.contains(want), "{want:?} not in {got}");
        }
        stop(handle, serving).await;
    })
    .await;
}

#[tokio::test]
async fn unmappable_head_is_400_without_calling_the_service() {
    bounded(async {
        let svc = service_fn(|_req: Req| async move {
            panic!("the service must not be called");
            #[allow(unreachable_code)]
            Ok::<_, Infallible>(http::Response::new(String::new()))
        });
        let (addr, handle, serving) = start(svc, Config::default());
        let got = text(&exchange(addr, &wire(&[("REQUEST_URI", b"/")], b"")).await);
        assert!(got.starts_with("Status: 400 Bad Request\r\n"), "{got}");
        assert!(got.contains("no REQUEST_METHOD"), "{got}");
        stop(handle, serving).await;
    })
    .await;
}

#[tokio::test]
async fn request_body_streams_in_frames() {
    bounded(async {
        let svc = service_fn(|req: Req| async move {
            let mut body = req.into_body();
            assert_eq!(http_body::Body::size_hint(&body).exact(), Some(6));
            let mut frames = Vec::new();
            while let Some(frame) = body.frame().await {
                frames.push(frame?.into_data().unwrap());
            }
            assert!(http_body::Body::is_end_stream(&body));
            Ok::<_, io::Error>(http::Response::new(format!("{frames:?}")))
        });
        let (addr, handle, serving) = start(svc, Config::default());
        let request = wire(
            &[("REQUEST_METHOD", b"POST"), ("REQUEST_URI", b"/")],
            b"abcdef",
        );
        let (head, body) = request.split_at(request.len() - 6);
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(head).await.unwrap();
        for piece in body.chunks(2) {
            tokio::time::sleep(Duration::from_millis(30)).await;
            c.write_all(piece).await.unwrap();
        }
        let mut out = Vec::new();
        c.read_to_end(&mut out).await.unwrap();
        let got = text(&out);
        // Three frames, as they arrived: the body is not read ahead.
        assert!(
            got.ends_with("\r\n\r\n[b\"ab\", b\"cd\", b\"ef\"]"),
            "{got}"
        );
        stop(handle, serving).await;
    })
    .await;
}

#[tokio::test]
async fn large_echo_streams_both_ways() {
    bounded(async {
        // The request body is the response body: reads and writes
        // interleave on one connection.
        let svc = service_fn(|req: Req| async move {
            Ok::<_, Infallible>(http::Response::new(req.into_body()))
        });
        let (addr, handle, serving) = start(svc, Config::default());
        let body: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let request = wire(
            &[("REQUEST_METHOD", b"POST"), ("REQUEST_URI", b"/echo")],
            &body,
        );
        let c = TcpStream::connect(addr).await.unwrap();
        let (mut rd, mut wr) = c.into_split();
        let writer = tokio::spawn(async move { wr.write_all(&request).await.map(|()| wr) });
        let mut out = Vec::new();
        rd.read_to_end(&mut out).await.unwrap();
        drop(writer.await.unwrap().unwrap());
        let head = b"Status: 200 OK\r\ncontent-length: 4194304\r\n\r\n";
        assert_eq!(&out[..head.len()], head, "{}", text(&out[..80]));
        assert!(out[head.len()..] == body[..], "echoed body differs");
        stop(handle, serving).await;
    })
    .await;
}

#[tokio::test]
async fn response_body_streams_piece_by_piece() {
    bounded(async {
        let go = Arc::new(Notify::new());
        let go2 = Arc::clone(&go);
        let svc = service_fn(move |_req: Req| {
            let go = Arc::clone(&go2);
            async move {
                let frames = futures_util::stream::unfold(0, move |i| {
                    let go = Arc::clone(&go);
                    async move {
                        match i {
                            0 => {}
                            1 => go.notified().await,
                            _ => return None,
                        }
                        let frame = http_body::Frame::data(Bytes::from(format!("piece {i}\n")));
                        Some((Ok::<_, Infallible>(frame), i + 1))
                    }
                });
                Ok::<_, Infallible>(http::Response::new(StreamBody::new(frames)))
            }
        });
        let (addr, handle, serving) = start(svc, Config::default());
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(&get("/")).await.unwrap();
        // The first piece arrives while the second is not produced yet.
        let mut seen = Vec::new();
        while !text(&seen).contains("piece 0\n") {
            let mut buf = [0u8; 256];
            let n = tokio::time::timeout(CLIENT_TIMEOUT, c.read(&mut buf))
                .await
                .expect("the first piece was not flushed")
                .unwrap();
            assert_ne!(n, 0, "closed early: {}", text(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        // No Content-Length: the size is unknown.
        assert_eq!(text(&seen), "Status: 200 OK\r\n\r\npiece 0\n");
        go.notify_one();
        c.read_to_end(&mut seen).await.unwrap();
        assert_eq!(text(&seen), "Status: 200 OK\r\n\r\npiece 0\npiece 1\n");
        stop(handle, serving).await;
    })
    .await;
}

#[tokio::test]
async fn response_head_rules() {
    bounded(async {
        let svc = service_fn(|req: Req| async move {
            let mut resp = http::Response::new(String::from("hello"));
            if req.uri().path() == "/te" {
                resp.headers_mut()
                    .insert("transfer-encoding", "chunked".parse().unwrap());
                resp.headers_mut()
                    .insert("connection", "close".parse().unwrap());
            }
            if req.uri().path() == "/early-hints" {
                *resp.status_mut() = http::StatusCode::from_u16(103).unwrap();
            }
            resp.headers_mut()
                .append("set-cookie", "a=1".parse().unwrap());
            resp.headers_mut()
                .append("set-cookie", "b=2".parse().unwrap());
            Ok::<_, Infallible>(resp)
        });
        let (addr, handle, serving) = start(svc, Config::default());
        let got = text(&exchange(addr, &get("/")).await);
        assert_eq!(
            got,
            "Status: 200 OK\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 5\r\n\r\nhello"
        );
        // Hop-by-hop headers are dropped, and no length is added over a
        // Transfer-Encoding the service set.
        let got = text(&exchange(addr, &get("/te")).await);
        assert_eq!(
            got,
            "Status: 200 OK\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n\r\nhello"
        );
        // HEAD: no length is guessed from the (empty) body.
        let head = wire(&[("REQUEST_METHOD", b"HEAD"), ("REQUEST_URI", b"/")], b"");
        let got = text(&exchange(addr, &head).await);
        assert!(!got.contains("content-length"), "{got}");
        // A status the writer refuses is the service's failure: 500.
        let got = text(&exchange(addr, &get("/early-hints")).await);
        assert!(
            got.starts_with("Status: 500 Internal Server Error\r\n"),
            "{got}"
        );
        stop(handle, serving).await;
    })
    .await;
}

#[tokio::test]
async fn service_error_is_500() {
    bounded(async {
        let svc = service_fn(|_req: Req| async move {
            Err::<http::Response<String>, _>(io::Error::other("database down"))
        });
        let (addr, handle, serving) = start(svc, Config::default());
        let got = text(&exchange(addr, &get("/")).await);
        assert!(
            got.starts_with("Status: 500 Internal Server Error\r\n"),
            "{got}"
        );
        assert!(!got.contains("database"), "internal detail leaked: {got}");
        stop(handle, serving).await;
    })
    .await;
}

#[tokio::test]
async fn panic_is_500_and_the_server_goes_on() {
    bounded(async {
        let svc = service_fn(|req: Req| async move {
            if req.uri().path() == "/panic" {
                panic!("boom");
            }
            Ok::<_, Infallible>(http::Response::new(String::from("fine")))
        });
        let (addr, handle, serving) = start(svc, Config::default());
        let got = text(&exchange(addr, &get("/panic")).await);
        assert!(
            got.starts_with("Status: 500 Internal Server Error\r\n"),
            "{got}"
        );
        let got = text(&exchange(addr, &get("/")).await);
        assert!(got.ends_with("\r\n\r\nfine"), "{got}");
        stop(handle, serving).await;
    })
    .await;
}

#[tokio::test]
async fn stalled_body_is_408() {
    bounded(async {
        let svc = service_fn(|req: Req| async move {
            let body = req.into_body().collect().await?.to_bytes();
            Ok::<_, io::Error>(http::Response::new(format!("{}", body.len())))
        });
        let config = Config::default().with_body_timeout(Duration::from_millis(200));
        let (addr, handle, serving) = start(svc, config);
        let request = wire(
            &[("REQUEST_METHOD", b"POST"), ("REQUEST_URI", b"/")],
            b"abcdef",
        );
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(&request[..request.len() - 3]).await.unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).await.unwrap();
        let got = text(&out);
        assert!(got.starts_with("Status: 408 Request Timeout\r\n"), "{got}");
        stop(handle, serving).await;
    })
    .await;
}

#[tokio::test]
async fn serve_until_stops_on_the_signal_after_requests_in_flight() {
    bounded(async {
        let svc = service_fn(|_req: Req| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, Infallible>(http::Response::new(String::from("done")))
        });
        let server = Server::bind_tcp("127.0.0.1:0").unwrap();
        let Addr::Tcp(addr) = *server.local_addr() else {
            unreachable!()
        };
        let stop = Arc::new(Notify::new());
        let signal = Arc::clone(&stop);
        let serving = tokio::spawn(async move { server.serve_until(svc, signal.notified()).await });
        let client = tokio::spawn(exchange(addr, get("/").leak()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.notify_one();
        let got = text(&client.await.unwrap());
        assert!(got.ends_with("\r\n\r\ndone"), "{got}");
        serving.await.unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    })
    .await;
}

/// Framing is the library's (issue 14): two different `Content-Length`
/// values, or one the body contradicts, are a 500 before anything is sent;
/// a 204 loses the `Content-Length: 0` axum adds.
#[tokio::test]
async fn content_length_is_the_librarys() {
    bounded(async {
        let svc = service_fn(|req: Req| async move {
            let b = http::Response::builder();
            let response = match req.uri().path() {
                "/conflict" => b
                    .header("content-length", "11")
                    .header("content-length", "5")
                    .body("hello world".to_owned()),
                "/short" => b
                    .header("content-length", "100")
                    .body("hello world".to_owned()),
                _ => b
                    .status(204)
                    .header("content-length", "0")
                    .body(String::new()),
            };
            Ok::<_, Infallible>(response.expect("valid"))
        });
        let (addr, handle, serving) = start(svc, Config::default());
        for uri in ["/conflict", "/short"] {
            let got = text(&exchange(addr, &get(uri)).await);
            assert!(
                got.starts_with("Status: 500 Internal Server Error\r\n"),
                "{uri}: {got}"
            );
        }
        assert_eq!(
            text(&exchange(addr, &get("/empty")).await),
            "Status: 204 No Content\r\n\r\n"
        );
        stop(handle, serving).await;
    })
    .await;
}

/// With the `axum` feature, axum's own `ConnectInfo<SocketAddr>` extractor
/// gets the HTTP client from `REMOTE_ADDR` and `REMOTE_PORT`; without the
/// two headers it is missing, as axum answers then (500).
#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_connect_info_is_the_http_client() {
    use axum::extract::ConnectInfo;
    bounded(async {
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(|ConnectInfo(client): ConnectInfo<SocketAddr>| async move {
                client.to_string()
            }),
        );
        let (addr, handle, serving) = start(app, Config::default());
        let with = wire(
            &[
                ("REQUEST_METHOD", b"GET"),
                ("REQUEST_URI", b"/"),
                ("REMOTE_ADDR", b"2001:db8::7"),
                ("REMOTE_PORT", b"51234"),
            ],
            b"",
        );
        let out = text(&exchange(addr, &with).await);
        assert!(out.starts_with("Status: 200"), "{out}");
        assert!(out.ends_with("\r\n\r\n[2001:db8::7]:51234"), "{out}");
        let out = text(&exchange(addr, &get("/")).await);
        assert!(out.starts_with("Status: 500"), "{out}");
        stop(handle, serving).await;
    })
    .await;
}

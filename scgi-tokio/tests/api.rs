//! This runtime's own API: binding, socket files, adopting std and tokio
//! listeners, the `next` loop, the connection cap, `run_until`, the request
//! object (zero-copy chunks, buffered writes, heads larger than the
//! buffer, requests that outlive their handler). Behaviour shared with the
//! other runtimes is in `scenarios.rs`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use scgi_test_support::scenarios::{SPEC_REQUEST, SPEC_RESPONSE, request};
use scgi_test_support::{CLIENT_TIMEOUT, Reply};
use scgi_tokio::{Addr, Config, Request, Server, ShutdownHandle, TcpOptions, UnixOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::task::JoinHandle;

/// Every test body runs under this bound.
async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(CLIENT_TIMEOUT * 2, fut)
        .await
        .expect("the test took too long")
}

fn temp_socket(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "scgi-tokio-{}-{name}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

fn tcp_addr(server: &Server) -> SocketAddr {
    match server.local_addr() {
        Addr::Tcp(a) => *a,
        other => panic!("not TCP: {other}"),
    }
}

async fn read_to_end<S: AsyncReadExt + Unpin>(c: &mut S) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    tokio::time::timeout(CLIENT_TIMEOUT, c.read_to_end(&mut raw))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    Ok(raw)
}

async fn tcp_exchange(addr: SocketAddr, wire: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(wire).await.expect("write");
    read_to_end(&mut c).await.expect("read")
}

async fn unix_exchange(path: &std::path::Path, wire: &[u8]) -> Vec<u8> {
    let mut c = UnixStream::connect(path).await.expect("connect");
    c.write_all(wire).await.expect("write");
    read_to_end(&mut c).await.expect("read")
}

async fn spec(mut req: Request) -> io::Result<()> {
    tokio::io::copy(&mut req, &mut tokio::io::sink()).await?;
    req.write_status_ok_text_content("text/plain").await?;
    req.write_all(b"42").await
}

/// Serves the spec example on `server` until the returned handle closes it.
fn serve_spec(server: Server) -> (ShutdownHandle, JoinHandle<io::Result<()>>) {
    let handle = server.shutdown_handle();
    (handle, tokio::spawn(server.run(spec)))
}

async fn stop(handle: ShutdownHandle, serving: JoinHandle<io::Result<()>>) {
    assert!(handle.close().await, "requests left unfinished");
    serving.await.expect("server task").expect("run");
}

#[test]
fn defaults() {
    // The shared settings of every runtime (scgi_proto::server), with
    // their defaults.
    let c = Config::default();
    assert_eq!(c, scgi_tokio::scgi_proto::server::Config::DEFAULT);
    assert_eq!(c.head_timeout, Duration::from_secs(30));
    assert_eq!(c.body_timeout, Duration::from_secs(60));
    assert_eq!(c.write_timeout, Duration::from_secs(60));
    assert_eq!(c.max_connections, 1024);
    assert_eq!(c.drain_timeout, Duration::from_secs(1));
    assert_eq!(c.drain_limit, 4 * 1024 * 1024);
    assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(c.workers, 0);
    assert_eq!(c.proto, scgi_tokio::scgi_proto::Config::DEFAULT);
    assert_eq!(Server::DEFAULT_ADDR, "127.0.0.1:4000");
    assert!(TcpOptions::default().reuse_addr);
    assert!(UnixOptions::default().remove_stale);
}

#[tokio::test]
async fn ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return; // no IPv6 on this machine
    }
    bounded(async {
        let server =
            Server::bind_tcp_with("[::1]:0", &TcpOptions::DEFAULT.with_only_v6(Some(true)))
                .expect("bind");
        let addr = tcp_addr(&server);
        assert!(addr.is_ipv6());
        let (handle, t) = serve_spec(server);
        assert_eq!(tcp_exchange(addr, SPEC_REQUEST).await, SPEC_RESPONSE);
        stop(handle, t).await;
    })
    .await;
}

#[tokio::test]
async fn reuse_addr_off_still_binds() {
    bounded(async {
        let server =
            Server::bind_tcp_with("127.0.0.1:0", &TcpOptions::DEFAULT.with_reuse_addr(false))
                .expect("bind");
        let addr = tcp_addr(&server);
        let (handle, t) = serve_spec(server);
        assert_eq!(tcp_exchange(addr, SPEC_REQUEST).await, SPEC_RESPONSE);
        stop(handle, t).await;
    })
    .await;
}

#[tokio::test]
async fn unix_socket_mode_and_cleanup() {
    bounded(async {
        let path = temp_socket("mode");
        let server =
            Server::bind_unix_with(&path, &UnixOptions::DEFAULT.with_mode(0o660)).expect("bind");
        let meta = std::fs::metadata(&path).expect("socket file");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        let (handle, t) = serve_spec(server);
        assert_eq!(unix_exchange(&path, SPEC_REQUEST).await, SPEC_RESPONSE);
        stop(handle, t).await;
        assert!(!path.exists(), "the socket file outlived the server");
    })
    .await;
}

#[tokio::test]
async fn unix_stale_socket_is_replaced() {
    bounded(async {
        let path = temp_socket("stale");
        // A crashed server leaves its socket file behind.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        let server = Server::bind_unix(&path).expect("bind over a stale socket");
        let (handle, t) = serve_spec(server);
        assert_eq!(unix_exchange(&path, SPEC_REQUEST).await, SPEC_RESPONSE);
        stop(handle, t).await;
    })
    .await;
}

#[test]
fn unix_live_socket_and_other_files_are_kept() {
    let path = temp_socket("live");
    let live = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let err = Server::bind_unix(&path).expect_err("someone listens there");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    drop(live);
    std::fs::remove_file(&path).expect("cleanup");

    std::fs::write(&path, b"not a socket").expect("file");
    let err = Server::bind_unix(&path).expect_err("a regular file");
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).expect("kept"), b"not a socket");
    std::fs::remove_file(&path).expect("cleanup");
}

#[tokio::test]
async fn adopts_std_and_tokio_listeners() {
    bounded(async {
        // std, blocking and non-blocking (as inherited, maybe).
        for nonblocking in [false, true] {
            let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            tcp.set_nonblocking(nonblocking).expect("mode");
            let server = Server::from_listener(tcp).expect("adopt");
            let addr = tcp_addr(&server);
            let (handle, t) = serve_spec(server);
            assert_eq!(tcp_exchange(addr, SPEC_REQUEST).await, SPEC_RESPONSE);
            stop(handle, t).await;
        }
        // tokio, through std.
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let server = Server::from_listener(tcp.into_std().expect("std")).expect("adopt");
        let addr = tcp_addr(&server);
        let (handle, t) = serve_spec(server);
        assert_eq!(tcp_exchange(addr, SPEC_REQUEST).await, SPEC_RESPONSE);
        stop(handle, t).await;

        // Unix, std then tokio. Not ours to remove: whoever bound it owns
        // the file.
        let path = temp_socket("adopted");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let (handle, t) = serve_spec(Server::from_listener(listener).expect("adopt"));
        assert_eq!(unix_exchange(&path, SPEC_REQUEST).await, SPEC_RESPONSE);
        stop(handle, t).await;
        assert!(path.exists());
        std::fs::remove_file(&path).expect("cleanup");

        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let listener = listener.into_std().expect("std");
        let (handle, t) = serve_spec(Server::from_listener(listener).expect("adopt"));
        assert_eq!(unix_exchange(&path, SPEC_REQUEST).await, SPEC_RESPONSE);
        stop(handle, t).await;
        assert!(path.exists());
        std::fs::remove_file(&path).expect("cleanup");
    })
    .await;
}

#[tokio::test]
async fn next_loop() {
    bounded(async {
        let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        assert!(
            server
                .next(Some(Duration::from_millis(50)))
                .await
                .expect("next")
                .is_none(),
            "a request out of nowhere"
        );

        let client = tokio::spawn(async move {
            let wire = scgi_tokio::scgi_proto::encode_request_to_vec(
                &[
                    ("REQUEST_METHOD", "POST"),
                    ("REQUEST_URI", "/a/b?x=1"),
                    ("QUERY_STRING", "x=1"),
                    ("CONTENT_TYPE", "text/plain"),
                    ("REMOTE_ADDR", "192.0.2.7"),
                    ("SERVER_NAME", "example.test"),
                    ("SERVER_PORT", "8443"),
                    ("HTTPS", "on"),
                    ("HTTP_USER_AGENT", "test/1"),
                ],
                b"hello body",
            )
            .expect("encode");
            tcp_exchange(addr, &wire).await
        });
        let mut req = server
            .next(Some(CLIENT_TIMEOUT))
            .await
            .expect("next")
            .expect("a request");
        {
            let h = req.headers();
            assert_eq!(h.method(), Some("POST"));
            assert_eq!(h.request_uri(), Some(&b"/a/b?x=1"[..]));
            assert_eq!(h.path(), Some(&b"/a/b"[..]));
            assert_eq!(h.query_string(), Some(&b"x=1"[..]));
            assert_eq!(h.content_type(), Some("text/plain"));
            assert_eq!(h.remote_addr(), Some("192.0.2.7"));
            assert_eq!(h.server_name(), Some("example.test"));
            assert_eq!(h.server_port(), Some(8443));
            assert!(h.https());
            assert_eq!(h.http("User-Agent"), Some(&b"test/1"[..]));
        }
        assert_eq!(req.content_length(), 10);
        assert!(matches!(req.peer_addr(), Addr::Tcp(_)));
        let err = req.upgrade().await.expect_err("body not read");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let mut body = String::new();
        req.read_to_string(&mut body).await.expect("body");
        assert_eq!(body, "hello body");
        assert_eq!(req.body_remaining(), 0);
        let err = req
            .write_head(200, &[("X-Bad", "a\r\nb")])
            .await
            .expect_err("response splitting");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = req
            .write_status_ok_text_content("text/plain\r\nX: y")
            .await
            .expect_err("response splitting");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        req.write_head(201, &[("Content-Type", "text/plain")])
            .await
            .expect("head");
        req.write_all(b"made").await.expect("body");
        req.finish().await.expect("finish");
        let reply = Reply::parse(&client.await.expect("client"));
        assert_eq!(reply.status, 201);
        assert_eq!(reply.body, b"made");

        // After shutdown, next() says there is nothing more.
        let handle = server.shutdown_handle();
        handle.shutdown();
        assert!(handle.is_shutdown());
        assert!(server.next(None).await.expect("next").is_none());
        assert!(server.close().await);
    })
    .await;
}

/// A request from `next` that is dropped (not finished) is finished in a
/// task of its own: here, nothing was written, so a 204 goes out.
#[tokio::test]
async fn next_request_dropped_finishes_by_itself() {
    bounded(async {
        let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let client = tokio::spawn(async move { tcp_exchange(addr, SPEC_REQUEST).await });
        let req = server.next(None).await.expect("next").expect("request");
        drop(req);
        let reply = Reply::parse(&client.await.expect("client"));
        assert_eq!(reply.status, 204);
        assert!(server.close().await, "the dropped request never finished");
    })
    .await;
}

#[tokio::test]
async fn next_skips_bad_requests() {
    bounded(async {
        let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let client = tokio::spawn(async move {
            let bad = tcp_exchange(addr, b"GET / HTTP/1.1\r\n\r\n").await;
            let good = tcp_exchange(addr, SPEC_REQUEST).await;
            (bad, good)
        });
        let mut req = server
            .next(Some(CLIENT_TIMEOUT))
            .await
            .expect("next")
            .expect("the good request");
        assert_eq!(req.headers().path(), Some(&b"/deepthought"[..]));
        req.write_status_ok_text_content("text/plain")
            .await
            .expect("head");
        req.write_all(b"42").await.expect("body");
        req.finish().await.expect("finish");
        let (bad, good) = client.await.expect("client");
        Reply::parse(&bad).assert_error(400);
        assert_eq!(good, SPEC_RESPONSE);
    })
    .await;
}

#[tokio::test]
async fn dropping_the_server_stops_accepting() {
    bounded(async {
        let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        assert!(
            server
                .next(Some(Duration::from_millis(10)))
                .await
                .expect("next")
                .is_none()
        );
        drop(server);
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    })
    .await;
}

/// `run_until` stops when its future completes: requests are served
/// before, connections are refused after, and it returns `Ok`.
#[tokio::test]
async fn run_until_a_signal() {
    bounded(async {
        let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let (signal, signalled) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run_until(spec, signalled));
        assert_eq!(tcp_exchange(addr, SPEC_REQUEST).await, SPEC_RESPONSE);
        signal.send(()).expect("signal");
        serving.await.expect("server task").expect("run_until");
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    })
    .await;
}

/// With one connection allowed, a second client is not served while the
/// first is open, and is served once it closes. (The check that it is not
/// served early can only pass wrongly, never fail wrongly.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap() {
    bounded(async {
        let server = Server::bind_tcp("127.0.0.1:0")
            .expect("bind")
            .with_config(Config::default().with_max_connections(1));
        let addr = tcp_addr(&server);
        let handle = server.shutdown_handle();
        let served = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&served);
        let t = tokio::spawn(server.run(move |mut req: Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                while let Some(piece) = req.chunk().await? {
                    req.write_all(&piece).await?;
                    req.flush().await?;
                }
                Ok(())
            }
        }));
        let mut first = TcpStream::connect(addr).await.expect("connect");
        // Half of the body: the handler echoes it and waits for the rest.
        let wire = request("POST", "/", b"abcdef");
        first
            .write_all(&wire[..wire.len() - 3])
            .await
            .expect("write");
        // The request is in flight once its handler has echoed something.
        let mut got = [0u8; 3];
        first.read_exact(&mut got).await.expect("echo");
        assert_eq!(&got, b"abc");

        let second_done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&second_done);
        let second = tokio::spawn(async move {
            let raw = tcp_exchange(addr, &request("POST", "/", b"xyz")).await;
            flag.store(true, Ordering::SeqCst);
            raw
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            served.load(Ordering::SeqCst),
            1,
            "the cap let a second connection in"
        );
        assert!(!second_done.load(Ordering::SeqCst));

        first.write_all(b"def").await.expect("rest of the body");
        assert_eq!(read_to_end(&mut first).await.expect("end"), b"def");
        drop(first);
        assert_eq!(second.await.expect("second"), b"xyz");
        assert_eq!(served.load(Ordering::SeqCst), 2);
        stop(handle, t).await;
    })
    .await;
}

/// A handler that panics after part of its response reached the socket
/// cannot turn it into a 500: the connection is reset, so the web server
/// sees a failed response rather than a short one passed off as complete.
#[tokio::test]
async fn panic_after_partial_send_resets() {
    bounded(async {
        let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let handle = server.shutdown_handle();
        let t = tokio::spawn(server.run(|mut req: Request| async move {
            req.write_status_ok_text_content("text/plain").await?;
            req.write_all(&[b'x'; 64 * 1024]).await?;
            req.flush().await?;
            panic!("after a partial send");
        }));
        // Twice: the first panic did not take the server down.
        for _ in 0..2 {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            c.write_all(&request("GET", "/", b"")).await.expect("write");
            let err = read_to_end(&mut c).await.expect_err("a reset, not an end");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        }
        stop(handle, t).await;
    })
    .await;
}

const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// A peer that stops reading makes the handler's write fail at the write
/// timeout, not at a multiple of it (each stalled write must fail within
/// 1.6 x the timeout of its start: the timeout's meaning, not a speed;
/// pieces of 50 000 bytes, not a multiple of the socket buffers, so the
/// write that stalls first moves a few bytes); the server goes on serving.
#[tokio::test]
async fn write_timeout() {
    bounded(async {
        let server = Server::bind_tcp("127.0.0.1:0")
            .expect("bind")
            .with_config(Config::default().with_write_timeout(WRITE_TIMEOUT));
        let addr = tcp_addr(&server);
        let handle = server.shutdown_handle();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let t = tokio::spawn(server.run(move |mut req: Request| {
            let tx = tx.clone();
            async move {
                req.write_status_ok_text_content("text/plain").await?;
                if req.headers().path() != Some(b"/flood") {
                    return req.write_all(b"ok").await;
                }
                let chunk = vec![b'x'; 50_000];
                let mut result = Ok(());
                let mut waited = Duration::ZERO;
                for _ in 0..5000 {
                    let start = std::time::Instant::now();
                    result = req.write_all(&chunk).await;
                    waited = start.elapsed();
                    if result.is_err() {
                        break;
                    }
                }
                let _ = tx.send((result.as_ref().map_err(io::Error::kind).copied(), waited));
                result
            }
        }));
        let mut stalled = TcpStream::connect(addr).await.expect("connect");
        stalled
            .write_all(&request("GET", "/flood", b""))
            .await
            .expect("write");
        let failed = rx.recv().await.expect("the handler ended");
        let (failed, waited) = failed;
        let kind = failed.expect_err("250 MB fit in the socket buffers");
        assert_eq!(kind, io::ErrorKind::TimedOut);
        assert!(
            waited < WRITE_TIMEOUT * 8 / 5,
            "a {WRITE_TIMEOUT:?} write timeout cut the write after {waited:?}"
        );
        drop(stalled);
        let reply = Reply::parse(&tcp_exchange(addr, &request("GET", "/", b"")).await);
        assert_eq!(reply.body, b"ok");
        stop(handle, t).await;
    })
    .await;
}

/// The body through `AsyncRead` one byte at a time, then the rest as
/// zero-copy chunks; the response in writes of every size around the
/// buffer's 2 KiB (so buffered, overflowing and direct writes all run);
/// a head larger than the buffer.
#[tokio::test]
async fn body_pieces_and_response_writes() {
    bounded(async {
        let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let handle = server.shutdown_handle();
        let big_value = "v".repeat(3000);
        let value = big_value.clone();
        let t = tokio::spawn(server.run(move |mut req: Request| {
            let value = value.clone();
            async move {
                let mut body = vec![0u8; 5];
                for b in &mut body {
                    *b = req.read_u8().await?;
                }
                while let Some(piece) = req.chunk().await? {
                    body.extend_from_slice(&piece);
                }
                assert!(req.chunk().await?.is_none());
                assert_eq!(req.read(&mut [0u8; 8]).await?, 0, "read past the body");
                req.write_head(200, &[("X-Big", &value)]).await?;
                let mut offset = 0;
                let mut size = 1;
                while offset < body.len() {
                    let end = (offset + size).min(body.len());
                    req.write_all(&body[offset..end]).await?;
                    offset = end;
                    size = size * 3 % 5000 + 1;
                }
                Ok(())
            }
        }));
        let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut wire = request("PUT", "/pieces", &body);
        wire.extend_from_slice(b"surplus, not body");
        let raw = tcp_exchange(addr, &wire).await;
        let reply = Reply::parse(&raw);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("X-Big"), Some(big_value.as_bytes()));
        assert!(reply.body == body, "the echo differs");
        stop(handle, t).await;
    })
    .await;
}

/// A handler may move its request elsewhere and return at once: the
/// request finishes when it is dropped there.
#[tokio::test]
async fn request_outlives_its_handler() {
    bounded(async {
        let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let handle = server.shutdown_handle();
        let t = tokio::spawn(server.run(|mut req: Request| async move {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                req.write_status_ok_text_content("text/plain").await?;
                req.write_all(b"later").await
            });
            Ok(())
        }));
        let reply = Reply::parse(&tcp_exchange(addr, SPEC_REQUEST).await);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"later");
        stop(handle, t).await;
    })
    .await;
}

/// A shutdown waits for a request still in flight in a task the handler
/// spawned, and returns once it is done.
#[tokio::test]
async fn close_waits_for_requests_moved_elsewhere() {
    bounded(async {
        let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let handle = server.shutdown_handle();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (arrived, arrival) = tokio::sync::oneshot::channel::<()>();
        let channels = Arc::new(std::sync::Mutex::new(Some((wait, arrived))));
        let t = tokio::spawn(server.run(move |mut req: Request| {
            let channels = channels.lock().unwrap().take();
            async move {
                tokio::spawn(async move {
                    if let Some((wait, arrived)) = channels {
                        let _ = arrived.send(());
                        let _ = wait.await;
                    }
                    req.write_status_ok_text_content("text/plain").await?;
                    req.write_all(b"done").await
                });
                Ok(())
            }
        }));
        let client = tokio::spawn(async move { tcp_exchange(addr, SPEC_REQUEST).await });
        arrival.await.expect("the request reached its handler");
        let closing = tokio::spawn(async move { handle.close().await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!closing.is_finished(), "close returned with a request open");
        go.send(()).expect("go");
        assert_eq!(Reply::parse(&client.await.expect("client")).body, b"done");
        assert!(closing.await.expect("close"));
        t.await.expect("server task").expect("run");
    })
    .await;
}

/// After a `101`, the upgraded connection holds the bytes that followed
/// the request; `into_parts` hands over the socket and those bytes, and no
/// longer counts the connection (closing does not wait for it).
#[tokio::test]
async fn upgrade_into_parts() {
    bounded(async {
        let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let mut wire = request("GET", "/tunnel", b"body");
        wire.extend_from_slice(b"ping");
        c.write_all(&wire).await.expect("write");

        let mut req = server.next(None).await.expect("next").expect("request");
        let mut body = Vec::new();
        req.read_to_end(&mut body).await.expect("body");
        assert_eq!(body, b"body");
        req.write_head(101, &[("Upgrade", "test")])
            .await
            .expect("head");
        let upgraded = req.into_upgraded().await.expect("upgrade");
        assert_eq!(upgraded.leftover(), b"ping");
        let (mut stream, leftover) = upgraded.into_parts().expect("parts");
        assert_eq!(&leftover[..], b"ping");
        // The server no longer waits for this connection.
        assert!(server.close().await);
        stream.write_all(b"pong").await.expect("tunnel write");
        drop(stream);

        let raw = read_to_end(&mut c).await.expect("read");
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.starts_with("Status: 101 Switching Protocols\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\npong"), "{text}");
    })
    .await;
}

/// A `run` future dropped (here by `select!` on a current-thread runtime,
/// where the accept loop's task cannot run in between) closes its listener
/// at once: the address is free to bind again, and its socket file is gone.
#[tokio::test(flavor = "current_thread")]
async fn cancelled_run_closes_the_listener_at_once() {
    bounded(async {
        let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        tokio::select! {
            r = server.run(spec) => panic!("run returned {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
        Server::bind_tcp(addr).expect("the address is free again");

        let path = temp_socket("cancelled");
        let server = Server::bind_unix(&path).expect("bind");
        tokio::select! {
            r = server.run(spec) => panic!("run returned {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        assert!(!path.exists(), "the socket file outlived the server");
    })
    .await;
}

/// `run_until` returns with its listener closed and its socket file
/// removed even when its accept loop cannot run: here the runtime's one
/// thread is blocked by a handler past the shutdown deadline.
#[tokio::test(flavor = "current_thread")]
async fn run_until_closes_the_listener_past_the_deadline() {
    bounded(async {
        let path = temp_socket("deadline");
        let mut config = Config::DEFAULT;
        config.shutdown_timeout = Duration::from_millis(100);
        let server = Server::bind_unix(&path).expect("bind").with_config(config);
        let handle = server.shutdown_handle();
        let blocked = Arc::new(AtomicBool::new(false));
        let in_handler = Arc::clone(&blocked);
        let serving = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(server.run(move |_req: Request| {
                let in_handler = Arc::clone(&in_handler);
                async move {
                    in_handler.store(true, Ordering::SeqCst);
                    // Blocks the runtime's only thread, so the accept
                    // loop's task cannot run until the deadline passed.
                    std::thread::sleep(Duration::from_millis(600));
                    Ok(())
                }
            }))
        });
        let mut client = UnixStream::connect(&path).await.expect("connect");
        client.write_all(SPEC_REQUEST).await.expect("send");
        while !blocked.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        handle.shutdown();
        serving.await.expect("join").expect("run");
        assert!(
            !path.exists(),
            "run_until returned with its socket file in place"
        );
        assert!(UnixStream::connect(&path).await.is_err(), "still accepting");
    })
    .await;
}

/// `next` returns an error rather than wait forever once its acceptor task
/// is gone unfinished: here the runtime it was spawned on was dropped,
/// which drops its tasks. The listener is closed with it.
#[test]
fn next_fails_when_its_acceptor_is_dropped() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    let path = temp_socket("acceptor-dropped");
    let mut server = Server::bind_unix(&path).expect("bind");
    let first = runtime();
    let got = first.block_on(server.next(Some(Duration::from_millis(20))));
    assert!(got.expect("next").is_none(), "no request was sent");
    // Drops the acceptor task, unfinished.
    drop(first);
    assert!(!path.exists(), "the listener outlived its acceptor");
    let got = runtime().block_on(bounded(server.next(None)));
    let e = got.expect_err("the acceptor was lost, not shut down");
    assert!(e.to_string().contains("accept loop"), "{e}");
}

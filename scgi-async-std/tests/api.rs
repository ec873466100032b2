//! This runtime's own API: binding, socket files, adopting listeners, the
//! `next` loop, the connection cap, requests moved to other tasks, many
//! concurrent connections, and `run_until`. Behaviour shared with the other
//! runtimes is in `scenarios.rs` (and `smol.rs`).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use scgi_async_std::{Addr, Config, Request, Server, ShutdownHandle, TcpOptions};
use scgi_async_std::{UnixOptions, scgi_proto};
use scgi_test_support::scenarios::{SPEC_REQUEST, SPEC_RESPONSE, request};
use scgi_test_support::{CLIENT_TIMEOUT, Reply};

fn temp_socket(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "scgi-async-std-{}-{name}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

fn tcp_addr(server: &Server) -> std::net::SocketAddr {
    match server.local_addr() {
        Addr::Tcp(a) => *a,
        other => panic!("not TCP: {other}"),
    }
}

fn tcp_exchange(addr: std::net::SocketAddr, wire: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
    c.write_all(wire).expect("write");
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).expect("read");
    raw
}

fn unix_exchange(path: &std::path::Path, wire: &[u8]) -> Vec<u8> {
    let mut c = UnixStream::connect(path).expect("connect");
    c.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
    c.write_all(wire).expect("write");
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).expect("read");
    raw
}

async fn deepthought(mut req: Request) -> io::Result<()> {
    futures_lite::io::copy(&mut req, &mut futures_lite::io::sink()).await?;
    req.write_status_ok_text_content("text/plain").await?;
    req.write_all(b"42").await
}

/// Serves the spec example on `server`, on async-std, until the returned
/// handle closes it.
fn serve_spec(server: Server) -> (ShutdownHandle, thread::JoinHandle<()>) {
    let handle = server.shutdown_handle();
    let t = thread::spawn(move || {
        async_std::task::block_on(server.run(deepthought)).expect("run");
    });
    (handle, t)
}

fn close(handle: &ShutdownHandle, t: thread::JoinHandle<()>) {
    assert!(async_std::task::block_on(handle.close()));
    t.join().expect("server thread");
}

/// The futures and values a program moves between tasks are `Send`.
#[test]
fn send_where_it_matters() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Server>();
    send_sync::<Request>();
    send_sync::<ShutdownHandle>();
    send_sync::<scgi_async_std::Upgraded>();
    let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
    send(&server.next(None));
    send(&server.shutdown_handle().close());
    send(&server.run(deepthought));
}

#[test]
fn defaults() {
    // The settings every runtime shares (their values are tested in
    // scgi-proto).
    assert_eq!(Config::default(), scgi_proto::server::Config::DEFAULT);
    let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
    assert_eq!(*server.config(), Config::DEFAULT);
    assert_eq!(Server::DEFAULT_ADDR, "127.0.0.1:4000");
    assert_eq!(TcpOptions::default(), TcpOptions::DEFAULT);
    assert_eq!(UnixOptions::default(), UnixOptions::DEFAULT);
}

#[test]
fn reuse_addr_off_still_binds() {
    let server = Server::bind_tcp_with("127.0.0.1:0", &TcpOptions::DEFAULT.with_reuse_addr(false))
        .expect("bind");
    let addr = tcp_addr(&server);
    let (handle, t) = serve_spec(server);
    assert_eq!(tcp_exchange(addr, SPEC_REQUEST), SPEC_RESPONSE);
    close(&handle, t);
}

#[test]
fn unix_socket_mode_and_cleanup() {
    let path = temp_socket("mode");
    let server =
        Server::bind_unix_with(&path, &UnixOptions::DEFAULT.with_mode(0o660)).expect("bind");
    let meta = std::fs::metadata(&path).expect("socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let (handle, t) = serve_spec(server);
    assert_eq!(unix_exchange(&path, SPEC_REQUEST), SPEC_RESPONSE);
    close(&handle, t);
    assert!(!path.exists(), "the socket file outlived the server");
}

#[test]
fn unix_stale_socket_is_replaced() {
    let path = temp_socket("stale");
    drop(UnixListener::bind(&path).expect("stale socket"));
    assert!(path.exists());
    let server = Server::bind_unix(&path).expect("bind over a stale socket");
    let (handle, t) = serve_spec(server);
    assert_eq!(unix_exchange(&path, SPEC_REQUEST), SPEC_RESPONSE);
    close(&handle, t);
}

#[test]
fn unix_live_socket_and_other_files_are_kept() {
    let path = temp_socket("live");
    let _live = UnixListener::bind(&path).expect("live socket");
    let e = Server::bind_unix(&path).expect_err("someone listens there");
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    let file = temp_socket("file");
    std::fs::write(&file, b"not a socket").expect("file");
    let e = Server::bind_unix(&file).expect_err("not a socket");
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&file).expect("kept"), b"not a socket");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn adopts_listeners() {
    // A std TCP listener, as socket activation hands over.
    let std_tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = std_tcp.local_addr().expect("addr");
    let (handle, t) = serve_spec(Server::from_listener(std_tcp).expect("adopt"));
    assert_eq!(tcp_exchange(addr, SPEC_REQUEST), SPEC_RESPONSE);
    close(&handle, t);

    // A std Unix listener: its socket file is the owner's to remove.
    let path = temp_socket("adopted");
    let std_unix = UnixListener::bind(&path).expect("bind");
    let (handle, t) = serve_spec(Server::from_listener(std_unix).expect("adopt"));
    assert_eq!(unix_exchange(&path, SPEC_REQUEST), SPEC_RESPONSE);
    close(&handle, t);
    assert!(path.exists(), "removed a socket file it did not create");
    let _ = std::fs::remove_file(&path);

    // async-std's own listener.
    let listener =
        async_std::task::block_on(async_std::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let listener = std::net::TcpListener::try_from(listener).expect("off async-std's reactor");
    let (handle, t) = serve_spec(Server::from_listener(listener).expect("adopt"));
    assert_eq!(tcp_exchange(addr, SPEC_REQUEST), SPEC_RESPONSE);
    close(&handle, t);
}

/// `next` hands out requests one at a time: a timeout gives `None`, a
/// request written to and dropped is answered, one dropped untouched gets
/// 204, bad requests never show up, and closing answers a request left in
/// the queue with 503.
#[test]
fn next_loop() {
    async_std::task::block_on(async {
        let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let idle = server
            .next(Some(Duration::from_millis(50)))
            .await
            .expect("next");
        assert!(idle.is_none(), "a request out of nowhere");

        let client = thread::spawn(move || tcp_exchange(addr, SPEC_REQUEST));
        let mut req = server.next(None).await.expect("next").expect("a request");
        assert_eq!(req.headers().path(), Some(&b"/deepthought"[..]));
        assert_eq!(req.content_length(), 27);
        let mut body = String::new();
        req.read_to_string(&mut body).await.expect("body");
        assert_eq!(body, "What is the answer to life?");
        assert_eq!(req.body_remaining(), 0);
        req.write_status_ok_text_content("text/plain")
            .await
            .expect("head");
        req.write_all(b"42").await.expect("body");
        drop(req);
        assert_eq!(client.join().expect("client"), SPEC_RESPONSE);

        // Bad requests are answered by the server and skipped.
        let bad = thread::spawn(move || tcp_exchange(addr, b"GET / HTTP/1.1\r\n\r\n"));
        let good = thread::spawn(move || tcp_exchange(addr, &request("GET", "/untouched", b"")));
        let req = server.next(None).await.expect("next").expect("a request");
        assert_eq!(req.headers().path(), Some(&b"/untouched"[..]));
        req.finish().await.expect("finish");
        Reply::parse(&bad.join().expect("bad client")).assert_error(400);
        let reply = Reply::parse(&good.join().expect("good client"));
        assert_eq!(reply.status, 204);

        // Queued, never taken: answered 503 when the server closes.
        // Connected (so in the backlog at least) before the server closes.
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
        c.write_all(SPEC_REQUEST).expect("write");
        let queued = thread::spawn(move || {
            let mut raw = Vec::new();
            c.read_to_end(&mut raw).expect("read");
            raw
        });
        // Queued by now or still in the backlog, it is answered 503 either
        // way: closing drains the backlog into the closed queue.
        Timer::after(Duration::from_millis(50)).await;
        assert!(server.close().await);
        let raw = queued.join().expect("queued client");
        Reply::parse(&raw).assert_error(503);
    });
}

/// A handler may move its request into a task of its own and return: the
/// connection stays open until that task drops the request.
#[test]
fn request_moved_to_another_task() {
    let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
    let addr = tcp_addr(&server);
    let handle = server.shutdown_handle();
    let t = thread::spawn(move || {
        async_std::task::block_on(server.run(|req| async move {
            async_std::task::spawn(async move {
                Timer::after(Duration::from_millis(20)).await;
                deepthought(req).await
            });
            Ok(())
        }))
        .expect("run");
    });
    assert_eq!(tcp_exchange(addr, SPEC_REQUEST), SPEC_RESPONSE);
    close(&handle, t);
}

/// With one connection allowed, a second client is not served while the
/// first is open, and is served once it closes. (The check that it is not
/// served early can only pass wrongly, never fail wrongly.)
#[test]
fn connection_cap() {
    let server = Server::bind_tcp("127.0.0.1:0")
        .expect("bind")
        .with_config(Config::default().with_max_connections(1));
    let addr = tcp_addr(&server);
    let handle = server.shutdown_handle();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    let t = thread::spawn(move || {
        async_std::task::block_on(server.run(move |mut req| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut chunk = [0u8; 1024];
                loop {
                    let n = req.read(&mut chunk).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    req.write_all(&chunk[..n]).await?;
                    req.flush().await?;
                }
            }
        }))
        .expect("run");
    });
    let mut first = TcpStream::connect(addr).expect("connect");
    // Half of the body: the handler echoes it and waits for the rest.
    let wire = request("POST", "/", b"abcdef");
    first.write_all(&wire[..wire.len() - 3]).expect("write");
    first
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("timeout");
    let mut got = [0u8; 3];
    first.read_exact(&mut got).expect("echo");
    assert_eq!(&got, b"abc");

    let second_done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&second_done);
    let second = thread::spawn(move || {
        let raw = tcp_exchange(addr, &request("POST", "/", b"xyz"));
        flag.store(true, Ordering::SeqCst);
        raw
    });
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        served.load(Ordering::SeqCst),
        1,
        "the cap let a second connection in"
    );
    assert!(!second_done.load(Ordering::SeqCst));

    first.write_all(b"def").expect("rest of the body");
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).expect("end");
    assert_eq!(rest, b"def");
    drop(first);
    assert_eq!(second.join().expect("second"), b"xyz");
    assert_eq!(served.load(Ordering::SeqCst), 2);
    close(&handle, t);
}

/// 2 000 connections open at once, every handler waiting until all of them
/// have arrived: all are served, none refused or failed. Bounded by
/// `CLIENT_TIMEOUT`.
#[test]
fn thousands_of_concurrent_connections() {
    const N: usize = 2000;
    let server = Server::bind_tcp_with("127.0.0.1:0", &TcpOptions::DEFAULT.with_backlog(4096))
        .expect("bind")
        .with_config(Config::default().with_max_connections(N));
    let addr = tcp_addr(&server);
    let handle = server.shutdown_handle();
    let arrived = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(event_listener::Event::new());
    let (a, e) = (Arc::clone(&arrived), Arc::clone(&all_in));
    let t = thread::spawn(move || {
        async_std::task::block_on(server.run(move |req| {
            let (arrived, all_in) = (Arc::clone(&a), Arc::clone(&e));
            async move {
                if arrived.fetch_add(1, Ordering::SeqCst) + 1 == N {
                    all_in.notify(usize::MAX);
                }
                loop {
                    let listener = all_in.listen();
                    if arrived.load(Ordering::SeqCst) >= N {
                        break;
                    }
                    listener.await;
                }
                deepthought(req).await
            }
        }))
        .expect("run");
    });
    let clients = async {
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                async_std::task::spawn(async move {
                    let mut c = Async::<TcpStream>::connect(addr).await?;
                    c.write_all(SPEC_REQUEST).await?;
                    let mut raw = Vec::new();
                    c.read_to_end(&mut raw).await?;
                    io::Result::Ok(raw)
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            assert_eq!(task.await.expect("client"), SPEC_RESPONSE);
            ok += 1;
        }
        ok
    };
    let served = async_std::task::block_on(future::or(async { Some(clients.await) }, async {
        Timer::after(CLIENT_TIMEOUT).await;
        None
    }));
    assert_eq!(served, Some(N), "not all clients were served in time");
    close(&handle, t);
}

/// `run_until` stops when its future completes, after finishing the
/// requests in flight.
#[test]
fn run_until_a_future() {
    let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
    let addr = tcp_addr(&server);
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let t = thread::spawn(move || {
        async_std::task::block_on(server.run_until(deepthought, async move {
            let _ = stopped.recv().await;
        }))
    });
    assert_eq!(tcp_exchange(addr, SPEC_REQUEST), SPEC_RESPONSE);
    stop.send_blocking(()).expect("stop");
    t.join().expect("server thread").expect("run_until");
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after run_until returned"
    );
}

/// `run` after `next` is refused rather than racing the acceptor.
#[test]
fn run_after_next_is_refused() {
    async_std::task::block_on(async {
        let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let none = server.next(Some(Duration::from_millis(1))).await;
        assert!(none.expect("next").is_none());
        let e = server.run(deepthought).await.expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    });
}

/// A handler that panics after part of its response reached the socket
/// cannot turn it into a 500: the connection is reset, so the web server
/// sees a failed response rather than a short one passed off as complete.
#[test]
fn panic_after_partial_send_resets() {
    let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
    let addr = tcp_addr(&server);
    let handle = server.shutdown_handle();
    let t = thread::spawn(move || {
        async_std::task::block_on(server.run(|mut req| async move {
            req.write_status_ok_text_content("text/plain").await?;
            req.write_all(&[b'x'; 64 * 1024]).await?;
            req.flush().await?;
            panic!("after a partial send");
        }))
        .expect("run");
    });
    // Twice: the first panic did not take the server down.
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
        c.write_all(&request("GET", "/", b"")).expect("write");
        let mut raw = Vec::new();
        let err = c.read_to_end(&mut raw).expect_err("a reset, not an end");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
    close(&handle, t);
}

const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// A peer that stops reading makes the handler's write fail at the write
/// timeout, not at a multiple of it (each stalled write must fail within
/// 1.6 x the timeout of its start: the timeout's meaning, not a speed;
/// pieces of 50 000 bytes, not a multiple of the socket buffers, so the
/// write that stalls first moves a few bytes); the server goes on serving.
#[test]
fn write_timeout() {
    let server = Server::bind_tcp("127.0.0.1:0")
        .expect("bind")
        .with_config(Config::default().with_write_timeout(WRITE_TIMEOUT));
    let addr = tcp_addr(&server);
    let handle = server.shutdown_handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = thread::spawn(move || {
        async_std::task::block_on(server.run(move |mut req| {
            let tx = tx.clone();
            async move {
                req.write_status_ok_text_content("text/plain").await?;
                if req.headers().path() == Some(b"/flood") {
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
                    return result;
                }
                req.write_all(b"ok").await
            }
        }))
        .expect("run");
    });
    let mut stalled = TcpStream::connect(addr).expect("connect");
    stalled
        .write_all(&request("GET", "/flood", b""))
        .expect("write");
    let failed = rx
        .recv_timeout(CLIENT_TIMEOUT)
        .expect("the write never timed out");
    let (failed, waited) = failed;
    let kind = failed.expect_err("250 MB fit in the socket buffers");
    assert_eq!(kind, io::ErrorKind::TimedOut);
    assert!(
        waited < WRITE_TIMEOUT * 8 / 5,
        "a {WRITE_TIMEOUT:?} write timeout cut the write after {waited:?}"
    );
    drop(stalled);
    let reply = Reply::parse(&tcp_exchange(addr, &request("GET", "/", b"")));
    assert_eq!(reply.body, b"ok");
    close(&handle, t);
}

/// A body read that timed out times out again when retried (each wait
/// gets a deadline of its own) rather than waiting forever.
#[test]
fn timed_out_body_read_times_out_again() {
    async_std::task::block_on(async {
        let mut server = Server::bind_tcp("127.0.0.1:0")
            .expect("bind")
            .with_config(Config::default().with_body_timeout(Duration::from_millis(50)));
        let mut c = TcpStream::connect(tcp_addr(&server)).expect("connect");
        let wire = request("POST", "/", b"hello");
        c.write_all(&wire[..wire.len() - 5])
            .expect("write the head");
        let mut req = server
            .next(Some(CLIENT_TIMEOUT))
            .await
            .expect("next")
            .expect("a request");
        for _ in 0..2 {
            let read = future::or(async { Some(req.read(&mut [0u8; 8]).await) }, async {
                Timer::after(CLIENT_TIMEOUT).await;
                None
            });
            let e = read
                .await
                .expect("a retried read hung")
                .expect_err("no body");
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        }
        drop((req, c));
        assert!(server.close().await);
    });
}

/// Dropping a `next`-style server stops its acceptor: the port closes.
#[test]
fn dropping_the_server_stops_accepting() {
    async_std::task::block_on(async {
        let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let _ = server.next(Some(Duration::from_millis(1))).await;
        drop(server);
        let start = std::time::Instant::now();
        while TcpStream::connect(addr).is_ok() {
            assert!(start.elapsed() < CLIENT_TIMEOUT, "still accepting");
            Timer::after(Duration::from_millis(20)).await;
        }
    });
}

/// After a `101`, `into_parts` hands over the socket and the bytes that
/// followed the request, and the server no longer counts the connection;
/// `chunk` hands out the body piece by piece before that.
#[test]
fn chunks_then_upgrade_into_parts() {
    async_std::task::block_on(async {
        let mut server = Server::bind("127.0.0.1:0").expect("bind");
        let addr = tcp_addr(&server);
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = request("GET", "/tunnel", &body);
        wire.extend_from_slice(b"ping");
        let client = thread::spawn(move || {
            let mut c = TcpStream::connect(addr).expect("connect");
            c.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
            c.write_all(&wire[..wire.len() - 99_000]).expect("first");
            thread::sleep(Duration::from_millis(50));
            c.write_all(&wire[wire.len() - 99_000..]).expect("rest");
            let mut raw = Vec::new();
            c.read_to_end(&mut raw).expect("read");
            raw
        });

        let mut req = server.next(None).await.expect("next").expect("request");
        let mut got = Vec::new();
        while let Some(piece) = req.chunk().await.expect("chunk") {
            got.extend_from_slice(&piece);
        }
        assert_eq!(got, body);
        req.write_head(101, &[("Upgrade", "test")])
            .await
            .expect("head");
        let upgraded = req.into_upgraded().await.expect("upgrade");
        let (stream, leftover) = upgraded.into_parts().expect("parts");
        // `ping` came after the body: in the bytes read with it, or still
        // in the socket.
        let mut ping = leftover.to_vec();
        while ping.len() < 4 {
            let mut more = [0u8; 4];
            let n = (&stream).read(&mut more).await.expect("tunnel read");
            assert!(n > 0, "closed early");
            ping.extend_from_slice(&more[..n]);
        }
        assert_eq!(ping, b"ping");
        // The server no longer waits for this connection.
        assert!(server.close().await);
        (&stream).write_all(b"pong").await.expect("tunnel write");
        drop(stream);

        let raw = client.join().expect("client");
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.starts_with("Status: 101 Switching Protocols\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\npong"), "{text}");
    });
}

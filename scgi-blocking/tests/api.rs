//! This runtime's own API: binding, socket files, adopting listeners, the
//! `next` loop, the connection cap, and the request object. Behaviour
//! shared with the other runtimes is in `scenarios.rs`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use scgi_blocking::{Addr, Config, Server, TcpOptions, UnixOptions};
use scgi_test_support::scenarios::{SPEC_REQUEST, SPEC_RESPONSE, request};
use scgi_test_support::{CLIENT_TIMEOUT, Reply};

fn temp_socket(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "scgi-blocking-{}-{name}-{}.sock",
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

/// Serves the spec example on `server` until the returned handle closes it.
fn serve_spec(server: Server) -> (scgi_blocking::ShutdownHandle, thread::JoinHandle<()>) {
    let handle = server.shutdown_handle();
    let t = thread::spawn(move || {
        server
            .run(|req| {
                io::copy(req, &mut io::sink())?;
                req.write_status_ok_text_content("text/plain")?;
                req.write_all(b"42")
            })
            .expect("run");
    });
    (handle, t)
}

#[test]
fn defaults() {
    let c = Config::default();
    assert_eq!(c, Config::DEFAULT);
    assert_eq!(c.head_timeout, Duration::from_secs(30));
    assert_eq!(c.body_timeout, Duration::from_secs(60));
    assert_eq!(c.write_timeout, Duration::from_secs(60));
    // 0: the pool sizes itself (4 x available parallelism, at least 4).
    assert_eq!(c.workers, 0);
    assert_eq!(c.max_connections, 1024);
    assert_eq!(c.proto, scgi_blocking::scgi_proto::Config::DEFAULT);
    assert_eq!(Server::DEFAULT_ADDR, "127.0.0.1:4000");
    assert!(TcpOptions::default().reuse_addr);
    assert!(UnixOptions::default().remove_stale);
}

#[test]
fn ipv6_loopback() {
    if TcpListener::bind("[::1]:0").is_err() {
        return; // no IPv6 on this machine
    }
    let server = Server::bind_tcp_with("[::1]:0", &TcpOptions::DEFAULT.with_only_v6(Some(true)))
        .expect("bind");
    let addr = tcp_addr(&server);
    assert!(addr.is_ipv6());
    let (handle, t) = serve_spec(server);
    assert_eq!(tcp_exchange(addr, SPEC_REQUEST), SPEC_RESPONSE);
    assert!(handle.close());
    t.join().expect("server");
}

#[test]
fn reuse_addr_off_still_binds() {
    let server = Server::bind_tcp_with("127.0.0.1:0", &TcpOptions::DEFAULT.with_reuse_addr(false))
        .expect("bind");
    let addr = tcp_addr(&server);
    let (handle, t) = serve_spec(server);
    assert_eq!(tcp_exchange(addr, SPEC_REQUEST), SPEC_RESPONSE);
    assert!(handle.close());
    t.join().expect("server");
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
    assert!(handle.close());
    t.join().expect("server");
    assert!(!path.exists(), "the socket file outlived the server");
}

#[test]
fn unix_stale_socket_is_replaced() {
    let path = temp_socket("stale");
    // A crashed server leaves its socket file behind (std's listener does
    // not remove it on drop).
    drop(UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let server = Server::bind_unix(&path).expect("bind over a stale socket");
    let (handle, t) = serve_spec(server);
    assert_eq!(unix_exchange(&path, SPEC_REQUEST), SPEC_RESPONSE);
    assert!(handle.close());
    t.join().expect("server");
}

#[test]
fn unix_live_socket_and_other_files_are_kept() {
    let path = temp_socket("live");
    let live = UnixListener::bind(&path).expect("bind");
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

#[test]
fn adopts_listeners() {
    let tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
    tcp.set_nonblocking(true).expect("nonblocking"); // as inherited, maybe
    let server = Server::from_listener(tcp).expect("adopt");
    let addr = tcp_addr(&server);
    let (handle, t) = serve_spec(server);
    assert_eq!(tcp_exchange(addr, SPEC_REQUEST), SPEC_RESPONSE);
    assert!(handle.close());
    t.join().expect("server");

    let path = temp_socket("adopted");
    let server = Server::from_listener(UnixListener::bind(&path).expect("bind")).expect("adopt");
    let (handle, t) = serve_spec(server);
    assert_eq!(unix_exchange(&path, SPEC_REQUEST), SPEC_RESPONSE);
    assert!(handle.close());
    t.join().expect("server");
    // Not ours to remove: whoever bound it owns the file.
    assert!(path.exists());
    std::fs::remove_file(&path).expect("cleanup");
}

#[test]
fn next_loop() {
    let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
    let addr = tcp_addr(&server);
    assert!(
        server
            .next(Some(Duration::from_millis(50)))
            .expect("next")
            .is_none(),
        "a request out of nowhere"
    );

    let client = thread::spawn(move || {
        let wire = scgi_blocking::scgi_proto::encode_request_to_vec(
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
        tcp_exchange(addr, &wire)
    });
    let mut req = server
        .next(Some(CLIENT_TIMEOUT))
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
    let err = req.upgrade().expect_err("body not read");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let mut body = String::new();
    req.read_to_string(&mut body).expect("body");
    assert_eq!(body, "hello body");
    assert_eq!(req.body_remaining(), 0);
    let err = req
        .write_head(200, &[("X-Bad", "a\r\nb")])
        .expect_err("response splitting");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    req.write_head(201, &[("Content-Type", "text/plain")])
        .expect("head");
    req.write_all(b"made").expect("body");
    req.finish().expect("finish");
    let reply = Reply::parse(&client.join().expect("client"));
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body, b"made");

    // After shutdown, next() says there is nothing more.
    server.shutdown_handle().shutdown();
    assert!(server.next(None).expect("next").is_none());
    assert!(server.close());
}

#[test]
fn next_skips_bad_requests() {
    let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
    let addr = tcp_addr(&server);
    let client = thread::spawn(move || {
        let bad = tcp_exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
        let good = tcp_exchange(addr, SPEC_REQUEST);
        (bad, good)
    });
    let mut req = server
        .next(Some(CLIENT_TIMEOUT))
        .expect("next")
        .expect("the good request");
    assert_eq!(req.headers().path(), Some(&b"/deepthought"[..]));
    req.write_status_ok_text_content("text/plain")
        .expect("head");
    req.write_all(b"42").expect("body");
    drop(req);
    let (bad, good) = client.join().expect("client");
    Reply::parse(&bad).assert_error(400);
    assert_eq!(good, SPEC_RESPONSE);
}

#[test]
fn dropping_the_server_stops_accepting() {
    let mut server = Server::bind_tcp("127.0.0.1:0").expect("bind");
    let addr = tcp_addr(&server);
    // Start the acceptor.
    assert!(
        server
            .next(Some(Duration::from_millis(10)))
            .expect("next")
            .is_none()
    );
    drop(server);
    let start = std::time::Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(start.elapsed() < CLIENT_TIMEOUT, "still accepting");
        thread::sleep(Duration::from_millis(10));
    }
}

/// With one connection allowed, a second client is not served while the
/// first is open, and is served once it closes. (The check that it is not
/// served early can only pass wrongly, never fail wrongly.)
#[test]
fn connection_cap() {
    let server = Server::bind_tcp("127.0.0.1:0")
        .expect("bind")
        .with_config(Config::default().with_max_connections(1).with_workers(4));
    let addr = tcp_addr(&server);
    let handle = server.shutdown_handle();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    let t = thread::spawn(move || {
        server
            .run(move |req| {
                counter.fetch_add(1, Ordering::SeqCst);
                scgi_test_support::echo_body(req)
            })
            .expect("run");
    });
    let mut first = TcpStream::connect(addr).expect("connect");
    // Half of the body: the handler echoes it and waits for the rest.
    let wire = request("POST", "/", b"abcdef");
    first.write_all(&wire[..wire.len() - 3]).expect("write");
    // The request is in flight once its handler has echoed something.
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
    assert!(handle.close());
    t.join().expect("server");
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
        server
            .run(|req| {
                req.write_status_ok_text_content("text/plain")?;
                req.write_all(&[b'x'; 64 * 1024])?;
                req.flush()?;
                panic!("after a partial send");
            })
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
    assert!(handle.close());
    t.join().expect("server");
}

/// A peer that stops reading makes the handler's write fail after the
/// write timeout, which frees the worker.
#[test]
fn write_timeout() {
    let server = Server::bind_tcp("127.0.0.1:0").expect("bind").with_config(
        Config::default()
            .with_write_timeout(Duration::from_millis(300))
            .with_workers(1),
    );
    let addr = tcp_addr(&server);
    let handle = server.shutdown_handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = thread::spawn(move || {
        server
            .run(move |req| {
                if req.headers().path() == Some(b"/flood") {
                    req.write_status_ok_text_content("text/plain")?;
                    let chunk = vec![b'x'; 64 * 1024];
                    let result = (0..4096).try_for_each(|_| req.write_all(&chunk));
                    let _ = tx.send(result.as_ref().map_err(io::Error::kind).copied());
                    return result;
                }
                req.write_status_ok_text_content("text/plain")?;
                req.write_all(b"ok")
            })
            .expect("run");
    });
    let mut stalled = TcpStream::connect(addr).expect("connect");
    stalled
        .write_all(&request("GET", "/flood", b""))
        .expect("write");
    let failed = rx
        .recv_timeout(CLIENT_TIMEOUT)
        .expect("the write never timed out");
    let kind = failed.expect_err("256 MiB fit in the socket buffers");
    assert!(
        matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        "{kind:?}"
    );
    drop(stalled);
    // The only worker is free again.
    let reply = Reply::parse(&tcp_exchange(addr, &request("GET", "/", b"")));
    assert_eq!(reply.body, b"ok");
    assert!(handle.close());
    t.join().expect("server");
}

/// Over TCP the workers accept themselves: a connection the kernel
/// completed while the only worker was busy is still served after
/// shutdown, and the listener closes at once (the backlog is taken first).
#[test]
fn backlog_served_after_shutdown() {
    let server = Server::bind_tcp("127.0.0.1:0")
        .expect("bind")
        .with_config(Config::default().with_workers(1));
    let addr = tcp_addr(&server);
    let handle = server.shutdown_handle();
    let t = thread::spawn(move || {
        server.run(scgi_test_support::echo_body).expect("run");
    });
    // The worker is held by a request whose body is half sent.
    let mut first = TcpStream::connect(addr).expect("connect");
    first
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("timeout");
    let wire = request("POST", "/", b"abcdef");
    first.write_all(&wire[..wire.len() - 3]).expect("write");
    let mut got = [0u8; 3];
    first.read_exact(&mut got).expect("echo");
    // Completed by the kernel, waiting in the backlog.
    let mut second = TcpStream::connect(addr).expect("connect second");
    second
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("timeout");
    second
        .write_all(&request("POST", "/", b"xyz"))
        .expect("write second");

    handle.shutdown();
    let start = std::time::Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(start.elapsed() < CLIENT_TIMEOUT, "still accepting");
        thread::sleep(Duration::from_millis(10));
    }
    first.write_all(b"def").expect("rest of the body");
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).expect("end");
    assert_eq!(rest, b"def");
    let mut raw = Vec::new();
    second.read_to_end(&mut raw).expect("second");
    assert_eq!(raw, b"xyz");
    t.join().expect("server");
}

/// `bind` takes the address forms `scgi_pass` takes, and serves on each.
#[test]
fn bind_takes_one_address_string() {
    let path = temp_socket("bind-string");
    for addr in [
        "127.0.0.1:0",
        "[::1]:0",
        &format!("unix:{}", path.display()),
    ] {
        let server = Server::bind(addr).expect(addr);
        let local = server.local_addr().clone();
        let (handle, t) = serve_spec(server);
        let raw = match &local {
            Addr::Tcp(a) => tcp_exchange(*a, SPEC_REQUEST),
            Addr::Unix(_) => unix_exchange(&path, SPEC_REQUEST),
            other => panic!("{other}"),
        };
        assert_eq!(raw, SPEC_RESPONSE, "{addr}");
        assert!(handle.close());
        t.join().expect("server thread");
    }
    for bad in ["", "unix:", "no-port-here"] {
        assert!(Server::bind(bad).is_err(), "{bad:?}");
    }
}

/// `run_until` serves until its stop function returns, then shuts down
/// gracefully and returns.
#[test]
fn run_until_stops_when_the_stop_function_returns() {
    let server = Server::bind("127.0.0.1:0").expect("bind");
    let addr = tcp_addr(&server);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = thread::spawn(move || {
        server.run_until(
            |req| {
                io::copy(req, &mut io::sink())?;
                req.write_status_ok_text_content("text/plain")?;
                req.write_all(b"42")
            },
            move || {
                let _ = rx.recv();
            },
        )
    });
    assert_eq!(tcp_exchange(addr, SPEC_REQUEST), SPEC_RESPONSE);
    tx.send(()).expect("send");
    t.join().expect("server thread").expect("run_until");
    // The listener is closed: nothing accepts any more.
    assert!(TcpStream::connect(addr).is_err());
}

/// After a `101`, `into_parts` hands over the socket and the bytes that
/// followed the request, and the server no longer counts the connection.
#[test]
fn upgrade_into_parts() {
    let mut server = Server::bind("127.0.0.1:0").expect("bind");
    let addr = tcp_addr(&server);
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
    let mut wire = request("GET", "/tunnel", b"body");
    wire.extend_from_slice(b"ping");
    c.write_all(&wire).expect("write");

    let mut req = server.next(None).expect("next").expect("request");
    let mut body = Vec::new();
    req.read_to_end(&mut body).expect("body");
    assert_eq!(body, b"body");
    req.write_head(101, &[("Upgrade", "test")]).expect("head");
    let upgraded = req.into_upgraded().expect("upgrade");
    let (mut stream, leftover) = upgraded.into_parts().expect("parts");
    assert_eq!(&leftover[..], b"ping");
    // The server no longer waits for this connection.
    assert!(server.close());
    stream.write_all(b"pong").expect("tunnel write");
    drop(stream);

    let mut raw = Vec::new();
    c.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("Status: 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\npong"), "{text}");
}

/// `chunk` hands out the body piece by piece, exactly `CONTENT_LENGTH`
/// bytes, whether they came with the head or later.
#[test]
fn chunks_give_the_whole_body() {
    let mut server = Server::bind("127.0.0.1:0").expect("bind");
    let addr = tcp_addr(&server);
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let wire = request("POST", "/", &body);
    let writer = thread::spawn(move || {
        let mut c = TcpStream::connect(addr).expect("connect");
        // The head and a little body first, the rest later.
        c.write_all(&wire[..wire.len() - 99_000]).expect("first");
        thread::sleep(Duration::from_millis(50));
        c.write_all(&wire[wire.len() - 99_000..]).expect("rest");
        let mut raw = Vec::new();
        c.read_to_end(&mut raw).expect("read");
        raw
    });
    let mut req = server.next(None).expect("next").expect("request");
    let mut got = Vec::new();
    let mut pieces = 0;
    while let Some(piece) = req.chunk().expect("chunk") {
        got.extend_from_slice(&piece);
        pieces += 1;
    }
    assert_eq!(got, body);
    assert!(pieces >= 2, "{pieces}");
    assert_eq!(req.chunk().expect("after the end"), None);
    req.write_response_head(scgi_proto::ResponseHead::new(200).reason("Fine"))
        .expect("head");
    drop(req);
    let raw = writer.join().expect("client");
    assert!(
        raw.starts_with(b"Status: 200 Fine\r\n"),
        "{}",
        raw.escape_ascii()
    );
    assert!(server.close());
}

/// A handler writing to a peer that stops reading is cut at the write
/// timeout, not at a multiple of it: a system call that moved a few bytes
/// before it waited used to restart the wait (a 500 ms timeout cut the
/// write after 1.02 s). The write that fails must fail within 1.6 × the
/// timeout of its start (a timeout's meaning, not a speed).
#[test]
fn a_stalled_reader_is_cut_at_the_write_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(500);
    let server = Server::bind("127.0.0.1:0")
        .expect("bind")
        .with_config(Config::default().with_write_timeout(TIMEOUT));
    let addr = tcp_addr(&server);
    let handle = server.shutdown_handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = thread::spawn(move || {
        let tx = std::sync::Mutex::new(tx);
        server
            .run(move |req| {
                req.write_status_ok_text_content("application/octet-stream")?;
                // Not a multiple of the socket buffers: the write that
                // stalls first moves a few bytes, then waits.
                let piece = vec![b'x'; 50_000];
                for _ in 0..400 {
                    let start = std::time::Instant::now();
                    if let Err(e) = req.write_all(&piece) {
                        let _ = tx.lock().expect("lock").send(start.elapsed());
                        return Err(e);
                    }
                }
                Ok(())
            })
            .expect("run");
    });
    let mut c = TcpStream::connect(addr).expect("connect");
    c.write_all(&request("GET", "/", b"")).expect("request");
    let waited = rx
        .recv_timeout(CLIENT_TIMEOUT)
        .expect("the write was never cut");
    assert!(
        waited < TIMEOUT * 8 / 5,
        "a {TIMEOUT:?} write timeout cut the write after {waited:?}"
    );
    drop(c);
    assert!(handle.close());
    t.join().expect("server thread");
}

//! What a request costs in allocations on the server, counted by a
//! counting global allocator on the runtime's only thread (the clients run
//! on another thread and are not counted). Fixed costs cancel out: the
//! count over 300 requests minus the count over 100, divided by 200.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;

use scgi_test_support::CLIENT_TIMEOUT;
use scgi_tokio::{Addr, Request, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator can run during thread teardown.
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: forwards every call unchanged to the system allocator; the
// counting touches only const-initialised thread-locals, which never
// allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A typical nginx request: 15 CGI variables and a short body.
fn nginx_like() -> Vec<u8> {
    scgi_tokio::scgi_proto::encode_request_to_vec(
        &[
            ("REQUEST_METHOD", "POST"),
            ("REQUEST_URI", "/hello?name=world"),
            ("QUERY_STRING", "name=world"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("DOCUMENT_URI", "/hello"),
            ("DOCUMENT_ROOT", "/var/www/html"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", "51234"),
            ("SERVER_PORT", "80"),
            ("SERVER_NAME", "localhost"),
            ("HTTP_HOST", "localhost"),
            ("HTTP_USER_AGENT", "alloc/1.0"),
            ("HTTP_ACCEPT", "*/*"),
        ],
        b"a=1&b=2",
    )
    .expect("valid request")
}

/// Reads the body into a stack buffer and answers with a fixed text.
async fn handler(mut req: Request) -> io::Result<()> {
    let mut body = [0u8; 64];
    let mut n = 0;
    loop {
        let read = req.read(&mut body[n..]).await?;
        if read == 0 {
            break;
        }
        n += read;
    }
    assert_eq!(&body[..n], b"a=1&b=2");
    req.write_status_ok_text_content("text/plain").await?;
    req.write_all(b"hello").await
}

fn exchange(addr: SocketAddr, wire: &[u8], response: &mut Vec<u8>) -> io::Result<()> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    c.write_all(wire)?;
    response.clear();
    c.read_to_end(response)?;
    assert!(
        response.starts_with(b"Status: 200 OK\r\n") && response.ends_with(b"hello"),
        "{:?}",
        response.escape_ascii().to_string()
    );
    Ok(())
}

/// The server's allocations per request, in steady state.
fn per_request() -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = Server::bind_tcp("127.0.0.1:0").expect("bind");
        let Addr::Tcp(addr) = *server.local_addr() else {
            unreachable!("bound on TCP")
        };
        let handle = server.shutdown_handle();
        let serving = tokio::spawn(server.run(handler));

        let (start, batches) = mpsc::sync_channel::<usize>(1);
        let (done, mut finished) = tokio::sync::mpsc::unbounded_channel::<io::Result<()>>();
        let client = std::thread::spawn(move || {
            let wire = nginx_like();
            let mut response = Vec::with_capacity(1024);
            while let Ok(k) = batches.recv() {
                let result = (0..k).try_for_each(|_| exchange(addr, &wire, &mut response));
                let _ = done.send(result);
            }
        });
        let mut batch = async |k: usize| -> usize {
            COUNT.with(|c| c.set(0));
            WATCHING.with(|w| w.set(true));
            start.send(k).expect("client thread");
            let result = finished.recv().await.expect("client thread");
            WATCHING.with(|w| w.set(false));
            result.expect("requests");
            COUNT.with(Cell::get)
        };
        // Warm up: the runtime's own structures (timer wheel levels, slabs)
        // grow on first use.
        batch(200).await;
        let small = batch(100).await;
        let large = batch(300).await;
        drop(start);
        client.join().expect("client");
        assert!(handle.close().await);
        serving.await.expect("server task").expect("run");
        (large as f64 - small as f64) / 200.0
    })
}

/// A connection costs tokio three allocations (the task; the socket's
/// reactor registration; one when that is released) and ours three: the
/// connection's future, boxed before it is spawned (tokio moves a spawned
/// future by value several times, and a connection's is 3-5 KiB), the
/// connection's state, boxed so that the request moving from the
/// connection's task to its handler and back does not copy it, and the
/// 4 KiB read buffer. Both boxes were measured faster than the copies they
/// replace (BENCHMARKS.md, "Per-request cost: copies cut"). Headers, body reads,
/// the response buffer, timeouts, the shutdown signals and the hand-back of
/// a dropped request allocate nothing.
#[test]
fn allocations_per_request() {
    let per = per_request();
    let budget = 6.0;
    assert!(
        per <= budget + 0.25,
        "{per} allocations per request (budget {budget})"
    );
}

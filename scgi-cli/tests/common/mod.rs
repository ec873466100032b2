//! What the tests share: running the real `scgi` binary with a bound on
//! its run time, the e2e app's backends, misbehaving raw backends, and a
//! gateway process.
//!
//! Every process, thread and loop here ends by itself: children are killed
//! after their time limit (and on drop), accept loops stop when dropped or
//! after [`RAW_BACKEND_LIFETIME`], reads and writes have timeouts. Loopback
//! only.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

pub use e2e::app::App;
pub use e2e::{Backend, TempDir, Transport};

/// How long any one `scgi` run may take in a test before it is killed and
/// the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// How long a raw backend accepts connections at most.
pub const RAW_BACKEND_LIFETIME: Duration = Duration::from_secs(60);

/// The binary under test.
pub fn scgi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scgi"))
}

/// What a finished run left.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// The exit code (`None`: killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `cmd` with `stdin` as its input; kills it and panics after
/// [`RUN_LIMIT`].
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scgi");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let feeder = thread::spawn(move || {
        // A command that does not read its input closes the pipe: fine.
        let _ = input.write_all(&stdin);
    });
    let out = reader(child.stdout.take().expect("stdout"));
    let err = reader(child.stderr.take().expect("stderr"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} ran over {RUN_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    let stdout = out.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    Output {
        status,
        stdout,
        stderr,
        elapsed: started.elapsed(),
    }
}

fn reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// A backend serving the e2e app (`/echo`, `/inspect`, `/status/NNN`...,
/// see `e2e::app`) with scgi-blocking, and the temp dir of its socket.
pub struct AppBackend {
    pub backend: Backend,
    _dir: TempDir,
}

impl AppBackend {
    pub fn start(transport: Transport) -> AppBackend {
        let dir = TempDir::new("cli").expect("temp dir");
        let backend = Backend::start(
            e2e::runtime::blocking::start,
            transport,
            dir.path(),
            App::new("cli-1"),
        )
        .expect("start the e2e app on scgi-blocking");
        AppBackend { backend, _dir: dir }
    }

    /// The address as `scgi` takes it.
    pub fn addr(&self) -> String {
        self.backend.addr().to_string()
    }
}

/// How a raw backend treats each connection.
pub type Behaviour = fn(TcpStream);

/// An scgi-blocking backend on a Unix socket that writes its head at once
/// and then echoes the body as it reads it (64 KiB at a time), stopped on
/// drop.
pub struct StreamingEcho {
    pub addr: String,
    handle: scgi_blocking::ShutdownHandle,
    serving: Option<thread::JoinHandle<io::Result<()>>>,
    _dir: TempDir,
}

impl StreamingEcho {
    pub fn start() -> StreamingEcho {
        let dir = TempDir::new("cli-stream").expect("temp dir");
        let path = dir.path().join("echo.sock");
        let server = scgi_blocking::Server::bind_unix(&path).expect("bind");
        let handle = server.shutdown_handle();
        let serving = thread::spawn(move || {
            server.run(|req| {
                let length = req.content_length().to_string();
                req.write_head(200, &[("Content-Length", length.as_str())])?;
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    let n = req.read(&mut chunk)?;
                    if n == 0 {
                        return Ok(());
                    }
                    req.write_all(&chunk[..n])?;
                    req.flush()?;
                }
            })
        });
        StreamingEcho {
            addr: format!("unix:{}", path.display()),
            handle,
            serving: Some(serving),
            _dir: dir,
        }
    }
}

impl Drop for StreamingEcho {
    fn drop(&mut self) {
        if self.handle.close()
            && let Some(s) = self.serving.take()
        {
            let _ = s.join();
        }
    }
}

/// A TCP backend on loopback that handles each connection with `behave`
/// on a thread of its own, until dropped or [`RAW_BACKEND_LIFETIME`].
pub struct RawBackend {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl RawBackend {
    pub fn start(behave: Behaviour) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let acceptor = thread::spawn(move || {
            let started = Instant::now();
            while !flag.load(Ordering::Relaxed) && started.elapsed() < RAW_BACKEND_LIFETIME {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                        let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
                        thread::spawn(move || behave(conn));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        RawBackend {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Reads the SCGI request's netstring (or whatever comes first).
pub fn read_some(conn: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = conn.read(&mut buf);
}

/// Answers bytes that are not a CGI response.
pub fn garbage(mut conn: TcpStream) {
    read_some(&mut conn);
    let _ = conn.write_all(b"<html>this is not a CGI head</html>\r\n\r\n");
}

/// Closes without a byte.
pub fn close_early(mut conn: TcpStream) {
    read_some(&mut conn);
}

/// Sends half a head, then closes.
pub fn half_head(mut conn: TcpStream) {
    read_some(&mut conn);
    let _ = conn.write_all(b"Status: 200 OK\r\nContent-Ty");
}

/// Promises 100 bytes and sends 5.
pub fn short_body(mut conn: TcpStream) {
    read_some(&mut conn);
    let _ = conn.write_all(b"Status: 200 OK\r\nContent-Length: 100\r\n\r\nshort");
}

/// Reads the request, then says nothing for 10 s (the read timeout ends
/// it).
pub fn never_answer(mut conn: TcpStream) {
    read_some(&mut conn);
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A loopback address nothing listens on (bound, then closed).
pub fn dead_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a.to_string()
}

/// A running `scgi gateway`, killed on drop; its stderr (the access log)
/// is collected.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Starts `scgi gateway --listen 127.0.0.1:0 --backend BACKEND EXTRA...`
    /// and waits (at most 30 s) for its "listening on" line.
    pub fn start(backend: &str, extra: &[&str]) -> Gateway {
        let mut child = scgi()
            .args(["gateway", "--listen", "127.0.0.1:0", "--backend", backend])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn scgi gateway");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let mut tx = Some(tx);
            while let Some(Ok(line)) = lines.next() {
                if let Some(tx) = tx.take_if(|_| line.contains("listening on http://")) {
                    let _ = tx.send(line.clone());
                }
                let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the gateway did not start: {}",
                    log.lock().unwrap_or_else(|p| p.into_inner())
                );
            }
        };
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Gateway { child, addr, log }
    }

    /// The access log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the access log shows `needle` within 5 s (the log line is
    /// written as the response goes out, and read here on another thread).
    pub fn log_shows(&self, needle: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `raw` bytes to `addr` and reads until the server closes (at most
/// 10 s).
pub fn raw_http(addr: SocketAddr, raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A reset after the answer (unread request bytes) still leaves
            // the answer.
            Err(_) if !out.is_empty() => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// The SCGI variables in an `/inspect` body, in wire order.
pub fn inspect_vars(body: &[u8]) -> Vec<(String, String)> {
    let mut fields = body.split(|&b| b == 0);
    let mut out = Vec::new();
    while let (Some(n), Some(v)) = (fields.next(), fields.next()) {
        out.push((
            String::from_utf8_lossy(n).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        ));
    }
    out
}

/// The first value of `name` in `/inspect` variables.
pub fn var<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
    vars.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Deterministic pseudo-random bytes (xorshift64).
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[0]
        })
        .collect()
}

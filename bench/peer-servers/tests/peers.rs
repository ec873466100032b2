//! Starts each peer binary on a loopback TCP port and on a Unix socket and
//! checks its answers byte for byte: the counted hello, the 4 KiB echo, the
//! 400 for a malformed netstring, and a connection closed before its first
//! byte (a readiness probe) costing neither a count nor the server. The
//! Python peer's tests are ignored unless asked for:
//!
//! ```text
//! PEER_PYTHON=$(bench/peer-python.sh /tmp/peer-venv) \
//!     cargo test -p bench-peer-servers -- --include-ignored
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use bench_peer_servers::{BAD_REQUEST, echo, hello};

/// How long any one read, or the server's start, may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A running peer: killed (and waited for) when dropped, so also when an
/// assertion fails; a Unix socket file it listened on is removed.
struct Peer {
    child: Child,
    addr: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SIGTERM first (the Python peer stops its children on it), then
        // SIGKILL if it has not exited within TIMEOUT.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && start.elapsed() < TIMEOUT {
            sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = self.addr.strip_prefix("unix:") {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One connection to the peer, either transport.
trait Conn: Read + Write {
    /// Half-closes it: the request is all sent.
    fn end_request(&self) -> std::io::Result<()>;
}

impl Conn for TcpStream {
    fn end_request(&self) -> std::io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Conn for UnixStream {
    fn end_request(&self) -> std::io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Peer {
    /// Starts `command ADDR`.
    fn start(mut command: Command, addr: String) -> Peer {
        let child = command
            .arg(&addr)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the peer");
        Peer { child, addr }
    }

    /// Connects, retrying until the peer listens (or [`TIMEOUT`]); reads
    /// on the connection time out after [`TIMEOUT`].
    fn connect(&mut self) -> Box<dyn Conn> {
        let start = Instant::now();
        loop {
            let conn = match self.addr.strip_prefix("unix:") {
                Some(path) => UnixStream::connect(path).and_then(|s| {
                    s.set_read_timeout(Some(TIMEOUT))?;
                    Ok(Box::new(s) as Box<dyn Conn>)
                }),
                None => TcpStream::connect(&self.addr).and_then(|s| {
                    s.set_read_timeout(Some(TIMEOUT))?;
                    Ok(Box::new(s) as Box<dyn Conn>)
                }),
            };
            match conn {
                Ok(conn) => return conn,
                Err(e) => {
                    if let Some(status) = self.child.try_wait().expect("poll the peer") {
                        panic!("the peer exited ({status}) before listening");
                    }
                    assert!(start.elapsed() < TIMEOUT, "the peer never listened: {e}");
                    sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Sends `request` on a new connection, half-closes it, and returns
    /// everything the peer answers before it closes.
    fn exchange(&mut self, request: &[u8]) -> Vec<u8> {
        self.exchange_split(request, request.len())
    }

    /// [`Peer::exchange`], with a pause after the first `at` bytes (so the
    /// peer reads the request in two pieces).
    fn exchange_split(&mut self, request: &[u8], at: usize) -> Vec<u8> {
        let (first, rest) = request.split_at(at);
        let mut answer = Vec::new();
        let mut s = self.connect();
        s.write_all(first).unwrap();
        sleep(Duration::from_millis(50));
        s.write_all(rest).unwrap();
        s.end_request().unwrap();
        s.read_to_end(&mut answer).expect("read the answer");
        answer
    }
}

fn get() -> Vec<u8> {
    scgi_proto::encode_request_to_vec(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")], b"")
        .unwrap()
}

fn post(body: &[u8]) -> Vec<u8> {
    scgi_proto::encode_request_to_vec(
        &[("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/echo")],
        body,
    )
    .unwrap()
}

/// Checks the peer that `command ADDR` starts, on `addr`; then that none of
/// its processes (the Python peer's children carry the parent's command
/// line) outlive its SIGTERM.
fn check(command: Command, addr: String) {
    let pattern = format!(" {addr}$");
    serve(Peer::start(command, addr));
    let left = Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "left running: {left:?}");
}

/// The exchanges, and the peer still running after them.
fn serve(mut peer: Peer) {
    // A probe: connect and close at once.
    drop(peer.connect());
    assert_eq!(peer.exchange(&get()), hello(1));
    let body: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(peer.exchange(&post(&body)), echo(&body));
    // The body in two reads: the head and 1000 bytes, then the rest.
    let request = post(&body);
    let at = request.len() - body.len() + 1000;
    assert_eq!(peer.exchange_split(&request, at), echo(&body));
    assert_eq!(peer.exchange(b"abc:"), BAD_REQUEST);
    assert_eq!(peer.exchange(&get()), hello(2));
    // Still serving after all that.
    assert_eq!(peer.child.try_wait().unwrap(), None);
}

fn tcp_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn unix_addr(name: &str) -> String {
    let path: PathBuf = std::env::temp_dir().join(format!("{name}-{}.sock", std::process::id()));
    // A stale file there: the peer must remove it before binding.
    std::fs::write(&path, b"stale").unwrap();
    format!("unix:{}", path.display())
}

/// Checks a peer on a loopback TCP port, then on a Unix socket (`name` in
/// the socket file's name).
fn both(command: fn() -> Command, name: &str) {
    check(command(), tcp_addr());
    check(command(), unix_addr(name));
}

#[test]
fn tokio_scgi() {
    both(
        || Command::new(env!("CARGO_BIN_EXE_peer-tokio-scgi")),
        "peer-tokio-scgi",
    );
}

#[test]
fn async_scgi() {
    both(
        || Command::new(env!("CARGO_BIN_EXE_peer-async-scgi")),
        "peer-async-scgi",
    );
}

/// `bench/peer_scgi.py` under the python that `PEER_PYTHON` names (one
/// with the `scgi` package: `PEER_PYTHON=$(bench/peer-python.sh DIR)`).
#[test]
#[ignore = "needs PEER_PYTHON=$(bench/peer-python.sh DIR)"]
fn python_scgi() {
    both(
        || {
            let python = std::env::var_os("PEER_PYTHON")
                .expect("PEER_PYTHON: a python with scgi, from bench/peer-python.sh DIR");
            let mut command = Command::new(python);
            command.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../peer_scgi.py"));
            command
        },
        "peer-python-scgi",
    );
}

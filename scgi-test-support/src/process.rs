//! Scenarios run against a real server process: a runtime crate's `echo`
//! example, started as a child, stopped with a real `SIGTERM`, started by
//! `systemd-socket-activate`, telling a `NOTIFY_SOCKET` when it is ready.
//!
//! Each runtime crate calls these from one test file with its package name
//! and example; the example is built with the same profile and target
//! directory as the test (a no-op when `cargo test` built it already).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::{CLIENT_TIMEOUT, temp_path};

/// How long a child gets to start listening, or to exit once told to: a
/// bound on the test, not a timing assertion.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// An example program of a runtime crate.
#[derive(Clone, Debug)]
pub struct Example {
    /// Its package (`scgi-tokio`).
    pub package: &'static str,
    /// The example's name (`echo`): it must listen on the address given as
    /// its first argument, or in `SCGI_ADDR`, echo the request body with a
    /// 200 head carrying `Content-Length`, and stop gracefully on SIGTERM.
    pub name: &'static str,
    /// Features to build it with (empty: the defaults).
    pub features: &'static str,
}

impl Example {
    /// Builds the example (with the profile and target directory of the
    /// running test) and returns its path.
    ///
    /// # Panics
    ///
    /// If cargo fails to build it.
    #[must_use]
    pub fn build(&self) -> PathBuf {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/<test>: the profile directory is two up.
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("a test binary under target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("a target directory");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "--quiet",
                "-p",
                self.package,
                "--example",
                self.name,
            ])
            .arg("--target-dir")
            .arg(target_dir);
        if release {
            build.arg("--release");
        }
        if !self.features.is_empty() {
            build.args(["--features", self.features]);
        }
        // Built once per test process; the examples of the runtime crates
        // share names (`echo`), and cargo links the last one built to
        // `examples/echo`, so each is linked at once to a name of its own.
        static BUILT: Mutex<Vec<(&'static str, &'static str, PathBuf)>> = Mutex::new(Vec::new());
        let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((.., path)) = built
            .iter()
            .find(|(p, n, _)| *p == self.package && *n == self.name)
        {
            return path.clone();
        }
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "building {self:?} failed: {status}");
        let dir = profile_dir.join("process-examples");
        std::fs::create_dir_all(&dir).expect("a directory for the examples");
        let own = dir.join(format!(
            "{}-{}-{}",
            self.package,
            self.name,
            std::process::id()
        ));
        let _ = std::fs::remove_file(&own);
        let cargo_built = profile_dir.join("examples").join(self.name);
        std::fs::hard_link(&cargo_built, &own)
            .or_else(|_| std::fs::copy(&cargo_built, &own).map(drop))
            .expect("linking the example");
        built.push((self.package, self.name, own.clone()));
        own
    }
}

/// A running child process, killed if the test fails before it exits; its
/// stderr is collected by a thread, so a chatty child never blocks on a
/// full pipe.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    stderr: mpsc::Receiver<String>,
    log: String,
}

impl ChildProcess {
    /// Starts `command` (stdin and stdout null, stderr collected,
    /// `RUST_LOG=info`).
    ///
    /// # Panics
    ///
    /// If it cannot be started.
    #[must_use]
    pub fn spawn(mut command: Command) -> ChildProcess {
        command.stdin(Stdio::null()).stdout(Stdio::null());
        command.stderr(Stdio::piped()).env("RUST_LOG", "info");
        let mut child = command.spawn().expect("starting the example");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("a stderr pipe");
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildProcess {
            child,
            stderr,
            log: String::new(),
        }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("a pid")
    }

    /// Sends `signal` (a number: 15 is SIGTERM) with kill(1).
    ///
    /// # Panics
    ///
    /// If kill fails.
    pub fn signal(&self, signal: i32) {
        // kill(1): a real signal to the real process, without `unsafe`.
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// What the child wrote to stderr so far.
    pub fn log(&mut self) -> &str {
        while let Ok(line) = self.stderr.try_recv() {
            self.log.push_str(&line);
            self.log.push('\n');
        }
        &self.log
    }

    /// Waits for the child to exit, at most 30 s.
    ///
    /// # Panics
    ///
    /// If it does not exit in time (its log is in the message).
    pub fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the child") {
                // Its stderr is closed now: take every line the reader
                // thread still has, so `log` is whole.
                while let Ok(line) = self.stderr.recv_timeout(PROCESS_TIMEOUT) {
                    self.log.push_str(&line);
                    self.log.push('\n');
                }
                return status;
            }
            assert!(
                start.elapsed() < PROCESS_TIMEOUT,
                "the example did not exit within {PROCESS_TIMEOUT:?}; its log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `ready` every 20 ms until it is true, at most 30 s, failing
/// early if the child exits first.
///
/// # Panics
///
/// If `ready` stays false, or the child exits.
pub fn wait_for(what: &str, run: &mut ChildProcess, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = run.child.try_wait().expect("polling the child") {
            panic!(
                "the example exited ({status}) before {what}; its log:\n{}",
                run.log()
            );
        }
        assert!(
            start.elapsed() < PROCESS_TIMEOUT,
            "no {what} within {PROCESS_TIMEOUT:?}; the example's log:\n{}",
            run.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// An SCGI request for `body` (the encoder adds `CONTENT_LENGTH` and
/// `SCGI`).
fn request(body: &[u8]) -> Vec<u8> {
    let head = [("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/")];
    scgi_proto::encode_request_to_vec(&head, body).expect("a valid request")
}

/// Reads a whole response and checks it is a 200 echoing `body`.
fn expect_echo(conn: &mut impl Read, body: &[u8]) {
    let mut response = Vec::new();
    conn.read_to_end(&mut response)
        .expect("reading the response");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("Status: 200"), "not a 200: {text:?}");
    assert!(
        response.ends_with(body),
        "the body was not echoed whole: {text:?}"
    );
}

fn connect(path: &Path) -> UnixStream {
    let conn = UnixStream::connect(path).expect("connecting to the example");
    conn.set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("a timeout");
    conn.set_write_timeout(Some(CLIENT_TIMEOUT))
        .expect("a timeout");
    conn
}

/// `SIGTERM` while a request is in flight: the server stops accepting
/// (its socket file goes) while the request, half its body sent, is
/// finished once the rest arrives; then the process exits with status 0.
/// A second example run checks `SIGINT` the same way.
///
/// # Panics
///
/// If any of that does not happen.
pub fn sigterm_finishes_the_request_in_flight(example: &Example) {
    let binary = example.build();
    for (signal, name) in [(15, "SIGTERM"), (2, "SIGINT")] {
        let path = temp_path("sigterm");
        let mut command = Command::new(&binary);
        command.arg(format!("unix:{}", path.display()));
        let mut run = ChildProcess::spawn(command);
        wait_for("socket file", &mut run, || {
            UnixStream::connect(&path).is_ok()
        });

        let body: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
        let bytes = request(&body);
        let half = bytes.len() - body.len() / 2;
        let mut conn = connect(&path);
        conn.write_all(&bytes[..half])
            .expect("sending half a request");

        run.signal(signal);
        // The server has taken the signal once it stops listening: its
        // socket file is removed (while our request is still unfinished).
        wait_for("removal of the socket file", &mut run, || !path.exists());
        assert!(
            run.child.try_wait().expect("polling").is_none(),
            "the example exited on {name} with a request in flight; its log:\n{}",
            run.log()
        );

        conn.write_all(&bytes[half..]).expect("sending the rest");
        expect_echo(&mut conn, &body);
        drop(conn);
        let status = run.wait();
        assert!(
            status.success(),
            "{name}: the example exited with {status}; its log:\n{}",
            run.log()
        );
        assert!(!path.exists(), "the socket file was left behind");
    }
}

/// A second `SIGTERM` while the graceful stop waits for a request in
/// flight terminates the process at once (by the signal, as if no handler
/// were installed): the way out of a stop that takes too long.
///
/// # Panics
///
/// If the process survives the second signal or exits otherwise.
pub fn second_signal_stops_at_once(example: &Example) {
    use std::os::unix::process::ExitStatusExt;
    let binary = example.build();
    let path = temp_path("twice");
    let mut command = Command::new(&binary);
    command.arg(format!("unix:{}", path.display()));
    let mut run = ChildProcess::spawn(command);
    wait_for("socket file", &mut run, || {
        UnixStream::connect(&path).is_ok()
    });
    let bytes = request(&[7u8; 1000]);
    let mut conn = connect(&path);
    conn.write_all(&bytes[..bytes.len() - 500])
        .expect("half a request");
    run.signal(15);
    wait_for("removal of the socket file", &mut run, || !path.exists());
    run.signal(15);
    let status = run.wait();
    assert_eq!(
        status.signal(),
        Some(15),
        "the second SIGTERM did not terminate it: {status}; log:\n{}",
        run.log()
    );
}

/// A service that cannot connect to its own socket file (systemd's
/// `SocketMode=0660` with `DynamicUser=yes`: the file is root's, the
/// service runs as another user) still stops on `SIGTERM`: the example
/// runs as `nobody` under `systemd-socket-activate`, its socket file mode
/// `0600` root's. Needs root (to switch users with `setpriv`); skipped
/// otherwise.
///
/// # Panics
///
/// If the example does not exit 0 after serving and a SIGTERM.
pub fn stops_without_reaching_its_own_socket(example: &Example) {
    if !nix::unistd::Uid::effective().is_root() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: switching to another user needs root");
        }
        return;
    }
    let binary = example.build();
    let path = temp_path("foreign");
    let mut command = Command::new("systemd-socket-activate");
    command
        .arg("-l")
        .arg(&path)
        .args([
            "--fdname=scgi",
            "-E",
            "SCGI_ADDR=systemd:scgi",
            "-E",
            "RUST_LOG=info",
        ])
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .arg(&binary);
    let mut run = ChildProcess::spawn(command);
    wait_for("socket file", &mut run, || path.exists());
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    // Root connects anyway; the first connection starts the example.
    let mut conn = connect(&path);
    conn.write_all(&request(b"as nobody")).expect("a request");
    expect_echo(&mut conn, b"as nobody");
    run.signal(15);
    let status = run.wait();
    let log = run.log().to_owned();
    assert!(status.success(), "{status}; log:\n{log}");
    // Stopped gracefully, not by the shutdown deadline (30 s) cutting an
    // acceptor that never woke.
    assert!(
        log.contains("] stopped") && !log.contains("deadline passed"),
        "not a graceful stop; log:\n{log}"
    );
    let _ = std::fs::remove_file(&path);
}

/// Whether `systemd-socket-activate` (Debian's `systemd` package) is here.
#[must_use]
pub fn have_socket_activate() -> bool {
    Command::new("systemd-socket-activate")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `systemd-socket-activate` listening on a fresh Unix socket path
/// (returned), the socket named `fdname`, ready to run `binary` with
/// `SCGI_ADDR=addr` (and `NOTIFY_SOCKET=notify`, if given) on the first
/// connection.
#[must_use]
pub fn activate(
    binary: &Path,
    fdname: &str,
    addr: &str,
    notify: Option<&Path>,
) -> (PathBuf, ChildProcess) {
    let path = temp_path("activate");
    let mut command = Command::new("systemd-socket-activate");
    command
        .arg("-l")
        .arg(&path)
        .arg(format!("--fdname={fdname}"))
        .arg("-E")
        .arg(format!("SCGI_ADDR={addr}"))
        .arg("-E")
        .arg("RUST_LOG=info");
    if let Some(notify) = notify {
        command
            .arg("-E")
            .arg(format!("NOTIFY_SOCKET={}", notify.display()));
    }
    command.arg(binary);
    let mut run = ChildProcess::spawn(command);
    wait_for("socket file", &mut run, || path.exists());
    (path, run)
}

/// Socket activation: `systemd-socket-activate` binds a Unix socket named
/// `scgi` and runs the example with `SCGI_ADDR=systemd:scgi` when the
/// first client connects; that client is served on the passed socket, and
/// so is the next one (the passed socket stays the listener). Then the
/// example runs again with `SCGI_ADDR=systemd:other`, which must fail with
/// an error that names the socket it has. Needs `systemd-socket-activate`:
/// the calling test checks [`have_socket_activate`] (and fails under CI
/// without it, where `.ci/run` installs it).
///
/// # Panics
///
/// If any of that does not happen.
pub fn socket_activation_serves(example: &Example) {
    let binary = example.build();
    let (path, mut run) = activate(&binary, "scgi", "systemd:scgi", None);
    for body in [&b"first, the one that starts the server"[..], b"second"] {
        let mut conn = connect(&path);
        conn.write_all(&request(body)).expect("sending a request");
        expect_echo(&mut conn, body);
    }
    run.signal(15);
    let status = run.wait();
    assert!(
        status.success(),
        "exited with {status}; log:\n{}",
        run.log()
    );
    // The socket file belongs to whoever made it (here
    // systemd-socket-activate): the server leaves it in place.
    assert!(
        path.exists(),
        "the server removed a socket file it did not make"
    );
    let _ = std::fs::remove_file(&path);

    let (path, mut run) = activate(&binary, "scgi", "systemd:other", None);
    // The example starts on the first connection and fails at once.
    let mut conn = connect(&path);
    let mut nothing = Vec::new();
    let _ = conn.read_to_end(&mut nothing);
    let status = run.wait();
    assert!(!status.success(), "a wrong socket name was accepted");
    let log = run.log().to_owned();
    assert!(
        log.contains("systemd:other")
            && log.contains("no passed socket is named other (names: scgi)"),
        "the error does not say what is wrong: {log}"
    );
    let _ = std::fs::remove_file(&path);
}

/// Readiness: with `NOTIFY_SOCKET` set, the example sends `READY=1` once
/// it listens and `STOPPING=1` when `SIGTERM` starts its graceful stop
/// (what a `Type=notify` unit waits for).
///
/// # Panics
///
/// If either message is missing.
pub fn notifies_systemd(example: &Example) {
    let binary = example.build();
    let notify = temp_path("notify");
    let listen = temp_path("notified");
    let socket = UnixDatagram::bind(&notify).expect("binding the notify socket");
    socket
        .set_read_timeout(Some(PROCESS_TIMEOUT))
        .expect("a timeout");
    let mut command = Command::new(&binary);
    command
        .arg(format!("unix:{}", listen.display()))
        .env("NOTIFY_SOCKET", &notify);
    let mut run = ChildProcess::spawn(command);
    let next = || -> io::Result<String> {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let ready = next().expect("no READY=1 from the example");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // Ready means listening.
    let mut conn = connect(&listen);
    conn.write_all(&request(b"ready"))
        .expect("sending a request");
    expect_echo(&mut conn, b"ready");
    run.signal(15);
    let stopping = next().expect("no STOPPING=1 from the example");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(run.wait().success(), "log:\n{}", run.log());
    let _ = std::fs::remove_file(&notify);
}

/// Whether to skip the socket-activation scenario: `systemd-socket-activate`
/// is missing and this is not CI (`CI` unset). Under CI a missing tool
/// fails the test instead, since `.ci/run` installs it.
///
/// # Panics
///
/// Under CI, when the tool is missing.
#[must_use]
pub fn skip_without_socket_activate() -> bool {
    if have_socket_activate() {
        return false;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
        "systemd-socket-activate is missing (Debian's systemd package), and CI needs it"
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("skipped: systemd-socket-activate is missing (apt-get install systemd)");
    }
    true
}

/// Expands the process scenarios as `#[test]`s for one runtime's `echo`
/// example: `scgi_test_support::process_scenarios!("scgi-tokio", "")`
/// (package, features to build the example with).
#[macro_export]
macro_rules! process_scenarios {
    ($package:literal, $features:literal) => {
        const ECHO: $crate::process::Example = $crate::process::Example {
            package: $package,
            name: "echo",
            features: $features,
        };

        #[test]
        fn sigterm_finishes_the_request_in_flight() {
            $crate::process::sigterm_finishes_the_request_in_flight(&ECHO);
        }

        #[test]
        fn socket_activation_serves() {
            if !$crate::process::skip_without_socket_activate() {
                $crate::process::socket_activation_serves(&ECHO);
            }
        }

        #[test]
        fn notifies_systemd() {
            $crate::process::notifies_systemd(&ECHO);
        }

        #[test]
        fn second_signal_stops_at_once() {
            $crate::process::second_signal_stops_at_once(&ECHO);
        }

        #[test]
        fn stops_without_reaching_its_own_socket() {
            if !$crate::process::skip_without_socket_activate() {
                $crate::process::stops_without_reaching_its_own_socket(&ECHO);
            }
        }
    };
}

//! systemd socket activation (`LISTEN_FDS`, `LISTEN_PID`,
//! `LISTEN_FDNAMES`) and readiness notification (`NOTIFY_SOCKET`).
//!
//! A server started by a `.socket` unit (or by `systemd-socket-activate`)
//! receives its listening sockets as file descriptors 3, 4, ...; every
//! server's `bind` takes them with the address `"systemd"` (the one socket
//! passed) or `"systemd:NAME"` (the one named `NAME` by the unit's
//! `FileDescriptorName=`). Taking them is [`listener`]; the descriptors are
//! adopted through the [`listenfd`] crate, so neither this crate nor the
//! application writes `unsafe` code for it.
//!
//! The first `systemd` address in a process reads the variables and takes
//! every passed descriptor; listenfd then removes `LISTEN_FDS` and
//! `LISTEN_PID` from the environment (as `sd_listen_fds(1)` does), so that
//! a program the server starts does not take them for its own. Changing
//! the environment while another thread reads it is a data race in C
//! libraries, so bind a `systemd` address before starting threads that
//! read the environment (binding in `main`, as the examples do, is fine:
//! a runtime's idle worker threads do not read it).
//!
//! With `Type=notify` in the `.service` unit, the servers tell systemd when
//! they serve (`READY=1`) and when they start stopping (`STOPPING=1`)
//! through [`notify_ready`] and [`notify_stopping`], paired by a
//! [`Readiness`]; without `NOTIFY_SOCKET` in the environment these do
//! nothing.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::Listener;

/// What systemd passed to this process, read once: the variables (which
/// listenfd then removes from the environment) and the descriptors, each
/// handed out at most once.
struct Passed {
    count: usize,
    /// `LISTEN_FDNAMES`, one per descriptor (`unknown` where unnamed).
    names: Vec<String>,
    fds: Mutex<listenfd::ListenFd>,
}

static PASSED: OnceLock<Result<Passed, (io::ErrorKind, String)>> = OnceLock::new();

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Reads `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES` and adopts the
/// descriptors, once per process.
fn read_passed() -> Result<Passed, (io::ErrorKind, String)> {
    let fail = |e: io::Error| (e.kind(), e.to_string());
    let count = std::env::var("LISTEN_FDS").map_err(|_| {
        (
            io::ErrorKind::NotFound,
            "LISTEN_FDS is not set: no socket was passed (start the service from a \
             .socket unit, or under systemd-socket-activate)"
                .to_owned(),
        )
    })?;
    if let Ok(pid) = std::env::var("LISTEN_PID") {
        let ours = std::process::id();
        if pid != ours.to_string() {
            return Err(fail(invalid(format!(
                "LISTEN_PID={pid} is not this process ({ours}): the sockets were passed \
                 to another one"
            ))));
        }
    }
    // Parsed exactly as listenfd parses it, so that both agree.
    let n: usize = count.parse().map_err(|_| {
        fail(invalid(format!(
            "LISTEN_FDS={count} is not a count of sockets"
        )))
    })?;
    if n == 0 {
        return Err(fail(invalid("LISTEN_FDS=0: no socket was passed".into())));
    }
    // Descriptors 3 .. 3 + n must exist, so n is below the process's limit
    // on open files: anything larger is garbage, refused before listenfd
    // would make a list of that many.
    let (limit, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(|e| fail(e.into()))?;
    if n as u64 > limit.saturating_sub(3) {
        return Err(fail(invalid(format!(
            "LISTEN_FDS={n} is more descriptors than this process may open ({limit})"
        ))));
    }
    let mut names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .unwrap_or_default()
        .split(':')
        .filter(|name| !name.is_empty())
        .take(n)
        .map(str::to_owned)
        .collect();
    names.resize(n, "unknown".to_owned());
    // listenfd removes LISTEN_FDS and LISTEN_PID from the environment, as
    // sd_listen_fds(1) does, so that a child process does not take them for
    // its own: see the module docs about threads.
    let fds = listenfd::ListenFd::from_env();
    if fds.len() != n {
        return Err(fail(io::Error::other(format!(
            "LISTEN_FDS={n}, but {} descriptors could be read",
            fds.len()
        ))));
    }
    Ok(Passed {
        count: n,
        names,
        fds: Mutex::new(fds),
    })
}

/// Which passed descriptor `name` means, among `names` (the
/// `LISTEN_FDNAMES` list; systemd names unnamed ones `unknown`).
fn index_of(name: Option<&str>, names: &[&str], count: usize) -> io::Result<usize> {
    let list = || names.join(", ");
    match name {
        None if count == 1 => Ok(0),
        None => Err(invalid(format!(
            "{count} sockets were passed: choose one with systemd:NAME (names: {})",
            list()
        ))),
        Some(name) => {
            let mut found = names.iter().enumerate().filter(|(_, n)| **n == name);
            match (found.next(), found.next()) {
                (Some((i, _)), None) if i < count => Ok(i),
                (Some(_), Some(_)) => Err(invalid(format!(
                    "more than one passed socket is named {name} (names: {})",
                    list()
                ))),
                _ => Err(invalid(format!(
                    "no passed socket is named {name} (names: {})",
                    list()
                ))),
            }
        }
    }
}

/// Takes a listening socket passed by systemd socket activation: the only
/// one passed (`name` `None`), or the one named `name` in
/// `LISTEN_FDNAMES`. TCP and Unix stream sockets are accepted; a passed
/// Unix socket's file belongs to systemd and is left in place.
///
/// Fails with a message saying what is wrong: `LISTEN_FDS` unset (not
/// started by systemd: `NotFound`), `LISTEN_PID` naming another process,
/// a count that is not one or more than the process may open, several
/// sockets passed and no name given, no socket of that name, a
/// descriptor that is not a listening stream socket (a unit with
/// `Accept=yes` passes connections, not listeners), or one taken already
/// (each descriptor is handed out once per process).
pub fn listener(name: Option<&str>) -> io::Result<Listener> {
    let what = match name {
        Some(n) => format!("systemd:{n}"),
        None => "systemd".to_owned(),
    };
    take(name).map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))
}

fn take(name: Option<&str>) -> io::Result<Listener> {
    let passed = match PASSED.get_or_init(read_passed) {
        Ok(passed) => passed,
        Err((kind, message)) => return Err(io::Error::new(*kind, message.clone())),
    };
    let names: Vec<&str> = passed.names.iter().map(String::as_str).collect();
    let index = index_of(name, &names, passed.count)?;
    let mut fds = passed.fds.lock().unwrap_or_else(PoisonError::into_inner);
    let fd = index + 3;
    let gone = || invalid(format!("descriptor {fd} was taken already"));
    // listenfd checks the socket's family and type before adopting it (and
    // marks it close-on-exec), and hands each descriptor out once.
    let listener = match fds.take_tcp_listener(index) {
        Ok(Some(tcp)) => Listener::Tcp(tcp),
        Ok(None) => return Err(gone()),
        Err(_) => match fds.take_unix_listener(index) {
            Ok(Some(unix)) => Listener::Unix(unix),
            Ok(None) => return Err(gone()),
            Err(e) => {
                return Err(invalid(format!(
                    "descriptor {fd} is not a TCP or Unix stream socket: {e}"
                )));
            }
        },
    };
    let listening = match &listener {
        Listener::Tcp(l) => socket2::SockRef::from(l).is_listener()?,
        Listener::Unix(l) => socket2::SockRef::from(l).is_listener()?,
    };
    if !listening {
        return Err(invalid(format!(
            "descriptor {fd} is a connection, not a listening socket (set Accept=no in \
             the .socket unit)"
        )));
    }
    Ok(listener)
}

/// Tells systemd the service is ready (`READY=1`), if `NOTIFY_SOCKET` is
/// set (a `Type=notify` unit); otherwise does nothing. The servers call it
/// when they start serving. A failure to notify is logged under
/// `log_target`, not returned: the service serves either way.
pub fn notify_ready(log_target: &'static str) {
    notify(&[sd_notify::NotifyState::Ready], log_target);
}

/// Tells systemd the service is stopping (`STOPPING=1`), if
/// `NOTIFY_SOCKET` is set; the servers call it when a graceful stop
/// starts.
pub fn notify_stopping(log_target: &'static str) {
    notify(&[sd_notify::NotifyState::Stopping], log_target);
}

/// One server's side of the notifications: [`serving`](Readiness::serving)
/// sends `READY=1`, and [`stopping`](Readiness::stopping) sends
/// `STOPPING=1` once, and only after `READY=1`: a server dropped without
/// ever serving must not put the service into its stop. Every runtime
/// crate's server holds one.
#[derive(Debug, Default)]
pub struct Readiness {
    ready: AtomicBool,
}

impl Readiness {
    /// Not ready yet.
    #[must_use]
    pub const fn new() -> Self {
        Readiness {
            ready: AtomicBool::new(false),
        }
    }

    /// The server serves: [`notify_ready`].
    pub fn serving(&self, log_target: &'static str) {
        self.ready.store(true, Ordering::Release);
        notify_ready(log_target);
    }

    /// A graceful stop starts: [`notify_stopping`], if the server said it
    /// was ready and has not said it stops yet.
    pub fn stopping(&self, log_target: &'static str) {
        if self.ready.swap(false, Ordering::AcqRel) {
            notify_stopping(log_target);
        }
    }
}

fn notify(state: &[sd_notify::NotifyState<'_>], log_target: &'static str) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(state)
    {
        log::warn!(target: log_target, "telling systemd {state:?}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::index_of;

    #[test]
    fn one_socket_needs_no_name() {
        assert_eq!(index_of(None, &["unknown"], 1).unwrap(), 0);
    }

    #[test]
    fn several_sockets_need_a_name_and_the_error_lists_them() {
        let e = index_of(None, &["web", "admin"], 2).unwrap_err();
        assert!(e.to_string().contains("names: web, admin"), "{e}");
        assert_eq!(index_of(Some("admin"), &["web", "admin"], 2).unwrap(), 1);
    }

    #[test]
    fn unknown_and_ambiguous_names_are_refused() {
        let e = index_of(Some("api"), &["web"], 1).unwrap_err();
        assert!(
            e.to_string().contains("no passed socket is named api"),
            "{e}"
        );
        let e = index_of(Some("web"), &["web", "web"], 2).unwrap_err();
        assert!(e.to_string().contains("more than one"), "{e}");
        // A name past the count of descriptors is not one of them.
        assert!(index_of(Some("late"), &["web", "late"], 1).is_err());
    }
}

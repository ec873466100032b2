//! The front ends: rendering their configs and running them.

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::backend::{BackendAddr, give_to_worker};
use crate::tmp::TempDir;

/// The config templates, `{{NAME}}` placeholders and all. The `*_SITE`
/// ones are the part about SCGI, quoted in `DEPLOYING.md`; the others are
/// the harness's skeletons around them.
pub mod templates {
    /// nginx's skeleton (`{{DIR}}`, `{{SITE}}`).
    pub const NGINX: &str = include_str!("../templates/nginx.conf");
    /// nginx's server block (`{{LISTEN}}`, `{{BACKEND}}`).
    pub const NGINX_SITE: &str = include_str!("../templates/nginx-site.conf");
    /// nginx in front of two backends (`{{LISTEN}}`, `{{BACKEND_1}}`,
    /// `{{BACKEND_2}}`).
    pub const NGINX_UPSTREAM_SITE: &str = include_str!("../templates/nginx-upstream-site.conf");
    /// Apache httpd's skeleton (`{{DIR}}`, `{{PORT}}`, `{{SITE}}`).
    pub const APACHE: &str = include_str!("../templates/apache.conf");
    /// Apache httpd's proxy settings (`{{BACKEND}}`).
    pub const APACHE_SITE: &str = include_str!("../templates/apache-site.conf");
    /// lighttpd's skeleton (`{{DIR}}`, `{{PORT}}`, `{{SITE}}`).
    pub const LIGHTTPD: &str = include_str!("../templates/lighttpd.conf");
    /// lighttpd's `scgi.server` (`{{BACKEND}}`).
    pub const LIGHTTPD_SITE: &str = include_str!("../templates/lighttpd-site.conf");
}

/// How long a front end may take to accept connections after its start.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long it may take to exit after `SIGTERM` before it gets `SIGKILL`.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Starts tried (each on a new free port) before giving up: another
/// process may take the port between our probe and the server's bind.
const START_ATTEMPTS: usize = 3;

/// A front-end web server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// nginx (`scgi_pass`).
    Nginx,
    /// Apache httpd (`mod_proxy_scgi`).
    Apache,
    /// lighttpd (`mod_scgi`).
    Lighttpd,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Kind {
    /// All three.
    pub const ALL: [Kind; 3] = [Kind::Nginx, Kind::Apache, Kind::Lighttpd];

    /// `nginx`, `apache` or `lighttpd`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Apache => "apache",
            Kind::Lighttpd => "lighttpd",
        }
    }

    /// The server binary (Debian's path).
    #[must_use]
    pub fn binary(self) -> &'static Path {
        Path::new(match self {
            Kind::Nginx => "/usr/sbin/nginx",
            Kind::Apache => "/usr/sbin/apache2",
            Kind::Lighttpd => "/usr/sbin/lighttpd",
        })
    }

    /// Files the configs need besides the binary.
    fn needs(self) -> Vec<PathBuf> {
        let mut needs = vec![self.binary().to_owned()];
        match self {
            Kind::Nginx => needs.push("/etc/nginx/scgi_params".into()),
            Kind::Apache => needs.extend(
                ["mpm_event", "authz_core", "proxy", "proxy_scgi"]
                    .iter()
                    .map(|m| PathBuf::from(format!("/usr/lib/apache2/modules/mod_{m}.so"))),
            ),
            Kind::Lighttpd => {}
        }
        needs
    }

    /// The files this front end needs that are missing (none when it is
    /// installed).
    #[must_use]
    pub fn missing(self) -> Vec<PathBuf> {
        self.needs().into_iter().filter(|p| !p.exists()).collect()
    }

    /// The SCGI part of the config for a backend at `backend`, listening
    /// (nginx only; the others listen in the skeleton) on `listen`.
    #[must_use]
    pub fn site(self, listen: &str, backend: &BackendAddr) -> String {
        let directive = self.backend_directive(backend);
        match self {
            Kind::Nginx => render(
                templates::NGINX_SITE,
                &[("LISTEN", listen), ("BACKEND", &directive)],
            ),
            Kind::Apache => render(templates::APACHE_SITE, &[("BACKEND", &directive)]),
            Kind::Lighttpd => render(templates::LIGHTTPD_SITE, &[("BACKEND", &directive)]),
        }
    }

    /// How this server names a backend address in its config.
    #[must_use]
    pub fn backend_directive(self, backend: &BackendAddr) -> String {
        match (self, backend) {
            (Kind::Nginx, BackendAddr::Tcp(a)) => a.to_string(),
            (Kind::Nginx, BackendAddr::Unix(p)) => format!("unix:{}", p.display()),
            (Kind::Apache, BackendAddr::Tcp(a)) => format!("scgi://{a}/"),
            // mod_proxy's Unix socket syntax: the socket, then a URL whose
            // host is ignored.
            (Kind::Apache, BackendAddr::Unix(p)) => {
                format!("\"unix:{}|scgi://localhost/\"", p.display())
            }
            (Kind::Lighttpd, BackendAddr::Tcp(a)) => {
                format!("\"host\" => \"{}\", \"port\" => {}", a.ip(), a.port())
            }
            (Kind::Lighttpd, BackendAddr::Unix(p)) => format!("\"socket\" => \"{}\"", p.display()),
        }
    }

    fn config(self, dir: &Path, port: u16, site: &str) -> String {
        let dir = dir.display().to_string();
        let port = port.to_string();
        let vars = [
            ("DIR", dir.as_str()),
            ("PORT", port.as_str()),
            ("SITE", site),
        ];
        match self {
            Kind::Nginx => render(templates::NGINX, &vars),
            Kind::Apache => render(templates::APACHE, &vars),
            Kind::Lighttpd => render(templates::LIGHTTPD, &vars),
        }
    }

    fn config_name(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx.conf",
            Kind::Apache => "apache2.conf",
            Kind::Lighttpd => "lighttpd.conf",
        }
    }

    fn command(self, dir: &Path, config: &Path) -> Command {
        let mut cmd = Command::new(self.binary());
        match self {
            // -e: nginx opens its compiled-in error log before reading the
            // config; keep even that in the temp dir.
            Kind::Nginx => cmd
                .arg("-p")
                .arg(dir)
                .arg("-e")
                .arg(dir.join("logs/error.log"))
                .arg("-c")
                .arg(config),
            Kind::Apache => cmd
                .arg("-d")
                .arg(dir)
                .arg("-f")
                .arg(config)
                .arg("-DFOREGROUND"),
            Kind::Lighttpd => cmd.arg("-D").arg("-f").arg(config),
        };
        cmd
    }
}

/// Replaces each `{{NAME}}` in `template` with its value.
///
/// # Panics
///
/// If a placeholder is left: a template and its caller disagree.
#[must_use]
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    if let Some(at) = out.find("{{") {
        let end = out[at..].find("}}").map_or(out.len(), |e| at + e + 2);
        panic!("template placeholder {} not filled", &out[at..end]);
    }
    out
}

/// `site` with `added` inserted right after `anchor` (a line of the
/// template, e.g. nginx's `include scgi_params;`): a variant of a tested
/// config that differs by one directive.
///
/// # Panics
///
/// If `site` does not contain `anchor`: the template changed under the
/// test.
#[must_use]
pub fn with_directive(site: &str, anchor: &str, added: &str) -> String {
    assert!(
        site.contains(anchor),
        "the site config has no {anchor:?}:\n{site}"
    );
    site.replacen(anchor, &format!("{anchor}{added}"), 1)
}

/// Whether the tests run under CI (`CI=true`), where a missing front end
/// is a failure rather than a skip.
#[must_use]
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Checks that `kind` is installed. If it is not: under CI, panics; else
/// prints a loud `SKIPPED` line to stderr and returns `false`.
///
/// # Panics
///
/// Under CI, when the front end is missing.
#[must_use]
#[allow(clippy::print_stderr)] // saying loudly that a test did not run is the point
pub fn require(kind: Kind, what: &str) -> bool {
    match decide(kind, &kind.missing(), under_ci()) {
        Ok(()) => true,
        Err(Missing::Skip(why)) => {
            eprintln!(
                "\n!!!! SKIPPED {what}: {why}. Run `sudo bash .ci/install-webservers.sh`; \
                 under CI=true this is a failure.\n"
            );
            false
        }
        Err(Missing::Fail(why)) => panic!("{what}: {why}"),
    }
}

/// Why a front end cannot run, and whether that skips or fails the test.
#[derive(Debug, PartialEq, Eq)]
enum Missing {
    Skip(String),
    Fail(String),
}

fn decide(kind: Kind, missing: &[PathBuf], ci: bool) -> Result<(), Missing> {
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
    let why = format!("{kind} is not installed (missing {})", list.join(", "));
    Err(if ci {
        Missing::Fail(format!("{why} and CI=true: run .ci/install-webservers.sh"))
    } else {
        Missing::Skip(why)
    })
}

/// A running front end, stopped when dropped.
#[derive(Debug)]
pub struct Frontend {
    kind: Kind,
    port: u16,
    child: Option<Child>,
    // Dropped after the child is stopped (field order).
    dir: TempDir,
}

impl Frontend {
    /// Starts `kind` in front of `backend` with its standard site config.
    pub fn start(kind: Kind, backend: &BackendAddr) -> io::Result<Frontend> {
        Frontend::start_with(kind, |listen| kind.site(listen, backend))
    }

    /// Starts `kind` with the site config `site(listen)` builds (`listen`
    /// is the `host:port` to listen on; only nginx's site uses it).
    pub fn start_with(kind: Kind, site: impl Fn(&str) -> String) -> io::Result<Frontend> {
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Frontend::try_start(kind, &site) {
                Ok(frontend) => return Ok(frontend),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("not started")))
    }

    fn try_start(kind: Kind, site: &dyn Fn(&str) -> String) -> io::Result<Frontend> {
        let dir = TempDir::new(kind.name())?;
        for sub in ["tmp", "run", "htdocs", "logs"] {
            fs::create_dir(dir.path().join(sub))?;
        }
        // lighttpd opens its logs and writes request bodies (upload-dirs)
        // after dropping to the worker user; Apache's children open their
        // mutex files under run.
        for sub in ["tmp", "run", "logs"] {
            give_to_worker(&dir.path().join(sub))?;
        }
        if kind == Kind::Nginx {
            // The site says `include scgi_params;`, relative to the config's
            // directory, as in /etc/nginx: bring Debian's copy along.
            fs::copy("/etc/nginx/scgi_params", dir.path().join("scgi_params"))?;
        }
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let config_path = dir.path().join(kind.config_name());
        fs::write(&config_path, kind.config(dir.path(), port, &site(&listen)))?;
        let output = File::create(dir.path().join("output.log"))?;
        let child = kind
            .command(dir.path(), &config_path)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            // Its own process group, so that stopping it reaches its workers.
            .process_group(0)
            .spawn()?;
        let mut frontend = Frontend {
            kind,
            port,
            child: Some(child),
            dir,
        };
        frontend.wait_ready()?;
        Ok(frontend)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(io::Error::other(format!(
                    "{} exited at start ({status}):\n{}",
                    self.kind,
                    self.logs()
                )));
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} did not listen within {START_TIMEOUT:?}:\n{}",
                        self.kind,
                        self.logs()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Which server this is.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its temp directory (config, logs).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The tails of its error log and its stdout/stderr, for failure
    /// messages.
    #[must_use]
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["logs/error.log", "output.log"] {
            let text = fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            out.push_str(&format!(
                "--- {} {name} (last {} lines)\n",
                self.kind,
                tail.len()
            ));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Stops it: `SIGTERM` to its process group, then `SIGKILL` if it has
    /// not exited within a bound.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Ok(pgid) = libc::pid_t::try_from(child.id()) else {
            let _ = child.kill();
            let _ = child.wait();
            return;
        };
        // The group is ours: we started its leader in it, and the leader is
        // not reaped yet, so its id cannot have been reused.
        signal_group(pgid, libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        signal_group(pgid, libc::SIGKILL);
        let _ = child.wait();
    }
}

impl Drop for Frontend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal_group(pgid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) takes plain integers and has no memory-safety
    // preconditions; a negative pid names the process group we created.
    #[allow(unsafe_code)]
    let _ = unsafe { libc::kill(-pgid, signal) };
}

/// A loopback port that was free a moment ago.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_server_skips_outside_ci_and_fails_under_ci() {
        assert_eq!(decide(Kind::Apache, &[], true), Ok(()));
        let missing = [PathBuf::from("/usr/sbin/apache2")];
        assert!(matches!(
            decide(Kind::Apache, &missing, false),
            Err(Missing::Skip(why)) if why.contains("/usr/sbin/apache2")
        ));
        assert!(matches!(
            decide(Kind::Apache, &missing, true),
            Err(Missing::Fail(why)) if why.contains("install-webservers")
        ));
    }

    #[test]
    fn render_fills_every_placeholder() {
        let site = Kind::Apache.site("80", &BackendAddr::Unix("/s.sock".into()));
        assert!(
            site.contains("ProxyPass / \"unix:/s.sock|scgi://localhost/\"\n"),
            "{site}"
        );
        let caught = std::panic::catch_unwind(|| render("a {{X}} {{Y}}", &[("X", "1")]));
        assert!(caught.is_err());
    }
}

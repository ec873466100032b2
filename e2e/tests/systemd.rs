//! The systemd deployment of DEPLOYING.md, exercised: the unit files in
//! `deploy/systemd/` are the ones DEPLOYING.md quotes, `systemd-analyze
//! verify` finds nothing wrong with them, and a backend started as they
//! say (socket activation with their socket name and `SCGI_ADDR`, the
//! socket's group and mode, `Type=notify`, `KillSignal=SIGTERM`) serves
//! real nginx, tells systemd it is ready and stopping, and stops
//! gracefully within `TimeoutStopSec`.
//!
//! No systemd runs here (a test machine has none as PID 1):
//! `systemd-socket-activate` passes the socket as systemd would, and a
//! datagram socket plays `NOTIFY_SOCKET`.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::client::Request;
use e2e::{BackendAddr, Frontend, Kind, frontend};
use scgi_test_support::process::{self, Example};

const HELLO: Example = Example {
    package: "scgi-tokio",
    name: "hello",
    features: "",
};

fn unit(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/systemd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of the first `key=` line of a unit file.
fn value<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    unit.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

#[test]
fn deploying_md_quotes_the_unit_files() {
    let doc =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../DEPLOYING.md"))
            .expect("DEPLOYING.md");
    for name in ["scgi-app.socket", "scgi-app.service"] {
        let quoted = format!("```ini\n{}```\n", unit(name));
        assert!(
            doc.contains(&quoted),
            "DEPLOYING.md does not quote deploy/systemd/{name} as it is"
        );
    }
}

#[test]
fn systemd_analyze_verify_finds_nothing() {
    if !frontend::under_ci()
        && Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_err()
    {
        return; // outside CI without systemd's tools: nothing to run
    }
    let dir = std::env::temp_dir().join(format!("scgi-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    // The unit names a binary that only exists once installed: point it at
    // an example, the way an install would put the application there.
    let binary = HELLO.build();
    let service = unit("scgi-app.service").replace(
        "ExecStart=/usr/local/bin/scgi-app",
        &format!("ExecStart={}", binary.display()),
    );
    std::fs::write(dir.join("scgi-app.service"), service).expect("writing the service");
    std::fs::write(dir.join("scgi-app.socket"), unit("scgi-app.socket")).expect("writing");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.join("scgi-app.socket"))
        .arg(dir.join("scgi-app.service"))
        .output()
        .expect("running systemd-analyze");
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed: {said}"
    );
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify warns: {said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_systemd_deployment_serves_nginx_and_stops_on_sigterm() {
    if !frontend::require(Kind::Nginx, "e2e nginx -> socket-activated backend")
        || process::skip_without_socket_activate()
    {
        return;
    }
    let socket_unit = unit("scgi-app.socket");
    let service_unit = unit("scgi-app.service");
    assert_eq!(value(&service_unit, "Type"), "notify");
    assert_eq!(value(&service_unit, "KillSignal"), "SIGTERM");
    let addr = value(&service_unit, "Environment")
        .strip_prefix("SCGI_ADDR=")
        .expect("the first Environment= is SCGI_ADDR");
    let name = value(&socket_unit, "FileDescriptorName");
    assert_eq!(
        addr,
        format!("systemd:{name}"),
        "the service asks for another socket"
    );
    let mode = u32::from_str_radix(value(&socket_unit, "SocketMode"), 8).expect("an octal mode");
    let group = scgi_net::group_id(value(&socket_unit, "SocketGroup")).expect("the group");
    let stop_within: u64 = value(&service_unit, "TimeoutStopSec")
        .parse()
        .expect("seconds");
    // systemd's SIGKILL must not come before the server's own forced stop.
    assert!(stop_within > scgi_tokio::Config::DEFAULT.shutdown_timeout.as_secs());

    let notify_path = scgi_test_support::temp_path("notify");
    let notify = UnixDatagram::bind(&notify_path).expect("the notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    let binary = HELLO.build();
    let (path, mut backend) = process::activate(&binary, name, addr, Some(&notify_path));
    // What systemd does with SocketGroup= and SocketMode=.
    std::os::unix::fs::chown(&path, None, Some(group)).expect("the socket's group");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("its mode");

    let nginx = Frontend::start(Kind::Nginx, &BackendAddr::Unix(path.clone())).expect("nginx");
    for n in 1..=3 {
        let r = Request::get("/").send(nginx.addr()).expect("GET /");
        assert_eq!(r.status, 200, "{r:?}\n{}\n{}", nginx.logs(), backend.log());
        assert_eq!(r.text(), format!("Hello for the {n}th time"));
    }
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1");
    assert!(
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "READY=1")
    );

    backend.signal(15);
    let n = notify.recv(&mut buf).expect("STOPPING=1");
    assert!(
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "STOPPING=1")
    );
    let status = backend.wait();
    assert!(status.success(), "{status}\n{}", backend.log());
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&notify_path);
}

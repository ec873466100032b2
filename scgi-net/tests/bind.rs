//! Binding TCP and Unix listeners, and the socket-file guard.

use std::io;
use std::net::{SocketAddr, TcpStream};

use scgi_net::{Addr, TcpOptions, bind_tcp};

#[test]
fn tcp_binds_and_accepts() {
    let l = bind_tcp("127.0.0.1:0", &TcpOptions::DEFAULT.with_backlog(8)).unwrap();
    let a = l.local_addr().unwrap();
    let _c = TcpStream::connect(a).unwrap();
    let (_s, peer) = l.accept().unwrap();
    assert_eq!(Addr::Tcp(a).to_string(), a.to_string());
    assert!(peer.ip().is_loopback());
}

#[test]
fn tcp_address_resolving_to_nothing_is_invalid_input() {
    let none: &[SocketAddr] = &[];
    let e = bind_tcp(none, &TcpOptions::default()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn tcp_taken_port_fails() {
    let l = bind_tcp("127.0.0.1:0", &TcpOptions::DEFAULT).unwrap();
    let a = l.local_addr().unwrap();
    assert!(bind_tcp(a, &TcpOptions::DEFAULT.with_reuse_addr(false)).is_err());
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::PathBuf;

    use scgi_net::{Addr, UnixOptions, bind_unix};

    fn path(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("scgi-net-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn binds_with_mode_and_removes_the_file_on_drop() {
        let p = path("mode");
        let (l, file) = bind_unix(&p, &UnixOptions::DEFAULT.with_mode(0o600), "test").unwrap();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let _c = UnixStream::connect(&p).unwrap();
        l.accept().unwrap();
        let local = Addr::Unix(l.local_addr().unwrap());
        assert_eq!(local.to_string(), format!("unix:{}", p.display()));
        drop(file);
        assert!(!p.exists());
    }

    /// Owner and group are set before `listen`. Giving a file away needs
    /// root (CI runs as root); elsewhere the file is given to our own ids,
    /// which checks the call is made and keeps its ids.
    #[test]
    fn binds_with_owner_and_group() {
        use std::os::unix::fs::MetadataExt;
        let p = path("owner");
        let root = nix::unistd::Uid::effective().is_root();
        let (uid, gid) = if root {
            (
                scgi_net::user_id("nobody").unwrap(),
                scgi_net::group_id("nogroup")
                    .or_else(|_| scgi_net::group_id("nobody"))
                    .unwrap(),
            )
        } else {
            (
                nix::unistd::Uid::effective().as_raw(),
                nix::unistd::Gid::effective().as_raw(),
            )
        };
        let opts = UnixOptions::DEFAULT
            .with_mode(0o660)
            .with_owner(uid)
            .with_group(gid);
        let (_l, _file) = bind_unix(&p, &opts, "test").unwrap();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid));
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    }

    #[test]
    fn user_and_group_names_resolve_and_unknown_ones_are_not_found() {
        assert_eq!(scgi_net::user_id("root").unwrap(), 0);
        assert_eq!(scgi_net::group_id("root").unwrap(), 0);
        assert_eq!(scgi_net::group_id("1234").unwrap(), 1234);
        let e = scgi_net::group_id("no-such-group-scgi").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("no-such-group-scgi"), "{e}");
        let e = scgi_net::user_id("no-such-user-scgi").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let p = path("stale");
        drop(UnixListener::bind(&p).unwrap());
        assert!(p.exists());
        let (_l, _file) = bind_unix(&p, &UnixOptions::DEFAULT, "test").unwrap();
        UnixStream::connect(&p).unwrap();
    }

    #[test]
    fn a_stale_socket_file_is_kept_without_remove_stale() {
        let p = path("keep");
        drop(UnixListener::bind(&p).unwrap());
        let opts = UnixOptions::DEFAULT.with_remove_stale(false);
        let e = bind_unix(&p, &opts, "test").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_live_socket_or_a_plain_file_is_never_removed() {
        let p = path("live");
        let (_l, _file) = bind_unix(&p, &UnixOptions::DEFAULT, "test").unwrap();
        let e = bind_unix(&p, &UnixOptions::DEFAULT, "test").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(p.exists());

        let f = path("plain");
        std::fs::write(&f, b"not a socket").unwrap();
        let e = bind_unix(&f, &UnixOptions::DEFAULT, "test").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&f).unwrap(), b"not a socket");
        std::fs::remove_file(&f).unwrap();
    }

    #[test]
    fn a_replaced_socket_file_is_left_alone() {
        let p = path("replaced");
        let moved = path("replaced-old");
        let (_l, file) = bind_unix(&p, &UnixOptions::DEFAULT, "test").unwrap();
        // The first file lives on elsewhere, so the second cannot reuse its
        // inode.
        std::fs::rename(&p, &moved).unwrap();
        let (_l2, file2) = bind_unix(&p, &UnixOptions::DEFAULT, "test").unwrap();
        drop(file);
        assert!(p.exists(), "the newer server's file was removed");
        drop(file2);
        assert!(!p.exists());
        std::fs::remove_file(&moved).unwrap();
    }
}

/// `has_pending_input` sees unread bytes without taking them, in blocking
/// mode too, and says `false` when nothing is pending or the peer closed.
#[cfg(unix)]
#[test]
fn pending_input_is_peeked() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut client =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    assert!(!scgi_net::has_pending_input(&server).expect("nothing sent"));
    client.write_all(b"xy").expect("write");
    // Loopback delivers at once, but allow for scheduling.
    let start = std::time::Instant::now();
    while !scgi_net::has_pending_input(&server).expect("peek") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "never pending"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut got = [0u8; 2];
    server
        .read_exact(&mut got)
        .expect("the bytes are still there");
    assert_eq!(&got, b"xy");
    assert!(!scgi_net::has_pending_input(&server).expect("all read"));
    drop(client);
    let start = std::time::Instant::now();
    let mut byte = [0u8; 1];
    // The peer's end: no input pending, not an error.
    while server.read(&mut byte).expect("eof") != 0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
    assert!(!scgi_net::has_pending_input(&server).expect("closed peer"));
}

#[cfg(unix)]
#[test]
fn listen_addr_strings() {
    use scgi_net::ListenAddr;
    assert_eq!(
        ListenAddr::parse("127.0.0.1:4000").unwrap(),
        ListenAddr::Tcp("127.0.0.1:4000")
    );
    assert_eq!(
        ListenAddr::parse("[::1]:4000").unwrap(),
        ListenAddr::Tcp("[::1]:4000")
    );
    assert_eq!(
        ListenAddr::parse("unix:/tmp/a b.sock").unwrap(),
        ListenAddr::Unix(std::path::Path::new("/tmp/a b.sock"))
    );
    assert_eq!(
        ListenAddr::parse("systemd").unwrap(),
        ListenAddr::Systemd(None)
    );
    assert_eq!(
        ListenAddr::parse("systemd:web").unwrap(),
        ListenAddr::Systemd(Some("web"))
    );
    assert!(
        ListenAddr::parse("127.0.0.1:4000")
            .unwrap()
            .passed_listener()
            .is_none()
    );
    for bad in ["", "unix:", "systemd:"] {
        let e = ListenAddr::parse(bad).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
    }
}

/// Without `LISTEN_FDS` (this test process was not socket-activated), a
/// `systemd` address fails with `NotFound` and says why.
#[cfg(unix)]
#[test]
fn systemd_address_without_passed_sockets_says_why() {
    let e = match scgi_net::ListenAddr::parse("systemd")
        .unwrap()
        .passed_listener()
    {
        Some(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(
        e.to_string().starts_with("systemd: LISTEN_FDS is not set"),
        "{e}"
    );
}

/// Binding errors name the address (issue 18), and keep their kind.
#[cfg(unix)]
#[test]
fn bind_errors_name_the_address() {
    let taken = bind_tcp("127.0.0.1:0", &TcpOptions::DEFAULT).unwrap();
    let a = taken.local_addr().unwrap();
    let e = bind_tcp(a, &TcpOptions::DEFAULT.with_reuse_addr(false)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    assert!(e.to_string().starts_with(&format!("{a}: ")), "{e}");

    let path = std::path::Path::new("/nonexistent-dir-for-scgi-test/app.sock");
    let e = scgi_net::bind_unix(path, &scgi_net::UnixOptions::DEFAULT, "test").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(
        e.to_string()
            .starts_with("unix:/nonexistent-dir-for-scgi-test/app.sock: "),
        "{e}"
    );
}

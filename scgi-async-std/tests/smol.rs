//! The shared scenarios of `scgi-test-support` again, on smol: the same
//! crate, with connection tasks spawned on a `smol::Executor` run by two
//! threads of the test's own, and the `run` future on `smol::block_on`.
//! Needs no async-std: it also runs with `--no-default-features`.

mod common;

use std::sync::{Arc, LazyLock};

use scgi_test_support::{Running, Setup};

/// One executor for the whole test binary, run by two threads forever (as
/// a smol program runs its executor).
static EXECUTOR: LazyLock<Arc<smol::Executor<'static>>> = LazyLock::new(|| {
    let ex = Arc::new(smol::Executor::new());
    for i in 0..2 {
        let ex = Arc::clone(&ex);
        std::thread::Builder::new()
            .name(format!("smol-{i}"))
            .spawn(move || smol::block_on(ex.run(smol::future::pending::<()>())))
            .expect("executor thread");
    }
    ex
});

fn start(setup: &Setup) -> Running {
    let ex = Arc::clone(&EXECUTOR);
    common::start_with(setup, move |task| ex.spawn(task).detach(), smol::block_on)
}

scgi_test_support::scenarios!(start);

/// smol's global executor, through the `Smol` spawner.
#[cfg(feature = "smol")]
#[test]
fn smol_global_spawner() {
    use scgi_async_std::{Addr, Server, Smol};
    use scgi_test_support::scenarios::{SPEC_REQUEST, SPEC_RESPONSE};
    let server = Server::bind_tcp("127.0.0.1:0")
        .expect("bind")
        .with_spawner(Smol);
    let Addr::Tcp(addr) = server.local_addr().clone() else {
        unreachable!("bound on TCP")
    };
    let handle = server.shutdown_handle();
    let serving = smol::spawn(server.run(common::app));
    let target = scgi_test_support::Target::Tcp(addr);
    let raw = scgi_test_support::exchange(&target, SPEC_REQUEST).expect("exchange");
    assert_eq!(raw, SPEC_RESPONSE);
    assert!(smol::block_on(handle.close()));
    smol::block_on(serving).expect("run");
}

/// Without the `async-std` feature there is no default spawner: `run`
/// says so at once instead of serving nothing.
#[cfg(not(feature = "async-std"))]
#[test]
fn no_spawner_is_an_error() {
    let server = scgi_async_std::Server::bind_tcp("127.0.0.1:0").expect("bind");
    let e = smol::block_on(server.run(common::app)).expect_err("no spawner");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

/// `next` returns an error rather than wait forever once its acceptor task
/// is gone unfinished: here the executor it was spawned on was dropped,
/// which drops its tasks. The listener is closed with it.
#[test]
fn next_fails_when_its_acceptor_is_dropped() {
    let path = std::env::temp_dir().join(format!("scgi-smol-{}-acceptor.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let ex = Arc::new(smol::Executor::new());
    // The server holds its spawner: a weak reference, so that dropping
    // `ex` below drops the executor (and the acceptor task in it).
    let weak = Arc::downgrade(&ex);
    let mut server = scgi_async_std::Server::bind_unix(&path)
        .expect("bind")
        .with_spawner(move |task| {
            if let Some(ex) = weak.upgrade() {
                ex.spawn(task).detach();
            }
        });
    let first = smol::block_on(ex.run(server.next(Some(std::time::Duration::from_millis(20)))));
    assert!(first.expect("next").is_none(), "no request was sent");
    drop(ex);
    assert!(!path.exists(), "the listener outlived its acceptor");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(smol::block_on(server.next(None)).map(|r| r.is_none()));
    });
    let got = rx
        .recv_timeout(scgi_test_support::CLIENT_TIMEOUT * 2)
        .expect("next waited for a request that cannot come");
    let e = got.expect_err("the acceptor was lost, not shut down");
    assert!(e.to_string().contains("accept loop"), "{e}");
}

/// `run` fails, rather than return `Ok(())` as after a requested shutdown,
/// when its accept loop ends first: here the loop is spawned on an executor
/// nobody runs, which is dropped (with the task, unpolled) while `run`
/// waits, as a runtime shutting down drops its tasks.
#[test]
fn run_fails_when_its_accept_loop_is_dropped() {
    let ex = Arc::new(smol::Executor::new());
    let weak = Arc::downgrade(&ex);
    let server = scgi_async_std::Server::bind_tcp("127.0.0.1:0")
        .expect("bind")
        .with_spawner(move |task| {
            // Once `ex` is gone the task is dropped here, as it would be.
            if let Some(ex) = weak.upgrade() {
                ex.spawn(task).detach();
            }
        });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(smol::block_on(server.run(common::app)));
    });
    // Let `run` spawn its loop and wait (if it has not yet, the loop is
    // dropped when spawned: the same loss).
    std::thread::sleep(std::time::Duration::from_millis(100));
    drop(ex);
    let got = rx
        .recv_timeout(scgi_test_support::CLIENT_TIMEOUT * 2)
        .expect("run went on without its accept loop");
    let e = got.expect_err("the accept loop was lost");
    assert_eq!(e.kind(), std::io::ErrorKind::Other);
    assert!(e.to_string().contains("accept loop"), "{e}");
}

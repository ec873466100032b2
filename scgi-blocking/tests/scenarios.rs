//! The shared scenarios of `scgi-test-support`, run against this runtime.

use std::io::{self, Read, Write};
use std::thread;

use scgi_blocking::{Addr, Config, Request, Server};
use scgi_test_support::{Route, Running, Setup, Target, Transport};

/// The standard test app (see the `scgi-test-support` docs).
fn app(req: &mut Request) -> io::Result<()> {
    match Route::of(&req.headers()) {
        Route::DeepThought => {
            io::copy(req, &mut io::sink())?;
            req.write_status_ok_text_content("text/plain")?;
            req.write_all(b"42")
        }
        Route::Echo => {
            req.write_status_ok_text_content(scgi_test_support::OCTET_STREAM)?;
            scgi_test_support::echo_body(req)
        }
        Route::Inspect(block) => {
            req.write_status_ok_text_content(scgi_test_support::OCTET_STREAM)?;
            req.write_all(&block)?;
            scgi_test_support::echo_body(req)
        }
        Route::Panic => panic!("the /panic route panics"),
        Route::Error => Err(io::Error::other("the /error route fails")),
        Route::Nothing => Ok(()),
        Route::Upgrade => {
            io::copy(req, &mut io::sink())?;
            req.write_head(101, scgi_test_support::UPGRADE_HEADERS)?;
            let mut tunnel = req.upgrade()?;
            let mut chunk = [0u8; 4096];
            loop {
                let n = tunnel.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                tunnel.write_all(&chunk[..n])?;
            }
        }
    }
}

fn start(setup: &Setup) -> Running {
    let c = &setup.config;
    let config = Config::default()
        .with_head_timeout(c.head_timeout)
        .with_body_timeout(c.body_timeout)
        .with_write_timeout(c.write_timeout)
        .with_workers(c.workers)
        .with_max_connections(c.max_connections)
        .with_drain_timeout(c.drain_timeout)
        .with_drain_limit(c.drain_limit)
        .with_shutdown_timeout(c.shutdown_timeout)
        .with_proto(c.proto);
    let server = match setup.transport {
        Transport::Tcp | Transport::Tcp6 => Server::bind_tcp(setup.tcp_addr()),
        Transport::Unix => Server::bind_unix(setup.unix_path()),
    }
    .expect("bind")
    .with_config(config);
    let target = match server.local_addr() {
        Addr::Tcp(a) => Target::Tcp(*a),
        _ => Target::Unix(setup.unix_path().to_owned()),
    };
    let handle = server.shutdown_handle();
    let serving = thread::spawn(move || server.run(app));
    Running::new(target, move || {
        let finished = handle.close();
        if finished {
            serving.join().expect("server thread").expect("run");
        }
        finished
    })
}

scgi_test_support::scenarios!(start);

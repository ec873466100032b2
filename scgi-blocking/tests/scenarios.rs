//! The shared scenarios of `scgi-test-support`, run against this runtime.

use std::io::{self, Read, Write};
use std::thread;

use scgi_blocking::{Addr, Request, Server};
use scgi_test_support::{Route, Running, Setup, Target};

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
        Route::Form => {
            let body = req.read_body(scgi_test_support::FORM_LIMIT)?;
            let text = scgi_test_support::form_reply(&req.headers(), &body);
            let content_type = [("Content-Type", scgi_test_support::TEXT_PLAIN)];
            req.respond(200, content_type, text)?;
            if req.headers().query_param("again").is_some() {
                req.respond(200, content_type, "again")?;
            }
            Ok(())
        }
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
    let server = Server::bind(&setup.bind_addr())
        .expect("bind")
        .with_config(setup.config);
    let target = match server.local_addr() {
        Addr::Tcp(a) => Target::Tcp(*a),
        _ => Target::Unix(setup.unix_path().to_owned()),
    };
    let handle = server.shutdown_handle();
    let counters = server.shutdown_handle();
    let serving = thread::spawn(move || server.run(app));
    Running::new(target, move || {
        let finished = handle.close();
        if finished {
            serving.join().expect("server thread").expect("run");
        }
        finished
    })
    .with_stats(move || counters.stats())
}

scgi_test_support::scenarios!(start);

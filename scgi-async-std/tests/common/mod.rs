//! The standard test app of `scgi-test-support`, and a start function
//! generic over the spawner, shared by the async-std and smol test runs.

use std::io;
use std::thread;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use scgi_async_std::{Addr, Request, Server, Spawn};
use scgi_test_support::{Route, Running, Setup, Target};

/// Copies the body back to the response in 64 KiB chunks, flushing each.
async fn echo_body(req: &mut Request) -> io::Result<()> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = req.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        req.write_all(&chunk[..n]).await?;
        req.flush().await?;
    }
}

/// The standard test app (see the `scgi-test-support` docs).
pub(crate) async fn app(mut req: Request) -> io::Result<()> {
    match Route::of(&req.headers()) {
        Route::DeepThought => {
            futures_lite::io::copy(&mut req, &mut futures_lite::io::sink()).await?;
            req.write_status_ok_text_content("text/plain").await?;
            req.write_all(b"42").await
        }
        Route::Echo => {
            req.write_status_ok_text_content(scgi_test_support::OCTET_STREAM)
                .await?;
            echo_body(&mut req).await
        }
        Route::Inspect(block) => {
            req.write_status_ok_text_content(scgi_test_support::OCTET_STREAM)
                .await?;
            req.write_all(&block).await?;
            echo_body(&mut req).await
        }
        Route::Panic => panic!("the /panic route panics"),
        Route::Error => Err(io::Error::other("the /error route fails")),
        Route::Nothing => Ok(()),
        Route::Form => {
            let body = req.read_body(scgi_test_support::FORM_LIMIT).await?;
            let text = scgi_test_support::form_reply(&req.headers(), &body);
            let content_type = [("Content-Type", scgi_test_support::TEXT_PLAIN)];
            req.respond(200, content_type, text).await?;
            if req.headers().query_param("again").is_some() {
                req.respond(200, content_type, "again").await?;
            }
            Ok(())
        }
        Route::Upgrade => {
            futures_lite::io::copy(&mut req, &mut futures_lite::io::sink()).await?;
            req.write_head(101, scgi_test_support::UPGRADE_HEADERS)
                .await?;
            let mut tunnel = req.upgrade().await?;
            let mut chunk = [0u8; 4096];
            loop {
                let n = tunnel.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                tunnel.write_all(&chunk[..n]).await?;
            }
        }
    }
}

/// Binds as `setup` asks, with its settings.
pub(crate) fn bind(setup: &Setup) -> (Server, Target) {
    let server = Server::bind(&setup.bind_addr())
        .expect("bind")
        .with_config(setup.config);
    let target = match server.local_addr() {
        Addr::Tcp(a) => Target::Tcp(*a),
        _ => Target::Unix(setup.unix_path().to_owned()),
    };
    (server, target)
}

/// The server's `run` future.
pub(crate) type RunFuture = std::pin::Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// Serves the standard app with `spawner`, its `run` future driven by
/// `block_on` on a thread of its own.
pub(crate) fn start_with(
    setup: &Setup,
    spawner: impl Spawn,
    block_on: fn(RunFuture) -> io::Result<()>,
) -> Running {
    let (server, target) = bind(setup);
    let server = server.with_spawner(spawner);
    let handle = server.shutdown_handle();
    let counters = server.shutdown_handle();
    let serving = thread::spawn(move || block_on(Box::pin(server.run(app))));
    Running::new(target, move || {
        let finished = async_io::block_on(handle.close());
        if finished {
            serving.join().expect("server thread").expect("run");
        }
        finished
    })
    .with_stats(move || counters.stats())
}

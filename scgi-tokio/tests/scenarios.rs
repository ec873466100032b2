//! The shared scenarios of `scgi-test-support`, run against this runtime:
//! each server runs on a tokio runtime of its own, the scenarios' clients
//! are plain blocking sockets.

use std::io;
use std::time::Duration;

use scgi_test_support::{Route, Running, Setup, Target};
use scgi_tokio::{Addr, Request, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Echoes the body through [`Request::chunk`] (zero-copy pieces of the read
/// buffer), flushing each piece.
async fn echo_chunks(req: &mut Request) -> io::Result<()> {
    while let Some(piece) = req.chunk().await? {
        req.write_all(&piece).await?;
        req.flush().await?;
    }
    Ok(())
}

/// Echoes the body through `AsyncRead`, flushing each read.
async fn echo_reads(req: &mut Request) -> io::Result<()> {
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

/// The standard test app (see the `scgi-test-support` docs). `/echo` reads
/// the body as `Bytes` pieces, the inspect route through `AsyncRead`, so
/// both body APIs run every scenario that streams a body.
async fn app(mut req: Request) -> io::Result<()> {
    match Route::of(&req.headers()) {
        Route::DeepThought => {
            tokio::io::copy(&mut req, &mut tokio::io::sink()).await?;
            req.write_status_ok_text_content("text/plain").await?;
            req.write_all(b"42").await
        }
        Route::Echo => {
            req.write_status_ok_text_content(scgi_test_support::OCTET_STREAM)
                .await?;
            echo_chunks(&mut req).await
        }
        Route::Inspect(block) => {
            req.write_status_ok_text_content(scgi_test_support::OCTET_STREAM)
                .await?;
            req.write_all(&block).await?;
            echo_reads(&mut req).await
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
            tokio::io::copy(&mut req, &mut tokio::io::sink()).await?;
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

fn start(setup: &Setup) -> Running {
    // Bound before any runtime exists: the listener joins the reactor when
    // `run` starts.
    let server = Server::bind(&setup.bind_addr())
        .expect("bind")
        .with_config(setup.config);
    let target = match server.local_addr() {
        Addr::Tcp(a) => Target::Tcp(*a),
        _ => Target::Unix(setup.unix_path().to_owned()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let handle = server.shutdown_handle();
    let counters = server.shutdown_handle();
    let serving = runtime.spawn(server.run(app));
    Running::new(target, move || {
        let finished = runtime.block_on(handle.close());
        if finished {
            runtime
                .block_on(serving)
                .expect("server task")
                .expect("run");
        }
        runtime.shutdown_timeout(Duration::from_secs(5));
        finished
    })
    .with_stats(move || counters.stats())
}

scgi_test_support::scenarios!(start);

//! `scgi-async-std` serving the e2e app: connection tasks on async-std's
//! executor ([`start`]) or smol's ([`start_smol`]), the `run` future on a
//! thread of its own.

use std::io;
use std::sync::Arc;
use std::thread;

use futures_lite::AsyncWriteExt;
use scgi_async_std::{Addr, Request, Server, Spawn, UnixOptions};

use crate::app::{App, HOLD_POLL, Head, Hold};
use crate::backend::{Backend, BackendAddr, BackendSpec, Transport};

/// Starts an `scgi-async-std` server as `spec` asks, spawning on
/// async-std's global executor.
pub fn start(spec: &BackendSpec) -> io::Result<Backend> {
    start_with(spec, scgi_async_std::AsyncStd)
}

/// The same crate, spawning on smol's global executor.
pub fn start_smol(spec: &BackendSpec) -> io::Result<Backend> {
    start_with(spec, scgi_async_std::Smol)
}

fn start_with(spec: &BackendSpec, spawner: impl Spawn) -> io::Result<Backend> {
    let server = match spec.transport {
        Transport::Tcp => Server::from_listener(spec.tcp_listener()?)?,
        Transport::Unix => Server::bind_unix_with(
            &spec.unix_path,
            &UnixOptions::DEFAULT.with_mode(spec.unix_mode),
        )?,
    }
    .with_config(spec.config)
    .with_spawner(spawner);
    let addr = match server.local_addr() {
        Addr::Tcp(a) => BackendAddr::Tcp(*a),
        _ => BackendAddr::Unix(spec.unix_path.clone()),
    };
    let app = Arc::clone(&spec.app);
    let handle = server.shutdown_handle();
    let serving = thread::spawn(move || {
        async_io::block_on(server.run(move |req| serve(Arc::clone(&app), req)))
    });
    Ok(Backend::new(addr, move || {
        if async_io::block_on(handle.close()) {
            let _ = serving.join();
        }
    }))
}

async fn serve(app: Arc<App>, mut req: Request) -> io::Result<()> {
    let body = if app.reads_body(&req.headers()) {
        req.read_body(crate::app::MAX_BODY).await?
    } else {
        Default::default()
    };
    let response = app.respond(&req.headers(), &body);
    if !response.delay.is_zero() {
        async_io::Timer::after(response.delay).await;
    }
    match &response.head {
        Head::Cgi { status, .. } => req.write_head(*status, &response.header_pairs()).await?,
        Head::Raw(bytes) => req.write_all(bytes).await?,
    }
    for chunk in &response.body {
        req.write_all(chunk).await?;
        req.flush().await?;
    }
    if let Some(hold) = &response.hold {
        let opened = loop {
            match hold.poll() {
                Some(opened) => break opened,
                None => {
                    async_io::Timer::after(HOLD_POLL).await;
                }
            }
        };
        req.write_all(&Hold::last_piece(opened)).await?;
        req.flush().await?;
    }
    Ok(())
}

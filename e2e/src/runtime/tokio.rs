//! `scgi-tokio` serving the e2e app, on a tokio runtime of its own (two
//! worker threads).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use scgi_tokio::{Addr, Request, Server, UnixOptions};
use tokio::io::AsyncWriteExt;

use crate::app::{App, HOLD_POLL, Head, Hold};
use crate::backend::{Backend, BackendAddr, BackendSpec, Transport};

/// Starts an `scgi-tokio` server as `spec` asks.
pub fn start(spec: &BackendSpec) -> io::Result<Backend> {
    // Bound before the runtime exists: the listener joins the reactor when
    // `run` starts.
    let server = match spec.transport {
        Transport::Tcp => Server::from_listener(spec.tcp_listener()?)?,
        Transport::Unix => Server::bind_unix_with(
            &spec.unix_path,
            &UnixOptions::DEFAULT.with_mode(spec.unix_mode),
        )?,
    }
    .with_config(spec.config);
    let addr = match server.local_addr() {
        Addr::Tcp(a) => BackendAddr::Tcp(*a),
        _ => BackendAddr::Unix(spec.unix_path.clone()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let app = Arc::clone(&spec.app);
    let handle = server.shutdown_handle();
    let serving = runtime.spawn(server.run(move |req| serve(Arc::clone(&app), req)));
    Ok(Backend::new(addr, move || {
        if runtime.block_on(handle.close()) {
            let _ = runtime.block_on(serving);
        }
        runtime.shutdown_timeout(Duration::from_secs(5));
    }))
}

async fn serve(app: Arc<App>, mut req: Request) -> io::Result<()> {
    let body = if app.reads_body(&req.headers()) {
        req.read_body(crate::app::MAX_BODY).await?
    } else {
        Default::default()
    };
    let response = app.respond(&req.headers(), &body);
    tokio::time::sleep(response.delay).await;
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
                None => tokio::time::sleep(HOLD_POLL).await,
            }
        };
        req.write_all(&Hold::last_piece(opened)).await?;
        req.flush().await?;
    }
    Ok(())
}

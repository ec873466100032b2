//! `scgi-blocking` (std threads) serving the e2e app.

use std::io::{self, Write};
use std::sync::Arc;
use std::thread;

use scgi_blocking::{Addr, Request, Server, UnixOptions};

use crate::app::{App, HOLD_POLL, Head, Hold};
use crate::backend::{Backend, BackendAddr, BackendSpec, Transport};

/// Starts an `scgi-blocking` server as `spec` asks.
pub fn start(spec: &BackendSpec) -> io::Result<Backend> {
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
    let app = Arc::clone(&spec.app);
    let handle = server.shutdown_handle();
    let serving = thread::spawn(move || server.run(move |req| serve(&app, req)));
    Ok(Backend::new(addr, move || {
        if handle.close() {
            let _ = serving.join();
        }
    }))
}

fn serve(app: &App, req: &mut Request) -> io::Result<()> {
    let body = if app.reads_body(&req.headers()) {
        req.read_body(crate::app::MAX_BODY)?
    } else {
        Default::default()
    };
    let response = app.respond(&req.headers(), &body);
    thread::sleep(response.delay);
    match &response.head {
        Head::Cgi { status, .. } => req.write_head(*status, &response.header_pairs())?,
        Head::Raw(bytes) => req.write_all(bytes)?,
    }
    for chunk in &response.body {
        req.write_all(chunk)?;
        req.flush()?;
    }
    if let Some(hold) = &response.hold {
        let opened = loop {
            match hold.poll() {
                Some(opened) => break opened,
                None => thread::sleep(HOLD_POLL),
            }
        };
        req.write_all(&Hold::last_piece(opened))?;
        req.flush()?;
    }
    Ok(())
}

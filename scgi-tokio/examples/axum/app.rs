//! The axum example's routes: plain axum, nothing SCGI-specific but the
//! optional extensions `/whoami` reads.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Extension, Path};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use scgi_tokio::scgi_proto::http::ScgiHeaders;
use serde::{Deserialize, Serialize};

/// How many pieces `/stream` sends, and the pause before each.
pub(crate) const STREAM_PIECES: usize = 5;
pub(crate) const STREAM_PAUSE: Duration = Duration::from_millis(50);

/// The router: `GET /`, `GET /hello/{name}`, `POST /items` (JSON in,
/// JSON out), `GET /stream` (a body sent piece by piece) and
/// `GET /whoami` (the SCGI request extensions).
pub(crate) fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello from axum over SCGI\n" }))
        .route("/hello/{name}", get(hello))
        .route("/items", post(create_item))
        .route("/stream", get(stream))
        .route("/whoami", get(whoami))
}

async fn hello(Path(name): Path<String>) -> String {
    format!("Hello, {name}!\n")
}

/// What `POST /items` accepts.
#[derive(Deserialize)]
pub(crate) struct NewItem {
    name: String,
    quantity: u32,
}

/// What `POST /items` answers.
#[derive(Serialize)]
pub(crate) struct Item {
    id: u64,
    name: String,
    quantity: u32,
    /// Uppercased by the server, so a client sees the JSON went both ways.
    label: String,
}

async fn create_item(Json(item): Json<NewItem>) -> impl IntoResponse {
    let created = Item {
        id: 42,
        label: item.name.to_uppercase(),
        name: item.name,
        quantity: item.quantity,
    };
    (StatusCode::CREATED, Json(created))
}

/// `piece 1 of 5` ... one line every [`STREAM_PAUSE`], without a
/// `Content-Length`: the client sees each line as it is produced.
async fn stream() -> impl IntoResponse {
    let pieces = futures_util::stream::unfold(1, |i| async move {
        if i > STREAM_PIECES {
            return None;
        }
        tokio::time::sleep(STREAM_PAUSE).await;
        let line = Bytes::from(format!("piece {i} of {STREAM_PIECES}\n"));
        Some((Ok::<_, Infallible>(line), i + 1))
    });
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            // nginx buffers a backend's response by default; this asks it
            // to pass each piece on as it comes (Apache and lighttpd do).
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(pieces),
    )
}

/// The HTTP client's address, with axum's own `ConnectInfo` extractor
/// (filled from `REMOTE_ADDR` and `REMOTE_PORT` by the `axum` feature; the
/// same address is in the `scgi_tokio::RemoteAddr` extension), and the web
/// server's name from the raw SCGI headers.
async fn whoami(
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(scgi): Extension<ScgiHeaders>,
) -> String {
    let server = scgi.headers().server_name().unwrap_or("-").to_owned();
    format!("client {client}, server {server}\n")
}

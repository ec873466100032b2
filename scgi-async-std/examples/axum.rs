//! An axum `Router`, unchanged, served over SCGI on smol (features `smol`
//! and `tower`): the same `tower` layer as scgi-tokio's, on another
//! runtime.
//!
//! ```text
//! cargo run -p scgi-async-std --no-default-features --features smol,tower --example axum [HOST:PORT | unix:PATH]
//! ```
//!
//! Listens on `127.0.0.1:4000` unless an address is given as the argument
//! or in `SCGI_ADDR`. Put nginx in front of it:
//!
//! ```nginx
//! location / { include scgi_params; scgi_pass 127.0.0.1:4000; }
//! ```
//!
//! Then, through nginx:
//!
//! ```text
//! curl http://localhost/
//! curl -d '{"word":"smol"}' -H 'Content-Type: application/json' http://localhost/shout
//! curl --data-binary @some-file http://localhost/count
//! ```

mod common;

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};

/// What `POST /shout` accepts.
#[derive(Deserialize)]
struct Word {
    word: String,
}

/// What `POST /shout` answers.
#[derive(Serialize)]
struct Shout {
    shout: String,
}

/// The router: `GET /` (text), `POST /shout` (JSON in, JSON out) and
/// `POST /count` (the body streamed and counted, never held whole).
fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello from axum on smol over SCGI\n" }))
        .route(
            "/shout",
            post(|Json(w): Json<Word>| async move {
                Json(Shout {
                    shout: w.word.to_uppercase(),
                })
            }),
        )
        .route("/count", post(count))
}

async fn count(body: Body) -> Result<String, axum::http::StatusCode> {
    let mut body = body.into_data_stream();
    let mut total = 0usize;
    while let Some(piece) = body.frame().await {
        let piece = piece.map_err(|_| axum::http::StatusCode::BAD_REQUEST)?;
        total += piece.data_ref().map_or(0, |d| d.len());
    }
    Ok(format!("{total} bytes\n"))
}

fn main() -> std::io::Result<()> {
    let server = common::bind_from_args()?.with_spawner(scgi_async_std::Smol);
    smol::block_on(server.serve(router()))
}

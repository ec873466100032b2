//! The smol axum example's routes: plain axum, nothing SCGI- or
//! runtime-specific.

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
pub(crate) fn router() -> Router {
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

//! The console's own stylesheet and script, compiled into the binary (no CDN, no build step).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::App;

const CSS: &str = include_str!("../../static/console.css");
const JS: &str = include_str!("../../static/console.js");

pub fn routes() -> Router<App> {
    Router::new()
        .route("/static/console.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/static/console.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

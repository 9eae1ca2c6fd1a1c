//! Console pages: clusters (to be filled in).

use axum::Router;

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
}

//! `/settings` (admins): the running configuration, read-only, secrets masked.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::render::{self, Layout};
use super::session::Session;
use crate::app::App;
use crate::app::settings::SettingsView;

pub fn routes() -> Router<App> {
    Router::new().route("/settings", get(settings))
}

#[derive(Template, WebTemplate)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    l: Layout,
    s: SettingsView,
}

async fn settings(State(app): State<App>, session: Session) -> Response {
    match app.settings_view(&session.actor).await {
        Ok(s) => SettingsPage { l: Layout::new(&session, "Settings", "settings"), s }.into_response(),
        Err(e) => render::error_response(&session, &e),
    }
}

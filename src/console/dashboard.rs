//! `/`: the dashboard.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::render::{self, Layout};
use super::session::Session;
use crate::app::App;
use crate::app::dashboard::Dashboard;

pub fn routes() -> Router<App> {
    Router::new().route("/", get(dashboard))
}

#[derive(Template, WebTemplate)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    l: Layout,
    d: Dashboard,
}

impl DashboardPage {
    fn total(counts: &[(String, i64)]) -> i64 {
        counts.iter().map(|(_, n)| n).sum()
    }

    fn count(counts: &[(String, i64)], state: &str) -> i64 {
        counts.iter().find(|(s, _)| s == state).map(|(_, n)| *n).unwrap_or(0)
    }

    fn percent(part: &i64, whole: &u128) -> u64 {
        render::percent((*part).max(0) as u64, (*whole).min(u64::MAX as u128) as u64)
    }
}

async fn dashboard(State(app): State<App>, session: Session) -> Response {
    match app.dashboard(&session.actor).await {
        Ok(d) => DashboardPage { l: Layout::new(&session, "Dashboard", "dashboard"), d }.into_response(),
        Err(e) => render::error_response(&session, &e),
    }
}

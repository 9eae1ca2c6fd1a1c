//! `/account`: the logged-in user's own account: two-factor authentication (TOTP) set up,
//! enabled with a code, disabled with a code.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::form::Posted;
use super::list::with_status;
use super::render::{self, Layout};
use super::session::Session;
use crate::app::App;
use crate::error::Error;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/account", get(account))
        .route("/account/mfa/setup", post(setup))
        .route("/account/mfa/enable", post(enable))
        .route("/account/mfa/disable", post(disable))
}

/// A TOTP enrolment in progress: the secret to type or scan, shown on the page that confirms it.
#[derive(Debug, Clone, Default)]
struct Enrolment {
    secret: String,
    otpauth_url: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/account.html")]
struct AccountPage {
    l: Layout,
    mfa_enabled: bool,
    enrolment: Option<Enrolment>,
    error: Option<String>,
}

async fn page(app: &App, session: &Session, enrolment: Option<Enrolment>, error: Option<&Error>) -> Response {
    let me = match app.me(&session.actor).await {
        Ok(me) => me,
        Err(e) => return render::error_response(session, &e),
    };
    let view = AccountPage {
        l: Layout::new(session, "Your account", "account"),
        mfa_enabled: me["mfa_enabled"].as_bool().unwrap_or(false),
        enrolment,
        error: error.map(render::message),
    };
    match error {
        Some(e) => with_status(view, crate::http::error::status(e)),
        None => view.into_response(),
    }
}

async fn account(State(app): State<App>, session: Session) -> Response {
    page(&app, &session, None, None).await
}

async fn setup(State(app): State<App>, Posted { session, .. }: Posted) -> Response {
    match app.mfa_setup(&session.actor).await {
        Ok(s) => page(&app, &session, Some(Enrolment { secret: s.secret, otpauth_url: s.otpauth_url }), None).await,
        Err(e) => page(&app, &session, None, Some(&e)).await,
    }
}

async fn enable(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    match app.mfa_set(&session.actor, &form.text("totp_code"), true).await {
        Ok(_) => render::done("/account", "Two-factor authentication is on: logins now ask for a code"),
        Err(e) => {
            // A wrong code keeps the enrolment on screen (the secret came with this form, from
            // the page that showed it) so the user can try the next code.
            let enrolment =
                form.get("secret").map(|s| Enrolment { secret: s.to_string(), otpauth_url: form.text("otpauth_url") });
            page(&app, &session, enrolment, Some(&e)).await
        }
    }
}

async fn disable(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    match app.mfa_set(&session.actor, &form.text("totp_code"), false).await {
        Ok(_) => render::done("/account", "Two-factor authentication is off"),
        Err(e) => page(&app, &session, None, Some(&e)).await,
    }
}

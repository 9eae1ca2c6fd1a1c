//! `/api-keys`: every user's own API keys (admins see everyone's): list, create with the scopes
//! the user's role grants (the key is shown once, in the answer), revoke.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::form::{FormData, Posted};
use super::list::{Pager, page_request, query, with_status};
use super::render::{self, Layout};
use super::session::Session;
use crate::app::App;
use crate::app::api_keys::{ApiKeyView, CreateApiKey};
use crate::error::Error;
use crate::model::Scope;

pub fn routes() -> Router<App> {
    Router::new().route("/api-keys", get(list).post(create)).route("/api-keys/{id}/revoke", post(revoke))
}

/// Expiry choices, in days (`""`: never).
const EXPIRY_DAYS: [(&str, &str); 5] =
    [("30", "in 30 days"), ("90", "in 90 days"), ("365", "in a year"), ("7", "in 7 days"), ("", "never")];

#[derive(Template, WebTemplate)]
#[template(path = "console/api_key_list.html")]
struct ListPage {
    l: Layout,
    keys: Vec<ApiKeyView>,
    pager: Pager,
    /// The scopes the user's role grants: the only ones offered.
    scopes: Vec<&'static str>,
    expiry: [(&'static str, &'static str); 5],
    f: FormData,
    error: Option<String>,
    /// Admins see every user's keys.
    all_users: bool,
}

impl ListPage {
    fn scope_list(k: &ApiKeyView) -> String {
        k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// The answer to a create: the only time the key is shown.
#[derive(Template, WebTemplate)]
#[template(path = "console/api_key_created.html")]
struct CreatedPage {
    l: Layout,
    k: ApiKeyView,
    key: String,
}

impl CreatedPage {
    fn scope_list(&self) -> String {
        ListPage::scope_list(&self.k)
    }
}

fn denied(e: &Error) -> bool {
    matches!(e, Error::Forbidden { code, .. } if *code != "INSUFFICIENT_SCOPE")
        || matches!(e, Error::Unauthenticated { .. })
}

async fn list_page(app: &App, session: &Session, q: &FormData, f: FormData, error: Option<&Error>) -> Response {
    let page = page_request(q);
    match app.api_key_list(&session.actor, page).await {
        Ok(p) => {
            let view = ListPage {
                l: Layout::new(session, "API keys", "api-keys"),
                pager: Pager::filtered(page, p.total, "/api-keys", &[]),
                keys: p.items,
                scopes: session.role.scopes().iter().map(|s| s.as_str()).collect(),
                expiry: EXPIRY_DAYS,
                f,
                error: error.map(render::message),
                all_users: session.can(Scope::Admin),
            };
            match error {
                Some(e) => with_status(view, crate::http::error::status(e)),
                None => view.into_response(),
            }
        }
        Err(e) => render::error_response(session, &e),
    }
}

async fn list(State(app): State<App>, session: Session, RawQuery(raw): RawQuery) -> Response {
    list_page(&app, &session, &query(&raw), FormData::parse(b"expires_in_days=90"), None).await
}

/// The form's scope names; an unknown one is an error naming it.
fn scopes(f: &FormData) -> Result<Vec<Scope>, Error> {
    f.all("scopes").iter().map(|s| s.parse::<Scope>().map_err(|why| Error::invalid_field("scopes", why))).collect()
}

/// "In N days" as the timestamp the service takes.
fn expires_at(f: &FormData) -> Result<Option<String>, Error> {
    let Some(days) = f.get("expires_in_days") else { return Ok(None) };
    let days = days
        .parse::<i64>()
        .ok()
        .filter(|d| (1..=3650).contains(d))
        .ok_or_else(|| Error::invalid_field("expires_at", "the expiry must be 1-3650 days"))?;
    Ok(Some(crate::model::to_rfc3339(chrono::Utc::now() + chrono::Duration::days(days))))
}

async fn create(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    let req = scopes(&form)
        .and_then(|scopes| Ok(CreateApiKey { name: form.text("name"), scopes, expires_at: expires_at(&form)? }));
    let result = match req {
        Ok(req) => app.api_key_create(&session.actor, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(mut k) => {
            let key = k.key.take().unwrap_or_default();
            let page = CreatedPage { l: Layout::new(&session, "API key created", "api-keys"), k, key };
            with_status(page, StatusCode::CREATED)
        }
        Err(e) if denied(&e) => render::error_response(&session, &e),
        Err(e) => list_page(&app, &session, &FormData::default(), form, Some(&e)).await,
    }
}

async fn revoke(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    match app.api_key_revoke(&session.actor, &id).await {
        Ok(()) => render::done("/api-keys", &format!("Revoked API key {id}")),
        Err(e) => render::error_response(&session, &e),
    }
}

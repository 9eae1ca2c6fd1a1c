//! `/psks`: pre-shared keys. Values are never on a GET page: they appear in the answer to the
//! POST that made them (create, rotate) or to an explicit, audited reveal (the API's read,
//! `psk_get`, which records `psk.read_value`).

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::form::{FormData, Posted};
use super::list::{ListQuery, Pager, keep_filters, with_status};
use super::render::{self, Layout};
use super::session::Session;
use super::vnis::{int_field, not_permitted, status_of};
use crate::app::App;
use crate::app::psks::{CreatePsk, PskView, PskWithValue, RotatePsk, UpdatePsk};
use crate::error::Error;
use crate::secret::Secret;
use crate::store::psks::PskQuery;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/psks", get(list).post(create))
        .route("/psks/{id}", get(detail).post(update))
        .route("/psks/{id}/reveal", post(reveal))
        .route("/psks/{id}/rotate", post(rotate))
        .route("/psks/{id}/delete", post(delete))
}

/// The create form as typed. The passphrase is deliberately not kept: a refused form is not a
/// reason to put a secret back into a page.
#[derive(Debug, Clone, Default)]
struct PskForm {
    psk_id: String,
    description: String,
    vlan_id: String,
    expires: String,
    expires_in_hours: String,
    enabled: bool,
}

impl PskForm {
    fn new() -> PskForm {
        PskForm { enabled: true, ..PskForm::default() }
    }

    fn from_form(f: &FormData) -> PskForm {
        PskForm {
            psk_id: f.text("psk_id"),
            description: f.text("description"),
            vlan_id: f.text("vlan_id"),
            expires: f.text("expires"),
            expires_in_hours: f.text("expires_in_hours"),
            enabled: f.checked("enabled"),
        }
    }

    fn from_view(p: &PskView) -> PskForm {
        PskForm {
            psk_id: p.psk_id.clone(),
            description: p.description.clone(),
            vlan_id: p.vlan_id.map(|v| v.to_string()).unwrap_or_default(),
            expires: p.expires.clone().unwrap_or_default(),
            expires_in_hours: String::new(),
            enabled: p.enabled,
        }
    }
}

fn create_request(f: &FormData) -> Result<CreatePsk, Error> {
    Ok(CreatePsk {
        psk_id: f.get("psk_id").map(str::to_string),
        // Taken as sent: spaces can be part of a passphrase.
        psk_value: f.raw("psk_value").filter(|v| !v.is_empty()).map(|v| Secret::new(v.to_string())),
        description: f.get("description").map(str::to_string),
        vlan_id: int_field(f, "vlan_id")?,
        expires: f.get("expires").map(str::to_string),
        expires_in_hours: int_field(f, "expires_in_hours")?,
        enabled: Some(f.checked("enabled")),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "console/psks.html")]
struct PskListPage {
    l: Layout,
    psks: Vec<PskView>,
    pager: Pager,
    status: String,
    vlan_id: String,
    form: PskForm,
    error: Option<String>,
}

async fn list_page(app: &App, session: &Session, q: &ListQuery, form: PskForm, error: Option<String>) -> Response {
    let page = q.page("page");
    let vlan_id = match q.get("vlan_id").map(str::parse::<i64>).transpose() {
        Ok(v) => v,
        Err(_) => {
            let e = Error::invalid_field("vlan_id", "the VLAN filter must be a number");
            return render::error_response(session, &e);
        }
    };
    let query = PskQuery { vlan_id, enabled: None, status: q.get("status").map(str::to_string), now: String::new() };
    match app.psk_list(&session.actor, query, page).await {
        Ok(p) => PskListPage {
            l: Layout::new(session, "PSKs", "psks"),
            pager: Pager::new(&keep_filters("/psks", q, &["status", "vlan_id"]), "page", page, p.total),
            psks: p.items,
            status: q.get("status").unwrap_or_default().to_string(),
            vlan_id: q.get("vlan_id").unwrap_or_default().to_string(),
            form,
            error,
        }
        .into_response(),
        Err(e) => render::error_response(session, &e),
    }
}

async fn list(State(app): State<App>, session: Session, Query(q): Query<HashMap<String, String>>) -> Response {
    list_page(&app, &session, &ListQuery(q), PskForm::new(), None).await
}

/// The one page a value is shown on: the answer to create, rotate or reveal.
#[derive(Template, WebTemplate)]
#[template(path = "console/psk_value.html")]
struct PskValuePage {
    l: Layout,
    p: PskWithValue,
    /// Why the value is shown: `created`, `rotated` or `revealed`.
    why: &'static str,
}

fn value_page(session: &Session, p: PskWithValue, why: &'static str, status: StatusCode) -> Response {
    let page = PskValuePage { l: Layout::new(session, format!("PSK {}", p.psk.psk_id), "psks"), p, why };
    with_status(page.into_response(), status)
}

async fn create(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    let result = match create_request(&form) {
        Ok(req) => app.psk_create(&session.actor, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => value_page(&session, p, "created", StatusCode::CREATED),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let page =
                list_page(&app, &session, &ListQuery::default(), PskForm::from_form(&form), Some(render::message(&e)))
                    .await;
            with_status(page, status_of(&e))
        }
    }
}

#[derive(Debug, Clone, Default)]
struct DetailErrors {
    edit: Option<String>,
    state: Option<String>,
    rotate: Option<String>,
    reveal: Option<String>,
    delete: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/psk_detail.html")]
struct PskDetailPage {
    l: Layout,
    p: PskView,
    edit: PskForm,
    grace_hours: String,
    errors: DetailErrors,
    confirm: String,
}

struct DetailState {
    edit: Option<PskForm>,
    grace_hours: String,
    errors: DetailErrors,
    confirm: String,
}

impl DetailState {
    fn clean() -> DetailState {
        DetailState { edit: None, grace_hours: String::new(), errors: DetailErrors::default(), confirm: String::new() }
    }
}

async fn detail_page(app: &App, session: &Session, key: &str, st: DetailState) -> Response {
    match app.psk_summary(&session.actor, key).await {
        Ok(p) => PskDetailPage {
            l: Layout::new(session, format!("PSK {}", p.psk_id), "psks"),
            edit: st.edit.unwrap_or_else(|| PskForm::from_view(&p)),
            grace_hours: st.grace_hours,
            errors: st.errors,
            confirm: st.confirm,
            p,
        }
        .into_response(),
        Err(e) => render::error_response(session, &e),
    }
}

async fn refused(app: &App, session: &Session, key: &str, e: &Error, st: DetailState) -> Response {
    with_status(detail_page(app, session, key, st).await, status_of(e))
}

async fn detail(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    detail_page(&app, &session, &id, DetailState::clean()).await
}

/// The update form comes in two kinds: the edit form (every field but the state), or the
/// enable/disable button (`enabled` alone).
async fn update_request(app: &App, session: &Session, key: &str, f: &FormData) -> Result<UpdatePsk, Error> {
    let mut req = UpdatePsk {
        psk_id: None,
        psk_value: None,
        description: None,
        vlan_id: None,
        expires: None,
        expires_in_hours: None,
        enabled: None,
    };
    if let Some(e) = f.get("enabled") {
        req.enabled = Some(e == "true");
        return Ok(req);
    }
    let current = app.psk_summary(&session.actor, key).await?;
    req.psk_id = f.get("psk_id").map(str::to_string);
    req.description = Some(f.text("description"));
    req.vlan_id = Some(int_field(f, "vlan_id")?);
    req.expires_in_hours = int_field(f, "expires_in_hours")?;
    // An unchanged expiry is not re-sent: it may already be past, and re-setting it would be
    // refused as a time in the past although the user changed nothing.
    let expires = f.get("expires").map(str::to_string);
    if expires != current.expires && req.expires_in_hours.is_none() {
        req.expires = Some(expires);
    }
    Ok(req)
}

async fn update(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let state_change = form.get("enabled").is_some();
    let result = match update_request(&app, &session, &id, &form).await {
        Ok(req) => app.psk_update(&session.actor, &id, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => {
            let notice = if state_change {
                format!("PSK {} is {}", p.psk_id, if p.enabled { "enabled" } else { "disabled" })
            } else {
                format!("Saved PSK {}", p.psk_id)
            };
            render::done(&format!("/psks/{}", p.id), &notice)
        }
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let mut st = DetailState::clean();
            if state_change {
                st.errors.state = Some(render::message(&e));
            } else {
                st.edit = Some(PskForm::from_form(&form));
                st.errors.edit = Some(render::message(&e));
            }
            refused(&app, &session, &id, &e, st).await
        }
    }
}

async fn reveal(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    match app.psk_get(&session.actor, &id).await {
        Ok(p) => value_page(&session, p, "revealed", StatusCode::OK),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let mut st = DetailState::clean();
            st.errors.reveal = Some(render::message(&e));
            refused(&app, &session, &id, &e, st).await
        }
    }
}

async fn rotate(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let grace = form.text("grace_hours");
    let result = match int_field(&form, "grace_hours") {
        Ok(grace_hours) => {
            let req = RotatePsk {
                psk_value: form.raw("psk_value").filter(|v| !v.is_empty()).map(|v| Secret::new(v.to_string())),
                grace_hours,
            };
            app.psk_rotate(&session.actor, &id, req).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => value_page(&session, p, "rotated", StatusCode::OK),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let mut st = DetailState::clean();
            st.grace_hours = grace;
            st.errors.rotate = Some(render::message(&e));
            refused(&app, &session, &id, &e, st).await
        }
    }
}

async fn delete(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let typed = form.text("confirm");
    // Checked here as well: the page's script only enables the button.
    let result = match app.psk_summary(&session.actor, &id).await {
        Ok(p) if p.psk_id != typed => {
            Err(Error::invalid_field("confirm", format!("type the PSK's name `{}` to confirm deleting it", p.psk_id)))
        }
        Ok(p) => app.psk_delete(&session.actor, &p.id).await.map(|_| p),
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => render::done("/psks", &format!("Deleted PSK {}", p.psk_id)),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let mut st = DetailState::clean();
            st.errors.delete = Some(render::message(&e));
            st.confirm = typed;
            refused(&app, &session, &id, &e, st).await
        }
    }
}

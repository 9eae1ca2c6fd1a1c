//! `/devices`: enrollment tokens (list, create with the value shown once in the answer, revoke)
//! and enrolled devices (list with filters, detail with history, delete = revoke). Renewal is a
//! device's own act (it signs with its key), so the console offers none.

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
use crate::app::devices::{DeviceEventView, DeviceStatus, DeviceView};
use crate::app::enroll_tokens::{CreateEnrollToken, EnrollTokenView, TokenStatus};
use crate::app::vnis::VniView;
use crate::app::{App, PageRequest};
use crate::error::Error;
use crate::store::devices::DeviceStatusFilter;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/devices", get(list))
        .route("/devices/{id}", get(detail))
        .route("/devices/{id}/delete", post(delete))
        .route("/enrollment-tokens", post(create_token))
        .route("/enrollment-tokens/{id}/revoke", post(revoke_token))
}

fn device_status(s: &DeviceStatus) -> &'static str {
    match s {
        DeviceStatus::Online => "online",
        DeviceStatus::Offline => "offline",
        DeviceStatus::Revoked => "revoked",
    }
}

fn token_status(s: &TokenStatus) -> &'static str {
    match s {
        TokenStatus::Active => "active",
        TokenStatus::Expired => "expired",
        TokenStatus::Exhausted => "exhausted",
        TokenStatus::Revoked => "revoked",
    }
}

/// The token form as typed.
#[derive(Debug, Clone)]
struct TokenForm {
    max_uses: String,
    expires_in_hours: String,
    tags: String,
    vni_id: String,
    description: String,
}

impl TokenForm {
    fn new() -> TokenForm {
        TokenForm {
            max_uses: "1".into(),
            expires_in_hours: "24".into(),
            tags: String::new(),
            vni_id: String::new(),
            description: String::new(),
        }
    }

    fn from_form(f: &FormData) -> TokenForm {
        TokenForm {
            max_uses: f.text("max_uses"),
            expires_in_hours: f.text("expires_in_hours"),
            tags: f.text("tags"),
            vni_id: f.text("vni_id"),
            description: f.text("description"),
        }
    }
}

fn token_request(f: &FormData) -> Result<CreateEnrollToken, Error> {
    let expires_in_hours = f
        .get("expires_in_hours")
        .map(|v| {
            v.parse::<f64>().map_err(|_| {
                Error::invalid_field("expires_in_hours", format!("expires_in_hours must be a number, got `{v}`"))
            })
        })
        .transpose()?;
    Ok(CreateEnrollToken {
        max_uses: int_field(f, "max_uses")?.unwrap_or(1),
        expires_in_hours,
        tags: f.text("tags").split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect(),
        vni_id: f.get("vni_id").map(str::to_string),
        description: f.get("description").map(str::to_string),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "console/devices.html")]
struct DevicesPage {
    l: Layout,
    tokens: Vec<EnrollTokenView>,
    tokens_pager: Pager,
    devices: Vec<DeviceView>,
    pager: Pager,
    /// The filters as given.
    status: String,
    tag: String,
    vni_id: String,
    vnis: Vec<VniView>,
    form: TokenForm,
    error: Option<String>,
    revoke_error: Option<String>,
}

impl DevicesPage {
    fn device_status(s: &DeviceStatus) -> &'static str {
        device_status(s)
    }

    fn token_status(s: &TokenStatus) -> &'static str {
        token_status(s)
    }
}

/// What a refused token form leaves on the page.
#[derive(Default)]
struct Refusal {
    form: Option<TokenForm>,
    error: Option<String>,
    revoke_error: Option<String>,
}

async fn list_page(app: &App, session: &Session, q: &ListQuery, refusal: Refusal) -> Response {
    let status = match q.get("status") {
        None => None,
        Some("online") => Some(DeviceStatusFilter::Online),
        Some("offline") => Some(DeviceStatusFilter::Offline),
        Some("revoked") => Some(DeviceStatusFilter::Revoked),
        Some("enrolled") => Some(DeviceStatusFilter::Enrolled),
        Some(other) => {
            let e = Error::invalid_field("status", format!("unknown status `{other}`"));
            return render::error_response(session, &e);
        }
    };
    let tokens_page = q.page("tokens_page");
    let tokens = match app.enroll_token_list(&session.actor, tokens_page).await {
        Ok(t) => t,
        Err(e) => return render::error_response(session, &e),
    };
    let page = q.page("page");
    let devices = match app
        .device_list(
            &session.actor,
            status,
            q.get("vni_id").map(str::to_string),
            q.get("tag").map(str::to_string),
            page,
        )
        .await
    {
        Ok(d) => d,
        Err(e) => return render::error_response(session, &e),
    };
    // The VNI picker is a convenience: without vnis:read it is just empty.
    let vnis = app
        .vni_list(&session.actor, PageRequest { page: 1, per_page: crate::app::MAX_PER_PAGE })
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let filters = keep_filters("/devices", q, &["status", "tag", "vni_id"]);
    DevicesPage {
        l: Layout::new(session, "Devices", "devices"),
        tokens_pager: Pager::new(&format!("{filters}page={}&", page.page), "tokens_page", tokens_page, tokens.total),
        tokens: tokens.items,
        pager: Pager::new(&format!("{filters}tokens_page={}&", tokens_page.page), "page", page, devices.total),
        devices: devices.items,
        status: q.get("status").unwrap_or_default().to_string(),
        tag: q.get("tag").unwrap_or_default().to_string(),
        vni_id: q.get("vni_id").unwrap_or_default().to_string(),
        vnis,
        form: refusal.form.unwrap_or_else(TokenForm::new),
        error: refusal.error,
        revoke_error: refusal.revoke_error,
    }
    .into_response()
}

async fn list(State(app): State<App>, session: Session, Query(q): Query<HashMap<String, String>>) -> Response {
    list_page(&app, &session, &ListQuery(q), Refusal::default()).await
}

/// The answer to creating a token: the one page that shows its value.
#[derive(Template, WebTemplate)]
#[template(path = "console/token_created.html")]
struct TokenCreatedPage {
    l: Layout,
    t: EnrollTokenView,
    value: String,
}

async fn create_token(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    let result = match token_request(&form) {
        Ok(req) => app.enroll_token_create(&session.actor, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(mut t) => {
            let value = t.token.take().unwrap_or_default();
            let page = TokenCreatedPage { l: Layout::new(&session, "Enrollment token created", "devices"), t, value };
            with_status(page.into_response(), StatusCode::CREATED)
        }
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let refusal = Refusal {
                form: Some(TokenForm::from_form(&form)),
                error: Some(render::message(&e)),
                revoke_error: None,
            };
            with_status(list_page(&app, &session, &ListQuery::default(), refusal).await, status_of(&e))
        }
    }
}

async fn revoke_token(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    match app.enroll_token_revoke(&session.actor, &id).await {
        Ok(()) => render::done("/devices", &format!("Revoked enrollment token {id}")),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let refusal = Refusal { revoke_error: Some(render::message(&e)), ..Refusal::default() };
            with_status(list_page(&app, &session, &ListQuery::default(), refusal).await, status_of(&e))
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/device_detail.html")]
struct DeviceDetailPage {
    l: Layout,
    d: DeviceView,
    metadata: String,
    history: Vec<DeviceEventView>,
    pager: Pager,
    confirm: String,
    delete_error: Option<String>,
}

impl DeviceDetailPage {
    fn device_status(s: &DeviceStatus) -> &'static str {
        device_status(s)
    }

    fn details(v: &serde_json::Value) -> String {
        match v.as_object() {
            Some(o) if !o.is_empty() => o.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "),
            _ => String::new(),
        }
    }
}

async fn detail_page(
    app: &App,
    session: &Session,
    id: &str,
    page: PageRequest,
    confirm: String,
    delete_error: Option<String>,
) -> Response {
    let d = match app.device_get(&session.actor, id).await {
        Ok(d) => d,
        Err(e) => return render::error_response(session, &e),
    };
    let history = match app.device_history(&session.actor, id, page).await {
        Ok(h) => h,
        Err(e) => return render::error_response(session, &e),
    };
    let metadata = d
        .metadata
        .as_ref()
        .filter(|m| m.as_object().is_some_and(|o| !o.is_empty()))
        .and_then(|m| serde_json::to_string_pretty(m).ok())
        .unwrap_or_default();
    DeviceDetailPage {
        l: Layout::new(session, format!("Device {}", d.name), "devices"),
        pager: Pager::new(&format!("/devices/{}?", d.id), "page", page, history.total),
        history: history.items,
        metadata,
        confirm,
        delete_error,
        d,
    }
    .into_response()
}

async fn detail(
    State(app): State<App>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    detail_page(&app, &session, &id, ListQuery(q).page("page"), String::new(), None).await
}

async fn delete(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let typed = form.text("confirm");
    // Checked here as well: the page's script only enables the button.
    let result = match app.device_get(&session.actor, &id).await {
        Ok(d) if d.name != typed => {
            Err(Error::invalid_field("confirm", format!("type the device's name `{}` to confirm deleting it", d.name)))
        }
        Ok(d) => app.device_delete(&session.actor, &id).await.map(|()| d),
        Err(e) => Err(e),
    };
    match result {
        Ok(d) => {
            render::done(&format!("/devices/{id}"), &format!("Deleted device {}: its certificates are revoked", d.name))
        }
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let page = detail_page(
                &app,
                &session,
                &id,
                PageRequest { page: 1, per_page: super::list::PER_PAGE },
                typed,
                Some(render::message(&e)),
            )
            .await;
            with_status(page, status_of(&e))
        }
    }
}

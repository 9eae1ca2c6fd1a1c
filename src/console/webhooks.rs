//! `/webhooks`: subscriptions (list, create with the signing secret shown once, enable/disable,
//! test send, delete) and each one's delivery log.

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
use crate::app::webhooks::{CreateWebhook, DeliveryView, UpdateWebhook, WebhookView};
use crate::error::Error;
use crate::secret::Secret;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/webhooks", get(list))
        .route("/webhooks/new", get(new_form).post(create))
        .route("/webhooks/{id}", get(detail))
        .route("/webhooks/{id}/enabled", post(set_enabled))
        .route("/webhooks/{id}/test", post(test_send))
        .route("/webhooks/{id}/delete", post(delete))
}

const DELIVERY_STATUSES: &[&str] = &["pending", "delivered", "failed"];

#[derive(Template, WebTemplate)]
#[template(path = "console/webhook_list.html")]
struct ListPage {
    l: Layout,
    webhooks: Vec<WebhookView>,
    pager: Pager,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/webhook_new.html")]
struct NewPage {
    l: Layout,
    f: FormData,
    error: Option<String>,
}

/// The answer to a successful create: the only time the secret is shown.
#[derive(Template, WebTemplate)]
#[template(path = "console/webhook_created.html")]
struct CreatedPage {
    l: Layout,
    w: WebhookView,
    secret: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/webhook_detail.html")]
struct DetailPage {
    l: Layout,
    w: WebhookView,
    deliveries: Vec<DeliveryView>,
    pager: Pager,
    status: String,
    statuses: &'static [&'static str],
    error: Option<String>,
}

/// Subscriptions typed as a list: commas, spaces or lines between them.
fn event_list(s: &str) -> Vec<String> {
    s.split([',', ' ', '\n', '\r']).map(str::trim).filter(|e| !e.is_empty()).map(str::to_string).collect()
}

fn denied(e: &Error) -> bool {
    matches!(e, Error::Forbidden { .. } | Error::Unauthenticated { .. })
}

async fn list(State(app): State<App>, session: Session, RawQuery(raw): RawQuery) -> Response {
    let page = page_request(&query(&raw));
    match app.webhook_list(&session.actor, page).await {
        Ok(p) => ListPage {
            l: Layout::new(&session, "Webhooks", "webhooks"),
            pager: Pager::filtered(page, p.total, "/webhooks", &[]),
            webhooks: p.items,
        }
        .into_response(),
        Err(e) => render::error_response(&session, &e),
    }
}

fn new_page(session: &Session, f: FormData, error: Option<String>) -> NewPage {
    NewPage { l: Layout::new(session, "New webhook", "webhooks"), f, error }
}

async fn new_form(session: Session) -> Response {
    if !session.can(crate::model::Scope::WebhooksWrite) {
        return render::error_response(
            &session,
            &Error::forbidden("INSUFFICIENT_SCOPE", "missing permission: webhooks:write"),
        );
    }
    new_page(&session, FormData::parse(b"events=*&enabled=on"), None).into_response()
}

async fn create(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    let req = CreateWebhook {
        url: form.text("url"),
        events: event_list(&form.text("events")),
        // Blank: the appliance generates one.
        secret: form.raw("secret").filter(|s| !s.is_empty()).map(|s| Secret::new(s.to_string())),
        description: Some(form.text("description")),
        enabled: Some(form.checked("enabled")),
    };
    match app.webhook_create(&session.actor, req).await {
        Ok(mut w) => {
            let secret = w.secret.take().unwrap_or_default();
            let page = CreatedPage { l: Layout::new(&session, "Webhook created", "webhooks"), w, secret };
            with_status(page, StatusCode::CREATED)
        }
        Err(e) if denied(&e) => render::error_response(&session, &e),
        Err(e) => {
            // The secret typed is not sent back into the page.
            let status = crate::http::error::status(&e);
            let kept = FormData::parse(
                serde_urlencoded::to_string([
                    ("url", form.text("url")),
                    ("events", form.text("events")),
                    ("description", form.text("description")),
                    ("enabled", if form.checked("enabled") { "on".into() } else { String::new() }),
                ])
                .unwrap_or_default()
                .as_bytes(),
            );
            with_status(new_page(&session, kept, Some(render::message(&e))), status)
        }
    }
}

async fn detail_page(
    app: &App,
    session: &Session,
    id: &str,
    q: &FormData,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let w = match app.webhook_get(&session.actor, id).await {
        Ok(w) => w,
        Err(e) => return render::error_response(session, &e),
    };
    let page = page_request(q);
    let filter = q.text("status");
    let keep = [("status", filter.clone())];
    let path = format!("/webhooks/{id}");
    let mut view = DetailPage {
        l: Layout::new(session, format!("Webhook {}", w.url), "webhooks"),
        w,
        deliveries: Vec::new(),
        pager: Pager::filtered(page, 0, &path, &keep),
        status: filter.clone(),
        statuses: DELIVERY_STATUSES,
        error,
    };
    let filter = (!filter.is_empty()).then_some(filter.as_str());
    match app.webhook_deliveries(&session.actor, id, filter, page).await {
        Ok(p) => {
            view.pager = Pager::filtered(page, p.total, &path, &keep);
            view.deliveries = p.items;
            with_status(view, status)
        }
        Err(e) if denied(&e) => render::error_response(session, &e),
        Err(e) => {
            view.error = Some(render::message(&e));
            with_status(view, crate::http::error::status(&e))
        }
    }
}

async fn detail(State(app): State<App>, session: Session, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    detail_page(&app, &session, &id, &query(&raw), None, StatusCode::OK).await
}

async fn set_enabled(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let enabled = form.get("enabled") == Some("true");
    let req = UpdateWebhook { url: None, events: None, secret: None, description: None, enabled: Some(enabled) };
    match app.webhook_update(&session.actor, &id, req).await {
        Ok(w) => render::done(
            &format!("/webhooks/{}", w.id),
            &format!("{} webhook {}", if enabled { "Enabled" } else { "Disabled" }, w.url),
        ),
        Err(e) if denied(&e) => render::error_response(&session, &e),
        Err(e) => {
            let status = crate::http::error::status(&e);
            detail_page(&app, &session, &id, &FormData::default(), Some(render::message(&e)), status).await
        }
    }
}

async fn test_send(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    match app.webhook_test(&session.actor, &id).await {
        Ok(q) => render::done(
            &format!("/webhooks/{id}"),
            &format!("Queued a test event ({}, {}): its delivery appears below", q.event, q.event_id),
        ),
        Err(e) if denied(&e) => render::error_response(&session, &e),
        Err(e) => {
            let status = crate::http::error::status(&e);
            detail_page(&app, &session, &id, &FormData::default(), Some(render::message(&e)), status).await
        }
    }
}

async fn delete(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    match app.webhook_delete(&session.actor, &id).await {
        Ok(()) => render::done("/webhooks", "Deleted the webhook"),
        Err(e) => render::error_response(&session, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_commas_spaces_and_lines() {
        assert_eq!(
            event_list("asset.*, psk.rotated\nworkflow.failed  "),
            vec!["asset.*", "psk.rotated", "workflow.failed"]
        );
        assert!(event_list(" , ").is_empty());
    }
}

//! `/audit`: the audit log with filters, its export (the API's CSV or JSON, as a download) and
//! the chain verification.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::form::{FormData, Posted, urlencode};
use super::list::{Pager, page_request, query, with_status};
use super::render::{self, Layout};
use super::session::Session;
use crate::app::App;
use crate::audit::Verification;
use crate::error::Error;
use crate::store::audit::{AuditQuery, AuditRow};

pub fn routes() -> Router<App> {
    Router::new().route("/audit", get(list)).route("/audit/export", get(export)).route("/audit/verify", post(verify))
}

const OUTCOMES: &[&str] = &["success", "failure", "denied"];
const FILTERS: [&str; 7] = ["action", "actor", "target_type", "target_id", "outcome", "since", "until"];

#[derive(Template, WebTemplate)]
#[template(path = "console/audit.html")]
struct AuditPage {
    l: Layout,
    /// The filter fields as typed, to refill the form.
    f: FormData,
    outcomes: &'static [&'static str],
    rows: Vec<AuditRow>,
    pager: Pager,
    /// The filter query string for the export links.
    export_query: String,
    error: Option<String>,
    verification: Option<Verification>,
}

/// A time filter: RFC 3339, or a date (`2026-11-23`, from midnight UTC), or the browser's
/// `datetime-local` form (`2026-11-23T10:30`, read as UTC).
fn parse_time(name: &str, v: &str) -> Result<String, Error> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    let t = chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M").ok().map(|t| Utc.from_utc_datetime(&t)))
        .or_else(|| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S").ok().map(|t| Utc.from_utc_datetime(&t)))
        .or_else(|| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| Utc.from_utc_datetime(&t))
        });
    t.map(crate::model::to_rfc3339).ok_or_else(|| Error::BadRequest {
        code: "INVALID_QUERY",
        message: format!("`{name}` must be a date (2026-11-23), a date and time (2026-11-23T10:30, UTC) or RFC 3339"),
        details: Some(serde_json::json!({"field": name})),
    })
}

fn audit_query(f: &FormData) -> Result<AuditQuery, Error> {
    let time = |name: &str| f.get(name).map(|v| parse_time(name, v)).transpose();
    Ok(AuditQuery {
        action: f.get("action").map(str::to_string),
        actor: f.get("actor").map(str::to_string),
        target_id: f.get("target_id").map(str::to_string),
        target_type: f.get("target_type").map(str::to_string),
        outcome: f.get("outcome").map(str::to_string),
        since: time("since")?,
        until: time("until")?,
    })
}

fn filter_pairs(f: &FormData) -> Vec<(&'static str, String)> {
    FILTERS.iter().map(|k| (*k, f.text(k))).collect()
}

async fn page(app: &App, session: &Session, f: FormData, verification: Option<Verification>) -> Response {
    let keep = filter_pairs(&f);
    let export_query =
        keep.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>();
    let export_query = export_query.join("&");
    let page_req = page_request(&f);
    let mut view = AuditPage {
        l: Layout::new(session, "Audit log", "audit"),
        pager: Pager::filtered(page_req, 0, "/audit", &keep),
        f: f.clone(),
        outcomes: OUTCOMES,
        rows: Vec::new(),
        export_query,
        error: None,
        verification,
    };
    let result = match audit_query(&f) {
        Ok(q) => app.audit_list(&session.actor, q, page_req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => {
            view.pager = Pager::filtered(page_req, p.total, "/audit", &keep);
            view.rows = p.items;
            view.into_response()
        }
        // Refused by role: the whole page says so; a bad filter: shown above the filters.
        Err(e @ (Error::Forbidden { .. } | Error::Unauthenticated { .. })) => render::error_response(session, &e),
        Err(e) => {
            let status = crate::http::error::status(&e);
            view.error = Some(render::message(&e));
            with_status(view, status)
        }
    }
}

async fn list(State(app): State<App>, session: Session, RawQuery(raw): RawQuery) -> Response {
    page(&app, &session, query(&raw), None).await
}

/// The same body `GET /api/v1/audit/export` answers, as a file to save.
async fn export(State(app): State<App>, session: Session, RawQuery(raw): RawQuery) -> Response {
    let f = query(&raw);
    let format = f.get("format").unwrap_or("csv");
    if format != "csv" && format != "json" {
        return render::error_page(Some(&session), StatusCode::BAD_REQUEST, "The export format is csv or json.");
    }
    let rows = match audit_query(&f) {
        Ok(q) => app.audit_export(&session.actor, q).await,
        Err(e) => Err(e),
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return render::error_response(&session, &e),
    };
    let (body, content_type) = if format == "csv" {
        (crate::http::api::audit::to_csv(&rows), "text/csv; charset=utf-8")
    } else {
        match serde_json::to_string(&rows) {
            Ok(b) => (b, "application/json"),
            Err(e) => return render::error_response(&session, &Error::internal(e)),
        }
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"ironbay-audit.{format}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

async fn verify(State(app): State<App>, posted: Posted) -> Response {
    let Posted { session, .. } = posted;
    match app.audit_verify(&session.actor).await {
        Ok(v) => page(&app, &session, FormData::default(), Some(v)).await,
        Err(e) => render::error_response(&session, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_filters_accept_dates_and_rfc3339() {
        assert_eq!(parse_time("since", "2026-11-23").unwrap(), "2026-11-23T00:00:00.000000Z");
        assert_eq!(parse_time("since", "2026-11-23T10:30").unwrap(), "2026-11-23T10:30:00.000000Z");
        assert!(parse_time("since", "2026-11-23T10:30:00+01:00").unwrap().starts_with("2026-11-23T09:30"));
        assert!(parse_time("until", "yesterday").is_err());
    }
}

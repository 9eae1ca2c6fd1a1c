//! `/api/v1/audit`: list, export (CSV or JSON), verify the chain.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{Paged, paged};
use crate::app::App;
use crate::audit::Verification;
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{QueryMap, ReqActor};
use crate::store::audit::{AuditQuery, AuditRow};

fn query(q: &QueryMap) -> Result<AuditQuery, Error> {
    let time = |name: &str| -> Result<Option<String>, Error> {
        q.get(name)
            .map(|v| {
                chrono::DateTime::parse_from_rfc3339(v)
                    .map(|t| crate::model::to_rfc3339(t.with_timezone(&chrono::Utc)))
                    .map_err(|_| Error::BadRequest {
                        code: "INVALID_QUERY",
                        message: format!("`{name}` must be an RFC 3339 timestamp"),
                        details: Some(serde_json::json!({"field": name})),
                    })
            })
            .transpose()
    };
    Ok(AuditQuery {
        action: q.get("action").map(str::to_string),
        actor: q.get("actor").map(str::to_string),
        target_id: q.get("target_id").map(str::to_string),
        target_type: q.get("target_type").map(str::to_string),
        outcome: q.get("outcome").map(str::to_string),
        since: time("since")?,
        until: time("until")?,
    })
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query),
           ("action" = Option<String>, Query, description = "Exact action, or a family such as `asset.*`"),
           ("actor" = Option<String>, Query, description = "Actor id or name"), ("target_id" = Option<String>, Query),
           ("target_type" = Option<String>, Query), ("outcome" = Option<String>, Query, description = "success, failure or denied"),
           ("since" = Option<String>, Query), ("until" = Option<String>, Query)),
    responses((status = 200, description = "Newest first", body = Paged<AuditRow>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<AuditRow>>, Error> {
    Ok(paged(app.audit_list(&actor, query(&q)?, q.page()?).await?))
}

#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit",
    params(("format" = Option<String>, Query, description = "`json` (default) or `csv`"),
           ("action" = Option<String>, Query), ("actor" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query)),
    responses((status = 200, description = "Every matching entry, oldest first", content((Vec<AuditRow> = "application/json"), (String = "text/csv"))),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn export(State(app): State<App>, ReqActor(actor): ReqActor, q: QueryMap) -> Result<Response, Error> {
    let format = q.get("format").unwrap_or("json");
    if format != "json" && format != "csv" {
        return Err(Error::BadRequest {
            code: "INVALID_QUERY",
            message: format!("`format` must be `csv` or `json`, got `{format}`"),
            details: Some(serde_json::json!({"field": "format"})),
        });
    }
    let rows = app.audit_export(&actor, query(&q)?).await?;
    let (body, content_type) = if format == "csv" {
        (to_csv(&rows), "text/csv; charset=utf-8")
    } else {
        (serde_json::to_string(&rows).map_err(Error::internal)?, "application/json")
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let disposition = format!("attachment; filename=\"ironbay-audit.{format}\"");
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = Verification), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn verify(State(app): State<App>, ReqActor(actor): ReqActor) -> Result<Json<Verification>, Error> {
    Ok(Json(app.audit_verify(&actor).await?))
}

const CSV_HEADER: &str =
    "seq,id,ts,actor_type,actor_id,actor_name,action,target_type,target_id,source_ip,outcome,details,prev_hash,hash";

/// RFC 4180: quote every field that holds a comma, quote or line break; double the quotes. A
/// leading `=`, `+`, `-` or `@` is prefixed with `'` so spreadsheets do not run it as a formula.
pub(crate) fn to_csv(rows: &[AuditRow]) -> String {
    fn field(s: &str) -> String {
        let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
        if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
    }
    let mut out = String::with_capacity(rows.len() * 256 + CSV_HEADER.len());
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for r in rows {
        let opt = |o: &Option<String>| o.as_deref().map(field).unwrap_or_default();
        let cols = [
            r.seq.to_string(),
            field(&r.id),
            field(&r.ts),
            field(&r.actor_type),
            opt(&r.actor_id),
            opt(&r.actor_name),
            field(&r.action),
            opt(&r.target_type),
            opt(&r.target_id),
            opt(&r.source_ip),
            field(&r.outcome),
            field(&r.details),
            field(&r.prev_hash),
            field(&r.hash),
        ];
        out.push_str(&cols.join(","));
        out.push_str("\r\n");
    }
    out
}

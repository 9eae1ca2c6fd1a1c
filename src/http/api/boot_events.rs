//! The boot timeline: `GET /api/v1/assets/{id}/boot-events` and `GET /api/v1/boot-events?mac=`.

use axum::Json;
use axum::extract::{Path, State};

use crate::app::App;
use crate::app::boot_events::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{QueryMap, ReqActor};
use crate::model::Mac;
use crate::store::boot_events::BootEventRow;

/// The timeline, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BootEvents {
    pub data: Vec<BootEventRow>,
}

fn limit(q: &QueryMap) -> Result<i64, Error> {
    match q.parse::<i64>("limit")? {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(Error::bad_request("INVALID_QUERY", format!("limit must be between 1 and {MAX_LIMIT}"))),
    }
}

#[utoipa::path(get, path = "/api/v1/assets/{id}/boot-events", tag = "boot",
    params(("id" = String, Path), ("limit" = Option<i64>, Query, description = "At most this many, newest first (1-500, default 100)")),
    responses((status = 200, body = BootEvents), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn of_asset(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    q: QueryMap,
) -> Result<Json<BootEvents>, Error> {
    let limit = limit(&q)?;
    Ok(Json(BootEvents { data: app.boot_events_of_asset(&actor, &id, limit).await? }))
}

#[utoipa::path(get, path = "/api/v1/boot-events", tag = "boot",
    params(("mac" = Option<String>, Query, description = "The client's MAC (also for machines that are not assets yet); without it, every client's events"),
           ("limit" = Option<i64>, Query, description = "At most this many, newest first (1-500, default 100)")),
    responses((status = 200, body = BootEvents), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn of_mac(State(app): State<App>, ReqActor(actor): ReqActor, q: QueryMap) -> Result<Json<BootEvents>, Error> {
    let limit = limit(&q)?;
    let mac = q.parse::<Mac>("mac")?;
    Ok(Json(BootEvents { data: app.boot_events_of_mac(&actor, mac, limit).await? }))
}

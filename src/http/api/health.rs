//! `GET /api/v1/health`: no authentication; the appliance and each of its services.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceHealth {
    /// `up`, `down` or `disabled`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Services {
    pub database: ServiceHealth,
    pub api: ServiceHealth,
    pub dhcp: ServiceHealth,
    pub tftp: ServiceHealth,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every enabled service is up, else `degraded`.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_secs: u64,
    pub services: Services,
}

#[utoipa::path(get, path = "/api/v1/health", tag = "health",
    responses((status = 200, description = "All enabled services up", body = Health),
              (status = 503, description = "A service is down", body = Health)))]
pub async fn health(State(app): State<App>) -> (StatusCode, Json<Health>) {
    let t = Instant::now();
    let db = app.store.ping().await;
    let latency = t.elapsed().as_secs_f64() * 1000.0;
    let database = match db {
        Ok(()) => {
            ServiceHealth { state: "up", detail: Some(app.store.backend().name().into()), latency_ms: Some(latency) }
        }
        Err(e) => {
            tracing::error!(error = %e, "health: database ping failed");
            ServiceHealth { state: "down", detail: Some(app.store.backend().name().into()), latency_ms: None }
        }
    };
    let tftp = listening_health(&app, &app.boot.tftp);
    let dhcp = listening_health(&app, &app.boot.dhcp);
    let ok = database.state == "up" && tftp.state != "down" && dhcp.state != "down";
    let body = Health {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: app.started.elapsed().as_secs(),
        services: Services { database, api: ServiceHealth { state: "up", detail: None, latency_ms: None }, dhcp, tftp },
    };
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}

/// `up` with the bound addresses; `down` when interfaces are named but none has an address yet.
/// DHCP and TFTP: disabled without named interfaces, down until an interface has an address to
/// bind, else up with where they listen.
fn listening_health(app: &App, bound: &crate::boot::Listening) -> ServiceHealth {
    if app.config.dhcp.interfaces.is_empty() {
        return ServiceHealth { state: "disabled", detail: Some("no interfaces configured".into()), latency_ms: None };
    }
    let bound = bound.addresses();
    if bound.is_empty() {
        let names: Vec<&str> = app.config.dhcp.interfaces.iter().map(|i| i.name.as_str()).collect();
        let detail = format!("no IPv4 address bound yet on {}", names.join(", "));
        return ServiceHealth { state: "down", detail: Some(detail), latency_ms: None };
    }
    let list: Vec<String> = bound.iter().map(ToString::to_string).collect();
    ServiceHealth { state: "up", detail: Some(list.join(", ")), latency_ms: None }
}

//! The agent's own routes, beside the boot routes and outside the API's gate: `POST
//! /agent/register` and `POST /agent/heartbeat`, each with `Authorization: Bearer <token>` (the
//! boot token first, then the one each answer hands back).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::routing::post;
use axum::{Json, Router};
use ironbay_wire::register::{HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse};

use crate::app::App;
use crate::error::Error;

/// An inventory of a large machine (hundreds of disks) fits with room to spare.
const MAX_BODY: usize = 4 << 20;

pub fn router() -> Router<App> {
    Router::new().route("/agent/register", post(register)).route("/agent/heartbeat", post(heartbeat))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    if body.len() > MAX_BODY {
        return Err(Error::bad_request("BODY_TOO_LARGE", format!("at most {MAX_BODY} bytes")));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::bad_request("MALFORMED_JSON", format!("the body is not the agent protocol's JSON: {e}")))
}

async fn register(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<RegisterResponse>, Error> {
    let req: RegisterRequest = parse(&body)?;
    let ip = match peer.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(peer.ip()),
        v4 => v4,
    };
    let appliance_url = super::boot::base_url(&app, &headers);
    Ok(Json(app.agent_register(bearer(&headers), ip, appliance_url, req).await?))
}

async fn heartbeat(
    State(app): State<App>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<HeartbeatResponse>, Error> {
    let req: HeartbeatRequest = parse(&body)?;
    Ok(Json(app.agent_heartbeat(bearer(&headers), req).await?))
}

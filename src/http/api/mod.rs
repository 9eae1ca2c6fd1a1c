//! REST handlers under `/api/v1`: thin — parse, call the application layer, render. One file per
//! resource; each handler carries its OpenAPI description.

pub mod agents;
pub mod api_keys;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod boot_events;
pub mod clusters;
pub mod devices;
pub mod health;
pub mod images;
pub mod policies;
pub mod psks;
pub mod users;
pub mod vnis;
pub mod webhooks;
pub mod workflows;

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::Page;

/// Pagination facts of a list answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageMeta {
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
}

/// Every list answers `{"data": [...], "meta": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

pub fn paged<T>(p: Page<T>) -> Json<Paged<T>> {
    Json(Paged { data: p.items, meta: PageMeta { page: p.page.page, per_page: p.page.per_page, total: p.total } })
}

//! Talos clusters: `POST /api/v1/clusters` (202 with the cluster and its workflow), list, detail
//! with per-node status, `DELETE` (members wiped, addresses released), and the admin credentials
//! `GET /api/v1/clusters/{id}/kubeconfig` and `/talosconfig` (YAML downloads, audited).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Paged, paged};
use crate::app::App;
use crate::app::clusters::{ClusterView, CreateCluster, DeletedCluster};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};

#[utoipa::path(post, path = "/api/v1/clusters", tag = "clusters", request_body = CreateCluster,
    responses((status = 202, description = "The cluster, being built, with its workflow", body = ClusterView),
              (status = 403, description = "POLICY_DENIED", body = ErrorBody),
              (status = 409, description = "ASSET_NOT_AVAILABLE, ASSET_IN_CLUSTER, ASSET_BUSY, ADDRESS_TAKEN, CLUSTER_EXISTS", body = ErrorBody),
              (status = 422, description = "UNSUPPORTED_CLUSTER_TYPE, ASSET_NOT_FOUND, DUPLICATE_IP, IP_OUTSIDE_SUBNET, TALOS_ARTIFACTS_MISSING, INVALID_FIELD, ...", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<CreateCluster>,
) -> Result<(StatusCode, Json<ClusterView>), Error> {
    Ok((StatusCode::ACCEPTED, Json(app.cluster_create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "Clusters, oldest first", body = Paged<ClusterView>)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<ClusterView>>, Error> {
    Ok(paged(app.cluster_list(&actor, q.page()?).await?))
}

#[utoipa::path(get, path = "/api/v1/clusters/{id}", tag = "clusters", params(("id" = String, Path)),
    responses((status = 200, body = ClusterView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<ClusterView>, Error> {
    Ok(Json(app.cluster_get(&actor, &id).await?))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{id}", tag = "clusters", params(("id" = String, Path)),
    responses((status = 202, description = "Deleted; its former members are being wiped", body = DeletedCluster),
              (status = 404, body = ErrorBody), (status = 409, description = "CLUSTER_BUSY", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn delete(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeletedCluster>), Error> {
    Ok((StatusCode::ACCEPTED, Json(app.cluster_delete(&actor, &id).await?)))
}

fn yaml_download(text: String, filename: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/yaml".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        text,
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/clusters/{id}/kubeconfig", tag = "clusters", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/yaml", description = "The admin kubeconfig (a fresh client certificate)"),
              (status = 404, body = ErrorBody), (status = 409, description = "CLUSTER_NOT_READY", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn kubeconfig(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let text = app.cluster_kubeconfig(&actor, &id).await?;
    Ok(yaml_download(text, format!("{id}-kubeconfig.yaml")))
}

#[utoipa::path(get, path = "/api/v1/clusters/{id}/talosconfig", tag = "clusters", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/yaml", description = "talosctl's config (a fresh os:admin certificate)"),
              (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn talosconfig(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let text = app.cluster_talosconfig(&actor, &id).await?;
    Ok(yaml_download(text, format!("{id}-talosconfig.yaml")))
}

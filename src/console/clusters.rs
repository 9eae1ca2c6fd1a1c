//! `/clusters`: Talos clusters (list, create from available assets, detail with per-node progress
//! updated live, kubeconfig/talosconfig downloads, delete with typed confirmation).

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::form::{FormData, Posted};
use super::list::{ListQuery, Pager, with_status};
use super::render::{self, Layout};
use super::session::Session;
use super::vnis::{ip_field, ip_list, not_permitted, status_of};
use crate::app::clusters::{ClusterView, CreateCluster, NodeRequest};
use crate::app::vnis::VniView;
use crate::app::{App, MAX_PER_PAGE, PageRequest};
use crate::error::Error;
use crate::model::{AssetState, Scope};
use crate::store::assets::AssetQuery;
use crate::talos::config::{DEFAULT_KUBERNETES_VERSION, DEFAULT_TALOS_VERSION};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/clusters", get(list).post(create))
        .route("/clusters/new", get(new_form))
        .route("/clusters/{id}", get(detail))
        .route("/clusters/{id}/delete", post(delete))
        .route("/clusters/{id}/kubeconfig", get(kubeconfig))
        .route("/clusters/{id}/talosconfig", get(talosconfig))
}

/// The create form can offer at most this many pages of available assets (a cluster has at most
/// 1000 nodes).
const MAX_ASSET_PAGES: u32 = 10;

#[derive(Template, WebTemplate)]
#[template(path = "console/clusters.html")]
struct ClusterListPage {
    l: Layout,
    clusters: Vec<ClusterView>,
    pager: Pager,
}

async fn list(State(app): State<App>, session: Session, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = ListQuery(q).page("page");
    match app.cluster_list(&session.actor, page).await {
        Ok(p) => ClusterListPage {
            l: Layout::new(&session, "Clusters", "clusters"),
            pager: Pager::new("/clusters?", "page", page, p.total),
            clusters: p.items,
        }
        .into_response(),
        Err(e) => render::error_response(&session, &e),
    }
}

/// An asset the create form offers (the fields of the API's asset view it shows).
#[derive(Debug, Clone, Deserialize)]
struct AssetChoice {
    id: String,
    hostname: String,
    #[serde(default)]
    macs: Vec<String>,
}

/// The create form as typed; nodes by asset id: (role, ip).
#[derive(Debug, Clone, Default)]
struct ClusterForm {
    name: String,
    endpoint: String,
    vni_id: String,
    gateway: String,
    nameservers: String,
    talos_version: String,
    kubernetes_version: String,
    install_disk: String,
    nodes: HashMap<String, (String, String)>,
}

impl ClusterForm {
    fn from_form(f: &FormData) -> ClusterForm {
        let nodes = f
            .all("asset")
            .into_iter()
            .map(|id| {
                let role = f.text(&format!("role_{id}"));
                let ip = f.text(&format!("ip_{id}"));
                (id, (role, ip))
            })
            .collect();
        ClusterForm {
            name: f.text("name"),
            endpoint: f.text("endpoint"),
            vni_id: f.text("vni_id"),
            gateway: f.text("gateway"),
            nameservers: f.text("nameservers"),
            talos_version: f.text("talos_version"),
            kubernetes_version: f.text("kubernetes_version"),
            install_disk: f.text("install_disk"),
            nodes,
        }
    }

    fn role_of(&self, asset_id: &str) -> &str {
        self.nodes.get(asset_id).map(|(r, _)| r.as_str()).unwrap_or_default()
    }

    fn ip_of(&self, asset_id: &str) -> &str {
        self.nodes.get(asset_id).map(|(_, ip)| ip.as_str()).unwrap_or_default()
    }
}

/// The API's request from the form: the assets in the order listed, by the role picked.
fn create_request(f: &FormData) -> Result<CreateCluster, Error> {
    let mut control_planes = Vec::new();
    let mut workers = Vec::new();
    for id in f.all("asset") {
        let role = f.text(&format!("role_{id}"));
        if role.is_empty() || role == "none" {
            continue;
        }
        let node = NodeRequest {
            ip: ip_field(f, &format!("ip_{id}"))?,
            asset_id: id,
            subnet: None,
            hostname: None,
            install_disk: None,
        };
        match role.as_str() {
            "controlplane" => control_planes.push(node),
            "worker" => workers.push(node),
            other => return Err(Error::invalid_field("role", format!("unknown node role `{other}`"))),
        }
    }
    Ok(CreateCluster {
        name: f.text("name"),
        kind: "bare_metal".into(),
        flavor: None,
        gateway: ip_field(f, "gateway")?,
        control_planes,
        workers,
        talos_version: f.get("talos_version").map(str::to_string),
        kubernetes_version: f.get("kubernetes_version").map(str::to_string),
        endpoint: f.get("endpoint").map(str::to_string),
        vni_id: f.get("vni_id").map(str::to_string),
        install_disk: f.get("install_disk").map(str::to_string),
        registry_mirrors: None,
        ntp_servers: Vec::new(),
        nameservers: ip_list(f, "nameservers")?,
        discovery: None,
        cert_sans: Vec::new(),
        credentials: None,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "console/cluster_new.html")]
struct ClusterNewPage {
    l: Layout,
    assets: Vec<AssetChoice>,
    vnis: Vec<VniView>,
    form: ClusterForm,
    error: Option<String>,
    default_talos: &'static str,
    default_kubernetes: &'static str,
}

/// The assets a cluster can be built from: those available now.
async fn available_assets(app: &App, session: &Session) -> Result<Vec<AssetChoice>, Error> {
    let q = AssetQuery { state: Some(AssetState::Available), ..AssetQuery::default() };
    let mut out = Vec::new();
    for page in 1..=MAX_ASSET_PAGES {
        let p = app.asset_list_json(&session.actor, q.clone(), PageRequest { page, per_page: MAX_PER_PAGE }).await?;
        let items: Vec<AssetChoice> = serde_json::from_str(&p.data).map_err(Error::internal)?;
        let done = items.len() < MAX_PER_PAGE as usize;
        out.extend(items);
        if done {
            break;
        }
    }
    Ok(out)
}

async fn new_page(app: &App, session: &Session, form: ClusterForm, error: Option<String>) -> Response {
    let assets = match available_assets(app, session).await {
        Ok(a) => a,
        Err(e) => return render::error_response(session, &e),
    };
    // The VNI picker is a convenience: without vnis:read it is just empty.
    let vnis = app
        .vni_list(&session.actor, PageRequest { page: 1, per_page: MAX_PER_PAGE })
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    ClusterNewPage {
        l: Layout::new(session, "New cluster", "clusters"),
        assets,
        vnis,
        form,
        error,
        default_talos: DEFAULT_TALOS_VERSION,
        default_kubernetes: DEFAULT_KUBERNETES_VERSION,
    }
    .into_response()
}

async fn new_form(State(app): State<App>, session: Session) -> Response {
    // A form the user could not submit is not offered (the service refuses the POST anyway).
    if !session.can(Scope::ClustersWrite) {
        return render::error_page(
            Some(&session),
            StatusCode::FORBIDDEN,
            "Creating clusters needs the clusters:write permission (operator or admin role).",
        );
    }
    new_page(&app, &session, ClusterForm::default(), None).await
}

async fn create(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    let result = match create_request(&form) {
        Ok(req) => app.cluster_create(&session.actor, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(c) => render::done(
            &format!("/clusters/{}", c.id),
            &format!(
                "Creating cluster {} ({} control plane(s), {} worker(s)): the nodes are booting",
                c.name, c.control_planes, c.workers
            ),
        ),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let page = new_page(&app, &session, ClusterForm::from_form(&form), Some(render::message(&e))).await;
            with_status(page, status_of(&e))
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/cluster_detail.html")]
struct ClusterDetailPage {
    l: Layout,
    c: ClusterView,
    confirm: String,
    delete_error: Option<String>,
}

impl ClusterDetailPage {
    /// How far a node has come, of `NODE_STEPS`: pending, booting, config served, installed, ready.
    fn step(status: &str) -> u8 {
        match status {
            "booting" => 1,
            "config_served" => 2,
            "installed" => 3,
            "ready" => 4,
            _ => 0,
        }
    }
}

async fn detail_page(
    app: &App,
    session: &Session,
    id: &str,
    confirm: String,
    delete_error: Option<String>,
) -> Response {
    match app.cluster_get(&session.actor, id).await {
        Ok(c) => ClusterDetailPage {
            l: Layout::new(session, format!("Cluster {}", c.name), "clusters"),
            c,
            confirm,
            delete_error,
        }
        .into_response(),
        Err(e) => render::error_response(session, &e),
    }
}

async fn detail(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    detail_page(&app, &session, &id, String::new(), None).await
}

async fn delete(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let typed = form.text("confirm");
    // Checked here as well: the page's script only enables the button.
    let result = match app.cluster_get(&session.actor, &id).await {
        Ok(c) if c.name != typed => {
            Err(Error::invalid_field("confirm", format!("type the cluster's name `{}` to confirm deleting it", c.name)))
        }
        Ok(_) => app.cluster_delete(&session.actor, &id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(d) => render::done(
            "/clusters",
            &format!(
                "Deleted cluster {}: {} member(s) are being wiped, {} address(es) released",
                d.name,
                d.wipe_workflows.len(),
                d.released_addresses.len()
            ),
        ),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            with_status(detail_page(&app, &session, &id, typed, Some(render::message(&e))).await, status_of(&e))
        }
    }
}

/// A YAML file to save, not to show (it holds a private key).
fn attachment(text: String, filename: &str) -> Response {
    let mut resp = text.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

async fn kubeconfig(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    match app.cluster_kubeconfig(&session.actor, &id).await {
        Ok(text) => attachment(text, &format!("{id}-kubeconfig.yaml")),
        Err(e) => render::error_response(&session, &e),
    }
}

async fn talosconfig(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    match app.cluster_talosconfig(&session.actor, &id).await {
        Ok(text) => attachment(text, &format!("{id}-talosconfig.yaml")),
        Err(e) => render::error_response(&session, &e),
    }
}

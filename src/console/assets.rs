//! Console pages: the asset table (`/assets`), registering an asset (`/assets/new`), an asset's
//! page (`/assets/{id}`: facts, inventory, BMC and its actions, workflow history, delete), and
//! the wipe and provision forms with the policy verdict they would get.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ironbay_wire::inventory::{Disk, Nic};

use super::form::{FormData, Posted, urlencode};
use super::list::PER_PAGE;
use super::render::{self, Layout};
use super::session::Session;
use crate::app::assets::{AssetView, BmcInput, CreateAsset, UpdateAsset};
use crate::app::console_assets::AssetListItem;
use crate::app::images::ImageView;
use crate::app::workflows::{
    DiskRequest, ImageRequest, PowerRequest, PowerView, ProvisionRequest, WipeRequest, WorkflowView,
};
use crate::app::{App, PageRequest};
use crate::error::Error;
use crate::model::{AssetState, Mac};
use crate::policy::{Action, Evaluation, Overall, Verdict};
use crate::secret::Secret;
use crate::store::console_assets::{AssetListQuery, AssetSort, ClusterFilter};
use crate::store::workflows::WorkflowQuery;

/// How long the asset page waits for the BMC's power state before showing the page without it
/// (an unreachable BMC is retried for much longer; the "Read power state" button waits for it).
const PAGE_BMC_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// The workflows listed on an asset's page (latest first).
const HISTORY: u32 = 20;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/assets", get(list).post(create))
        .route("/assets/new", get(new_form))
        .route("/assets/{id}", get(detail))
        .route("/assets/{id}/edit", get(edit_form).post(edit))
        .route("/assets/{id}/power", post(power))
        .route("/assets/{id}/pxe", post(pxe_next_boot))
        .route("/assets/{id}/bmc-check", post(bmc_check))
        .route("/assets/{id}/delete", post(delete))
        .route("/assets/{id}/wipe", get(wipe_form).post(wipe))
        .route("/assets/{id}/provision", get(provision_form).post(provision))
}

// ---------------------------------------------------------------------------------------------
// The asset table

/// The table's filters and order as the query string gives them, kept as text to refill the
/// filter form and build links.
#[derive(Debug, Clone, Default)]
struct ListParams {
    hostname: String,
    state: String,
    tag: String,
    mac: String,
    bmc: String,
    has_bmc: String,
    cluster: String,
    sort: AssetSort,
    descending: bool,
    page: u32,
}

impl ListParams {
    fn from_query(q: &FormData) -> ListParams {
        ListParams {
            hostname: q.text("hostname"),
            state: q.text("state"),
            tag: q.text("tag"),
            mac: q.text("mac"),
            bmc: q.text("bmc"),
            has_bmc: q.text("has_bmc"),
            cluster: q.text("cluster"),
            sort: q.get("sort").and_then(AssetSort::parse).unwrap_or_default(),
            descending: q.get("order") == Some("desc"),
            page: q.get("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1),
        }
    }

    /// The store query, or the filter that does not parse.
    fn query(&self) -> Result<AssetListQuery, Error> {
        let opt = |s: &String| if s.is_empty() { None } else { Some(s.clone()) };
        let state = match self.state.as_str() {
            "" => None,
            s => Some(
                s.parse::<AssetState>()
                    .map_err(|_| Error::invalid_field("state", format!("`{s}` is not an asset state")))?,
            ),
        };
        let mac = match self.mac.as_str() {
            "" => None,
            m => {
                Some(m.parse::<Mac>().map_err(|_| Error::invalid_field("mac", format!("`{m}` is not a MAC address")))?)
            }
        };
        let has_bmc = match self.has_bmc.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        };
        let cluster = match self.cluster.as_str() {
            "" => None,
            "member" => Some(ClusterFilter::Any),
            "none" => Some(ClusterFilter::None),
            id => Some(ClusterFilter::Cluster(id.to_string())),
        };
        Ok(AssetListQuery {
            state,
            tag: opt(&self.tag),
            mac,
            hostname: opt(&self.hostname),
            bmc_address: opt(&self.bmc),
            has_bmc,
            cluster,
            sort: self.sort,
            descending: self.descending,
        })
    }

    /// The filters as a query string (no sort, no page), each ending in `&`.
    fn filter_query(&self) -> String {
        let fields = [
            ("hostname", &self.hostname),
            ("state", &self.state),
            ("tag", &self.tag),
            ("mac", &self.mac),
            ("bmc", &self.bmc),
            ("has_bmc", &self.has_bmc),
            ("cluster", &self.cluster),
        ];
        fields.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}&", urlencode(v))).collect()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/asset_list.html")]
struct AssetListPage {
    l: Layout,
    p: ListParams,
    rows: Vec<AssetListItem>,
    total: i64,
    pages: u32,
    error: Option<String>,
}

impl AssetListPage {
    fn states(&self) -> Vec<&'static str> {
        AssetState::ALL.iter().map(|s| s.as_str()).collect()
    }

    /// The link a column header points to: this column ascending, or the other way round when
    /// it is already the order.
    fn sort_href(&self, key: &str) -> String {
        let desc = self.p.sort.as_str() == key && !self.p.descending;
        format!("/assets?{}sort={key}&order={}", self.p.filter_query(), if desc { "desc" } else { "asc" })
    }

    fn aria_sort(&self, key: &str) -> &'static str {
        match (self.p.sort.as_str() == key, self.p.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        }
    }

    fn page_href(&self, page: &u32) -> String {
        let order = if self.p.descending { "desc" } else { "asc" };
        format!("/assets?{}sort={}&order={order}&page={page}", self.p.filter_query(), self.p.sort.as_str())
    }

    /// The page numbers to link: the first, the last and a few around the current one.
    fn page_numbers(&self) -> Vec<u32> {
        let (cur, last) = (self.p.page, self.pages.max(1));
        let mut v: Vec<u32> = (1..=last).filter(|n| *n == 1 || *n == last || n.abs_diff(cur) <= 2).collect();
        v.dedup();
        v
    }

    fn first_shown(&self) -> i64 {
        if self.rows.is_empty() { 0 } else { i64::from(self.p.page - 1) * i64::from(PER_PAGE) + 1 }
    }

    fn last_shown(&self) -> i64 {
        i64::from(self.p.page - 1) * i64::from(PER_PAGE) + self.rows.len() as i64
    }
}

async fn list(State(app): State<App>, session: Session, RawQuery(query): RawQuery) -> Response {
    let p = ListParams::from_query(&FormData::parse(query.unwrap_or_default().as_bytes()));
    let l = Layout::new(&session, "Assets", "assets");
    let q = match p.query() {
        Ok(q) => q,
        Err(e) => {
            let page = AssetListPage { l, p, rows: Vec::new(), total: 0, pages: 0, error: Some(render::message(&e)) };
            return with_status(page.into_response(), StatusCode::BAD_REQUEST);
        }
    };
    let page_req = PageRequest { page: p.page, per_page: PER_PAGE };
    match app.asset_table(&session.actor, q, page_req).await {
        Ok(page) => {
            let pages = u32::try_from(page.total.max(0)).unwrap_or(u32::MAX).div_ceil(PER_PAGE);
            AssetListPage { l, p, rows: page.items, total: page.total, pages, error: None }.into_response()
        }
        Err(e) => render::error_response(&session, &e),
    }
}

fn with_status(mut resp: Response, status: StatusCode) -> Response {
    *resp.status_mut() = status;
    resp
}

// ---------------------------------------------------------------------------------------------
// Registering an asset

/// The register form's values (never the BMC password: it is typed again after an error).
#[derive(Debug, Clone, Default)]
struct AssetFormValues {
    hostname: String,
    macs: String,
    tags: String,
    serial: String,
    smbios_uuid: String,
    bmc_driver: String,
    bmc_address: String,
    bmc_port: String,
    bmc_username: String,
    /// Edit form only: remove the BMC.
    remove_bmc: bool,
}

impl AssetFormValues {
    fn from_form(f: &FormData) -> AssetFormValues {
        AssetFormValues {
            hostname: f.text("hostname"),
            macs: f.text("macs"),
            tags: f.text("tags"),
            serial: f.text("serial"),
            smbios_uuid: f.text("smbios_uuid"),
            bmc_driver: f.text("bmc_driver"),
            bmc_address: f.text("bmc_address"),
            bmc_port: f.text("bmc_port"),
            bmc_username: f.text("bmc_username"),
            remove_bmc: f.checked("remove_bmc"),
        }
    }

    /// The edit form filled from the asset as it is.
    fn from_asset(a: &AssetView) -> AssetFormValues {
        let join = |v: Vec<String>| v.join(", ");
        AssetFormValues {
            hostname: a.hostname.clone(),
            macs: join(a.macs.iter().map(ToString::to_string).collect()),
            tags: join(a.tags.clone()),
            serial: a.serial.clone().unwrap_or_default(),
            smbios_uuid: a.smbios_uuid.clone().unwrap_or_default(),
            bmc_driver: a.bmc.as_ref().map(|b| b.driver.as_str()).unwrap_or("ipmi").to_string(),
            bmc_address: a.bmc.as_ref().map(|b| b.address.clone()).unwrap_or_default(),
            bmc_port: a.bmc.as_ref().map(|b| b.port.to_string()).unwrap_or_default(),
            bmc_username: a.bmc.as_ref().map(|b| b.username.clone()).unwrap_or_default(),
            remove_bmc: false,
        }
    }
}

/// Words of a list field: separated by commas, spaces or new lines.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

fn form_macs(f: &FormData) -> Result<Vec<Mac>, Error> {
    words(f.get("macs").unwrap_or_default())
        .iter()
        .map(|m| m.parse::<Mac>().map_err(|_| Error::invalid_field("macs", format!("`{m}` is not a MAC address"))))
        .collect()
}

/// The BMC fields, when any is filled in (the password may be left out on edit: kept).
fn form_bmc(f: &FormData) -> Result<Option<BmcInput>, Error> {
    let bmc_given = ["bmc_address", "bmc_username", "bmc_password", "bmc_port"].iter().any(|k| f.get(k).is_some());
    Ok(if bmc_given {
        let driver = f.get("bmc_driver").unwrap_or("ipmi");
        let port = match f.get("bmc_port") {
            None => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| Error::invalid_field("bmc.port", "port must be 1-65535"))?),
        };
        Some(BmcInput {
            driver: driver.parse().map_err(|e: String| Error::invalid_field("bmc.driver", e))?,
            address: f.text("bmc_address"),
            port,
            username: f.text("bmc_username"),
            password: f.raw("bmc_password").filter(|p| !p.is_empty()).map(|p| Secret::new(p.to_string())),
        })
    } else {
        None
    })
}

/// The API's create body from the form.
fn create_request(f: &FormData) -> Result<CreateAsset, Error> {
    Ok(CreateAsset {
        hostname: f.text("hostname"),
        macs: form_macs(f)?,
        tags: words(f.get("tags").unwrap_or_default()),
        smbios_uuid: f.get("smbios_uuid").map(str::to_string),
        serial: f.get("serial").map(str::to_string),
        bmc: form_bmc(f)?,
    })
}

/// The API's update body from the edit form: every field as shown (a cleared serial is
/// removed); the BMC is removed only with its checkbox, and kept when its fields are empty.
fn update_request(f: &FormData) -> Result<UpdateAsset, Error> {
    let bmc = if f.checked("remove_bmc") { Some(None) } else { form_bmc(f)?.map(Some) };
    Ok(UpdateAsset {
        hostname: Some(f.text("hostname")),
        macs: Some(form_macs(f)?),
        tags: Some(words(f.get("tags").unwrap_or_default())),
        smbios_uuid: None,
        serial: Some(f.get("serial").map(str::to_string)),
        bmc,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "console/asset_new.html")]
struct AssetNewPage {
    l: Layout,
    v: AssetFormValues,
    error: Option<String>,
}

async fn new_form(session: Session) -> Response {
    let v = AssetFormValues { bmc_driver: "ipmi".into(), ..Default::default() };
    AssetNewPage { l: Layout::new(&session, "Register an asset", "assets"), v, error: None }.into_response()
}

async fn create(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    let result = match create_request(&form) {
        Ok(req) => app.asset_create(&session.actor, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(a) => render::done(&format!("/assets/{}", a.id), &format!("Registered asset {}", a.hostname)),
        Err(e) => {
            let page = AssetNewPage {
                l: Layout::new(&session, "Register an asset", "assets"),
                v: AssetFormValues::from_form(&form),
                error: Some(render::message(&e)),
            };
            with_status(page.into_response(), crate::http::error::status(&e))
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/asset_edit.html")]
struct AssetEditPage {
    l: Layout,
    a: AssetView,
    v: AssetFormValues,
    error: Option<String>,
}

async fn edit_form(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    match app.asset_get(&session.actor, &id).await {
        Ok(a) => {
            let v = AssetFormValues::from_asset(&a);
            AssetEditPage { l: Layout::new(&session, format!("Edit {}", a.hostname), "assets"), a, v, error: None }
                .into_response()
        }
        Err(e) => render::error_response(&session, &e),
    }
}

async fn edit(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let result = match update_request(&form) {
        Ok(req) => app.asset_update(&session.actor, &id, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(a) => render::done(&format!("/assets/{}", a.id), &format!("Saved asset {}", a.hostname)),
        Err(e) => match app.asset_get(&session.actor, &id).await {
            Ok(a) => {
                let page = AssetEditPage {
                    l: Layout::new(&session, format!("Edit {}", a.hostname), "assets"),
                    a,
                    v: AssetFormValues::from_form(&form),
                    error: Some(render::message(&e)),
                };
                with_status(page.into_response(), crate::http::error::status(&e))
            }
            Err(_) => render::error_response(&session, &e),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// An asset's page

/// What the BMC section shows about the power state.
enum PowerInfo {
    /// Not asked (a live refresh does not query the BMC).
    NotRead,
    Read(PowerView),
    Failed(String),
}

#[derive(Template, WebTemplate)]
#[template(path = "console/asset_detail.html")]
struct AssetDetailPage {
    l: Layout,
    a: AssetView,
    cluster: Option<String>,
    disks: Vec<Disk>,
    nics: Vec<Nic>,
    power: PowerInfo,
    /// Why a BMC action just taken (power, PXE, reading it) failed.
    bmc_error: Option<String>,
    delete_error: Option<String>,
    delete_confirm: String,
    workflows: Vec<WorkflowView>,
    workflow_total: i64,
}

impl AssetDetailPage {
    fn spec_str(&self, path: &[&str]) -> String {
        let mut v = &self.a.specs;
        for k in path {
            v = &v[*k];
        }
        match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => String::new(),
        }
    }

    fn memory(&self) -> String {
        self.a.specs["memory_bytes"].as_u64().map(render::bytes).unwrap_or_default()
    }

    fn size(&self, n: &u64) -> String {
        render::bytes(*n)
    }

    fn speed(&self, mbps: &Option<u32>) -> String {
        match mbps {
            Some(m) if *m >= 1000 && m % 1000 == 0 => format!("{} Gb/s", m / 1000),
            Some(m) => format!("{m} Mb/s"),
            None => "—".into(),
        }
    }

    fn power_actions(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("on", "Power on"),
            ("off", "Power off"),
            ("soft", "Shut down (ACPI)"),
            ("cycle", "Power cycle"),
            ("reset", "Reset"),
        ]
    }

    fn power_state(&self, p: &PowerView) -> String {
        p.power.map(|s| s.as_str()).unwrap_or("unknown").to_string()
    }
}

/// Everything the asset page shows; `read_power` asks the BMC (not on live refreshes).
async fn detail_page(app: &App, session: &Session, id: &str, read_power: bool) -> Result<AssetDetailPage, Error> {
    let a = app.asset_get(&session.actor, id).await?;
    let cluster = app.asset_cluster_of(&session.actor, id).await?;
    let filter = WorkflowQuery { asset_id: Some(a.id.clone()), state: None, kind: None };
    let wf = app.workflow_list(&session.actor, filter, PageRequest { page: 1, per_page: HISTORY }).await?;
    let power = if a.bmc.is_none() || !read_power {
        PowerInfo::NotRead
    } else {
        match tokio::time::timeout(PAGE_BMC_WAIT, app.asset_bmc_check(&session.actor, id)).await {
            Ok(Ok(p)) => PowerInfo::Read(p),
            Ok(Err(e)) => PowerInfo::Failed(render::message(&e)),
            Err(_) => PowerInfo::Failed(format!(
                "the BMC did not answer within {} seconds; use \"Read power state\" to wait for it longer.",
                PAGE_BMC_WAIT.as_secs()
            )),
        }
    };
    Ok(AssetDetailPage {
        l: Layout::new(session, a.hostname.clone(), "assets"),
        cluster,
        disks: serde_json::from_value(a.disks.clone()).unwrap_or_default(),
        nics: serde_json::from_value(a.nics.clone()).unwrap_or_default(),
        power,
        bmc_error: None,
        delete_error: None,
        delete_confirm: String::new(),
        workflows: wf.items,
        workflow_total: wf.total,
        a,
    })
}

/// A live refresh (console.js sends this header): re-render without asking the BMC, which may
/// take seconds and would be asked on every progress line of a running workflow.
fn is_live(headers: &HeaderMap) -> bool {
    headers.contains_key("x-ironbay-live")
}

async fn detail(State(app): State<App>, session: Session, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match detail_page(&app, &session, &id, !is_live(&headers)).await {
        Ok(page) => page.into_response(),
        Err(e) => render::error_response(&session, &e),
    }
}

/// The asset page after a BMC action or a refused delete: the outcome next to its form, with
/// `status`.
async fn detail_with(
    app: &App,
    session: &Session,
    id: &str,
    status: StatusCode,
    adjust: impl FnOnce(&mut AssetDetailPage),
) -> Response {
    match detail_page(app, session, id, false).await {
        Ok(mut page) => {
            adjust(&mut page);
            with_status(page.into_response(), status)
        }
        Err(e) => render::error_response(session, &e),
    }
}

async fn power(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let action = form.text("action");
    match app.asset_power(&session.actor, &id, PowerRequest { action: action.clone() }).await {
        Ok(p) => {
            let notice = match p.power.map(|s| s.as_str()) {
                Some(s) => format!("Power {action} sent; the BMC now reports the machine {s}."),
                None => format!("Power {action} sent."),
            };
            render::done(&format!("/assets/{id}"), &notice)
        }
        Err(e) => {
            let status = crate::http::error::status(&e);
            detail_with(&app, &session, &id, status, |p| p.bmc_error = Some(render::message(&e))).await
        }
    }
}

async fn pxe_next_boot(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    match app.asset_pxe_next_boot(&session.actor, &id).await {
        Ok(()) => render::done(&format!("/assets/{id}"), "The machine will PXE-boot once, at its next boot."),
        Err(e) => {
            let status = crate::http::error::status(&e);
            detail_with(&app, &session, &id, status, |p| p.bmc_error = Some(render::message(&e))).await
        }
    }
}

/// Reads the power state now (the page also does on load; this is the "check again" button).
async fn bmc_check(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    match app.asset_bmc_check(&session.actor, &id).await {
        Ok(p) => detail_with(&app, &session, &id, StatusCode::OK, |page| page.power = PowerInfo::Read(p)).await,
        Err(e) => {
            let status = crate::http::error::status(&e);
            detail_with(&app, &session, &id, status, |p| p.power = PowerInfo::Failed(render::message(&e))).await
        }
    }
}

async fn delete(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let a = match app.asset_get(&session.actor, &id).await {
        Ok(a) => a,
        Err(e) => return render::error_response(&session, &e),
    };
    let typed = form.text("confirm");
    if typed != a.hostname {
        let msg = format!("Type the hostname {} to confirm deleting it.", a.hostname);
        return detail_with(&app, &session, &id, StatusCode::UNPROCESSABLE_ENTITY, |p| {
            p.delete_error = Some(msg);
            p.delete_confirm = typed;
        })
        .await;
    }
    match app.asset_delete(&session.actor, &id).await {
        Ok(()) => render::done("/assets", &format!("Deleted asset {}", a.hostname)),
        Err(e) => {
            let status = crate::http::error::status(&e);
            detail_with(&app, &session, &id, status, |p| {
                p.delete_error = Some(render::message(&e));
                p.delete_confirm = typed;
            })
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wipe and provision

/// The wipe or provision form's values, as typed.
#[derive(Debug, Clone, Default)]
struct WorkValues {
    method: String,
    image_id: String,
    image_url: String,
    sha256: String,
    disk: String,
    disk_value: String,
    wipe_first: String,
    confirm: String,
}

impl WorkValues {
    fn from_form(f: &FormData) -> WorkValues {
        WorkValues {
            method: f.text("method"),
            image_id: f.text("image_id"),
            image_url: f.text("image_url"),
            sha256: f.text("sha256"),
            disk: f.text("disk"),
            disk_value: f.text("disk_value"),
            wipe_first: f.text("wipe_first"),
            confirm: f.text("confirm"),
        }
    }

    fn provision_request(&self) -> ProvisionRequest {
        let opt = |s: &String| if s.is_empty() { None } else { Some(s.clone()) };
        let value = opt(&self.disk_value);
        let disk = match self.disk.as_str() {
            "" | "auto" => None,
            "serial" => Some(DiskRequest::Named { serial: value, wwn: None, path: None }),
            "wwn" => Some(DiskRequest::Named { serial: None, wwn: value, path: None }),
            "path" => Some(DiskRequest::Named { serial: None, wwn: None, path: value }),
            other => Some(DiskRequest::Word(other.to_string())),
        };
        ProvisionRequest {
            image: ImageRequest { url: opt(&self.image_url), image_id: opt(&self.image_id), sha256: opt(&self.sha256) },
            disk,
            wipe: opt(&self.wipe_first),
            confirm: opt(&self.confirm),
        }
    }
}

const WIPE_METHODS: [(&str, &str); 4] = [
    ("quick", "Quick: clear partition tables and signatures"),
    ("discard", "Discard: TRIM/UNMAP every block (SSDs)"),
    ("zero", "Zero: overwrite every byte (slow)"),
    ("secure", "Secure erase: the drive's own erase command"),
];

#[derive(Template, WebTemplate)]
#[template(path = "console/asset_action.html")]
struct AssetActionPage {
    l: Layout,
    a: AssetView,
    /// `wipe` or `provision`.
    kind: &'static str,
    v: WorkValues,
    images: Vec<ImageView>,
    disks: Vec<Disk>,
    verdict: Result<Evaluation, String>,
    error: Option<String>,
}

impl AssetActionPage {
    fn methods(&self) -> &'static [(&'static str, &'static str)] {
        &WIPE_METHODS
    }

    fn allowed(&self) -> bool {
        matches!(&self.verdict, Ok(e) if e.result == Overall::Allow)
    }

    fn verdict_word(&self, v: &Verdict) -> &'static str {
        match v {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::NotApplicable => "not applicable",
        }
    }

    fn size(&self, n: &Option<i64>) -> String {
        n.and_then(|n| u64::try_from(n).ok()).map(render::bytes).unwrap_or_default()
    }

    fn disk_size(&self, n: &u64) -> String {
        render::bytes(*n)
    }

    fn selected_method(&self, m: &str) -> bool {
        let current = if self.v.method.is_empty() { "quick" } else { self.v.method.as_str() };
        current == m
    }
}

fn action_of(kind: &str) -> Action {
    if kind == "wipe" { Action::Wipe } else { Action::Provision }
}

/// The form page, with the policy verdict for these values.
async fn action_page(
    app: &App,
    session: &Session,
    id: &str,
    kind: &'static str,
    v: WorkValues,
    error: Option<String>,
) -> Result<AssetActionPage, Error> {
    let a = app.asset_get(&session.actor, id).await?;
    let verdict = app.asset_policy_preview(&session.actor, id, action_of(kind)).await.map_err(|e| render::message(&e));
    let images = if kind == "provision" {
        app.image_list(&session.actor, None, Some("ready"), PageRequest { page: 1, per_page: 100 }).await?.items
    } else {
        Vec::new()
    };
    let title = if kind == "wipe" { format!("Wipe {}", a.hostname) } else { format!("Provision {}", a.hostname) };
    Ok(AssetActionPage {
        l: Layout::new(session, title, "assets"),
        disks: serde_json::from_value(a.disks.clone()).unwrap_or_default(),
        a,
        kind,
        v,
        images,
        verdict,
        error,
    })
}

async fn show_action(app: &App, session: &Session, id: &str, kind: &'static str, v: WorkValues) -> Response {
    match action_page(app, session, id, kind, v, None).await {
        Ok(p) => p.into_response(),
        Err(e) => render::error_response(session, &e),
    }
}

async fn wipe_form(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    show_action(&app, &session, &id, "wipe", WorkValues::default()).await
}

async fn provision_form(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    show_action(&app, &session, &id, "provision", WorkValues::default()).await
}

async fn wipe(State(app): State<App>, Path(id): Path<String>, posted: Posted) -> Response {
    submit_action(app, id, "wipe", posted).await
}

async fn provision(State(app): State<App>, Path(id): Path<String>, posted: Posted) -> Response {
    submit_action(app, id, "provision", posted).await
}

/// A submitted wipe or provision form: "Check policy" only re-renders the verdict; otherwise the
/// typed hostname must match before the service is asked to start the workflow.
async fn submit_action(app: App, id: String, kind: &'static str, Posted { session, form }: Posted) -> Response {
    let v = WorkValues::from_form(&form);
    if form.get("preview").is_some() {
        return show_action(&app, &session, &id, kind, v).await;
    }
    let a = match app.asset_get(&session.actor, &id).await {
        Ok(a) => a,
        Err(e) => return render::error_response(&session, &e),
    };
    let refuse = |v: WorkValues, e: Error| {
        let (app, session, id) = (app.clone(), session.clone(), id.clone());
        async move {
            let status = crate::http::error::status(&e);
            match action_page(&app, &session, &id, kind, v, Some(render::message(&e))).await {
                Ok(p) => with_status(p.into_response(), status),
                Err(e) => render::error_response(&session, &e),
            }
        }
    };
    if v.confirm != a.hostname {
        let e = Error::Unprocessable {
            code: "CONFIRMATION_REQUIRED",
            message: format!("Type the hostname {} to confirm the {kind}", a.hostname),
            details: None,
        };
        return refuse(v, e).await;
    }
    let started = if kind == "wipe" {
        let req = WipeRequest {
            method: if v.method.is_empty() { None } else { Some(v.method.clone()) },
            confirm: Some(v.confirm.clone()),
        };
        app.asset_wipe(&session.actor, &id, req).await
    } else {
        app.asset_provision(&session.actor, &id, v.provision_request()).await
    };
    match started {
        Ok(w) => render::done(&format!("/workflows/{}", w.id), &format!("Started {kind} of {}", a.hostname)),
        Err(e) => refuse(v, e).await,
    }
}

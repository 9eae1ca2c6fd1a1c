//! `/vnis`: network segments and their address allocations (list with pool use, create, detail,
//! edit, delete with typed confirmation, allocate and release). Also the form-field readers the
//! other network pages share (`int_field`, `ip_field`, `ip_list`, `not_permitted`).

use std::collections::HashMap;
use std::net::IpAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::form::{FormData, Posted};
use super::list::{ListQuery, PER_PAGE, Pager, with_status};
use super::render::{self, Layout};
use super::session::Session;
use crate::app::vnis::{AllocateRequest, CreateVni, RangeBody, UpdateVni, VniView};
use crate::app::{App, PageRequest};
use crate::error::Error;
use crate::store::vnis::AllocationRow;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/vnis", get(list).post(create))
        .route("/vnis/{id}", get(detail).post(update))
        .route("/vnis/{id}/delete", post(delete))
        .route("/vnis/{id}/allocations", post(allocate))
        .route("/vnis/{id}/release", post(release))
}

/// A refusal for want of permission gets the error page: there is no form to show it next to,
/// as the page offers this user none.
pub(super) fn not_permitted(session: &Session, e: &Error) -> Option<Response> {
    (e.code() == "INSUFFICIENT_SCOPE").then(|| render::error_response(session, e))
}

pub(super) fn status_of(e: &Error) -> StatusCode {
    crate::http::error::status(e)
}

/// A number field; the message names the field like the service's own errors do.
pub(super) fn int_field(form: &FormData, name: &str) -> Result<Option<i64>, Error> {
    form.get(name)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| Error::invalid_field(name, format!("{name} must be a whole number, got `{v}`")))
        })
        .transpose()
}

pub(super) fn ip_field(form: &FormData, name: &str) -> Result<Option<IpAddr>, Error> {
    form.get(name).map(|v| parse_ip(name, v)).transpose()
}

fn parse_ip(field: &str, v: &str) -> Result<IpAddr, Error> {
    v.trim().parse().map_err(|_| Error::invalid_field(field, format!("{field}: `{v}` is not an IP address")))
}

/// Addresses separated by commas, spaces or lines.
pub(super) fn ip_list(form: &FormData, name: &str) -> Result<Vec<IpAddr>, Error> {
    form.get(name)
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| parse_ip(name, s))
        .collect()
}

/// One range per line, `start-end` (a single address is a range of one).
fn range_list(text: &str) -> Result<Vec<RangeBody>, Error> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (a, b) = l.split_once('-').unwrap_or((l, l));
            Ok(RangeBody { start: parse_ip("reserved", a)?, end: parse_ip("reserved", b)? })
        })
        .collect()
}

/// The VNI form's fields as typed, to re-fill it.
#[derive(Debug, Clone, Default)]
pub(super) struct VniForm {
    pub name: String,
    pub vni: String,
    pub cidr: String,
    pub gateway: String,
    pub dhcp_start: String,
    pub dhcp_end: String,
    pub dns_servers: String,
    pub reserved: String,
    pub domain: String,
    pub description: String,
}

impl VniForm {
    fn from_form(f: &FormData) -> VniForm {
        VniForm {
            name: f.text("name"),
            vni: f.text("vni"),
            cidr: f.text("cidr"),
            gateway: f.text("gateway"),
            dhcp_start: f.text("dhcp_start"),
            dhcp_end: f.text("dhcp_end"),
            dns_servers: f.text("dns_servers"),
            reserved: f.raw("reserved").unwrap_or_default().trim().to_string(),
            domain: f.text("domain"),
            description: f.text("description"),
        }
    }

    fn from_view(v: &VniView) -> VniForm {
        let join = |ips: &[IpAddr], sep: &str| ips.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(sep);
        VniForm {
            name: v.name.clone(),
            vni: v.vni.to_string(),
            cidr: v.cidr.clone(),
            gateway: v.gateway.map(|g| g.to_string()).unwrap_or_default(),
            dhcp_start: v.dhcp.map(|r| r.start.to_string()).unwrap_or_default(),
            dhcp_end: v.dhcp.map(|r| r.end.to_string()).unwrap_or_default(),
            dns_servers: join(&v.dns_servers, ", "),
            reserved: v
                .reserved
                .iter()
                .map(|r| if r.start == r.end { r.start.to_string() } else { format!("{}-{}", r.start, r.end) })
                .collect::<Vec<_>>()
                .join("\n"),
            domain: v.domain.clone().unwrap_or_default(),
            description: v.description.clone(),
        }
    }
}

/// The DHCP range: both ends or neither.
fn dhcp_range(f: &FormData) -> Result<Option<RangeBody>, Error> {
    match (ip_field(f, "dhcp_start")?, ip_field(f, "dhcp_end")?) {
        (Some(start), Some(end)) => Ok(Some(RangeBody { start, end })),
        (None, None) => Ok(None),
        _ => Err(Error::invalid_field("dhcp", "give both ends of the DHCP range, or neither")),
    }
}

fn create_request(f: &FormData) -> Result<CreateVni, Error> {
    let vni = int_field(f, "vni")?.ok_or_else(|| Error::invalid_field("vni", "the VNI number is required"))?;
    Ok(CreateVni {
        name: f.text("name"),
        cidr: f.text("cidr"),
        vni,
        description: f.get("description").map(str::to_string),
        dhcp: dhcp_range(f)?,
        gateway: ip_field(f, "gateway")?,
        dns_servers: ip_list(f, "dns_servers")?,
        reserved: range_list(f.raw("reserved").unwrap_or_default())?,
        domain: f.get("domain").map(str::to_string),
    })
}

/// The edit form sends every field: blank ones clear what they stand for.
fn update_request(f: &FormData) -> Result<UpdateVni, Error> {
    Ok(UpdateVni {
        name: Some(f.text("name")),
        description: Some(f.text("description")),
        dhcp: Some(dhcp_range(f)?),
        gateway: Some(ip_field(f, "gateway")?),
        dns_servers: Some(ip_list(f, "dns_servers")?),
        reserved: Some(range_list(f.raw("reserved").unwrap_or_default())?),
        domain: Some(f.get("domain").map(str::to_string)),
        cidr: None,
        vni: None,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "console/vnis.html")]
struct VniListPage {
    l: Layout,
    vnis: Vec<VniView>,
    pager: Pager,
    form: VniForm,
    error: Option<String>,
}

impl VniListPage {
    fn percent(v: &VniView) -> u64 {
        render::percent(v.allocation_count.max(0) as u64, v.capacity.min(u64::MAX as u128) as u64)
    }
}

async fn list_page(app: &App, session: &Session, q: &ListQuery, form: VniForm, error: Option<String>) -> Response {
    let page = q.page("page");
    match app.vni_list(&session.actor, page).await {
        Ok(p) => VniListPage {
            l: Layout::new(session, "VNIs", "vnis"),
            pager: Pager::new("/vnis?", "page", page, p.total),
            vnis: p.items,
            form,
            error,
        }
        .into_response(),
        Err(e) => render::error_response(session, &e),
    }
}

async fn list(State(app): State<App>, session: Session, Query(q): Query<HashMap<String, String>>) -> Response {
    list_page(&app, &session, &ListQuery(q), VniForm::default(), None).await
}

async fn create(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    let result = match create_request(&form) {
        Ok(req) => app.vni_create(&session.actor, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => render::done(&format!("/vnis/{}", v.id), &format!("Created VNI {} ({})", v.name, v.cidr)),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let page =
                list_page(&app, &session, &ListQuery::default(), VniForm::from_form(&form), Some(render::message(&e)))
                    .await;
            with_status(page, status_of(&e))
        }
    }
}

/// What the allocate form held.
#[derive(Debug, Clone, Default)]
struct AllocForm {
    holder_type: String,
    holder_id: String,
    address: String,
}

/// Which form on the detail page a refusal belongs to, with the message.
#[derive(Debug, Clone, Default)]
struct DetailErrors {
    edit: Option<String>,
    allocate: Option<String>,
    release: Option<String>,
    delete: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/vni_detail.html")]
struct VniDetailPage {
    l: Layout,
    v: VniView,
    allocations: Vec<AllocationRow>,
    pager: Pager,
    edit: VniForm,
    alloc: AllocForm,
    errors: DetailErrors,
    confirm: String,
}

impl VniDetailPage {
    fn percent(v: &VniView) -> u64 {
        VniListPage::percent(v)
    }
}

struct DetailState {
    edit: Option<VniForm>,
    alloc: AllocForm,
    errors: DetailErrors,
    confirm: String,
}

impl DetailState {
    fn clean() -> DetailState {
        DetailState { edit: None, alloc: AllocForm::default(), errors: DetailErrors::default(), confirm: String::new() }
    }
}

async fn detail_page(app: &App, session: &Session, id: &str, page: PageRequest, st: DetailState) -> Response {
    let v = match app.vni_get(&session.actor, id).await {
        Ok(v) => v,
        Err(e) => return render::error_response(session, &e),
    };
    let allocs = match app.vni_allocations(&session.actor, id, page).await {
        Ok(a) => a,
        Err(e) => return render::error_response(session, &e),
    };
    VniDetailPage {
        l: Layout::new(session, format!("VNI {}", v.name), "vnis"),
        pager: Pager::new(&format!("/vnis/{}?", v.id), "page", page, allocs.total),
        allocations: allocs.items,
        edit: st.edit.unwrap_or_else(|| VniForm::from_view(&v)),
        alloc: st.alloc,
        errors: st.errors,
        confirm: st.confirm,
        v,
    }
    .into_response()
}

async fn detail(
    State(app): State<App>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let q = ListQuery(q);
    detail_page(&app, &session, &id, q.page("page"), DetailState::clean()).await
}

async fn refused(app: &App, session: &Session, id: &str, e: &Error, st: DetailState) -> Response {
    with_status(detail_page(app, session, id, PageRequest { page: 1, per_page: PER_PAGE }, st).await, status_of(e))
}

async fn update(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let result = match update_request(&form) {
        Ok(req) => app.vni_update(&session.actor, &id, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => render::done(&format!("/vnis/{}", v.id), &format!("Saved VNI {}", v.name)),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let mut st = DetailState::clean();
            st.edit = Some(VniForm::from_form(&form));
            st.errors.edit = Some(render::message(&e));
            refused(&app, &session, &id, &e, st).await
        }
    }
}

async fn delete(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let typed = form.text("confirm");
    // The typed name is checked here too: the page's script only enables the button.
    let result = match app.vni_get(&session.actor, &id).await {
        Ok(v) if v.name != typed => {
            Err(Error::invalid_field("confirm", format!("type the VNI's name `{}` to confirm deleting it", v.name)))
        }
        Ok(v) => app.vni_delete(&session.actor, &id).await.map(|()| v),
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => render::done("/vnis", &format!("Deleted VNI {}", v.name)),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let mut st = DetailState::clean();
            st.errors.delete = Some(render::message(&e));
            st.confirm = typed;
            refused(&app, &session, &id, &e, st).await
        }
    }
}

async fn allocate(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let alloc = AllocForm {
        holder_type: form.text("holder_type"),
        holder_id: form.text("holder_id"),
        address: form.text("address"),
    };
    let result = match ip_field(&form, "address") {
        Ok(address) => {
            let req =
                AllocateRequest { holder_type: alloc.holder_type.clone(), holder_id: alloc.holder_id.clone(), address };
            app.vni_allocate(&session.actor, &id, req).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(a) => render::done(
            &format!("/vnis/{id}"),
            &format!("Allocated {} to {} {}", a.address, a.holder_type, a.holder_id),
        ),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let mut st = DetailState::clean();
            st.alloc = alloc;
            st.errors.allocate = Some(render::message(&e));
            refused(&app, &session, &id, &e, st).await
        }
    }
}

async fn release(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let address = form.text("address");
    match app.vni_release(&session.actor, &id, &address).await {
        Ok(()) => render::done(&format!("/vnis/{id}"), &format!("Released {address}")),
        Err(e) => {
            if let Some(r) = not_permitted(&session, &e) {
                return r;
            }
            let mut st = DetailState::clean();
            st.errors.release = Some(render::message(&e));
            refused(&app, &session, &id, &e, st).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pager_links_and_form_lists() {
        let p = Pager::new("/vnis?", "page", PageRequest { page: 2, per_page: 50 }, 120);
        assert_eq!((p.pages, p.prev.as_deref(), p.next.as_deref()), (3, Some("/vnis?page=1"), Some("/vnis?page=3")));
        let p = Pager::new("/vnis?", "page", PageRequest { page: 1, per_page: 50 }, 0);
        assert_eq!((p.pages, p.prev, p.next), (1, None, None));
        let f =
            FormData::parse(b"dns_servers=10.0.0.1%2C+10.0.0.2%0A10.0.0.3&reserved=10.0.0.5-10.0.0.9%0D%0A10.0.0.20");
        assert_eq!(ip_list(&f, "dns_servers").map(|v| v.len()).ok(), Some(3));
        let r = range_list(f.raw("reserved").unwrap_or_default()).ok().unwrap_or_default();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].start, r[1].end);
        assert!(range_list("10.0.0.1-nope").is_err());
    }
}

//! `/os-images` (not `/images`: the boot routes serve files there): the OS image registry: list,
//! create (a URL image with its SHA-256, or an upload record), detail with the upload form, and
//! delete. The upload goes straight to the API (`PUT /api/v1/images/{id}/content`) from the
//! page's script, with the session cookie and the CSRF header, so it streams with progress; there
//! is no form fallback without JavaScript (the page says how to upload with curl instead).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::form::{FormData, Posted};
use super::list::{Pager, page_request, query, with_status};
use super::render::{self, Layout};
use super::session::Session;
use crate::app::App;
use crate::app::images::{CreateImage, FORMATS, ImageView, STATUSES};
use crate::error::Error;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/os-images", get(list))
        .route("/os-images/new", get(new_form).post(create))
        .route("/os-images/{id}", get(detail))
        .route("/os-images/{id}/upload", post(upload_without_script))
        .route("/os-images/{id}/delete", post(delete))
}

#[derive(Template, WebTemplate)]
#[template(path = "console/image_list.html")]
struct ListPage {
    l: Layout,
    images: Vec<ImageView>,
    pager: Pager,
    f: FormData,
    statuses: &'static [&'static str],
    error: Option<String>,
}

impl ListPage {
    fn size(n: &Option<i64>) -> String {
        n.map(|n| render::bytes(n.max(0) as u64)).unwrap_or_default()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/image_new.html")]
struct NewPage {
    l: Layout,
    f: FormData,
    formats: &'static [&'static str],
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/image_detail.html")]
struct DetailPage {
    l: Layout,
    i: ImageView,
}

impl DetailPage {
    fn size(n: &Option<i64>) -> String {
        n.map(|n| format!("{} ({n} bytes)", render::bytes(n.max(0) as u64))).unwrap_or_else(|| "—".into())
    }

    fn received(&self) -> String {
        render::bytes(self.i.bytes_received.max(0) as u64)
    }

    /// An upload record still waiting for (or able to retry) its file.
    fn can_upload(&self) -> bool {
        self.i.source == "upload" && (self.i.status == "pending" || self.i.status == "failed")
    }
}

async fn list(State(app): State<App>, session: Session, RawQuery(raw): RawQuery) -> Response {
    let f = query(&raw);
    let page = page_request(&f);
    let keep = [("name", f.text("name")), ("status", f.text("status"))];
    let mut view = ListPage {
        l: Layout::new(&session, "Images", "images"),
        images: Vec::new(),
        pager: Pager::filtered(page, 0, "/os-images", &keep),
        f: f.clone(),
        statuses: STATUSES,
        error: None,
    };
    match app.image_list(&session.actor, f.get("name"), f.get("status"), page).await {
        Ok(p) => {
            view.pager = Pager::filtered(page, p.total, "/os-images", &keep);
            view.images = p.items;
            view.into_response()
        }
        Err(e @ (Error::Forbidden { .. } | Error::Unauthenticated { .. })) => render::error_response(&session, &e),
        Err(e) => {
            view.error = Some(render::message(&e));
            with_status(view, crate::http::error::status(&e))
        }
    }
}

fn new_page(session: &Session, f: FormData, error: Option<String>) -> NewPage {
    NewPage { l: Layout::new(session, "New image", "images"), f, formats: FORMATS, error }
}

async fn new_form(session: Session) -> Response {
    if !session.can(crate::model::Scope::AssetsWrite) {
        return render::error_response(
            &session,
            &Error::forbidden("INSUFFICIENT_SCOPE", "missing permission: assets:write"),
        );
    }
    new_page(&session, FormData::parse(b"source=url"), None).into_response()
}

async fn create(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    let upload = form.get("source") == Some("upload");
    let size_bytes = match form.get("size_bytes").map(str::parse::<i64>).transpose() {
        Ok(s) => s,
        Err(_) => {
            let e = Error::invalid_field("size_bytes", "size must be a whole number of bytes");
            return with_status(new_page(&session, form, Some(render::message(&e))), StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let req = CreateImage {
        name: form.text("name"),
        version: form.get("version").map(str::to_string),
        // An upload has no URL even if one was typed before switching the source.
        url: if upload { None } else { Some(form.text("url")) },
        sha256: form.get("sha256").map(str::to_string),
        format: form.get("format").map(str::to_string),
        size_bytes,
    };
    match app.image_create(&session.actor, req).await {
        Ok(i) => {
            let notice = if upload {
                format!("Created image {}: upload its file below", i.name)
            } else {
                format!("Created image {}", i.name)
            };
            render::done(&format!("/os-images/{}", i.id), &notice)
        }
        Err(e @ (Error::Forbidden { .. } | Error::Unauthenticated { .. })) => render::error_response(&session, &e),
        Err(e) => {
            let status = crate::http::error::status(&e);
            with_status(new_page(&session, form, Some(render::message(&e))), status)
        }
    }
}

async fn detail(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    match app.image_get(&session.actor, &id).await {
        Ok(i) => DetailPage { l: Layout::new(&session, format!("Image {}", i.name), "images"), i }.into_response(),
        Err(e) => render::error_response(&session, &e),
    }
}

/// The upload form posted without its script: the file cannot be streamed from a plain form
/// post here, so say how to upload instead of failing obscurely.
async fn upload_without_script(session: Session, Path(id): Path<String>) -> Response {
    render::error_page(
        Some(&session),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &format!(
            "Uploading from this page needs JavaScript (it streams the file with a progress bar). Without it, upload with \
             an API key: curl -T <file> -H 'X-API-Key: <key>' <appliance>/api/v1/images/{id}/content"
        ),
    )
}

async fn delete(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    let name = match app.image_get(&session.actor, &id).await {
        Ok(i) => i.name,
        Err(e) => return render::error_response(&session, &e),
    };
    match app.image_delete(&session.actor, &id).await {
        Ok(()) => render::done("/os-images", &format!("Deleted image {name}")),
        Err(e) => render::error_response(&session, &e),
    }
}

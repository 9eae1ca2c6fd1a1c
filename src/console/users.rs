//! `/users` (admins): list and create users, change a user's role, disable or enable them, set a
//! new password, delete.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::form::{FormData, Posted};
use super::list::{Pager, page_request, query, with_status};
use super::render::{self, Layout};
use super::session::Session;
use crate::app::App;
use crate::app::auth::UserView;
use crate::app::users::{CreateUser, UpdateUser};
use crate::error::Error;
use crate::model::Role;
use crate::secret::Secret;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(detail).post(update))
        .route("/users/{id}/password", post(set_password))
        .route("/users/{id}/delete", post(delete))
}

const ROLES: [&str; 3] = ["viewer", "operator", "admin"];

#[derive(Template, WebTemplate)]
#[template(path = "console/user_list.html")]
struct ListPage {
    l: Layout,
    users: Vec<UserView>,
    pager: Pager,
    roles: [&'static str; 3],
    /// The create form as typed (never the password).
    f: FormData,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/user_detail.html")]
struct DetailPage {
    l: Layout,
    u: UserView,
    roles: [&'static str; 3],
    error: Option<String>,
    password_error: Option<String>,
    /// The user looking at the page: they cannot delete themselves.
    is_self: bool,
}

fn denied(e: &Error) -> bool {
    matches!(e, Error::Forbidden { .. } | Error::Unauthenticated { .. })
}

fn role(f: &FormData) -> Result<Role, Error> {
    f.text("role").parse::<Role>().map_err(|why| Error::invalid_field("role", why))
}

async fn list_page(app: &App, session: &Session, q: &FormData, f: FormData, error: Option<&Error>) -> Response {
    let page = page_request(q);
    match app.user_list(&session.actor, page).await {
        Ok(p) => {
            let view = ListPage {
                l: Layout::new(session, "Users", "users"),
                pager: Pager::filtered(page, p.total, "/users", &[]),
                users: p.items,
                roles: ROLES,
                f,
                error: error.map(render::message),
            };
            match error {
                Some(e) => with_status(view, crate::http::error::status(e)),
                None => view.into_response(),
            }
        }
        Err(e) => render::error_response(session, &e),
    }
}

async fn list(State(app): State<App>, session: Session, RawQuery(raw): RawQuery) -> Response {
    list_page(&app, &session, &query(&raw), FormData::parse(b"role=viewer"), None).await
}

async fn create(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    let kept = FormData::parse(
        serde_urlencoded::to_string([("username", form.text("username")), ("role", form.text("role"))])
            .unwrap_or_default()
            .as_bytes(),
    );
    let req = role(&form).map(|role| CreateUser {
        username: form.text("username"),
        password: Secret::new(form.raw("password").unwrap_or_default().to_string()),
        role,
    });
    let result = match req {
        Ok(req) => app.user_create(&session.actor, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(u) => render::done(&format!("/users/{}", u.id), &format!("Created user {} ({})", u.username, u.role)),
        Err(e) if denied(&e) => render::error_response(&session, &e),
        Err(e) => list_page(&app, &session, &FormData::default(), kept, Some(&e)).await,
    }
}

async fn detail_page(
    app: &App,
    session: &Session,
    id: &str,
    error: Option<&Error>,
    password_error: Option<&Error>,
) -> Response {
    match app.user_get(&session.actor, id).await {
        Ok(u) => {
            let view = DetailPage {
                l: Layout::new(session, format!("User {}", u.username), "users"),
                is_self: u.id == session.user_id,
                u,
                roles: ROLES,
                error: error.map(render::message),
                password_error: password_error.map(render::message),
            };
            match error.or(password_error) {
                Some(e) => with_status(view, crate::http::error::status(e)),
                None => view.into_response(),
            }
        }
        Err(e) => render::error_response(session, &e),
    }
}

async fn detail(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    detail_page(&app, &session, &id, None, None).await
}

async fn update(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let req = role(&form).map(|role| UpdateUser {
        role: Some(role),
        password: None,
        disabled: Some(form.checked("disabled")),
    });
    let result = match req {
        Ok(req) => app.user_update(&session.actor, &id, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(u) => render::done(&format!("/users/{}", u.id), &format!("Saved user {}", u.username)),
        Err(e) if denied(&e) => render::error_response(&session, &e),
        Err(e) => detail_page(&app, &session, &id, Some(&e), None).await,
    }
}

async fn set_password(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let password = form.raw("password").unwrap_or_default();
    if form.raw("confirm").unwrap_or_default() != password {
        let e = Error::invalid_field("password", "the two passwords differ");
        return detail_page(&app, &session, &id, None, Some(&e)).await;
    }
    let req = UpdateUser { role: None, password: Some(Secret::new(password.to_string())), disabled: None };
    match app.user_update(&session.actor, &id, req).await {
        Ok(u) => render::done(
            &format!("/users/{}", u.id),
            &format!("Set a new password for {}; their sessions were ended", u.username),
        ),
        Err(e) if denied(&e) => render::error_response(&session, &e),
        Err(e) => detail_page(&app, &session, &id, None, Some(&e)).await,
    }
}

async fn delete(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    let name = match app.user_get(&session.actor, &id).await {
        Ok(u) => u.username,
        Err(e) => return render::error_response(&session, &e),
    };
    match app.user_delete(&session.actor, &id).await {
        Ok(()) => render::done("/users", &format!("Deleted user {name}")),
        Err(e) if denied(&e) => render::error_response(&session, &e),
        Err(e) => detail_page(&app, &session, &id, Some(&e), None).await,
    }
}

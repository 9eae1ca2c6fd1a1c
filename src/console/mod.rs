//! The web console: server-rendered pages (askama templates in `templates/console/`) over the
//! same service layer as the API. Handlers here only read forms, call `App` methods as the logged
//! in user and render the result; every permission is still checked by the service layer, the
//! templates merely hide what the user's role cannot do.
//!
//! Sessions are the API's session cookie (`session`); every form carries a CSRF token bound to
//! the session (`form`); live state arrives over server-sent events (`live`), and pages work
//! without JavaScript otherwise.

pub mod form;
mod list;
pub mod render;
pub mod session;

mod account;
mod api_keys;
mod assets;
mod audit;
mod clusters;
mod dashboard;
mod devices;
mod images;
mod live;
mod login;
mod policies;
mod psks;
mod settings;
mod statics;
mod users;
mod vnis;
mod webhooks;
mod workflows;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::App;

pub fn router() -> Router<App> {
    Router::new()
        .merge(login::routes())
        .merge(dashboard::routes())
        .merge(live::routes())
        .merge(assets::routes())
        .merge(workflows::routes())
        .merge(account::routes())
        .merge(clusters::routes())
        .merge(vnis::routes())
        .merge(psks::routes())
        .merge(devices::routes())
        .merge(policies::routes())
        .merge(images::routes())
        .merge(webhooks::routes())
        .merge(users::routes())
        .merge(api_keys::routes())
        .merge(audit::routes())
        .merge(settings::routes())
        .layer(axum::middleware::from_fn(page_headers))
        // Static files are cacheable and need none of the page headers' no-store.
        .merge(statics::routes())
}

/// Headers every console page carries: no caching (pages hold per-user data and one-time
/// secrets), a strict content security policy (scripts and styles only from this appliance, no
/// inline code), no framing. A notice shown by this page is cleared so it shows once.
async fn page_headers(req: Request, next: Next) -> Response {
    let had_flash = crate::http::gate::cookie(req.headers(), session::FLASH_COOKIE).is_some();
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let is_html = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    if had_flash && is_html && resp.status().is_success() {
        let clear = format!("{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0", session::FLASH_COOKIE);
        if let Ok(v) = HeaderValue::from_str(&clear) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

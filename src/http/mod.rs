//! The HTTP face: the REST API under `/api/v1` and its OpenAPI document, and the boot routes
//! (`boot`, outside the API's gate). Handlers are thin; the API router is built with utoipa-axum so
//! an API route cannot exist without its OpenAPI entry.

pub mod agent;
pub mod api;
pub mod boot;
pub mod error;
pub mod extract;
pub mod files;
pub mod gate;
pub mod tls;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::app::App;
use crate::error::Error;

#[derive(OpenApi)]
#[openapi(
    info(title = "ironbay", description = "Bare-metal provisioning appliance: REST API"),
    modifiers(&SecuritySchemes),
    tags((name = "health"), (name = "auth"), (name = "users"), (name = "api-keys"), (name = "assets"), (name = "boot"), (name = "agents"), (name = "audit"), (name = "vnis"), (name = "devices"), (name = "policies"), (name = "psks"), (name = "webhooks"), (name = "images"), (name = "workflows"))
)]
struct ApiDoc;

/// The webhooks tag's description: the signing scheme receivers implement.
const WEBHOOKS_DOC: &str = "Event deliveries: `POST <url>` with a JSON body `{id, event, created_at, data}` and the \
headers `X-Ironbay-Event`, `X-Ironbay-Event-Id` (one per event, shared by its retries: deduplicate on it), \
`X-Ironbay-Delivery`, `X-Ironbay-Timestamp` (Unix seconds) and `X-Ironbay-Signature: sha256=<hex>`, the \
HMAC-SHA256 under the webhook's secret of `{timestamp}.{body}`. Receivers recompute it over the raw body, \
compare in constant time and refuse timestamps more than 5 minutes old (replays). A 2xx answer is success; \
anything else is retried with exponential backoff, and a webhook is disabled after repeated failed deliveries.";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An access token (`ibt_…`) or an API key (`ib_…`)"))
                    .build(),
            ),
        );
        c.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        c.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(gate::SESSION_COOKIE))),
        );
    }
}

/// The API routes and the OpenAPI document describing exactly them.
pub fn api() -> (Router<App>, utoipa::openapi::OpenApi) {
    use api::*;
    let parts = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::mfa_setup))
        .routes(routes!(auth::mfa_enable))
        .routes(routes!(auth::mfa_disable))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(api_keys::list, api_keys::create))
        .routes(routes!(api_keys::get, api_keys::revoke))
        .routes(routes!(assets::list, assets::create))
        .routes(routes!(assets::get, assets::update, assets::delete))
        .routes(routes!(boot_events::of_asset))
        .routes(routes!(boot_events::of_mac))
        .routes(routes!(agents::get))
        .routes(routes!(agents::inventory))
        .routes(routes!(agents::inventory_changes))
        .routes(routes!(agents::command))
        .routes(routes!(agents::rescue))
        .routes(routes!(workflows::provision))
        .routes(routes!(workflows::wipe))
        .routes(routes!(workflows::power))
        .routes(routes!(workflows::bmc_check))
        .routes(routes!(workflows::list))
        .routes(routes!(workflows::get))
        .routes(routes!(workflows::cancel))
        .routes(routes!(workflows::retry))
        .routes(routes!(workflows::certificate))
        .routes(routes!(workflows::certificate_key))
        .routes(routes!(workflows::events))
        .routes(routes!(clusters::create, clusters::list))
        .routes(routes!(clusters::get, clusters::delete))
        .routes(routes!(clusters::kubeconfig))
        .routes(routes!(clusters::talosconfig))
        .routes(routes!(audit::list))
        .routes(routes!(audit::export))
        .routes(routes!(audit::verify))
        .routes(routes!(vnis::list, vnis::create))
        .routes(routes!(vnis::get, vnis::update, vnis::delete))
        .routes(routes!(vnis::allocations, vnis::allocate))
        .routes(routes!(vnis::release))
        .routes(routes!(devices::token_list, devices::token_create))
        .routes(routes!(devices::token_get, devices::token_revoke))
        .routes(routes!(devices::enroll))
        .routes(routes!(devices::list))
        .routes(routes!(devices::get, devices::delete))
        .routes(routes!(devices::renew))
        .routes(routes!(devices::history))
        .routes(routes!(devices::ca_pem))
        .routes(routes!(devices::ca_crl))
        .routes(routes!(policies::list, policies::create))
        .routes(routes!(policies::evaluate))
        .routes(routes!(policies::get, policies::update, policies::replace, policies::delete))
        .routes(routes!(psks::list, psks::create))
        .routes(routes!(psks::get, psks::update, psks::delete))
        .routes(routes!(psks::rotate))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::test))
        .routes(routes!(images::list, images::create))
        .routes(routes!(images::get, images::update, images::delete))
        // Image content is streamed to disk whatever its size: no body limit on this route.
        .routes(routes!(images::upload).layer(DefaultBodyLimit::disable()))
        .split_for_parts();
    let (router, mut doc) = parts;
    for tag in doc.tags.iter_mut().flatten().filter(|t| t.name == "webhooks") {
        tag.description = Some(WEBHOOKS_DOC.to_string());
    }
    (router, doc)
}

/// Adds the error answers every operation can give, so no handler can forget them: 401/403 where
/// credentials are needed, 400/415/422 where a body is parsed, 429 everywhere (rate limits).
fn document_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = |description: &str| -> RefOr<utoipa::openapi::Response> {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
        for op in ops.into_iter().flatten() {
            let mut add = |status: &str, description: &str| {
                op.responses.responses.entry(status.to_string()).or_insert_with(|| error(description));
            };
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let has_body = op.request_body.is_some();
            if secured {
                add("401", "Missing or invalid credentials");
                add("403", "Missing permission (`details.missing_scope`) or a session is required");
            }
            if has_body {
                add("400", "Malformed JSON or body over the size limit");
                add("415", "Body is not JSON");
                add("422", "Body of the wrong shape (`details.field`)");
            }
            add("429", "Rate limited (`Retry-After`)");
        }
    }
}

pub fn router(app: App) -> Router {
    let (api, mut doc) = api();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    document_errors(&mut doc);
    let doc_json = std::sync::Arc::new(doc.to_pretty_json().unwrap_or_else(|_| "{}".into()));
    let api = api
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc_json.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], doc.as_str().to_owned()) }
            }),
        )
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(app.clone(), gate::gate))
        // Bodies are read (and limited) by `ApiJson`; this outer bound only stops abuse early.
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes.saturating_mul(2)));
    // Boot routes are merged beside the API, not under its gate: booting machines have no credentials.
    Router::new()
        .merge(api)
        .merge(boot::router())
        .merge(agent::router())
        .merge(crate::console::router())
        .layer(axum::middleware::from_fn_with_state(app.clone(), secure_transport))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

/// Served over TLS: browsers are told to use HTTPS only (HSTS) and every cookie is `Secure`, so a
/// session cookie never travels in clear even if someone is sent to an http:// address.
async fn secure_transport(
    axum::extract::State(app): axum::extract::State<App>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut resp = next.run(req).await;
    let Some(tls) = &app.config.tls else { return resp };
    let h = resp.headers_mut();
    if tls.hsts_max_age_secs > 0
        && let Ok(v) = HeaderValue::from_str(&format!("max-age={}; includeSubDomains", tls.hsts_max_age_secs))
    {
        h.insert(header::STRICT_TRANSPORT_SECURITY, v);
    }
    let cookies: Vec<HeaderValue> = h.get_all(header::SET_COOKIE).iter().cloned().collect();
    if !cookies.is_empty() {
        h.remove(header::SET_COOKIE);
        for c in cookies {
            let secured = match c.to_str() {
                Ok(s) if !s.to_ascii_lowercase().contains("; secure") => {
                    HeaderValue::from_str(&format!("{s}; Secure")).unwrap_or(c)
                }
                _ => c,
            };
            h.append(header::SET_COOKIE, secured);
        }
    }
    resp
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> impl IntoResponse {
    let body = crate::http::error::ErrorBody {
        error: format!("{method} is not allowed on {}", uri.path()),
        code: "METHOD_NOT_ALLOWED".into(),
        details: serde_json::json!({"method": method.as_str()}),
    };
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(body))
}

/// Unknown paths: the console's page for a browser asking for HTML outside `/api/`, the API's
/// error body for everyone else.
async fn api_not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> axum::response::Response {
    let wants_html =
        headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if wants_html && !uri.path().starts_with("/api/") {
        crate::console::render::error_page(None, axum::http::StatusCode::NOT_FOUND, "There is no page at this address.")
    } else {
        Error::not_found("ROUTE_NOT_FOUND", format!("no route for {}", uri.path())).into_response()
    }
}

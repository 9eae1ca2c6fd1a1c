//! The boot routes, outside `/api` and its gate (machines that boot carry no credentials):
//! `GET /boot.ipxe` (the iPXE script for the asking machine), `/pxe/*` (iPXE binaries from
//! `boot.pxe_dir`) and `/images/*` (kernels, initrds, images from `boot.images_dir`), read-only;
//! `POST /boot/report`, where a booted kernel's userspace says it is up (authenticated by the boot
//! token its command line carried).
//! Every request lands in the boot timeline (`boot::journal`) with what was answered and why.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;
use crate::boot::files::{self, FileRefusal};
use crate::boot::journal::{BootEvent, Source};
use crate::boot::script::{self, RechainScript, RefusedScript, ScriptQuery};
use crate::model::Mac;

pub fn router() -> Router<App> {
    Router::new()
        .route("/boot.ipxe", get(boot_script))
        .route("/pxe/{*path}", get(pxe_file))
        .route("/images/{*path}", get(image_file))
        .route("/boot/report", axum::routing::post(report))
        .route("/talos/config", get(talos_config))
}

/// `GET /talos/config?uuid=<SMBIOS UUID>`: a Talos node's machine config (gzip when asked), only
/// to the cluster member whose UUID it is and only while its install runs; 404 to anyone else.
/// Talos retries any non-200 for hours, so "not yet" and "never" look the same to it.
async fn talos_config(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let request = describe(&method, &uri);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let uuid = pairs.iter().find(|(k, _)| k == "uuid").map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let peer_mac = mac_of_peer(&app, peer);
    let record = |response: &str, reason: String| {
        app.boot.journal.record(BootEvent {
            source: Source::Http,
            mac: peer_mac,
            ip: Some(peer.ip()),
            request: request.clone(),
            response: response.into(),
            reason,
        });
    };
    let not_found = || {
        (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "no machine config for this machine\n")
            .into_response()
    };
    match app.talos_machine_config(&uuid, Some(peer.ip()), peer_mac).await {
        Ok(Some(text)) => {
            record("200 Talos machine config", format!("config for uuid {uuid}"));
            let gzip = headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip")));
            let mut h = vec![
                (header::CONTENT_TYPE, "application/yaml"),
                (header::CACHE_CONTROL, "no-store"),
                (header::VARY, "Accept-Encoding"),
            ];
            let body = if gzip {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                match std::io::Write::write_all(&mut enc, text.as_bytes()).and_then(|()| enc.finish()) {
                    Ok(z) => {
                        h.push((header::CONTENT_ENCODING, "gzip"));
                        z
                    }
                    Err(_) => text.into_bytes(),
                }
            } else {
                text.into_bytes()
            };
            let mut resp = (StatusCode::OK, body).into_response();
            for (k, v) in h {
                resp.headers_mut().insert(k, axum::http::HeaderValue::from_static(v));
            }
            resp
        }
        Ok(None) => {
            record(
                "404 no config",
                format!(
                    "uuid `{}` is no member being installed",
                    uuid.chars().filter(|c| c.is_ascii_graphic()).take(40).collect::<String>()
                ),
            );
            not_found()
        }
        Err(e) => {
            tracing::error!(error = %e, "talos config");
            record("503 error", "the appliance could not render the config".into());
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response()
        }
    }
}

const SCRIPT_TYPE: &str = "text/plain; charset=utf-8";

fn script_response(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, SCRIPT_TYPE), (header::CACHE_CONTROL, "no-store")], text).into_response()
}

/// The request as the timeline shows it: printable, bounded.
fn describe(method: &Method, uri: &Uri) -> String {
    let target = uri.path_and_query().map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
    let target: String = target.chars().filter(|c| c.is_ascii_graphic()).take(300).collect();
    format!("{method} {target}")
}

/// The appliance's URL as this client reaches it: `boot.http_url`, else `http://<Host>`.
pub(crate) fn base_url(app: &App, headers: &HeaderMap) -> Option<String> {
    if let Some(url) = &app.config.boot.http_url {
        return Some(url.clone());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then(|| format!("http://{host}"))
}

fn mac_of_peer(app: &App, peer: SocketAddr) -> Option<Mac> {
    match peer.ip() {
        IpAddr::V4(ip) => app.boot.neighbors.mac_of(ip),
        IpAddr::V6(ip) => ip.to_ipv4_mapped().and_then(|ip| app.boot.neighbors.mac_of(ip)),
    }
}

async fn boot_script(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let request = describe(&method, &uri);
    let record = |mac: Option<Mac>, response: String, reason: String| {
        app.boot.journal.record(BootEvent {
            source: Source::Http,
            mac,
            ip: Some(peer.ip()),
            request,
            response,
            reason,
        });
    };
    let refuse = |status: StatusCode, message: &str| {
        script_response(status, script::render(&RefusedScript { status: status.as_str(), message }))
    };
    let pairs: Result<Vec<(String, String)>, _> = serde_urlencoded::from_str(uri.query().unwrap_or(""));
    let query =
        pairs.map_err(|_| "the query string is not form-encoded".to_string()).and_then(|p| ScriptQuery::parse(&p));
    let query = match query {
        Ok(q) => q,
        Err(message) => {
            record(mac_of_peer(&app, peer), "400 bad request script".into(), message.clone());
            return refuse(StatusCode::BAD_REQUEST, &message);
        }
    };
    let Some(base) = base_url(&app, &headers) else {
        let message = "no usable Host header and no boot.http_url configured";
        record(query.mac, "400 bad request script".into(), message.into());
        return refuse(StatusCode::BAD_REQUEST, message);
    };
    let Some(mac) = query.mac else {
        record(mac_of_peer(&app, peer), "re-chain script (with mac, uuid, arch)".into(), "no mac in the query".into());
        return script_response(StatusCode::OK, script::render(&RechainScript { base: &base }));
    };
    match app.boot_script(mac, &query, &base).await {
        Ok(s) => {
            record(Some(mac), s.summary, s.reason);
            script_response(StatusCode::OK, s.text)
        }
        Err(e) => {
            tracing::error!(error = %e, %mac, "boot script");
            record(Some(mac), "503 error script".into(), "the appliance could not read or record the asset".into());
            refuse(StatusCode::SERVICE_UNAVAILABLE, "the appliance could not look up this machine; try again")
        }
    }
}

/// What a file handler needs from the request besides the app.
#[derive(FromRequestParts)]
struct FileRequest {
    peer: ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
}

async fn pxe_file(State(app): State<App>, req: FileRequest) -> Response {
    let root = app.config.boot.pxe_dir.clone();
    file(app, root, "/pxe/", req).await
}

async fn image_file(State(app): State<App>, req: FileRequest) -> Response {
    let root = app.config.boot.images_dir.clone();
    file(app, root, "/images/", req).await
}

async fn file(app: App, root: PathBuf, prefix: &'static str, req: FileRequest) -> Response {
    let FileRequest { peer: ConnectInfo(peer), method, headers, uri } = req;
    let mut request = describe(&method, &uri);
    if let Some(r) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        request.push_str(&format!(" range={}", r.chars().take(100).collect::<String>()));
    }
    let raw = uri.path().strip_prefix(prefix).unwrap_or_default().to_string();
    let opened = match percent_encoding::percent_decode_str(&raw).decode_utf8() {
        Ok(rel) => {
            let rel = rel.into_owned();
            tokio::task::spawn_blocking(move || files::open(&root, &rel)).await.unwrap_or(Err(FileRefusal::NotFound))
        }
        Err(_) => Err(FileRefusal::BadPath("not UTF-8")),
    };
    let (response, summary, reason) = match opened {
        Ok(f) => {
            let reason = format!("served from {}", f.path.display());
            let served = crate::http::files::serve(f, &method, &headers, crate::http::files::content_type_for(&raw));
            (served.response, served.summary, reason)
        }
        Err(refusal) => {
            let status = match refusal {
                FileRefusal::BadPath(_) => StatusCode::BAD_REQUEST,
                FileRefusal::NotFound | FileRefusal::Outside | FileRefusal::Hidden => StatusCode::NOT_FOUND,
            };
            let body = match refusal {
                FileRefusal::BadPath(_) => format!("{refusal}\n"),
                _ => "not found\n".to_string(),
            };
            let r = (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from(body)).into_response();
            (r, status.as_u16().to_string(), refusal.to_string())
        }
    };
    app.boot.journal.record(BootEvent {
        source: Source::Http,
        mac: mac_of_peer(&app, peer),
        ip: Some(peer.ip()),
        request,
        response: summary,
        reason,
    });
    response
}

/// What a booted machine's userspace reports (the lab's test initramfs; the agent registers
/// through its own API later). Unknown fields are ignored: reporters differ.
#[derive(Debug, serde::Deserialize)]
struct Report {
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    kernel: Option<String>,
    #[serde(default)]
    uptime_s: Option<f64>,
}

const MAX_REPORT_BYTES: usize = 16 * 1024;

/// `POST /boot/report` with `Authorization: Bearer <boot token>`: the token (checked without the
/// database) names the asset; the report lands in its boot timeline.
async fn report(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::Json<serde_json::Value>, crate::error::Error> {
    use crate::error::Error;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Error::unauthenticated("BOOT_TOKEN_MISSING", "a boot token is required (Authorization: Bearer)")
        })?;
    let claims = app
        .boot
        .tokens
        .verify(token.trim(), chrono::Utc::now().timestamp())
        .map_err(|e| Error::unauthenticated("BOOT_TOKEN_INVALID", e.to_string()))?;
    if body.len() > MAX_REPORT_BYTES {
        return Err(Error::bad_request("BODY_TOO_LARGE", format!("a report is at most {MAX_REPORT_BYTES} bytes")));
    }
    let r: Report = serde_json::from_slice(&body)
        .map_err(|e| Error::bad_request("MALFORMED_JSON", format!("the report is not the expected JSON: {e}")))?;
    let printable = |s: Option<String>| -> String {
        s.map(|s| s.chars().filter(|c| c.is_ascii_graphic()).take(100).collect()).unwrap_or_else(|| "-".into())
    };
    let reported_mac = printable(r.mac);
    let mismatch = if reported_mac != "-" && reported_mac != claims.mac.to_string() {
        format!(" (reports MAC {reported_mac}, token was issued to {})", claims.mac)
    } else {
        String::new()
    };
    app.boot.journal.record(BootEvent {
        source: Source::Http,
        mac: Some(claims.mac),
        ip: Some(peer.ip()),
        request: "POST /boot/report".into(),
        response: "200 accepted".into(),
        reason: format!(
            "userspace up on asset {}: ip {}, kernel {}, {:.1} s after boot{mismatch}",
            claims.asset,
            printable(r.ip),
            printable(r.kernel),
            r.uptime_s.unwrap_or(0.0)
        ),
    });
    Ok(axum::Json(serde_json::json!({"asset": claims.asset, "mac": claims.mac})))
}

//! The images registry over real HTTP on both backends: URL images and their validation, uploads
//! streamed in chunks (hashes and sizes checked against ones computed here, the file served back
//! byte for byte by the boot route with a Range request), a wrong expected hash, compressed
//! uploads (the recorded SHA-256 is the decompressed image's), progress while a held-open upload
//! runs, a second upload refused meanwhile, a client that goes away, deletion, permissions, lists.

mod common;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::{Appliance, Backend, Client, Resp, eventually, send};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// `len` bytes shaped like a disk image: 64 KiB blocks of noise (xorshift) between blocks of
/// zeros, so it compresses, but not to nothing.
fn image_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (i >> 16) % 2 == 1 { 0 } else { x as u8 }
        })
        .collect()
}

/// A request body the test feeds chunk by chunk: the upload stays open until the test sends the
/// next chunk, an error (the client breaks off) or drops the sender (the end).
struct Feed(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for Feed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(http_body::Frame::data)))
    }
}

type Feeder = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Starts `PUT …/content` with a fed body; the answer comes from the returned task.
fn start_upload(c: &Client, id: &str) -> (Feeder, tokio::task::JoinHandle<Resp>) {
    let (tx, rx) = mpsc::channel(4);
    let rb = c
        .request(Method::PUT, &format!("/api/v1/images/{id}/content"))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap(Feed(rx)));
    (tx, tokio::spawn(send(rb)))
}

/// Starts a fed upload of `data`, sends its first `first` bytes and holds the body open until the
/// appliance reports progress; returns the feeder, the answer's task and the image as seen then.
async fn held_open_upload(
    admin: &Client,
    id: &str,
    data: &[u8],
    first: usize,
) -> (Feeder, tokio::task::JoinHandle<Resp>, Value) {
    let (feed, answer) = start_upload(admin, id);
    feed.send(Ok(Bytes::copy_from_slice(&data[..first]))).await.expect("feed");
    let seen = wait_for_status(admin, id, "uploading", |j| j["bytes_received"].as_u64().unwrap_or(0) > 0).await;
    (feed, answer, seen)
}

/// Uploads `data` in one buffered body.
async fn upload(c: &Client, id: &str, data: &[u8]) -> Resp {
    c.raw(Method::PUT, &format!("/api/v1/images/{id}/content"), Some("application/octet-stream"), data.to_vec()).await
}

async fn create(c: &Client, body: Value) -> Value {
    let r = c.post("/api/v1/images", body.clone()).await;
    assert_eq!(r.status, 201, "create {body}: {}", r.text);
    r.json
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("image id").to_string()
}

/// GET of a boot-served file: status and body.
async fn served(app: &Appliance, path: &str, range: Option<&str>) -> (u16, Bytes) {
    let mut rb = reqwest::Client::new().get(app.url(path));
    if let Some(r) = range {
        rb = rb.header("range", r);
    }
    let r = rb.send().await.expect("GET served file");
    (r.status().as_u16(), r.bytes().await.expect("body"))
}

fn library(app: &Appliance) -> std::path::PathBuf {
    app.data_dir.path().join("images/library")
}

/// The staging files left in the library (there must be none once an upload has ended).
fn staged(app: &Appliance) -> Vec<String> {
    std::fs::read_dir(library(app).join(".partial"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn assert_error(r: &Resp, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    assert_eq!(r.error_code(), code, "{what}: {}", r.text);
}

async fn audit_actions(admin: &Client, id: &str) -> Vec<(String, String)> {
    let r = admin.get(&format!("/api/v1/audit?target_id={id}&per_page=100")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut out: Vec<(String, String)> = r.json["data"]
        .as_array()
        .expect("audit entries")
        .iter()
        .map(|e| (e["action"].as_str().unwrap_or("").to_string(), e["outcome"].as_str().unwrap_or("").to_string()))
        .collect();
    out.sort();
    out
}

async fn url_images_and_validation(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let hash = "AB".repeat(32);
    let img = create(
        &admin,
        json!({"name": "debian-12", "version": "2026.01", "url": "https://mirror.example/debian-12.img.zst", "sha256": hash, "size_bytes": 2_147_483_648_i64}),
    )
    .await;
    assert_eq!(img["source"], "url");
    assert_eq!(img["status"], "ready", "{img}");
    assert_eq!(img["format"], "raw.zst", "format from the URL's suffix: {img}");
    assert_eq!(img["sha256"], "ab".repeat(32), "sha256 is kept lowercase");
    assert_eq!(img["size_bytes"], 2_147_483_648_i64);
    assert!(img["library_path"].is_null() && img["file_sha256"].is_null(), "{img}");
    assert!(id_of(&img).starts_with("img_"));
    assert!(img["created_by"].as_str().is_some_and(|s| s.starts_with("usr_")), "{img}");

    let ok_hash = "0".repeat(64);
    for (body, field, what) in [
        (json!({"name": "x", "url": "https://a/x.img", "sha256": "abc"}), "sha256", "short sha256"),
        (json!({"name": "x", "url": "https://a/x.img", "sha256": "g".repeat(64)}), "sha256", "non-hex sha256"),
        (json!({"name": "x", "url": "https://a/x.img"}), "sha256", "URL image without sha256"),
        (json!({"name": "x", "url": "ftp://a/x.img", "sha256": ok_hash}), "url", "ftp URL"),
        (json!({"name": "x", "url": "https://a/x y.img", "sha256": ok_hash}), "url", "whitespace in URL"),
        (json!({"name": "x", "url": "not a url", "sha256": ok_hash}), "url", "not a URL"),
        (json!({"name": "a b"}), "name", "space in name"),
        (json!({"name": ""}), "name", "empty name"),
        (json!({"name": "x".repeat(129)}), "name", "long name"),
        (json!({"name": "x", "version": "1 2"}), "version", "bad version"),
        (json!({"name": "x", "format": "qcow2"}), "format", "unknown format"),
        (json!({"name": "x", "size_bytes": 0}), "size_bytes", "zero size"),
    ] {
        let r = admin.post("/api/v1/images", body).await;
        assert_error(&r, 422, "INVALID_FIELD", what);
        assert_eq!(r.json["details"]["field"], field, "{what}: {}", r.text);
    }
    let r = admin.post("/api/v1/images", json!({"name": "x", "status": "ready"})).await;
    assert_error(&r, 422, "READ_ONLY_FIELD", "status in a create body");

    // (name, version) is unique; another version of the same name is fine.
    let dup = json!({"name": "debian-12", "version": "2026.01", "url": "https://b/x.img", "sha256": ok_hash});
    let r = admin.post("/api/v1/images", dup).await;
    assert_error(&r, 409, "DUPLICATE_IMAGE", "same name and version");
    let other =
        create(&admin, json!({"name": "debian-12", "version": "2026.02", "url": "https://b/x.img", "sha256": ok_hash}))
            .await;
    assert_eq!(other["format"], "raw");
    let r = admin.patch(&format!("/api/v1/images/{}", id_of(&other)), json!({"version": "2026.01"})).await;
    assert_error(&r, 409, "DUPLICATE_IMAGE", "renaming onto an existing name and version");
    let r = admin.patch(&format!("/api/v1/images/{}", id_of(&other)), json!({"version": null, "name": "debian"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json["name"].as_str(), r.json["version"].as_str()), (Some("debian"), None), "{}", r.text);
    let r = admin.patch(&format!("/api/v1/images/{}", id_of(&other)), json!({"url": "https://c/y.img"})).await;
    assert_error(&r, 422, "UNKNOWN_FIELD", "only name and version change");

    // A URL image has no content to upload.
    let r = upload(&admin, &id_of(&img), b"bytes").await;
    assert_error(&r, 409, "IMAGE_READY", "uploading to a URL image");
    let r = admin.get("/api/v1/images/img_0000000000000000").await;
    assert_error(&r, 404, "IMAGE_NOT_FOUND", "unknown id");
    let r = upload(&admin, "img_0000000000000000", b"bytes").await;
    assert_error(&r, 404, "IMAGE_NOT_FOUND", "upload to an unknown id");

    let r = admin.delete(&format!("/api/v1/images/{}", id_of(&other))).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let actions = audit_actions(&admin, &id_of(&other)).await;
    let want: Vec<(String, String)> = ["image.create", "image.delete", "image.update"]
        .iter()
        .map(|a| (a.to_string(), "success".to_string()))
        .collect();
    assert_eq!(actions, want, "one audit entry per change");
}

async fn upload_is_streamed_hashed_and_served(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    // A subscriber to image events (nobody listens there: the delivery log is what is checked).
    let r = admin.post("/api/v1/webhooks", json!({"url": "http://127.0.0.1:9/images", "events": ["image.*"]})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let webhook = id_of(&r.json);
    let data = image_bytes(5 * 1024 * 1024 + 123, 7);
    let img = create(&admin, json!({"name": "streamed", "version": "1"})).await;
    let id = id_of(&img);
    assert_eq!((img["source"].as_str(), img["status"].as_str()), (Some("upload"), Some("pending")), "{img}");
    assert!(img["url"].is_null() && img["sha256"].is_null(), "{img}");
    assert_eq!(img["library_path"], format!("images/library/{id}"));

    // Chunked transfer, 256 KiB at a time.
    let (feed, answer) = start_upload(&admin, &id);
    for chunk in data.chunks(256 * 1024) {
        feed.send(Ok(Bytes::copy_from_slice(chunk))).await.expect("feed");
    }
    drop(feed);
    let r = answer.await.expect("upload task");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ready");
    assert_eq!(r.json["sha256"], sha(&data));
    assert_eq!(r.json["file_sha256"], sha(&data));
    assert_eq!(r.json["size_bytes"], data.len() as u64);
    assert_eq!(r.json["file_size_bytes"], data.len() as u64);
    assert_eq!(r.json["bytes_received"], data.len() as u64);
    assert_eq!(r.json["format"], "raw");
    let got = admin.get(&format!("/api/v1/images/{id}")).await;
    assert_eq!(got.json, r.json, "GET answers what the upload answered");

    // Served back by the boot route, whole and by range.
    let path = format!("/{}", r.json["library_path"].as_str().expect("library_path"));
    let (status, body) = served(&app, &path, None).await;
    assert_eq!(status, 200);
    assert!(body == data, "the served file differs from the upload");
    let (status, body) = served(&app, &path, Some("bytes=1000000-3000000")).await;
    assert_eq!(status, 206);
    assert!(body == data[1_000_000..=3_000_000], "the range differs");
    assert!(staged(&app).is_empty(), "staging files left: {:?}", staged(&app));

    // Content is immutable once ready.
    let r = upload(&admin, &id, b"other bytes").await;
    assert_error(&r, 409, "IMAGE_READY", "replacing ready content");
    let (_, body) = served(&app, &path, None).await;
    assert!(body == data, "a refused upload changed the file");

    let r = admin.delete(&format!("/api/v1/images/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(served(&app, &path, None).await.0, 404);
    assert!(!library(&app).join(&id).exists(), "the file outlived its image");
    assert_error(&admin.get(&format!("/api/v1/images/{id}")).await, 404, "IMAGE_NOT_FOUND", "deleted image");
    let actions = audit_actions(&admin, &id).await;
    assert!(actions.contains(&("image.upload".into(), "success".into())), "{actions:?}");
    let r = admin.get(&format!("/api/v1/webhooks/{webhook}/deliveries?per_page=100")).await;
    let mut events: Vec<&str> =
        r.json["data"].as_array().expect("deliveries").iter().filter_map(|d| d["event"].as_str()).collect();
    events.sort_unstable();
    assert_eq!(events, ["image.created", "image.deleted", "image.uploaded"], "{}", r.text);
}

async fn a_wrong_hash_fails_and_serves_nothing(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let data = image_bytes(1024 * 1024, 11);
    let img = create(&admin, json!({"name": "expected", "sha256": sha(&data)})).await;
    let id = id_of(&img);
    let mut wrong = data.clone();
    wrong[500_000] ^= 1;
    let r = upload(&admin, &id, &wrong).await;
    assert_error(&r, 422, "SHA256_MISMATCH", "a corrupted upload");
    assert_eq!(r.json["details"]["expected"], sha(&data));
    assert_eq!(r.json["details"]["actual"], sha(&wrong));
    let r = admin.get(&format!("/api/v1/images/{id}")).await;
    assert_eq!(r.json["status"], "failed", "{}", r.text);
    assert!(r.json["status_reason"].as_str().is_some_and(|s| s.contains("mismatch")), "{}", r.text);
    assert!(r.json["sha256"] == sha(&data), "the expected hash stays: {}", r.text);
    assert_eq!(served(&app, &format!("/images/library/{id}"), None).await.0, 404);
    assert!(!library(&app).join(&id).exists());
    assert!(staged(&app).is_empty(), "staging files left: {:?}", staged(&app));
    // Staging files are never served, whatever their name.
    assert_eq!(served(&app, "/images/library/.partial/x", None).await.0, 404);

    // A failed image can be uploaded again.
    let r = upload(&admin, &id, &data).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ready");
    assert!(r.json["status_reason"].is_null());
    let (status, body) = served(&app, &format!("/images/library/{id}"), Some("bytes=-4096")).await;
    assert_eq!(status, 206);
    assert!(body == data[data.len() - 4096..]);
    let actions = audit_actions(&admin, &id).await;
    assert!(actions.contains(&("image.upload".into(), "failure".into())), "{actions:?}");
    assert!(actions.contains(&("image.upload".into(), "success".into())), "{actions:?}");
}

async fn compressed_uploads_record_the_decompressed_hash(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let data = image_bytes(3 * 1024 * 1024, 3);
    let zst = zstd::encode_all(&data[..], 3).expect("zstd");
    assert!(zst.len() < data.len(), "test premise: the image compresses");
    // Expected hash given: the decompressed image's.
    let img = create(&admin, json!({"name": "os.raw.zst", "sha256": sha(&data)})).await;
    assert_eq!(img["format"], "raw.zst", "format from the name's suffix");
    let r = upload(&admin, &id_of(&img), &zst).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["sha256"], sha(&data));
    assert_eq!(r.json["size_bytes"], data.len() as u64);
    assert_eq!(r.json["file_sha256"], sha(&zst));
    assert_eq!(r.json["file_size_bytes"], zst.len() as u64);
    assert_eq!(r.json["format"], "raw.zst");
    let (_, body) = served(&app, &format!("/images/library/{}", id_of(&img)), None).await;
    assert!(body == zst, "the stored bytes are served as uploaded");

    // gzip, no expected hash, a name that says nothing: the magic decides.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &data).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let img = create(&admin, json!({"name": "plain"})).await;
    assert_eq!(img["format"], "raw");
    let r = upload(&admin, &id_of(&img), &gz).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json["format"].as_str(), r.json["sha256"].as_str()), (Some("raw.gz"), Some(&*sha(&data))));
    assert_eq!(r.json["file_sha256"], sha(&gz));

    // A stream with zstd's magic that does not decode is refused and kept nowhere.
    let img = create(&admin, json!({"name": "corrupt"})).await;
    let mut bad = zst[..zst.len() / 2].to_vec();
    bad.extend_from_slice(&[0xff; 4096]);
    let r = upload(&admin, &id_of(&img), &bad).await;
    assert_error(&r, 422, "INVALID_IMAGE", "a corrupt zstd stream");
    let r = admin.get(&format!("/api/v1/images/{}", id_of(&img))).await;
    assert_eq!(r.json["status"], "failed", "{}", r.text);
    assert!(!library(&app).join(id_of(&img)).exists());
    assert!(staged(&app).is_empty(), "staging files left: {:?}", staged(&app));
}

async fn progress_shows_while_an_upload_is_held_open(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let data = image_bytes(4 * 1024 * 1024, 5);
    let id = id_of(&create(&admin, json!({"name": "slow"})).await);
    let first = 1024 * 1024;
    // The stream stays open (the rest is not sent) until progress is visible.
    let (feed, answer, seen) = held_open_upload(&admin, &id, &data, first).await;
    let n = seen["bytes_received"].as_u64().expect("bytes_received");
    assert!(n > 0 && n < data.len() as u64, "progress {n} of {}", data.len());
    assert!(seen["sha256"].is_null(), "no hash before the end: {seen}");

    // Meanwhile: a second upload and a delete are refused; nothing is served.
    let r = upload(&admin, &id, &data).await;
    assert_error(&r, 409, "UPLOAD_IN_PROGRESS", "a concurrent upload");
    let r = admin.delete(&format!("/api/v1/images/{id}")).await;
    assert_error(&r, 409, "UPLOAD_IN_PROGRESS", "deleting during an upload");
    assert_eq!(served(&app, &format!("/images/library/{id}"), None).await.0, 404);

    for chunk in data[first..].chunks(512 * 1024) {
        feed.send(Ok(Bytes::copy_from_slice(chunk))).await.expect("feed");
    }
    drop(feed);
    let r = answer.await.expect("upload task");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["sha256"], sha(&data), "the refused upload did not mix in");
    assert_eq!(r.json["bytes_received"], data.len() as u64);
}

async fn a_client_that_goes_away_leaves_no_file(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let data = image_bytes(2 * 1024 * 1024, 9);
    let id = id_of(&create(&admin, json!({"name": "cut"})).await);
    let (feed, answer, _) = held_open_upload(&admin, &id, &data, 1024 * 1024).await;
    assert_eq!(staged(&app).len(), 1, "one staging file while the upload runs");
    // The client breaks off mid-body.
    feed.send(Err(std::io::Error::other("client gone"))).await.expect("feed");
    let _ = answer.await;
    let failed = wait_for_status(&admin, &id, "failed", |_| true).await;
    assert!(failed["status_reason"].as_str().is_some_and(|s| !s.is_empty()), "{failed}");
    eventually("the staging file removed", 20, || {
        let left = staged(&app);
        async move { if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) } }
    })
    .await;
    assert!(!library(&app).join(&id).exists());
    assert_eq!(served(&app, &format!("/images/library/{id}"), None).await.0, 404);
    // And it can be uploaded again.
    let r = upload(&admin, &id, &data).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["sha256"], sha(&data));

    // A client whose connection just drops (the request abandoned, as when it is killed).
    let id = id_of(&create(&admin, json!({"name": "dropped"})).await);
    let (_feed, answer, _) = held_open_upload(&admin, &id, &data, 1024 * 1024).await;
    answer.abort();
    let failed = wait_for_status(&admin, &id, "failed", |_| true).await;
    assert!(failed["status_reason"].as_str().is_some_and(|s| !s.is_empty()), "{failed}");
    assert!(!library(&app).join(&id).exists());
    eventually("the staging file removed", 20, || {
        let left = staged(&app);
        async move { if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) } }
    })
    .await;
}

/// Polls image `id` until it has `status` and `also` holds; returns it.
async fn wait_for_status(admin: &Client, id: &str, status: &str, also: fn(&Value) -> bool) -> Value {
    eventually(&format!("image {id} {status}"), 20, || async move {
        let r = admin.get(&format!("/api/v1/images/{id}")).await;
        if r.json["status"] == status && also(&r.json) { Ok(r.json) } else { Err(r.text) }
    })
    .await
}

async fn permissions_lists_and_filters(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let viewer = app.user(&admin, "image-viewer", "viewer").await;
    let hash = "1".repeat(64);
    for v in 1..=5 {
        create(
            &admin,
            json!({"name": "fleet", "version": format!("{v}"), "url": "http://10.0.0.1/f.img", "sha256": hash}),
        )
        .await;
    }
    let pending = id_of(&create(&admin, json!({"name": "upload-me"})).await);

    // Viewers read, never write.
    let r = viewer.get("/api/v1/images").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["meta"]["total"], 6);
    assert_eq!(viewer.get(&format!("/api/v1/images/{pending}")).await.status, 200);
    let r = viewer.post("/api/v1/images", json!({"name": "nope"})).await;
    assert_error(&r, 403, "INSUFFICIENT_SCOPE", "viewer creating");
    assert_eq!(r.json["details"]["missing_scope"], "assets:write");
    assert_error(&upload(&viewer, &pending, b"x").await, 403, "INSUFFICIENT_SCOPE", "viewer uploading");
    assert_error(
        &viewer.delete(&format!("/api/v1/images/{pending}")).await,
        403,
        "INSUFFICIENT_SCOPE",
        "viewer deleting",
    );
    assert_error(&app.client().get("/api/v1/images").await, 401, "UNAUTHENTICATED", "no credentials");
    assert_error(&upload(&app.client(), &pending, b"x").await, 401, "UNAUTHENTICATED", "anonymous upload");
    let r = admin.get(&format!("/api/v1/images/{pending}")).await;
    assert_eq!(r.json["status"], "pending", "refused uploads changed nothing: {}", r.text);

    // Pages, in name then version order.
    let r = admin.get("/api/v1/images?name=fleet&per_page=2&page=2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["meta"], json!({"page": 2, "per_page": 2, "total": 5}));
    let versions: Vec<&str> =
        r.json["data"].as_array().expect("data").iter().filter_map(|i| i["version"].as_str()).collect();
    assert_eq!(versions, ["3", "4"]);
    let r = admin.get("/api/v1/images?name=fleet&per_page=2&page=3").await;
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(1));
    let r = admin.get("/api/v1/images?status=pending").await;
    assert_eq!(r.json["meta"]["total"], 1, "{}", r.text);
    assert_eq!(r.json["data"][0]["id"], pending.as_str());
    let r = admin.get("/api/v1/images?status=ready&name=upload-me").await;
    assert_eq!(r.json["meta"]["total"], 0, "{}", r.text);
    assert_error(&admin.get("/api/v1/images?status=done").await, 400, "INVALID_QUERY", "unknown status filter");
}

both_backends!(
    url_images_and_validation,
    upload_is_streamed_hashed_and_served,
    a_wrong_hash_fails_and_serves_nothing,
    compressed_uploads_record_the_decompressed_hash,
    progress_shows_while_an_upload_is_held_open,
    a_client_that_goes_away_leaves_no_file,
    permissions_lists_and_filters
);

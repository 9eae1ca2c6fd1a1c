//! HTTP boot over real HTTP: the iPXE script per asset state (and its boot token, checked with the
//! appliance's own key), discovery of unknown MACs from `/boot.ipxe`, refusal of bad input, and
//! `/pxe/*` + `/images/*` file serving (byte-identical to the source, Range, ETag and If-None-Match,
//! If-Range, HEAD, traversal refused), each request visible in the boot timeline.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Appliance, Backend, Client, Options, asset_body, eventually, kernel_arg};
use ironbay::boot::token::{BootTokens, decode_claims};
use ironbay::model::AssetState;
use ironbay::secret::MasterKey;
use ironbay::store::Store;
use serde_json::{Value, json};

const UUID: &str = "4c4c4544-0042-4e10-8048-b4c04f4e4b31";

/// Boot files for one test: `<root>/pxe` (the iPXE binaries from Debian's package),
/// `<root>/images` (a 1 MiB pseudo-random image, a script, a directory, a symlink pointing out),
/// `<root>/secret.txt` (outside both: must never be served).
struct BootDirs {
    root: tempfile::TempDir,
}

const SECRET: &str = "TOP-SECRET-never-served";

impl BootDirs {
    fn new() -> BootDirs {
        let root = tempfile::tempdir().expect("temp dir");
        let pxe = root.path().join("pxe");
        let images = root.path().join("images");
        std::fs::create_dir_all(images.join("agent")).unwrap();
        std::fs::create_dir_all(&pxe).unwrap();
        for f in ["ipxe.efi", "snponly.efi", "undionly.kpxe"] {
            let src = Path::new("/usr/lib/ipxe").join(f);
            assert!(src.exists(), "{} is missing: run scripts/install-deps.sh (Debian's ipxe package)", src.display());
            std::fs::copy(&src, pxe.join(f)).unwrap();
        }
        std::fs::write(images.join("disk.img"), image_bytes()).unwrap();
        std::fs::write(images.join("hello.ipxe"), "#!ipxe\necho hello\n").unwrap();
        std::fs::write(root.path().join("secret.txt"), SECRET).unwrap();
        std::os::unix::fs::symlink(root.path().join("secret.txt"), images.join("escape")).unwrap();
        BootDirs { root }
    }

    fn pxe(&self) -> PathBuf {
        self.root.path().join("pxe")
    }

    fn images(&self) -> PathBuf {
        self.root.path().join("images")
    }

    fn options(&self) -> Options {
        Options::default()
            .env("IRONBAY_BOOT__PXE_DIR", &self.pxe().display().to_string())
            .env("IRONBAY_BOOT__IMAGES_DIR", &self.images().display().to_string())
    }
}

const IMAGE_LEN: usize = 1 << 20;

/// Deterministic, incompressible-looking bytes (xorshift), so every range differs from its neighbours.
fn image_bytes() -> Vec<u8> {
    pseudo_random(IMAGE_LEN)
}

fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

async fn script(app: &Appliance, query: &str) -> (u16, String, Option<String>) {
    let r = reqwest::get(app.url(&format!("/boot.ipxe{query}"))).await.expect("GET /boot.ipxe");
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, r.text().await.unwrap_or_default(), ct)
}

fn appliance_tokens(app: &Appliance) -> BootTokens {
    let key: [u8; 32] =
        std::fs::read(app.data_dir.path().join("master.key")).expect("master.key").try_into().expect("32 bytes");
    BootTokens::new(MasterKey::from_bytes(&key).token_signing_key(), std::time::Duration::from_secs(3600))
}

async fn create_asset(admin: &Client, hostname: &str, mac: &str, tags: &[&str]) -> String {
    let mut body = asset_body(hostname, mac);
    body["tags"] = json!(tags);
    let r = admin.post("/api/v1/assets", body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["id"].as_str().expect("id").to_string()
}

/// Moves an asset to `state` the way the lifecycle will: through `Store::asset_set_state`, on
/// the appliance's own database.
async fn set_state(store: &Store, id: &str, state: AssetState) {
    let mut tx = store.begin().await.unwrap();
    let row = Store::asset_get_in(&mut tx, id).await.unwrap().expect("asset");
    assert!(Store::asset_set_state(&mut tx, &row, state, &ironbay::model::now_rfc3339()).await.unwrap());
    tx.commit().await.unwrap();
}

/// Hostname, MAC, state to move to (None: stays `available`), tags, and the script expected.
type StateCase = (&'static str, &'static str, Option<AssetState>, &'static [&'static str], &'static str);

async fn script_per_state(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let store = Store::open(&app.database_url).await.expect("open the appliance's store");
    let tokens = appliance_tokens(&app);
    let now = chrono::Utc::now().timestamp();

    let cases: [StateCase; 7] = [
        ("avail", "52:54:00:00:01:01", None, &[], "agent"),
        ("prov", "52:54:00:00:01:02", Some(AssetState::Provisioning), &[], "agent"),
        ("wipe", "52:54:00:00:01:03", Some(AssetState::Wiping), &[], "agent"),
        ("done", "52:54:00:00:01:04", Some(AssetState::Provisioned), &[], "exit"),
        ("broken", "52:54:00:00:01:05", Some(AssetState::Failed), &[], "hold"),
        ("held", "52:54:00:00:01:06", None, &["locked"], "hold"),
        ("held-done", "52:54:00:00:01:07", Some(AssetState::Provisioned), &["locked"], "hold"),
    ];
    for (hostname, mac, state, tags, want) in cases {
        let id = create_asset(&admin, hostname, mac, tags).await;
        if let Some(s) = state {
            set_state(&store, &id, s).await;
        }
        let query = format!("?mac={mac}&uuid=&arch=x86_64&platform=efi");
        let (status, text, ct) = script(&app, &query).await;
        assert_eq!(status, 200, "{hostname}: {text}");
        assert_eq!(ct.as_deref(), Some("text/plain; charset=utf-8"), "{hostname}");
        assert!(text.starts_with("#!ipxe\n"), "{hostname}: {text}");
        match want {
            "agent" => {
                let base = app.base.clone();
                assert!(text.contains(&format!("kernel {base}/images/agent/vmlinuz ironbay.url={base} ")), "{text}");
                assert!(text.contains(&format!("initrd {base}/images/agent/initrd.img")), "{text}");
                assert!(text.contains("console=ttyS0,115200 console=tty0 initrd=initrd.img"), "{text}");
                assert!(
                    text.contains("|| goto retry") && text.contains("sleep 10") && text.contains("\nboot"),
                    "{text}"
                );
                assert_eq!(kernel_arg(&text, "ironbay.asset"), id);
                let token = kernel_arg(&text, "ironbay.token");
                let claims = tokens.verify(&token, now + 5).expect("the token verifies with the appliance's key");
                assert_eq!((claims.asset.as_str(), claims.mac.to_string().as_str()), (id.as_str(), mac));
                assert_eq!(claims.scope, "agent");
                assert!(claims.exp - claims.iat <= 3600 && claims.exp > now, "{claims:?}");
                // Bound to this asset: the same signature over another asset's claims fails.
                let (_, sig) = token.split_once('.').unwrap();
                let mut forged = decode_claims(&token).unwrap();
                forged.asset = "ast_someoneelse".into();
                use base64::Engine;
                let payload =
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
                assert!(tokens.verify(&format!("{payload}.{sig}"), now).is_err());
            }
            "exit" => {
                assert!(text.lines().any(|l| l == "exit"), "{text}");
                assert!(!text.contains("kernel ") && !text.contains("ironbay.token"), "{text}");
                assert!(text.contains("# ironbay:"), "the script says why: {text}");
            }
            _ => {
                assert!(text.contains(&format!("echo ironbay: {hostname} ({id}) will not boot")), "{text}");
                let why = if tags.contains(&"locked") { "locked" } else { "failed" };
                assert!(text.contains(why), "{text}");
                assert!(text.contains("sleep 30"), "{text}");
                assert!(
                    text.contains(&format!("chain --replace --autofree {}/boot.ipxe?mac={mac}", app.base)),
                    "{text}"
                );
                assert!(!text.contains("kernel ") && !text.contains("ironbay.token"), "{text}");
            }
        }
        // Known assets are looked up, not re-created.
        let listed = admin.get(&format!("/api/v1/assets?mac={mac}")).await;
        assert_eq!(listed.json["meta"]["total"], 1, "{}", listed.text);
    }
    // `boot.http_url` wins over the Host header.
    drop(app);
    let app =
        Appliance::start_with(backend, Options::default().env("IRONBAY_BOOT__HTTP_URL", "http://10.9.8.7:8080/")).await;
    let (status, text, _) = script(&app, "?mac=52:54:00:00:01:99").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(kernel_arg(&text, "ironbay.url"), "http://10.9.8.7:8080");
}

async fn unknown_mac_is_discovered(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let mac = "52:54:00:aa:00:01";
    let (status, text, _) =
        script(&app, &format!("?mac=52-54-00-AA-00-01&uuid={}&arch=x86_64&platform=efi", UUID.to_uppercase())).await;
    assert_eq!(status, 200, "{text}");
    let id = kernel_arg(&text, "ironbay.asset");
    assert!(id.starts_with("ast_"), "{id}");
    let claims = appliance_tokens(&app).verify(&kernel_arg(&text, "ironbay.token"), chrono::Utc::now().timestamp());
    assert_eq!(claims.map(|c| c.asset), Ok(id.clone()));

    // The asset exists as soon as the script is answered (created in the request).
    let listed = admin.get(&format!("/api/v1/assets?mac={mac}")).await;
    assert_eq!(listed.json["meta"]["total"], 1, "{}", listed.text);
    let asset = &listed.json["data"][0];
    assert_eq!(asset["id"], id.as_str());
    assert_eq!(asset["state"], "discovering");
    assert_eq!(asset["macs"], json!([mac]));
    assert_eq!(asset["smbios_uuid"], UUID);
    assert_eq!(asset["specs"]["arch"], "x86_64");
    assert_eq!(asset["specs"]["firmware"], "uefi");

    let audit = admin.get(&format!("/api/v1/audit?action=asset.discovered&target_id={id}")).await;
    assert_eq!(audit.json["meta"]["total"], 1, "{}", audit.text);
    let details: Value =
        serde_json::from_str(audit.json["data"][0]["details"].as_str().unwrap_or("")).unwrap_or_default();
    assert_eq!((details["via"].as_str(), details["mac"].as_str()), (Some("http"), Some(mac)), "{}", audit.text);

    // Asking again finds the same asset: still one, same id.
    let (_, again, _) = script(&app, &format!("?mac={mac}&arch=x86_64")).await;
    assert_eq!(kernel_arg(&again, "ironbay.asset"), id);
    let listed = admin.get("/api/v1/assets").await;
    assert_eq!(listed.json["meta"]["total"], 1, "{}", listed.text);

    let events: Value = eventually("the boot timeline to show both script requests", 20, || async {
        let r = admin.get(&format!("/api/v1/boot-events?mac={mac}")).await;
        let rows = r.json["data"].as_array().cloned().unwrap_or_default();
        if rows.len() >= 2 { Ok(r.json.clone()) } else { Err(r.text) }
    })
    .await;
    let newest = &events["data"][0];
    assert_eq!(newest["source"], "http", "{events}");
    assert!(newest["request"].as_str().unwrap_or("").starts_with("GET /boot.ipxe?mac="), "{events}");
    assert_eq!(newest["response"], "agent script (kernel agent/vmlinuz, initrd agent/initrd.img)", "{events}");
    assert_eq!(newest["reason"], format!("asset {id} is discovering"), "{events}");
}

/// The timeline is bounded per MAC: a machine that keeps asking does not grow it without end.
async fn the_timeline_is_bounded_per_mac(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let mac = "52:54:00:aa:00:77";
    for i in 0..320 {
        let (status, _, _) = script(&app, &format!("?mac={mac}&arch=x86_64&n={i}")).await;
        assert!(status == 200 || status == 400, "{status}");
    }
    let rows = eventually("the last request recorded and the rest trimmed", 30, || async {
        let r = admin.get(&format!("/api/v1/boot-events?mac={mac}&limit=500")).await;
        let rows = r.json["data"].as_array().cloned().unwrap_or_default();
        let newest_is_last = rows.first().is_some_and(|e| e["request"].as_str().unwrap_or("").contains("n=319"));
        if newest_is_last && rows.len() <= 250 { Ok(rows) } else { Err(format!("{} rows", rows.len())) }
    })
    .await;
    assert!(rows.len() >= 200, "the newest 200 are kept: {}", rows.len());
}

both_backends!(script_per_state, unknown_mac_is_discovered, the_timeline_is_bounded_per_mac);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_creates_nothing() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    for (query, says) in [
        ("?mac=52:54:00:12:34", "is not a MAC address"),
        ("?mac=zz:54:00:12:34:56", "is not a MAC address"),
        ("?mac=52:54:00:12:34:56&uuid=not-a-uuid", "is not a UUID"),
        ("?mac=52:54:00:12:34:56&arch=x86_64%0Akernel%20http://evil/x", "is not an architecture"),
    ] {
        let (status, text, ct) = script(&app, query).await;
        assert_eq!(status, 400, "{query}: {text}");
        assert_eq!(ct.as_deref(), Some("text/plain; charset=utf-8"), "{query}");
        assert!(text.starts_with("#!ipxe\n") && text.contains("echo ironbay: cannot choose a boot script: "), "{text}");
        assert!(text.contains(says), "{query}: {text}");
        assert!(!text.contains("\nkernel"), "input must not become a command: {text}");
    }
    let r = admin.get("/api/v1/assets").await;
    assert_eq!(r.json["meta"]["total"], 0, "nothing is created from bad input: {}", r.text);
    let audit = admin.get("/api/v1/audit?action=asset.discovered").await;
    assert_eq!(audit.json["meta"]["total"], 0, "{}", audit.text);

    // No MAC at all (a DHCP boot-file URL has no query): ask again with iPXE's facts.
    let (status, text, _) = script(&app, "").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(&format!("chain --replace --autofree {}/boot.ipxe?mac=${{netX/mac}}&uuid=${{uuid}}", app.base)),
        "{text}"
    );
    let bad = boot_event(&admin, "a 400 in the boot timeline", |e| e["response"] == "400 bad request script").await;
    assert_eq!(bad["source"], "http");
}

/// The newest boot-timeline row (any client) that `matches`, once it is there.
async fn boot_event(admin: &Client, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    eventually(what, 20, || async {
        let r = admin.get("/api/v1/boot-events?limit=500").await;
        let rows = r.json["data"].as_array().cloned().unwrap_or_default();
        rows.into_iter().find(|e| matches(e)).ok_or(r.text)
    })
    .await
}

fn curl(args: &[&str]) -> std::process::Output {
    let out = Command::new("curl").args(args).output().expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `curl --path-as-is`: the request path exactly as written (clients normalise `..` away).
fn raw_status(url: &str) -> (String, String) {
    let out = curl(&["-s", "--path-as-is", "-w", "\n%{http_code}", url]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pxe_binaries_are_byte_identical() {
    let dirs = BootDirs::new();
    let app = Appliance::start_with(Backend::Sqlite, dirs.options()).await;
    let out = tempfile::tempdir().unwrap();
    for f in ["ipxe.efi", "snponly.efi", "undionly.kpxe"] {
        let want = std::fs::read(Path::new("/usr/lib/ipxe").join(f)).unwrap();
        let dest = out.path().join(f);
        curl(&["-sSf", "-o", dest.to_str().unwrap(), &app.url(&format!("/pxe/{f}"))]);
        assert!(std::fs::read(&dest).unwrap() == want, "{f} differs when fetched by curl");

        let r = reqwest::get(app.url(&format!("/pxe/{f}"))).await.unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert_eq!(h["content-length"], want.len().to_string().as_str(), "{f}");
        assert_eq!(h["content-type"], "application/octet-stream");
        assert_eq!(h["accept-ranges"], "bytes");
        assert!(h.contains_key("etag") && h.contains_key("last-modified"), "{h:?}");
        assert!(!h.contains_key("content-encoding"), "boot files are never compressed: {h:?}");
        assert!(r.bytes().await.unwrap() == want, "{f} differs when fetched by reqwest");
    }
    let admin = app.admin().await;
    let row =
        boot_event(&admin, "the /pxe request in the boot timeline", |e| e["request"] == "GET /pxe/ipxe.efi").await;
    assert_eq!(row["source"], "http");
    assert_eq!(row["ip"], "127.0.0.1");
    let len = std::fs::metadata("/usr/lib/ipxe/ipxe.efi").unwrap().len();
    assert_eq!(row["response"], format!("200 {len} bytes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_and_conditional_requests() {
    let dirs = BootDirs::new();
    let app = Appliance::start_with(Backend::Sqlite, dirs.options()).await;
    let image = image_bytes();
    let len = image.len();
    let url = app.url("/images/disk.img");
    let http = reqwest::Client::new();
    let get = |range: Option<&str>| {
        let mut rb = http.get(&url);
        if let Some(r) = range {
            rb = rb.header("range", r);
        }
        rb.send()
    };

    for (range, first, last) in [
        ("bytes=0-1023", 0, 1023),
        ("bytes=4096-8191", 4096, 8191),
        ("bytes=-100", len - 100, len - 1),
        ("bytes=1000000-", 1_000_000, len - 1),
        ("bytes=1048000-99999999", 1_048_000, len - 1),
    ] {
        let r = get(Some(range)).await.unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(r.headers()["content-range"], format!("bytes {first}-{last}/{len}").as_str(), "{range}");
        assert_eq!(r.headers()["content-length"], (last - first + 1).to_string().as_str(), "{range}");
        assert!(r.bytes().await.unwrap() == image[first..=last], "{range}: wrong bytes");
    }
    for range in [format!("bytes={len}-"), "bytes=-0".to_string(), format!("bytes={}-{}", len + 5, len + 10)] {
        let r = get(Some(&range)).await.unwrap();
        assert_eq!(r.status(), 416, "{range}");
        assert_eq!(r.headers()["content-range"], format!("bytes */{len}").as_str(), "{range}");
    }
    // Several ranges: the whole file (documented), never a wrong 206.
    let r = get(Some("bytes=0-9,20-29")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap() == image);
    // curl's own range request, through the real binary.
    let out = curl(&["-sS", "-r", "100-199", &url]);
    assert!(out.stdout == image[100..200], "curl -r 100-199");

    // ETag / If-None-Match.
    let whole = get(None).await.unwrap();
    assert_eq!(whole.status(), 200);
    let etag = whole.headers()["etag"].to_str().unwrap().to_string();
    let last_modified = whole.headers()["last-modified"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong tag: {etag}");
    let r = http.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());
    let r = http.get(&url).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(&url).header("if-modified-since", &last_modified).send().await.unwrap();
    assert_eq!(r.status(), 304);
    // If-Range: the range only while the tag still matches.
    let r = http.get(&url).header("range", "bytes=0-9").header("if-range", &etag).send().await.unwrap();
    assert_eq!(r.status(), 206);
    let r = http.get(&url).header("range", "bytes=0-9").header("if-range", "\"stale\"").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), len);
    // A changed file gets a new tag.
    std::fs::write(dirs.images().join("disk.img"), &image[..len / 2]).unwrap();
    let r = http.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 200, "the old tag must not match the new content");
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.bytes().await.unwrap().len(), len / 2);

    // HEAD: the headers of a GET, no body.
    let r = http.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], (len / 2).to_string().as_str());
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert!(r.bytes().await.unwrap().is_empty());
    let out = curl(&["-sS", "-I", &url]);
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(head.contains(&format!("content-length: {}", len / 2)), "{head}");

    // Larger than several read chunks (2 MiB), with buffers reused between them: whole and across
    // chunk boundaries, byte for byte.
    let big = pseudo_random((5 << 20) + 123);
    std::fs::write(dirs.images().join("big.img"), &big).unwrap();
    let big_url = app.url("/images/big.img");
    let r = http.get(&big_url).send().await.unwrap();
    assert_eq!(r.headers()["content-length"], big.len().to_string().as_str());
    assert!(r.bytes().await.unwrap() == big, "big.img whole");
    let (a, b) = ((2 << 20) - 10, (4 << 20) + 10);
    let r = http.get(&big_url).header("range", format!("bytes={a}-{b}")).send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap() == big[a..=b], "big.img across chunk boundaries");

    // Scripts are text.
    let r = http.get(app.url("/images/hello.ipxe")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");

    let admin = app.admin().await;
    let want = format!("206 bytes 0-1023/{len}");
    let row = boot_event(&admin, "a range request in the boot timeline", |e| e["response"] == want.as_str()).await;
    assert_eq!(row["request"], "GET /images/disk.img range=bytes=0-1023");
    assert_eq!(row["source"], "http");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_and_unknown_files_are_refused() {
    let dirs = BootDirs::new();
    let app = Appliance::start_with(Backend::Sqlite, dirs.options()).await;
    // Sanity: the secret is one `..` away from both served directories.
    assert_eq!(std::fs::read_to_string(dirs.pxe().join("../secret.txt")).unwrap(), SECRET);
    for path in [
        "/pxe/../secret.txt",
        "/pxe/%2e%2e/secret.txt",
        "/pxe/..%2fsecret.txt",
        "/images/..%2f..%2fetc/passwd",
        "/images/agent/../../secret.txt",
        "/images/%2fetc%2fpasswd",
        "/images/a%00b",
        "/images/escape",
        "/images/agent",
        "/images/nope.img",
        "/pxe/nope.efi",
    ] {
        let (code, body) = raw_status(&app.url(path));
        assert!(code == "404" || code == "400", "{path}: {code} {body}");
        assert!(!body.contains(SECRET) && !body.contains("root:"), "{path} leaked: {body}");
    }
    let (code, _) = raw_status(&app.url("/images/nope.img"));
    assert_eq!(code, "404");
    let (code, _) = raw_status(&app.url("/pxe/../secret.txt"));
    assert_eq!(code, "400", "`..` is refused as a bad path");
    // The boot routes are outside the API gate: no credentials needed, none asked for.
    let (code, _) = raw_status(&app.url("/pxe/undionly.kpxe"));
    assert_eq!(code, "200");
}

/// A booted machine's userspace reports with the token its command line carried; the report
/// lands on that asset's timeline. No token, a forged one: 401 with the uniform error body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userspace_reports_with_its_boot_token() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let mac = "52:54:00:aa:00:42";
    let (_, text, _) = script(&app, &format!("?mac={mac}&arch=x86_64")).await;
    let token = kernel_arg(&text, "ironbay.token");
    let id = kernel_arg(&text, "ironbay.asset");
    let http = reqwest::Client::new();
    let body = json!({"mac": mac, "ip": "10.213.0.150", "kernel": "6.1.0-test", "uptime_s": 3.5});
    let ok = http.post(app.url("/boot/report")).bearer_auth(&token).json(&body).send().await.expect("report");
    assert_eq!(ok.status(), 200);
    let answer: Value = ok.json().await.expect("json");
    assert_eq!(answer["asset"], id.as_str());
    let row = boot_event(&admin, "the report in the timeline", |e| e["request"] == "POST /boot/report").await;
    assert_eq!(row["mac"], mac);
    let reason = row["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with(&format!("userspace up on asset {id}: ip 10.213.0.150, kernel 6.1.0-test")), "{row}");

    let (payload, sig) = token.split_once('.').expect("token shape");
    let mut flipped = sig.as_bytes().to_vec();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let forged = format!("{payload}.{}", String::from_utf8(flipped).expect("ascii"));
    for (auth, code) in [(None, "BOOT_TOKEN_MISSING"), (Some(forged.as_str()), "BOOT_TOKEN_INVALID")] {
        let mut req = http.post(app.url("/boot/report")).json(&body);
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("report");
        assert_eq!(r.status(), 401);
        let err: Value = r.json().await.expect("json");
        assert_eq!(err["code"], code, "{err}");
    }
    let bad = http.post(app.url("/boot/report")).bearer_auth(&token).body("{not json").send().await.expect("post");
    assert_eq!(bad.status(), 400);
}

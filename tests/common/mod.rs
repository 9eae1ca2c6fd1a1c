//! Test harness: starts the real `ironbay` binary on a loopback port 0 with a temp data dir, on
//! SQLite or on a throwaway PostgreSQL, and talks to it over real HTTP.
#![allow(dead_code)]

pub mod console;
#[path = "../support/netns.rs"]
pub mod netns;
#[path = "../support/postgres.rs"]
pub mod postgres;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `body` once per backend. Tests are written once and named `<test>::sqlite|postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name($crate::common::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name($crate::common::Backend::Postgres).await }
        }
    )+};
}

#[derive(Default, Clone)]
pub struct Options {
    pub env: Vec<(String, String)>,
    /// None: the harness sets IRONBAY_ADMIN_PASSWORD to ADMIN_PASSWORD. Some(None): unset.
    pub admin_password: Option<Option<String>>,
    pub args: Vec<String>,
    /// Run inside this network namespace (a lab's server namespace); the API is reached through
    /// a relay on the test's loopback (`netns::forward_tcp`). Set `IRONBAY_LISTEN` to an address
    /// inside the namespace.
    pub netns: Option<String>,
    /// Run with this working directory instead of the data dir.
    pub cwd: Option<std::path::PathBuf>,
}

impl Options {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
}

pub struct Appliance {
    child: Option<Child>,
    pub base: String,
    pub data_dir: Arc<tempfile::TempDir>,
    pub database_url: String,
    pub backend: Backend,
    logs: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    opts: Options,
}

impl Appliance {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, opts: Options) -> Self {
        let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}/ironbay.db", data_dir.path().display()),
            Backend::Postgres => tokio::task::spawn_blocking(|| postgres::PgCluster::shared().create_database())
                .await
                .expect("create db"),
        };
        Self::launch(backend, data_dir, database_url, opts).await
    }

    async fn launch(backend: Backend, data_dir: Arc<tempfile::TempDir>, database_url: String, opts: Options) -> Self {
        let opts2 = opts.clone();
        let dir = data_dir.path().to_path_buf();
        let db = database_url.clone();
        let (child, base, logs, stdout) =
            tokio::task::spawn_blocking(move || spawn(&dir, &db, &opts2)).await.expect("spawn");
        Appliance { child: Some(child), base, data_dir, database_url, backend, logs, stdout, opts }
    }

    /// Stops the process (SIGKILL: nothing gets to clean up) and starts it again on the same data.
    pub async fn restart(mut self) -> Self {
        self.kill();
        let (backend, dir, db, opts) =
            (self.backend, self.data_dir.clone(), self.database_url.clone(), self.opts.clone());
        Self::launch(backend, dir, db, opts).await
    }

    /// A second appliance process on the same database and data dir (the same master key), as
    /// when several appliances share one PostgreSQL.
    pub async fn sibling(&self) -> Appliance {
        Self::launch(self.backend, self.data_dir.clone(), self.database_url.clone(), self.opts.clone()).await
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Everything the appliance wrote to stderr (its log) so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// A client logged in as the first admin.
    pub async fn admin(&self) -> Client {
        let c = self.client();
        c.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates a user with `role` and returns a client logged in as that user.
    pub async fn user(&self, admin: &Client, username: &str, role: &str) -> Client {
        let password = format!("{username}-password-123");
        let r = admin
            .post("/api/v1/users", serde_json::json!({"username": username, "password": password, "role": role}))
            .await;
        assert_eq!(r.status, 201, "creating user {username}: {}", r.text);
        self.client().login(username, &password).await
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(dir: &std::path::Path, db: &str, opts: &Options) -> (Child, String, Arc<Mutex<String>>, Arc<Mutex<String>>) {
    let mut cmd = match &opts.netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_ironbay")]);
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_ironbay")),
    };
    cmd.arg("serve").args(&opts.args).current_dir(opts.cwd.as_deref().unwrap_or(dir));
    cmd.env_clear();
    for k in ["PATH", "HOME", "TMPDIR"] {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("IRONBAY_LISTEN", "127.0.0.1:0")
        .env("IRONBAY_DATA_DIR", dir)
        .env("IRONBAY_DATABASE_URL", db)
        .env("IRONBAY_LOG", "info");
    match &opts.admin_password {
        None => {
            cmd.env("IRONBAY_ADMIN_PASSWORD", ADMIN_PASSWORD);
        }
        Some(Some(p)) => {
            cmd.env("IRONBAY_ADMIN_PASSWORD", p);
        }
        Some(None) => {}
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start ironbay");
    let logs = Arc::new(Mutex::new(String::new()));
    let out = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    let logs2 = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ironbay ready") {
                let url = line
                    .split("listen=")
                    .nth(1)
                    .and_then(|s| s.split_whitespace().next())
                    .map(|s| s.split(',').next().unwrap_or(s).to_string());
                if let Some(url) = url {
                    let _ = tx.send(url);
                }
            }
            if let Ok(mut l) = logs2.lock() {
                l.push_str(&line);
                l.push('\n');
            }
        }
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let out2 = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut o) = out2.lock() {
                o.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(base) if opts.netns.is_some() => {
            let inner: std::net::SocketAddr =
                base.trim_start_matches("http://").parse().expect("the listen address inside the namespace");
            let ns = opts.netns.as_deref().unwrap_or_default();
            let outer = netns::forward_tcp(ns, inner).expect("relay into the namespace");
            (child, format!("http://{outer}"), logs, out)
        }
        Ok(base) => (child, base, logs, out),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ironbay did not become ready; log:\n{}", logs.lock().map(|l| l.clone()).unwrap_or_default());
        }
    }
}

/// The outcome of one HTTP call.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// Asserts the uniform error body and returns its code.
    pub fn error_code(&self) -> String {
        assert!(
            self.json["error"].is_string() && !self.json["error"].as_str().unwrap_or("").is_empty(),
            "no error message: {}",
            self.text
        );
        assert!(self.json.get("details").is_some(), "no details: {}", self.text);
        self.json["code"].as_str().unwrap_or_else(|| panic!("no code: {}", self.text)).to_string()
    }
}

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Bearer(String),
    XApiKey(String),
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub auth: Auth,
}

impl Client {
    pub fn new(base: &str) -> Self {
        let http =
            reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(30)).build().expect("client");
        Client { http, base: base.to_string(), auth: Auth::None }
    }

    pub fn with_auth(&self, auth: Auth) -> Self {
        // A fresh cookie jar: the new identity is exactly `auth`.
        let mut c = Client::new(&self.base);
        c.auth = auth;
        c
    }

    pub async fn login(&self, username: &str, password: &str) -> Client {
        let r = self.post("/api/v1/auth/login", serde_json::json!({"username": username, "password": password})).await;
        assert_eq!(r.status, 200, "login {username}: {}", r.text);
        let token = r.json["token"].as_str().expect("token").to_string();
        let mut c = self.clone();
        c.auth = Auth::Bearer(token);
        c
    }

    pub fn token(&self) -> String {
        match &self.auth {
            Auth::Bearer(t) | Auth::XApiKey(t) => t.clone(),
            Auth::None => String::new(),
        }
    }

    /// A request to `path` carrying this client's credentials, for bodies `call` cannot make
    /// (streams); finish it with `send`.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, format!("{}{}", self.base, path));
        match &self.auth {
            Auth::None => rb,
            Auth::Bearer(t) => rb.bearer_auth(t),
            Auth::XApiKey(k) => rb.header("X-API-Key", k),
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        send(rb).await
    }

    pub async fn raw(&self, method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Resp {
        let mut rb = self.request(method, path).body(body);
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        send(rb).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates an API key with `scopes` (this client must be a user session) and returns a client
    /// using it as a Bearer token.
    pub async fn api_key(&self, scopes: &[&str]) -> Client {
        let r = self.post("/api/v1/api-keys", serde_json::json!({"name": "test key", "scopes": scopes})).await;
        assert_eq!(r.status, 201, "create key: {}", r.text);
        self.with_auth(Auth::Bearer(r.json["key"].as_str().expect("key").to_string()))
    }
}

pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
    let resp = rb.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, text, json }
}

/// A minimal valid asset body.
pub fn asset_body(hostname: &str, mac: &str) -> Value {
    serde_json::json!({
        "hostname": hostname,
        "macs": [mac],
        "tags": ["rack-a"],
        "bmc": {"driver": "ipmi", "address": "10.0.0.10", "username": "root", "password": "bmc-secret-pw"}
    })
}

/// The value of `name=` on a boot script's `kernel` line.
pub fn kernel_arg(script: &str, name: &str) -> String {
    let line = script.lines().find(|l| l.starts_with("kernel ")).unwrap_or_else(|| panic!("no kernel line:\n{script}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
        .to_string()
}

/// The one way tests wait: calls `check` until it answers `Ok`, pausing briefly between calls, and
/// fails after `secs` with `what` and the last `Err` (what was observed instead). The pause is
/// only the polling interval: the condition, not the clock, ends the wait.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) => assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

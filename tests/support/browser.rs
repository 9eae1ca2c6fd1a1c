//! Headless Chromium driven over WebDriver (Debian's `chromium` and `chromedriver`), for the
//! console's browser tests. Each `Browser` runs its own chromedriver on a loopback port with a
//! throwaway profile, and ends it (by PID) when dropped. Chromium is started with its background
//! networking off: it must talk to nothing but the appliance under test.

use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    pub client: Client,
    pub base: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("port").port()
}

impl Browser {
    pub async fn start(base: &str) -> Browser {
        let port = free_port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (install-deps installs chromium-driver)");
        let status = format!("http://127.0.0.1:{port}/status");
        let ready = crate::common::eventually("chromedriver to answer", 30, || async {
            match reqwest::get(&status).await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("status {}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        });
        ready.await;
        let profile = tempfile::tempdir().expect("profile dir");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--window-size=1366,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({"binary": CHROMIUM, "args": args}));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("starting headless chromium through chromedriver: {e}");
            }
        };
        Browser { client, base: base.to_string(), driver, _profile: profile }
    }

    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{}", self.base, path)).await.unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        let mut p = url.path().to_string();
        if let Some(q) = url.query() {
            p.push('?');
            p.push_str(q);
        }
        p
    }

    /// Types into the input `css` (clearing it first).
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("input {css}: {e}"));
        el.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        el.send_keys(text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        let el = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("element {css}: {e}"));
        el.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks and waits for the next page to load (a form submit or a link).
    pub async fn click_and_wait(&self, css: &str) {
        let marker: Value = self.js("window.__ib_page = Math.random(); return window.__ib_page;", vec![]).await;
        self.click(css).await;
        crate::common::eventually(&format!("a new page after clicking {css}"), 30, || async {
            let now: Value = self
                .client
                .execute("return document.readyState === 'complete' ? (window.__ib_page || null) : 'loading';", vec![])
                .await
                .map_err(|e| e.to_string())?;
            if now != marker && now != json!("loading") { Ok(()) } else { Err(format!("still {now}")) }
        })
        .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let el = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("element {css}: {e}"));
        el.text().await.unwrap_or_default()
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.client.find_all(Locator::Css(css)).await.map(|v| v.is_empty()).unwrap_or(true)
    }

    pub async fn body_text(&self) -> String {
        self.text("body").await
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute_async(script, args).await.unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"))
    }

    /// Waits until the page's body text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str, secs: u64) {
        crate::common::eventually(&format!("{needle:?} on the page"), secs, || async {
            let t = self.client.find(Locator::Css("body")).await.map_err(|e| e.to_string())?;
            let text = t.text().await.map_err(|e| e.to_string())?;
            if text.contains(needle) { Ok(()) } else { Err(text.chars().take(2000).collect()) }
        })
        .await;
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Runs axe-core (tests/browser/node_modules, installed by install-deps) on the current page
    /// and returns its serious and critical violations as readable lines.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let axe_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/node_modules/axe-core/axe.min.js");
        let axe =
            std::fs::read_to_string(axe_path).expect("axe-core: run scripts/install-deps.sh (npm ci in tests/browser)");
        // Injected as a script element's text: the page's CSP allows only its own scripts, and
        // WebDriver's script execution is not subject to it.
        self.js(&format!("{axe}\nreturn true;"), vec![]).await;
        let result = self
            .js_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
                    .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))
                    .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
                vec![],
            )
            .await;
        result
            .as_array()
            .map(|v| {
                v.iter()
                    .filter(|x| matches!(x["impact"].as_str(), Some("serious") | Some("critical")))
                    .map(|x| format!("{} ({}): {} at {}", x["id"], x["impact"], x["help"], x["nodes"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the browser session; chromedriver itself ends on drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test still ends its chromedriver (and with it, Chromium).
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

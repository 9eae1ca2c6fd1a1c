//! Console benchmark client (bench/console.sh runs it against a release appliance).
//!
//! `render BASE USER PASSWORD PATH ROUNDS CHROMEDRIVER_URL`: logs in through the form in headless
//! Chromium (a chromedriver the script started) and loads PATH ROUNDS times, reading the browser's
//! own navigation timing: time to first byte (responseStart), DOM ready and full load. Prints JSON
//! with the medians and p90s in milliseconds.
//!
//! `fanout BASE USER PASSWORD CLIENTS EVENTS`: opens CLIENTS console event streams (one session
//! each, as CLIENTS admins at their desks), then makes EVENTS changes through the API one after
//! another and times, for each, how long until every stream has delivered it. Prints JSON with
//! the delivery latency percentiles over all (client, event) pairs.

use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("render") if args.len() == 8 => {
            render(&args[2], &args[3], &args[4], &args[5], args[6].parse()?, &args[7]).await
        }
        Some("fanout") if args.len() == 7 => {
            fanout(&args[2], &args[3], &args[4], args[5].parse()?, args[6].parse()?).await
        }
        _ => {
            eprintln!("usage: console_bench render BASE USER PASSWORD PATH ROUNDS CHROMEDRIVER_URL");
            eprintln!("       console_bench fanout BASE USER PASSWORD CLIENTS EVENTS");
            std::process::exit(2)
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(mut v: Vec<f64>) -> Value {
    v.sort_by(f64::total_cmp);
    json!({
        "n": v.len(),
        "p50": (percentile(&v, 0.5) * 100.0).round() / 100.0,
        "p90": (percentile(&v, 0.9) * 100.0).round() / 100.0,
        "p99": (percentile(&v, 0.99) * 100.0).round() / 100.0,
        "max": (v.last().copied().unwrap_or(f64::NAN) * 100.0).round() / 100.0,
    })
}

async fn render(base: &str, user: &str, password: &str, path: &str, rounds: usize, driver: &str) -> Res<()> {
    let profile = tempfile::tempdir()?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium", "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1366,900", format!("--user-data-dir={}", profile.path().display())]}),
    );
    let b = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await?;
    b.goto(&format!("{base}/login")).await?;
    b.find(Locator::Css("#username")).await?.send_keys(user).await?;
    b.find(Locator::Css("#password")).await?.send_keys(password).await?;
    b.find(Locator::Css("form[action='/login'] button[type=submit]")).await?.click().await?;
    let (mut ttfb, mut dom, mut load, mut bytes) = (Vec::new(), Vec::new(), Vec::new(), 0u64);
    for _ in 0..rounds {
        b.goto(&format!("{base}{path}")).await?;
        let t = b
            .execute(
                "const n = performance.getEntriesByType('navigation')[0];
                 return [n.responseStart - n.requestStart, n.domContentLoadedEventEnd - n.startTime,
                         n.loadEventEnd - n.startTime, n.transferSize, location.pathname];",
                vec![],
            )
            .await?;
        if t[4] != json!(path.split('?').next().unwrap_or(path)) {
            return Err(format!("landed on {} instead of {path} (logged in?)", t[4]).into());
        }
        ttfb.push(t[0].as_f64().unwrap_or(f64::NAN));
        dom.push(t[1].as_f64().unwrap_or(f64::NAN));
        load.push(t[2].as_f64().unwrap_or(f64::NAN));
        bytes = t[3].as_u64().unwrap_or(0);
    }
    let rows = b.find_all(Locator::Css("main table tbody tr")).await?.len();
    b.close().await?;
    println!(
        "{}",
        json!({"path": path, "rows": rows, "html_bytes": bytes, "ttfb_ms": summary(ttfb),
               "dom_ready_ms": summary(dom), "load_ms": summary(load)})
    );
    Ok(())
}

/// Logs in through the login form; returns a client holding the session cookie.
async fn console_session(base: &str, user: &str, password: &str) -> Res<reqwest::Client> {
    let c = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    let html = c.get(format!("{base}/login")).send().await?.text().await?;
    let key = "name=\"_csrf\" value=\"";
    let at = html.find(key).ok_or("no CSRF token on the login form")? + key.len();
    let token = &html[at..at + html[at..].find('"').ok_or("bad token")?];
    let body = serde_urlencoded::to_string([("_csrf", token), ("username", user), ("password", password)])?;
    let r = c
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    if r.status() != 303 {
        return Err(format!("login answered {}", r.status()).into());
    }
    Ok(c)
}

async fn fanout(base: &str, user: &str, password: &str, clients: usize, events: usize) -> Res<()> {
    // One session per console, opened one after another (logins are deliberately slow: argon2).
    let mut sessions = Vec::new();
    for _ in 0..clients {
        sessions.push(console_session(base, user, password).await?);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    let mut ready = Vec::new();
    for (i, c) in sessions.into_iter().enumerate() {
        let mut resp = c.get(format!("{base}/console/events")).send().await?;
        if resp.status() != 200 {
            return Err(format!("event stream {i} answered {}", resp.status()).into());
        }
        let tx = tx.clone();
        ready.push(tokio::spawn(async move {
            let mut buf = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                let at = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) {
                        let _ = tx.send((i, data.trim().to_string(), at));
                    }
                }
            }
        }));
    }
    // A bearer token for the changes.
    let api = reqwest::Client::new();
    let login: Value = api
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().ok_or("no token")?.to_string();
    let mut latencies = Vec::new();
    let mut worst_event = Vec::new();
    for e in 0..events {
        let started = Instant::now();
        let r: Value = api
            .post(format!("{base}/api/v1/vnis"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("fanout-{e}"), "cidr": format!("10.{}.{}.0/24", 100 + e / 250, e % 250), "vni": 50_000 + e}))
            .send()
            .await?
            .json()
            .await?;
        let id = r["id"].as_str().ok_or_else(|| format!("creating a VNI: {r}"))?.to_string();
        let mut got = vec![false; clients];
        let mut n = 0;
        let mut slowest = 0f64;
        while n < clients {
            let (i, data, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .map_err(|_| format!("event {e}: only {n} of {clients} consoles heard it in 30 s"))?
                .ok_or("streams ended")?;
            if data.contains(&id) && !got[i] {
                got[i] = true;
                n += 1;
                let ms = at.duration_since(started).as_secs_f64() * 1000.0;
                slowest = slowest.max(ms);
                latencies.push(ms);
            }
        }
        worst_event.push(slowest);
    }
    for h in ready {
        h.abort();
    }
    println!(
        "{}",
        json!({"clients": clients, "events": events,
               "delivery_ms": summary(latencies), "all_clients_ms": summary(worst_event)})
    );
    Ok(())
}

//! Workflow engine benchmark: N stand-in agents (the real agent's enrollment, registration, SSH
//! server and history over loopback; disk commands that return at once — `tests/support/
//! standin_agent.rs`) and N wipe workflows started at once against a running appliance. Reports
//! the wall time until all succeeded, workflows/s and steps/s, and the engine's overhead per step:
//! the gap between one step's end and the next one's start, from the workflows' own timestamps.
//! Usage: workflow_bench <base-url> <admin-password> <N>   (bench/workflows.sh runs it)

#[path = "../tests/support/standin_agent.rs"]
mod standin_agent;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn ts(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok().map(|t| t.with_timezone(&chrono::Utc))
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[((v.len() - 1) as f64 * p).round() as usize] }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, password) = (args[1].clone(), args[2].clone());
    let n: usize = args[3].parse().expect("N");
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().expect("login").to_string();

    let t0 = Instant::now();
    let mut boots = tokio::task::JoinSet::new();
    for i in 0..n {
        let base = base.clone();
        let mac = format!("52:54:01:{:02x}:{:02x}:{:02x}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        boots.spawn(async move {
            standin_agent::start_beating(&base, &mac, &"0".repeat(64), Duration::from_secs(10)).await
        });
    }
    let mut agents = Vec::new();
    while let Some(a) = boots.join_next().await {
        agents.push(a.expect("stand-in"));
    }
    eprintln!("{n} stand-in agents registered in {:.1} s", t0.elapsed().as_secs_f64());

    let t1 = Instant::now();
    let mut starts = tokio::task::JoinSet::new();
    for a in &agents {
        let (http, base, token, asset) = (http.clone(), base.clone(), token.clone(), a.asset.clone());
        starts.spawn(async move {
            let r = http
                .post(format!("{base}/api/v1/assets/{asset}/wipe"))
                .bearer_auth(&token)
                .json(&json!({"method": "quick", "confirm": asset}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
        });
    }
    while let Some(r) = starts.join_next().await {
        r.unwrap();
    }
    let accepted = t1.elapsed();
    loop {
        let page: Value = http
            .get(format!("{base}/api/v1/workflows?state=succeeded&per_page=1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let failed: Value = http
            .get(format!("{base}/api/v1/workflows?state=failed&per_page=1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(failed["meta"]["total"], 0, "a workflow failed: {failed}");
        if page["meta"]["total"].as_u64() == Some(n as u64) {
            break;
        }
        assert!(t1.elapsed() < Duration::from_secs(900), "not done in 15 minutes: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = t1.elapsed();

    let (mut gaps, mut steps_run, mut per_workflow) = (Vec::new(), 0usize, Vec::new());
    let mut page = 1;
    loop {
        let list: Value = http
            .get(format!("{base}/api/v1/workflows?per_page=100&page={page}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = list["data"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        for w in items {
            let steps = w["steps"].as_array().cloned().unwrap_or_default();
            steps_run += steps.len();
            for pair in steps.windows(2) {
                if let (Some(end), Some(next)) = (ts(&pair[0]["finished_at"]), ts(&pair[1]["started_at"])) {
                    gaps.push((next - end).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                }
            }
            if let (Some(a), Some(b)) = (ts(&w["created_at"]), ts(&w["finished_at"])) {
                per_workflow.push((b - a).num_milliseconds() as f64);
            }
        }
        page += 1;
    }
    let wipes: usize = agents.iter().map(|a| a.counters.wipes.load(std::sync::atomic::Ordering::SeqCst)).sum();
    assert_eq!(wipes, n, "each wipe ran exactly once");
    println!(
        "| {n} | {:.2} | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} |",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        steps_run as f64 / wall.as_secs_f64(),
        accepted.as_millis(),
        pct(&mut gaps.clone(), 0.5),
        pct(&mut gaps, 0.99),
        pct(&mut per_workflow.clone(), 0.5),
        pct(&mut per_workflow, 0.99),
    );
}

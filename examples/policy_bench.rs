//! Policy evaluation latency, in process: the example policy
//! (`policies/examples/production-maintenance-window.rego`) decided many times
//!   1. by `policy::evaluate` alone (the compiled engine, cloned per decision), and
//!   2. through `AppState::guard` on a real SQLite store (adds the revision check, one row read;
//!      the deny path also appends its audit entry),
//!
//! printing p50/p99 per decision. Run: `cargo run --release --example policy_bench [decisions]`.
//! The HTTP evaluate route is measured by `bench/policies.sh`.

use std::path::Path;
use std::time::{Duration, Instant};

use ironbay::app::AppState;
use ironbay::app::policies::CreatePolicy;
use ironbay::auth::{Actor, Principal};
use ironbay::model::Role;
use ironbay::policy::{self, Action, AssetSubject, GuardSubject, LoadedPolicy, Overall};
use ironbay::store::Store;

const EXAMPLE: &str = include_str!("../policies/examples/production-maintenance-window.rego");

fn percentiles(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "| {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        samples.len(),
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6,
    );
}

fn admin() -> Actor {
    Actor {
        principal: Some(Principal::User {
            user_id: "usr_bench".into(),
            username: "bench".into(),
            role: Role::Admin,
            session_id: "ses_bench".into(),
        }),
        source_ip: None,
        rejected: None,
    }
}

fn asset(tags: &[&str]) -> GuardSubject {
    GuardSubject::Asset(AssetSubject {
        id: "ast_0000000000000001".into(),
        name: "node-1".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        state: "provisioned".into(),
        vni_id: None,
    })
}

async fn app(dir: &Path) -> anyhow::Result<AppState> {
    let cfg = dir.join("ironbay.toml");
    std::fs::write(&cfg, "")?;
    let overrides = ironbay::config::Overrides {
        listen: None,
        data_dir: Some(dir.to_path_buf()),
        database_url: Some(format!("sqlite://{}/bench.db", dir.display())),
    };
    let config = ironbay::config::load(Some(&cfg), &overrides)?;
    let keys = ironbay::app::setup::prepare_data_dir(&config.data_dir)?;
    let store = Store::open(&config.database_url).await?;
    let device_ca = ironbay::app::devices::load_or_create_ca(&store, &keys).await?;
    Ok(AppState {
        device_ca,
        limits: ironbay::auth::ratelimit::RateLimits::new(&config.rate_limit),
        key_cache: Default::default(),
        dummy_password_hash: String::new(),
        policies: Default::default(),
        boot: ironbay::boot::BootShared::start(&store, &keys, &config.boot),
        agent_key: std::sync::Arc::new(ironbay::agent::key::ApplianceKey::derive(&keys)),
        certificate_key: std::sync::Arc::new(ironbay::workflow::certificate::CertificateKey::new(
            keys.token_signing_key(),
        )),
        workflow_wake: Default::default(),
        live: Default::default(),
        store,
        keys,
        config,
        started: Instant::now(),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    println!("| path | decisions | p50 µs | p99 µs | mean µs | max µs |");
    println!("|---|---|---|---|---|---|");

    // 1. The engine alone.
    let compiled = policy::compile(EXAMPLE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let set = [LoadedPolicy {
        id: "pol_bench".into(),
        name: "production-maintenance-window".into(),
        vni_ids: vec![],
        compiled,
    }];
    let now = chrono::Utc::now();
    for (label, tags, expect) in [
        ("evaluate, production wipe (deny)", &["production"][..], Overall::Deny),
        ("evaluate, staging wipe (allow)", &["staging"][..], Overall::Allow),
    ] {
        let mut input = policy::input::guard_input(&admin(), Action::Wipe, &asset(tags), now);
        // Outside the window whatever the clock says, so the verdict is known.
        input["time"] =
            serde_json::json!({"now": "2026-11-23T14:00:00Z", "weekday": "monday", "hour": 14, "minute": 0});
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let e = policy::evaluate(&set, &input);
            samples.push(t.elapsed());
            assert_eq!(e.result, expect);
        }
        percentiles(label, samples);
    }

    // 2. The guard, with the store's revision check (and the audit write on a deny).
    let dir = tempfile::tempdir()?;
    let app = app(dir.path()).await?;
    let req = CreatePolicy {
        name: "production-maintenance-window".into(),
        description: None,
        rego: EXAMPLE.into(),
        enabled: None,
        priority: None,
        vni_ids: vec![],
    };
    app.policy_create(&admin(), req).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    app.guard(&admin(), Action::Wipe, asset(&["staging"])).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = app.guard(&admin(), Action::Wipe, asset(&["staging"])).await;
        samples.push(t.elapsed());
        r.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    percentiles("guard (SQLite), allow", samples);
    // The deny path depends on the clock (the window is Saturday 02:00-06:00 UTC); it writes an
    // audit entry per decision, so fewer rounds.
    let mut samples = Vec::with_capacity(n / 10);
    let mut denied = 0;
    for _ in 0..(n / 10).max(1) {
        let t = Instant::now();
        let r = app.guard(&admin(), Action::Wipe, asset(&["production"])).await;
        samples.push(t.elapsed());
        denied += usize::from(r.is_err());
    }
    let label =
        if denied > 0 { "guard (SQLite), deny + audit entry" } else { "guard (SQLite), production inside window" };
    percentiles(label, samples);
    println!();
    println!(
        "{} cores, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        chrono::Utc::now().format("%F")
    );
    Ok(())
}

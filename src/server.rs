//! Wires the appliance together and runs it: data dir, store, first admin, listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::app::{App, AppState, setup};
use crate::auth::password;
use crate::auth::ratelimit::RateLimits;
use crate::config::Config;
use crate::secret::Secret;
use crate::store::Store;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let keys = setup::prepare_data_dir(&config.data_dir)?;
    let store = Store::open(&config.database_url).await.context("opening the store")?;
    let env_password = std::env::var("IRONBAY_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty()).map(Secret::new);
    if let Some(generated) = setup::ensure_first_admin(&store, env_password).await? {
        // Printed once, to stdout only: the log never carries it.
        println!("First run: created admin user `{}` with password: {}", setup::FIRST_ADMIN, generated.expose());
        println!("Store it now; it will not be shown again.");
    }
    let device_ca = crate::app::devices::load_or_create_ca(&store, &keys).await.context("the device CA")?;
    let app: App = Arc::new(AppState {
        device_ca,
        limits: RateLimits::new(&config.rate_limit),
        key_cache: Default::default(),
        policies: Default::default(),
        boot: crate::boot::BootShared::start(&store, &keys, &config.boot),
        agent_key: Arc::new(crate::agent::key::ApplianceKey::derive(&keys)),
        certificate_key: Arc::new(crate::workflow::certificate::CertificateKey::new(keys.token_signing_key())),
        workflow_wake: Default::default(),
        live: Default::default(),
        dummy_password_hash: password::dummy_hash().await?,
        store,
        keys,
        config: config.clone(),
        started: Instant::now(),
    });

    // Certificate problems stop the start, before anything listens.
    let tls = match &config.tls {
        Some(t) => Some(crate::http::tls::acceptor(&t.cert_file, &t.key_file)?),
        None => None,
    };
    let mut listeners = Vec::new();
    for addr in &config.listen {
        let l = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        listeners.push(l);
    }
    let bound: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();

    let prune = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                app.limits.api.prune();
                app.limits.login.prune();
                app.limits.enroll.prune();
            }
        })
    };

    // Webhook deliveries: pending ones left by a previous run (or another appliance's expired
    // lease) are picked up on the first round.
    let deliveries = tokio::spawn(crate::webhooks::run(app.clone()));
    // Workflows: steps left running by a previous run are re-examined once their lease expires.
    let workflows = tokio::spawn(crate::workflow::engine::run(app.clone()));
    // One reader of the audit log for every open console.
    let live = tokio::spawn(app.live.clone().follow_audit(app.store.clone()));
    // TFTP only on the named interfaces' addresses; none named, no socket at all.
    let tftp = crate::tftp::start_from_config(&config, app.boot.clone());

    // DHCP on the interfaces named in config only (none named: no socket at all).
    let dhcp = crate::dhcp::server::start(app.clone()).await;

    let router = crate::http::router(app.clone());
    let mut servers = tokio::task::JoinSet::new();
    for l in listeners {
        match &tls {
            Some(acceptor) => {
                let (acceptor, router) = (acceptor.clone(), router.clone());
                servers.spawn(async move { crate::http::tls::serve(l, acceptor, router, shutdown_signal()).await });
            }
            None => {
                let svc = router.clone().into_make_service_with_connect_info::<SocketAddr>();
                servers.spawn(async move { axum::serve(l, svc).with_graceful_shutdown(shutdown_signal()).await });
            }
        }
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let urls: Vec<String> = bound.iter().map(|a| format!("{scheme}://{a}")).collect();
    tracing::info!(listen = %urls.join(","), database = app.store.backend().name(), data_dir = %config.data_dir.display(), "ironbay ready");
    while let Some(res) = servers.join_next().await {
        res.context("listener task")?.context("serving HTTP")?;
    }
    prune.abort();
    deliveries.abort();
    workflows.abort();
    live.abort();
    dhcp.iter().for_each(tokio::task::JoinHandle::abort);
    if let Some(t) = tftp {
        t.abort();
    }
    tracing::info!("ironbay stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

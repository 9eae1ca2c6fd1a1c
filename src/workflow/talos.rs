//! The Talos steps: a node's install (config fetched, the PXE boot after it, apid up at the static
//! address) and the cluster's (every member installed, then one Bootstrap call).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::json;

use super::exec::{Ctx, Failure, StepOutcome};
use crate::model::now_rfc3339;
use crate::talos::access::os_admin_certificate;
use crate::talos::bootstrap::{self, BootstrapError, BootstrapOutcome, ClientIdentity};

/// apid's port on every Talos node.
pub const APID_PORT: u16 = 50000;
const POLL: Duration = Duration::from_secs(2);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn apid_addr(address: &str) -> Result<SocketAddr, Failure> {
    let ip: IpAddr = address
        .parse()
        .map_err(|_| Failure::new("CLUSTER_PLAN_INVALID", format!("member address `{address}` is not an IP"), false))?;
    Ok(SocketAddr::new(ip, APID_PORT))
}

/// Config served → installed (the next PXE boot; the boot script marks it and answers `exit`) →
/// apid answers TLS on :50000 at the node's static address.
pub async fn wait_for_install(ctx: &Ctx<'_>) -> Result<StepOutcome, Failure> {
    let asset = &ctx.wf.asset_id;
    let member = ctx.app.store.member_of_asset(asset).await?.ok_or_else(|| {
        Failure::new("CLUSTER_MEMBER_GONE", format!("asset {asset} is no longer a cluster member"), false)
    })?;
    let limit = ctx.app.config.talos.install_timeout;
    let timed_out = |stage: &str| {
        Failure::new(
            "TALOS_INSTALL_TIMEOUT",
            format!("the node did not get past `{stage}` within {} s", limit.as_secs()),
            false,
        )
    };
    let over = super::elapsed_since(&ctx.started_at) > limit;
    let Some(served) = &member.config_served_at else {
        if over {
            return Err(timed_out("fetch its machine config"));
        }
        return Ok(StepOutcome::Wait(POLL, "waiting for the node to fetch its Talos machine config".into()));
    };
    let Some(installed) = &member.installed_at else {
        if over {
            return Err(timed_out("PXE-boot again after installing"));
        }
        return Ok(StepOutcome::Wait(
            POLL,
            format!("config served at {served}; waiting for the node's next PXE boot (Talos installed)"),
        ));
    };
    let addr = apid_addr(&member.address)?;
    if bootstrap::apid_answers(addr, Duration::from_secs(3)).await {
        ctx.app.store.member_apid_up(asset, &now_rfc3339()).await?;
        ctx.log.note(format!("apid answers at {addr}"));
        return Ok(StepOutcome::Done(json!({
            "address": member.address, "config_served_at": served, "installed_at": installed,
        })));
    }
    if over {
        return Err(timed_out(&format!("apid answering at {addr}")));
    }
    Ok(StepOutcome::Wait(POLL, format!("installed at {installed}; waiting for apid at {addr}")))
}

/// Every member's talos_install workflow succeeded (one that failed fails the cluster: retry it,
/// then retry this).
pub async fn wait_for_nodes(ctx: &Ctx<'_>) -> Result<StepOutcome, Failure> {
    let members = ctx.app.store.cluster_members(&ctx.wf.asset_id).await?;
    let mut done = 0;
    for m in &members {
        let Some(w) = ctx.app.store.workflow_get(&m.workflow_id).await? else {
            return Err(Failure::new("NODE_WORKFLOW_GONE", format!("workflow {} is gone", m.workflow_id), false));
        };
        match w.state.as_str() {
            "succeeded" => done += 1,
            "failed" | "cancelled" => {
                let mut f = Failure::new(
                    "NODE_INSTALL_FAILED",
                    format!(
                        "node {} ({}): its install workflow {} {}; retry it, then retry this workflow",
                        m.asset_id, m.address, w.id, w.state
                    ),
                    false,
                );
                f.details = json!({"asset_id": m.asset_id, "workflow_id": w.id,
                    "error": w.error.as_deref().and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())});
                return Err(f);
            }
            _ => {}
        }
    }
    if done == members.len() {
        return Ok(StepOutcome::Done(json!({"nodes": done})));
    }
    Ok(StepOutcome::Wait(POLL, format!("{done} of {} nodes installed", members.len())))
}

/// One Bootstrap on the first control plane, retried while it is not ready; AlreadyExists means
/// an earlier call (maybe from an appliance that died) did it.
pub async fn bootstrap(ctx: &Ctx<'_>) -> Result<StepOutcome, Failure> {
    let cluster_id = &ctx.wf.asset_id;
    let cluster = ctx
        .app
        .store
        .cluster_get(cluster_id)
        .await?
        .ok_or_else(|| Failure::new("CLUSTER_GONE", format!("cluster {cluster_id} is gone"), false))?;
    let members = ctx.app.store.cluster_members(cluster_id).await?;
    let first = members
        .iter()
        .find(|m| m.role == "controlplane")
        .ok_or_else(|| Failure::new("CLUSTER_PLAN_INVALID", "the cluster has no control plane", false))?;
    let secrets = ctx.app.cluster_secrets(&cluster).map_err(Failure::from)?;
    let client =
        os_admin_certificate(&secrets.os_ca).map_err(|e| Failure::new("TALOS_CERTIFICATE", e.to_string(), false))?;
    let addr = apid_addr(&first.address)?;
    let identity = ClientIdentity { cert_pem: &client.crt, key_pem: &client.key };
    let now = now_rfc3339();
    match bootstrap::bootstrap(addr, &secrets.os_ca.crt, identity, CALL_TIMEOUT).await {
        Ok(outcome) => {
            let (state, what) = match outcome {
                BootstrapOutcome::Bootstrapped => ("bootstrapped", "etcd bootstrapped"),
                BootstrapOutcome::AlreadyBootstrapped => {
                    ("already_bootstrapped", "AlreadyExists: the node was bootstrapped before")
                }
            };
            ctx.app.store.cluster_set_bootstrap(cluster_id, state, &now).await?;
            ctx.log.note(format!("Bootstrap at {addr}: {what}"));
            Ok(StepOutcome::Done(json!({"node": first.asset_id, "address": addr.to_string(), "outcome": state})))
        }
        Err(BootstrapError::Retryable { status, message }) => {
            ctx.log.note(format!("Bootstrap at {addr}: {status}: {message}"));
            let limit = ctx.app.config.talos.bootstrap_timeout;
            if super::elapsed_since(&ctx.started_at) > limit {
                let _ = ctx.app.store.cluster_set_bootstrap(cluster_id, "failed", &now).await;
                let mut f = Failure::new(
                    "BOOTSTRAP_TIMEOUT",
                    format!("Bootstrap did not succeed within {} s; last answer: {status}: {message}", limit.as_secs()),
                    false,
                );
                f.details = json!({"grpc_status": status, "message": message, "address": addr.to_string()});
                return Err(f);
            }
            Ok(StepOutcome::Wait(POLL, format!("Bootstrap: {status}: {message}")))
        }
        Err(BootstrapError::Fatal { status, message }) => {
            ctx.log.note(format!("Bootstrap at {addr}: {status}: {message}"));
            let _ = ctx.app.store.cluster_set_bootstrap(cluster_id, "failed", &now).await;
            let mut f = Failure::new("BOOTSTRAP_REFUSED", format!("Bootstrap refused: {status}: {message}"), false);
            f.details = json!({"grpc_status": status, "message": message, "address": addr.to_string()});
            Err(f)
        }
    }
}

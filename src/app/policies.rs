//! Policies (Rego, KairOS shape): CRUD with the source compiled and checked on save, the evaluate
//! operation, and `guard`, which the rest of the appliance calls before a guarded action.
//!
//! Compiled policies are cached per appliance, keyed on the store's policy revision (bumped in
//! every policy change's transaction). Each evaluation reads the revision (one primary-key row)
//! and recompiles only when it moved, so a change made through any appliance sharing the
//! database applies from the next decision on, with no TTL window.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, Page, PageRequest};
use crate::audit::{self, Event, Outcome};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::model::{IdKind, Scope, ids, new_id, now_rfc3339};
use crate::policy::{
    self, Action, CompileError, Compiled, Dialect, Evaluation, GuardSubject, LoadedPolicy, MAX_REGO_BYTES, Overall,
    PolicySet,
};
use crate::store::policies::PolicyRow;
use crate::store::{Store, is_unique_violation};

pub const DEFAULT_PRIORITY: i64 = 100;
pub const MAX_PRIORITY: i64 = 10_000;
const MAX_VNI_BINDINGS: usize = 100;
const MAX_DESCRIPTION: usize = 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    /// Unique, 1-128 printable characters.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// A Rego module (v1; v0 syntax is accepted too) defining `deny` (set of reasons) and/or
    /// `allow` (boolean) in its package. At most 64 KiB.
    pub rego: String,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// 0-10000, default 100. Lower is evaluated first; deny wins whatever the order.
    #[serde(default)]
    pub priority: Option<i64>,
    /// VNIs the policy is bound to: it then applies only to inputs naming one of them
    /// (`input.vni_id` or `input.asset.vni_id`). Empty: applies everywhere.
    #[serde(default)]
    pub vni_ids: Vec<String>,
}

/// Partial update: absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub rego: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub vni_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rego: String,
    pub enabled: bool,
    pub priority: i64,
    pub vni_ids: Vec<String>,
    /// `v1` or `v0`: the Rego syntax the source was accepted as.
    pub rego_version: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    /// Evaluate this policy only (whether enabled or not, VNI binding ignored); omitted: every
    /// enabled policy, as the guard would.
    #[serde(default)]
    pub policy_id: Option<String>,
    /// The input document (a JSON object). A missing `time` is filled with now; a given one is
    /// kept (missing fields of it are derived from its `now`).
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
}

fn policy_not_found(id: &str) -> Error {
    Error::not_found("POLICY_NOT_FOUND", format!("Policy {id} not found"))
}

fn validate_name(name: &str) -> Result<()> {
    let ok = (1..=128).contains(&name.chars().count()) && !name.chars().any(char::is_control) && name.trim() == name;
    if !ok {
        return Err(Error::invalid_field(
            "name",
            "name must be 1-128 printable characters without leading or trailing spaces",
        ));
    }
    Ok(())
}

fn validate_description(d: &str) -> Result<()> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid_field(
            "description",
            format!("description is at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

fn validate_priority(p: i64) -> Result<()> {
    if !(0..=MAX_PRIORITY).contains(&p) {
        return Err(Error::invalid_field("priority", format!("priority must be 0-{MAX_PRIORITY}, got {p}")));
    }
    Ok(())
}

/// The error a refused module answers with: 422 `INVALID_REGO` with the position in `details`.
fn rego_error(e: CompileError) -> Error {
    match e {
        CompileError::Invalid { line, column, message } => {
            let at = match (line, column) {
                (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
                (Some(l), None) => format!(" at line {l}"),
                _ => String::new(),
            };
            Error::Unprocessable {
                code: "INVALID_REGO",
                message: format!("the Rego source does not compile{at}: {message}"),
                details: Some(serde_json::json!({"field": "rego", "line": line, "column": column, "message": message})),
            }
        }
        CompileError::NoDecisionRule { package } => Error::Unprocessable {
            code: "INVALID_REGO",
            message: format!(
                "package {package} defines neither `deny` nor `allow`: a policy must define at least one of them"
            ),
            details: Some(serde_json::json!({
                "field": "rego", "reason": "no_decision_rule", "package": package,
                "message": "defines neither `deny` nor `allow`"
            })),
        },
        CompileError::TooLarge { bytes } => Error::Unprocessable {
            code: "INVALID_FIELD",
            message: format!("the Rego source is {bytes} bytes; the limit is {MAX_REGO_BYTES}"),
            details: Some(serde_json::json!({"field": "rego", "limit_bytes": MAX_REGO_BYTES})),
        },
    }
}

/// Compiles on a blocking thread: a large module's analysis should not hold a runtime worker.
async fn compile(source: String) -> Result<Compiled> {
    tokio::task::spawn_blocking(move || policy::compile(&source)).await.map_err(Error::internal)?.map_err(rego_error)
}

fn view(row: &PolicyRow) -> Result<PolicyView> {
    Ok(PolicyView {
        id: row.id.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        rego: row.rego.clone(),
        enabled: row.enabled != 0,
        priority: row.priority,
        vni_ids: vni_ids(row)?,
        rego_version: row.rego_version.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    })
}

fn vni_ids(row: &PolicyRow) -> Result<Vec<String>> {
    serde_json::from_str(&row.vni_ids)
        .map_err(|_| Error::internal(format_args!("policies.vni_ids of {} is unreadable", row.id)))
}

/// Compiles a stored row. A row that no longer compiles (it did when saved) is our bug or a
/// regorus upgrade; it is logged, and fails closed as a policy that denies everything it applies to.
fn load(row: &PolicyRow) -> Result<LoadedPolicy> {
    let dialect = Dialect::parse(&row.rego_version);
    let compiled = policy::compile_as(&row.rego, dialect).or_else(|e| {
        tracing::error!(policy = %row.id, error = ?e, "stored policy no longer compiles; it denies until fixed");
        policy::compile(&format!(
            "package ironbay.broken\ndeny contains \"policy {} no longer compiles: fix or disable it\"\n",
            row.name.replace(['"', '\\'], "")
        ))
        .map_err(|e| Error::internal(format_args!("fallback policy: {e:?}")))
    })?;
    Ok(LoadedPolicy { id: row.id.clone(), name: row.name.clone(), vni_ids: vni_ids(row)?, compiled })
}

impl AppState {
    /// Validates VNI bindings: well-formed, no duplicates (dropped), each naming an existing VNI.
    async fn check_vnis(&self, conn: &mut sqlx::AnyConnection, ids: Vec<String>) -> Result<Vec<String>> {
        if ids.len() > MAX_VNI_BINDINGS {
            return Err(Error::invalid_field("vni_ids", format!("at most {MAX_VNI_BINDINGS} VNIs")));
        }
        let mut seen = BTreeSet::new();
        let ids: Vec<String> = ids.into_iter().filter(|i| seen.insert(i.clone())).collect();
        let mut missing: Vec<String> = ids.iter().filter(|i| !ids::looks_like(IdKind::Vni, i)).cloned().collect();
        let well_formed: Vec<String> = ids.iter().filter(|i| ids::looks_like(IdKind::Vni, i)).cloned().collect();
        missing.extend(Store::vni_missing(conn, &well_formed).await?);
        if let Some(first) = missing.first() {
            return Err(Error::Unprocessable {
                code: "INVALID_FIELD",
                message: format!("vni_ids: VNI {first} does not exist"),
                details: Some(serde_json::json!({"field": "vni_ids", "vni_id": first, "missing": missing})),
            });
        }
        Ok(ids)
    }

    fn duplicate_name(name: &str, other: Option<String>) -> Error {
        Error::conflict(
            "DUPLICATE_NAME",
            format!("a policy named `{name}` exists"),
            Some(serde_json::json!({"field": "name", "policy_id": other})),
        )
    }

    pub async fn policy_create(&self, actor: &Actor, req: CreatePolicy) -> Result<PolicyView> {
        actor.require(Scope::PoliciesWrite)?;
        validate_name(&req.name)?;
        let description = req.description.unwrap_or_default();
        validate_description(&description)?;
        let priority = req.priority.unwrap_or(DEFAULT_PRIORITY);
        validate_priority(priority)?;
        let compiled = compile(req.rego.clone()).await?;
        let now = now_rfc3339();
        let mut tx = self.store.begin().await?;
        let vnis = self.check_vnis(&mut tx, req.vni_ids).await?;
        if let Some(other) = Store::policy_by_name(&mut tx, &req.name).await? {
            return Err(Self::duplicate_name(&req.name, Some(other)));
        }
        let row = PolicyRow {
            id: new_id(IdKind::Policy),
            name: req.name,
            description,
            rego: req.rego,
            rego_version: compiled.dialect().as_str().into(),
            enabled: i64::from(req.enabled.unwrap_or(true)),
            priority,
            vni_ids: serde_json::to_string(&vnis).map_err(Error::internal)?,
            generation: 1,
            created_at: now.clone(),
            updated_at: now,
        };
        Store::policy_insert(&mut tx, &row).await.map_err(|e| {
            if is_unique_violation(&e, "name") { Self::duplicate_name(&row.name, None) } else { e.into() }
        })?;
        Store::policy_revision_bump(&mut tx).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("policy.create", "policy", &row.id).with_details(serde_json::json!({
                "name": row.name, "enabled": row.enabled != 0, "priority": row.priority,
                "vni_ids": vnis, "package": compiled.package()
            })),
        )
        .await?;
        tx.commit().await?;
        view(&row)
    }

    pub async fn policy_get(&self, actor: &Actor, id: &str) -> Result<PolicyView> {
        actor.require(Scope::PoliciesRead)?;
        view(&self.load_policy(id).await?)
    }

    async fn load_policy(&self, id: &str) -> Result<PolicyRow> {
        if !ids::looks_like(IdKind::Policy, id) {
            return Err(policy_not_found(id));
        }
        self.store.policy_get(id).await?.ok_or_else(|| policy_not_found(id))
    }

    /// Policies in evaluation order (priority, then name).
    pub async fn policy_list(&self, actor: &Actor, page: PageRequest) -> Result<Page<PolicyView>> {
        actor.require(Scope::PoliciesRead)?;
        let (rows, total) = self.store.policy_list(page.limit(), page.offset()).await?;
        let items = rows.iter().map(view).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, page, total })
    }

    pub async fn policy_update(&self, actor: &Actor, id: &str, req: UpdatePolicy) -> Result<PolicyView> {
        actor.require(Scope::PoliciesWrite)?;
        if !ids::looks_like(IdKind::Policy, id) {
            return Err(policy_not_found(id));
        }
        if let Some(n) = &req.name {
            validate_name(n)?;
        }
        if let Some(d) = &req.description {
            validate_description(d)?;
        }
        if let Some(p) = req.priority {
            validate_priority(p)?;
        }
        let compiled = match &req.rego {
            Some(src) => Some(compile(src.clone()).await?),
            None => None,
        };
        let mut tx = self.store.begin().await?;
        let mut row = Store::policy_get_in(&mut tx, id).await?.ok_or_else(|| policy_not_found(id))?;
        let mut changed = Vec::new();
        if let Some(name) = req.name {
            if let Some(other) = Store::policy_by_name(&mut tx, &name).await?
                && other != row.id
            {
                return Err(Self::duplicate_name(&name, Some(other)));
            }
            row.name = name;
            changed.push("name");
        }
        if let Some(d) = req.description {
            row.description = d;
            changed.push("description");
        }
        if let (Some(src), Some(c)) = (req.rego, &compiled) {
            row.rego = src;
            row.rego_version = c.dialect().as_str().into();
            changed.push("rego");
        }
        if let Some(e) = req.enabled {
            row.enabled = i64::from(e);
            changed.push("enabled");
        }
        if let Some(p) = req.priority {
            row.priority = p;
            changed.push("priority");
        }
        if let Some(v) = req.vni_ids {
            let v = self.check_vnis(&mut tx, v).await?;
            row.vni_ids = serde_json::to_string(&v).map_err(Error::internal)?;
            changed.push("vni_ids");
        }
        let now = now_rfc3339();
        let updated = Store::policy_update(&mut tx, &row, &now).await.map_err(|e| {
            if is_unique_violation(&e, "name") { Self::duplicate_name(&row.name, None) } else { Error::from(e) }
        })?;
        if !updated {
            return Err(Error::conflict("POLICY_CHANGED", "the policy changed while this update ran: retry", None));
        }
        Store::policy_revision_bump(&mut tx).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("policy.update", "policy", id).with_details(serde_json::json!({
                "name": row.name, "changed": changed, "enabled": row.enabled != 0
            })),
        )
        .await?;
        tx.commit().await?;
        row.generation += 1;
        row.updated_at = now;
        view(&row)
    }

    pub async fn policy_delete(&self, actor: &Actor, id: &str) -> Result<()> {
        actor.require(Scope::PoliciesWrite)?;
        if !ids::looks_like(IdKind::Policy, id) {
            return Err(policy_not_found(id));
        }
        let mut tx = self.store.begin().await?;
        let row = Store::policy_get_in(&mut tx, id).await?.ok_or_else(|| policy_not_found(id))?;
        Store::policy_delete(&mut tx, id).await?;
        Store::policy_revision_bump(&mut tx).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("policy.delete", "policy", id).with_details(serde_json::json!({"name": row.name})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The compiled enabled policies at the store's current revision (cached).
    pub async fn policy_set(&self) -> Result<Arc<PolicySet>> {
        let revision = self.store.policy_revision().await?;
        if let Some(set) = self.policies.at(revision) {
            return Ok(set);
        }
        let _one_at_a_time = self.policies.reload.lock().await;
        let revision = self.store.policy_revision().await?;
        if let Some(set) = self.policies.at(revision) {
            return Ok(set);
        }
        let (revision, rows) = self.store.policy_snapshot().await?;
        let set = tokio::task::spawn_blocking(move || -> Result<PolicySet> {
            let policies = rows.iter().map(load).collect::<Result<Vec<_>>>()?;
            Ok(PolicySet { revision, policies })
        })
        .await
        .map_err(Error::internal)??;
        let set = Arc::new(set);
        self.policies.store(set.clone());
        Ok(set)
    }

    /// `POST /api/v1/policies/evaluate`: what the policies say about `input`.
    pub async fn policy_evaluate(&self, actor: &Actor, req: EvaluateRequest) -> Result<Evaluation> {
        actor.require(Scope::PoliciesRead)?;
        let serde_json::Value::Object(mut input) = req.input else {
            return Err(Error::invalid_field("input", "input must be a JSON object (the input document)"));
        };
        policy::input::complete_time(&mut input, chrono::Utc::now());
        let input = serde_json::Value::Object(input);
        match req.policy_id {
            Some(id) => {
                let row = self.load_policy(&id).await?;
                let mut one = tokio::task::spawn_blocking(move || load(&row)).await.map_err(Error::internal)??;
                // Naming a policy asks what it says about this input: its binding is not in play.
                one.vni_ids.clear();
                Ok(policy::evaluate(std::slice::from_ref(&one), &input))
            }
            None => {
                let set = self.policy_set().await?;
                Ok(policy::evaluate(&set.policies, &input))
            }
        }
    }

    /// Asks the enabled policies whether `actor` may do `action` to `subject` now. A deny is
    /// audited (`policy.deny`, outcome denied) and answered with 403 `POLICY_DENIED` naming the
    /// first policy that denied and its reasons.
    pub async fn guard(&self, actor: &Actor, action: Action, subject: GuardSubject) -> Result<()> {
        let set = self.policy_set().await?;
        if set.policies.is_empty() {
            return Ok(());
        }
        let input = policy::input::guard_input(actor, action, &subject, chrono::Utc::now());
        let evaluation = policy::evaluate(&set.policies, &input);
        if evaluation.result == Overall::Allow {
            return Ok(());
        }
        let Some((policy_id, name, reasons)) = evaluation.denial() else { return Ok(()) };
        let (target_type, target_id) = match &subject {
            GuardSubject::Asset(a) => ("asset", a.id.clone()),
            GuardSubject::Vni { vni_id } => ("vni", vni_id.clone()),
        };
        audit::record(
            &self.store,
            actor,
            Event::new("policy.deny", target_type, &target_id).with_outcome(Outcome::Denied).with_details(
                serde_json::json!({
                    "action": action.as_str(), "policy": name, "policy_id": policy_id, "reasons": reasons
                }),
            ),
        )
        .await?;
        let why = if reasons.is_empty() { String::new() } else { format!(": {}", reasons.join("; ")) };
        Err(Error::Forbidden {
            code: "POLICY_DENIED",
            message: format!("policy `{name}` denies {} of {target_type} {target_id}{why}", action.as_str()),
            details: Some(serde_json::json!({
                "policy": name, "policy_id": policy_id, "action": action.as_str(), "reasons": reasons
            })),
        })
    }
}

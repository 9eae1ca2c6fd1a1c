//! Policies as Rego (regorus): compiling and checking a module on save, evaluating a set of them
//! against an input document, and the input document the guard builds. No I/O: the application
//! layer (`app::policies`) loads rows, caches the compiled set and audits.
//!
//! The contract a module follows: any `package`; the appliance evaluates the rules `deny` (a set
//! of strings, the reasons; a boolean `true` also counts) and `allow` (a boolean) in it. A policy
//! denies when `deny` is non-empty or `allow` is defined and not `true`. Deny wins across
//! policies; with no applicable policy the answer is allow.

pub mod input;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};
use serde::Serialize;
use utoipa::ToSchema;

pub use input::{Action, AssetSubject, GuardSubject};

/// Largest Rego source accepted.
pub const MAX_REGO_BYTES: usize = 64 * 1024;
/// Wall-clock limit of one policy's evaluation: a pathological module (deep recursion, huge
/// comprehensions) is cut off and fails closed instead of holding a runtime thread.
pub const EVAL_TIME_LIMIT: Duration = Duration::from_millis(100);
/// The file name regorus reports positions against.
const SOURCE_NAME: &str = "policy.rego";

/// The two rules the appliance reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleName {
    Deny,
    Allow,
}

impl RuleName {
    pub const fn as_str(self) -> &'static str {
        match self {
            RuleName::Deny => "deny",
            RuleName::Allow => "allow",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    /// The rule said nothing about this input (undefined), or the policy is bound to VNIs the
    /// input does not name.
    NotApplicable,
}

/// The Rego dialect a module parsed as. Current Rego (v1: `deny contains msg if { … }`) is tried
/// first; modules in the older syntax (`deny[msg] { … }`, as OPA examples still show) are
/// accepted as v0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    V1,
    V0,
}

impl Dialect {
    pub const fn as_str(self) -> &'static str {
        match self {
            Dialect::V1 => "v1",
            Dialect::V0 => "v0",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "v1" => Some(Dialect::V1),
            "v0" => Some(Dialect::V0),
            _ => None,
        }
    }
}

/// Why a module was refused on save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// Parse or compile error, with the position regorus reported (1-based) when it gave one.
    Invalid {
        line: Option<u32>,
        column: Option<u32>,
        message: String,
    },
    /// It parses but defines neither `deny` nor `allow`: it could never decide anything.
    NoDecisionRule {
        package: String,
    },
    TooLarge {
        bytes: usize,
    },
}

/// One compiled module, prepared for evaluation: clones share the parsed and analysed form.
#[derive(Clone)]
pub struct Compiled {
    engine: Engine,
    package: String,
    dialect: Dialect,
    has_deny: bool,
    has_allow: bool,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("package", &self.package).field("dialect", &self.dialect).finish()
    }
}

fn engine(dialect: Dialect) -> Engine {
    let mut e = Engine::new();
    e.set_rego_v0(dialect == Dialect::V0);
    if let Some(every) = NonZeroU32::new(64) {
        e.set_execution_timer_config(ExecutionTimerConfig { limit: EVAL_TIME_LIMIT, check_interval: every });
    }
    e
}

/// `line:column` and the message out of regorus' error text, which reads
/// `\n--> policy.rego:3:5\n  |\n3 | …\n  |     ^\nerror: message`.
fn locate(text: &str) -> (Option<u32>, Option<u32>, String) {
    let marker = format!("--> {SOURCE_NAME}:");
    let pos = text.find(&marker).map(|i| &text[i + marker.len()..]).and_then(|rest| {
        let mut it = rest.split(|c: char| c == ':' || c.is_whitespace());
        let line = it.next()?.parse::<u32>().ok()?;
        let column = it.next().and_then(|c| c.parse::<u32>().ok());
        Some((line, column))
    });
    let message = text
        .rsplit_once("error: ")
        .map(|(_, m)| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| text.trim().to_string());
    if let Some((line, column)) = pos {
        return (Some(line), column, message);
    }
    // regorus drops the message of an error it places past the last line: keep at least the line.
    let past_end = text
        .split("invalid line ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok());
    match past_end {
        Some(line) => (Some(line), None, "unexpected end of the source (a closing `}` or quote missing?)".into()),
        None => (None, None, message),
    }
}

fn invalid(e: &anyhow::Error) -> CompileError {
    // The chain: regorus sometimes wraps the positioned error in context.
    let text = format!("{e:#}");
    let (line, column, message) = locate(&text);
    CompileError::Invalid { line, column, message }
}

/// How far into the source an error is: the parse that got further is the likelier dialect.
fn progress(e: &CompileError) -> (u32, u32) {
    match e {
        CompileError::Invalid { line, column, .. } => (line.unwrap_or(0), column.unwrap_or(0)),
        _ => (0, 0),
    }
}

/// Parses, checks and prepares `source`. Tries Rego v1, then v0; when both fail, the error of the
/// parse that got further into the source is the one reported.
pub fn compile(source: &str) -> Result<Compiled, CompileError> {
    compile_as(source, None)
}

/// Like `compile`, in a known dialect (the one recorded when the policy was saved).
pub fn compile_as(source: &str, dialect: Option<Dialect>) -> Result<Compiled, CompileError> {
    if source.len() > MAX_REGO_BYTES {
        return Err(CompileError::TooLarge { bytes: source.len() });
    }
    let dialects: &[Dialect] = match dialect {
        Some(Dialect::V1) => &[Dialect::V1],
        Some(Dialect::V0) => &[Dialect::V0],
        None => &[Dialect::V1, Dialect::V0],
    };
    let mut first_error: Option<CompileError> = None;
    for &d in dialects {
        let mut e = engine(d);
        match e.add_policy(SOURCE_NAME.to_string(), source.to_string()) {
            Ok(package) => return prepare(e, package, d),
            Err(err) => {
                let err = invalid(&err);
                first_error = match first_error {
                    Some(prev) if progress(&prev) >= progress(&err) => Some(prev),
                    _ => Some(err),
                };
            }
        }
    }
    Err(first_error.unwrap_or(CompileError::Invalid { line: None, column: None, message: "empty policy".into() }))
}

/// Checks the module defines a decision rule and runs the analysis regorus does before the first
/// evaluation (unsafe variables, unknown functions, recursion), so those errors surface on save.
fn prepare(mut e: Engine, package: String, dialect: Dialect) -> Result<Compiled, CompileError> {
    let declared = |e: &Engine, rule: &str| e.has_declared_rule_rooted_at(SOURCE_NAME, rule).unwrap_or(false);
    let has_deny = declared(&e, "deny");
    let has_allow = declared(&e, "allow");
    if !has_deny && !has_allow {
        return Err(CompileError::NoDecisionRule { package });
    }
    e.set_input(Value::new_object());
    let first = if has_deny { RuleName::Deny } else { RuleName::Allow };
    e.eval_rule(format!("{package}.{}", first.as_str())).map_err(|err| invalid(&err))?;
    Ok(Compiled { engine: e, package, dialect, has_deny, has_allow })
}

impl Compiled {
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn package(&self) -> &str {
        &self.package
    }

    /// The verdict of each decision rule the module defines, for `input`.
    pub fn evaluate(&self, input: &Value) -> Vec<RuleOutcome> {
        let mut e = self.engine.clone();
        e.set_input(input.clone());
        let mut out = Vec::with_capacity(2);
        if self.has_deny {
            let v = e.eval_rule(format!("{}.deny", self.package));
            out.push(judge_deny(v));
        }
        if self.has_allow {
            let v = e.eval_rule(format!("{}.allow", self.package));
            out.push(judge_allow(v));
        }
        out
    }
}

/// What one rule said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    pub rule: RuleName,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

/// A failed evaluation (time limit, conflicting outputs) denies: a guard that cannot decide must
/// not wave a destructive action through.
fn failed(rule: RuleName, e: &anyhow::Error) -> RuleOutcome {
    let (_, _, message) = locate(&format!("{e:#}"));
    RuleOutcome { rule, verdict: Verdict::Deny, reasons: vec![format!("evaluation failed: {message}")] }
}

fn reason_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.to_json_str().unwrap_or_else(|_| "denied".into()),
    }
}

fn judge_deny(v: anyhow::Result<Value>) -> RuleOutcome {
    let rule = RuleName::Deny;
    let v = match v {
        Ok(v) => v,
        Err(e) => return failed(rule, &e),
    };
    let reasons: Vec<String> = match &v {
        Value::Set(s) => s.iter().map(reason_text).collect(),
        Value::Array(a) => a.iter().map(reason_text).collect(),
        Value::Bool(true) => vec!["denied".into()],
        Value::String(s) if !s.is_empty() => vec![s.to_string()],
        _ => Vec::new(),
    };
    let verdict = if reasons.is_empty() { Verdict::Allow } else { Verdict::Deny };
    RuleOutcome { rule, verdict, reasons }
}

fn judge_allow(v: anyhow::Result<Value>) -> RuleOutcome {
    let rule = RuleName::Allow;
    match v {
        Err(e) => failed(rule, &e),
        Ok(Value::Undefined) => RuleOutcome { rule, verdict: Verdict::NotApplicable, reasons: Vec::new() },
        Ok(Value::Bool(true)) => RuleOutcome { rule, verdict: Verdict::Allow, reasons: Vec::new() },
        Ok(Value::Bool(false)) => RuleOutcome { rule, verdict: Verdict::Deny, reasons: vec!["allow is false".into()] },
        Ok(other) => RuleOutcome {
            rule,
            verdict: Verdict::Deny,
            reasons: vec![format!("allow is not a boolean: {}", reason_text(&other))],
        },
    }
}

/// A compiled, enabled-or-named policy with what decides where it applies.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    pub id: String,
    pub name: String,
    /// Empty: applies everywhere.
    pub vni_ids: Vec<String>,
    pub compiled: Compiled,
}

impl LoadedPolicy {
    /// A bound policy applies only when the input names one of its VNIs (`input.vni_id` or
    /// `input.asset.vni_id`).
    pub fn applies_to(&self, input: &serde_json::Value) -> bool {
        if self.vni_ids.is_empty() {
            return true;
        }
        let named = [&input["vni_id"], &input["asset"]["vni_id"]];
        named.iter().filter_map(|v| v.as_str()).any(|v| self.vni_ids.iter().any(|b| b == v))
    }
}

/// One line of an evaluation's explanation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Decision {
    pub policy_id: String,
    pub policy_name: String,
    pub rule: RuleName,
    pub decision: Verdict,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overall {
    Allow,
    Deny,
}

/// The answer for one input: overall result and every rule's decision, in evaluation order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Evaluation {
    pub result: Overall,
    pub decisions: Vec<Decision>,
}

impl Evaluation {
    /// The first policy that denied: its id, name and every reason it gave.
    pub fn denial(&self) -> Option<(String, String, Vec<String>)> {
        let first = self.decisions.iter().find(|d| d.decision == Verdict::Deny)?;
        let reasons = self
            .decisions
            .iter()
            .filter(|d| d.policy_id == first.policy_id && d.decision == Verdict::Deny)
            .flat_map(|d| d.reasons.iter().cloned())
            .collect();
        Some((first.policy_id.clone(), first.policy_name.clone(), reasons))
    }
}

/// Evaluates `policies` (already in order) against `input`. Deny wins; none applicable: allow.
pub fn evaluate(policies: &[LoadedPolicy], input: &serde_json::Value) -> Evaluation {
    let rego_input = Value::from(input.clone());
    let mut decisions = Vec::new();
    for p in policies {
        let decision = |rule: RuleName, verdict: Verdict, reasons: Vec<String>| Decision {
            policy_id: p.id.clone(),
            policy_name: p.name.clone(),
            rule,
            decision: verdict,
            reasons,
        };
        if !p.applies_to(input) {
            let why = format!("bound to VNIs {} and the input names none of them", p.vni_ids.join(", "));
            for rule in p.compiled.rules() {
                decisions.push(decision(rule, Verdict::NotApplicable, vec![why.clone()]));
            }
            continue;
        }
        for o in p.compiled.evaluate(&rego_input) {
            decisions.push(decision(o.rule, o.verdict, o.reasons));
        }
    }
    let result = if decisions.iter().any(|d| d.decision == Verdict::Deny) { Overall::Deny } else { Overall::Allow };
    Evaluation { result, decisions }
}

impl Compiled {
    fn rules(&self) -> Vec<RuleName> {
        let mut r = Vec::with_capacity(2);
        if self.has_deny {
            r.push(RuleName::Deny);
        }
        if self.has_allow {
            r.push(RuleName::Allow);
        }
        r
    }
}

/// The compiled enabled policies of one revision, shared by every evaluation until it changes.
#[derive(Debug, Default)]
pub struct PolicySet {
    pub revision: i64,
    pub policies: Vec<LoadedPolicy>,
}

/// The per-appliance cache of the compiled set. Readers take the current `Arc` (a brief read
/// lock); a reload swaps it. `reload` makes concurrent misses compile once.
#[derive(Default)]
pub struct PolicyCache {
    current: std::sync::RwLock<Option<Arc<PolicySet>>>,
    pub reload: tokio::sync::Mutex<()>,
}

impl PolicyCache {
    /// The cached set if it is at `revision`.
    pub fn at(&self, revision: i64) -> Option<Arc<PolicySet>> {
        let guard = self.current.read().ok()?;
        guard.as_ref().filter(|s| s.revision == revision).cloned()
    }

    pub fn store(&self, set: Arc<PolicySet>) {
        if let Ok(mut guard) = self.current.write() {
            *guard = Some(set);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../policies/examples/production-maintenance-window.rego");

    fn loaded(name: &str, src: &str, vnis: &[&str]) -> LoadedPolicy {
        LoadedPolicy {
            id: format!("pol_{name}"),
            name: name.into(),
            vni_ids: vnis.iter().map(|s| s.to_string()).collect(),
            compiled: compile(src).expect("compiles"),
        }
    }

    fn wipe_input(tags: &[&str], weekday: &str, hour: u32) -> serde_json::Value {
        serde_json::json!({
            "action": "wipe",
            "asset": {"id": "ast_1", "name": "node-1", "tags": tags, "state": "provisioned"},
            "actor": {"type": "user", "id": "usr_1", "name": "admin", "role": "admin"},
            "time": {"now": "2026-11-21T03:00:00Z", "weekday": weekday, "hour": hour, "minute": 0}
        })
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let src = "package p\n\ndeny contains msg if {\n  msg := \"x\"\n  input.a == \n}\n";
        match compile(src) {
            Err(CompileError::Invalid { line: Some(line), message, .. }) => {
                assert!((5..=6).contains(&line), "line {line}: {message}");
                assert!(!message.is_empty());
            }
            other => panic!("expected a positioned error, got {other:?}"),
        }
    }

    #[test]
    fn positions_are_read_from_regorus_error_text() {
        let text = "\n--> policy.rego:12:7\n   |\n12 |   x := \n   |       ^\nerror: expecting expression";
        assert_eq!(locate(text), (Some(12), Some(7), "expecting expression".into()));
        assert_eq!(locate("policy.rego: invalid line 9 specified").0, Some(9));
        assert_eq!(locate("execution exceeded time limit"), (None, None, "execution exceeded time limit".into()));
    }

    #[test]
    fn errors_at_the_end_of_the_source_have_a_line() {
        for src in [
            "package p\nallow if {\n input.x == 1\n",
            "package p\nallow if {\n input.x == 1",
            "package p\ndeny contains \"x",
        ] {
            match compile(src) {
                Err(CompileError::Invalid { line: Some(line), message, .. }) => {
                    assert!((2..=4).contains(&line), "{src:?}: line {line}: {message}");
                }
                other => panic!("{src:?}: expected a positioned error, got {other:?}"),
            }
        }
    }

    #[test]
    fn v0_syntax_is_accepted() {
        let c = compile("package kairos\n\ndefault allow = false\n\nallow {\n input.vni == \"corporate\"\n}\n")
            .expect("v0 compiles");
        assert_eq!(c.dialect(), Dialect::V0);
        let c = compile("package p\ndeny contains \"no\" if input.x == 1\n").expect("v1 compiles");
        assert_eq!(c.dialect(), Dialect::V1);
    }

    #[test]
    fn a_module_without_decision_rules_is_refused() {
        assert_eq!(
            compile("package p\nfoo := 1\n").unwrap_err(),
            CompileError::NoDecisionRule { package: "data.p".into() }
        );
    }

    #[test]
    fn oversized_sources_are_refused() {
        let src = format!("package p\n# {}\nallow := true\n", "x".repeat(MAX_REGO_BYTES));
        assert!(matches!(compile(&src), Err(CompileError::TooLarge { .. })));
    }

    #[test]
    fn unknown_functions_are_caught_on_save() {
        assert!(matches!(
            compile("package p\ndeny contains m if { m := no_such_fn(1) }\n"),
            Err(CompileError::Invalid { .. })
        ));
    }

    #[test]
    fn the_example_denies_production_wipes_outside_the_window() {
        let p = [loaded("prod-window", EXAMPLE, &[])];
        let outside = evaluate(&p, &wipe_input(&["production"], "monday", 14));
        assert_eq!(outside.result, Overall::Deny, "{outside:?}");
        let (_, name, reasons) = outside.denial().expect("a denial");
        assert_eq!(name, "prod-window");
        assert!(reasons.iter().any(|r| r.contains("maintenance window")), "{reasons:?}");
        assert_eq!(evaluate(&p, &wipe_input(&["production"], "saturday", 3)).result, Overall::Allow);
        assert_eq!(evaluate(&p, &wipe_input(&["production"], "saturday", 6)).result, Overall::Deny);
        assert_eq!(evaluate(&p, &wipe_input(&["staging"], "monday", 14)).result, Overall::Allow);
        let mut provision = wipe_input(&["production"], "monday", 14);
        provision["action"] = "provision".into();
        assert_eq!(evaluate(&p, &provision).result, Overall::Allow);
    }

    #[test]
    fn allow_false_denies_and_undefined_is_not_applicable() {
        let p = [loaded("gate", "package g\ndefault allow := false\nallow if input.ok\n", &[])];
        let e = evaluate(&p, &serde_json::json!({"ok": false}));
        assert_eq!(e.result, Overall::Deny);
        assert_eq!(e.decisions[0].rule, RuleName::Allow);
        assert_eq!(evaluate(&p, &serde_json::json!({"ok": true})).result, Overall::Allow);
        let p = [loaded("maybe", "package m\nallow if input.ok\n", &[])];
        let e = evaluate(&p, &serde_json::json!({}));
        assert_eq!(e.result, Overall::Allow);
        assert_eq!(e.decisions[0].decision, Verdict::NotApplicable);
    }

    #[test]
    fn vni_bound_policies_apply_only_to_their_vnis() {
        let p = [loaded("bound", "package b\ndeny contains \"no\" if true\n", &["vni_a"])];
        assert_eq!(evaluate(&p, &serde_json::json!({})).result, Overall::Allow);
        assert_eq!(evaluate(&p, &serde_json::json!({"vni_id": "vni_b"})).result, Overall::Allow);
        assert_eq!(evaluate(&p, &serde_json::json!({"vni_id": "vni_a"})).result, Overall::Deny);
        assert_eq!(evaluate(&p, &serde_json::json!({"asset": {"vni_id": "vni_a"}})).result, Overall::Deny);
    }

    #[test]
    fn runaway_policies_fail_closed() {
        // Harmless on save (empty input); ~10^8 loop steps once `input.go` is set.
        let src = "package r\ndeny contains \"x\" if {\n input.go\n some i in numbers.range(1, 10000)\n some j in numbers.range(1, 10000)\n i * j < 0\n}\n";
        let p = [loaded("runaway", src, &[])];
        let started = std::time::Instant::now();
        let e = evaluate(&p, &serde_json::json!({"go": true}));
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert_eq!(e.result, Overall::Deny, "{e:?}");
        assert!(e.decisions[0].reasons[0].starts_with("evaluation failed"), "{e:?}");
    }
}

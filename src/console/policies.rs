//! `/policies`: the Rego policies: list, editor (create and update), enable/disable, delete, and
//! an evaluate panel that asks the same question as `POST /api/v1/policies/evaluate`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::form::{FormData, Posted};
use super::list::{Pager, page_request, query, with_status};
use super::render::{self, Layout};
use super::session::Session;
use crate::app::App;
use crate::app::policies::{CreatePolicy, DEFAULT_PRIORITY, EvaluateRequest, PolicyView, UpdatePolicy};
use crate::error::Error;
use crate::policy::{Evaluation, Overall, Verdict};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/policies", get(list))
        .route("/policies/new", get(new_form).post(create))
        .route("/policies/{id}", get(detail).post(update))
        .route("/policies/{id}/enabled", post(set_enabled))
        .route("/policies/{id}/delete", post(delete))
        .route("/policies/{id}/evaluate", post(evaluate))
}

/// What a new policy starts from: a working module the admin edits.
const EXAMPLE_REGO: &str = r#"package ironbay.example

# Refuse to wipe machines tagged "production".
deny contains msg if {
    input.action == "wipe"
    "production" in input.asset.tags
    msg := sprintf("%v is a production machine", [input.asset.name])
}
"#;

const ACTIONS: [&str; 5] = ["wipe", "provision", "power", "connect", "delete"];

/// The editor's fields as typed.
#[derive(Debug, Clone, Default)]
struct Editor {
    name: String,
    description: String,
    priority: String,
    rego: String,
    vni_ids: String,
    enabled: bool,
}

impl Editor {
    fn of(p: &PolicyView) -> Editor {
        Editor {
            name: p.name.clone(),
            description: p.description.clone(),
            priority: p.priority.to_string(),
            rego: p.rego.clone(),
            vni_ids: p.vni_ids.join(", "),
            enabled: p.enabled,
        }
    }

    fn from_form(f: &FormData) -> Editor {
        Editor {
            name: f.text("name"),
            description: f.raw("description").unwrap_or_default().trim().to_string(),
            priority: f.text("priority"),
            // The source as typed, to the byte: a compile error's line and column refer to it.
            rego: f.raw("rego").unwrap_or_default().replace("\r\n", "\n"),
            vni_ids: f.text("vni_ids"),
            enabled: f.checked("enabled"),
        }
    }

    fn vni_list(&self) -> Vec<String> {
        self.vni_ids.split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    }

    /// The priority field: empty means the default; anything else must be a number.
    fn priority(&self) -> Result<Option<i64>, Error> {
        if self.priority.is_empty() {
            return Ok(None);
        }
        self.priority.parse::<i64>().map(Some).map_err(|_| {
            Error::invalid_field("priority", format!("priority must be a whole number, got `{}`", self.priority))
        })
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/policy_list.html")]
struct ListPage {
    l: Layout,
    policies: Vec<PolicyView>,
    pager: Pager,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/policy_edit.html")]
struct EditPage {
    l: Layout,
    /// None: a new policy.
    policy: Option<PolicyView>,
    e: Editor,
    error: Option<String>,
    eval_input: String,
    eval_all: bool,
    eval_error: Option<String>,
    evaluation: Option<Evaluation>,
    default_priority: i64,
}

impl EditPage {
    fn verdict(v: &Verdict) -> &'static str {
        match v {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::NotApplicable => "not applicable",
        }
    }

    fn overall(o: &Overall) -> &'static str {
        match o {
            Overall::Allow => "allow",
            Overall::Deny => "deny",
        }
    }
}

/// An input document like the guard's, for the action the policy's source talks about (the
/// first of the known actions it names in quotes; `wipe` otherwise).
fn example_input(rego: &str) -> String {
    let action = ACTIONS.iter().find(|a| rego.contains(&format!("\"{a}\""))).copied().unwrap_or("wipe");
    let doc = serde_json::json!({
        "action": action,
        "asset": {"id": "ast_example", "name": "node-1", "tags": ["production"], "state": "provisioned"},
        "actor": {"type": "user", "id": "usr_example", "name": "admin", "role": "admin"}
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

async fn list(State(app): State<App>, session: Session, RawQuery(raw): RawQuery) -> Response {
    let page = page_request(&query(&raw));
    match app.policy_list(&session.actor, page).await {
        Ok(p) => ListPage {
            l: Layout::new(&session, "Policies", "policies"),
            pager: Pager::filtered(page, p.total, "/policies", &[]),
            policies: p.items,
        }
        .into_response(),
        Err(e) => render::error_response(&session, &e),
    }
}

fn edit_page(session: &Session, policy: Option<PolicyView>, e: Editor) -> EditPage {
    let title = policy.as_ref().map_or_else(|| "New policy".to_string(), |p| format!("Policy {}", p.name));
    EditPage {
        l: Layout::new(session, title, "policies"),
        eval_input: example_input(&e.rego),
        policy,
        e,
        error: None,
        eval_all: false,
        eval_error: None,
        evaluation: None,
        default_priority: DEFAULT_PRIORITY,
    }
}

async fn new_form(session: Session) -> Response {
    if !session.can(crate::model::Scope::PoliciesWrite) {
        return render::error_response(
            &session,
            &Error::forbidden("INSUFFICIENT_SCOPE", "missing permission: policies:write"),
        );
    }
    let e = Editor {
        rego: EXAMPLE_REGO.into(),
        enabled: true,
        priority: DEFAULT_PRIORITY.to_string(),
        ..Editor::default()
    };
    edit_page(&session, None, e).into_response()
}

/// The editor again with the error next to it and everything typed kept.
fn refused(session: &Session, policy: Option<PolicyView>, e: Editor, err: &Error) -> Response {
    if matches!(err, Error::Forbidden { .. } | Error::Unauthenticated { .. }) {
        return render::error_response(session, err);
    }
    let mut page = edit_page(session, policy, e);
    page.error = Some(render::message(err));
    with_status(page, crate::http::error::status(err))
}

async fn create(State(app): State<App>, Posted { session, form }: Posted) -> Response {
    let e = Editor::from_form(&form);
    let priority = match e.priority() {
        Ok(p) => p,
        Err(err) => return refused(&session, None, e, &err),
    };
    let req = CreatePolicy {
        name: e.name.clone(),
        description: Some(e.description.clone()),
        rego: e.rego.clone(),
        enabled: Some(e.enabled),
        priority,
        vni_ids: e.vni_list(),
    };
    match app.policy_create(&session.actor, req).await {
        Ok(p) => render::done(&format!("/policies/{}", p.id), &format!("Created policy {}", p.name)),
        Err(err) => refused(&session, None, e, &err),
    }
}

async fn detail(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    match app.policy_get(&session.actor, &id).await {
        Ok(p) => {
            let e = Editor::of(&p);
            edit_page(&session, Some(p), e).into_response()
        }
        Err(e) => render::error_response(&session, &e),
    }
}

async fn update(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let current = match app.policy_get(&session.actor, &id).await {
        Ok(p) => p,
        Err(e) => return render::error_response(&session, &e),
    };
    let mut e = Editor::from_form(&form);
    // Enabling is its own button: the editor keeps the current state.
    e.enabled = current.enabled;
    let priority = match e.priority() {
        Ok(p) => p,
        Err(err) => return refused(&session, Some(current), e, &err),
    };
    let req = UpdatePolicy {
        name: Some(e.name.clone()),
        description: Some(e.description.clone()),
        rego: Some(e.rego.clone()),
        enabled: None,
        priority: Some(priority.unwrap_or(DEFAULT_PRIORITY)),
        vni_ids: Some(e.vni_list()),
    };
    match app.policy_update(&session.actor, &id, req).await {
        Ok(p) => render::done(&format!("/policies/{}", p.id), &format!("Saved policy {}", p.name)),
        Err(err) => refused(&session, Some(current), e, &err),
    }
}

async fn set_enabled(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let enabled = form.get("enabled") == Some("true");
    let req = UpdatePolicy {
        name: None,
        description: None,
        rego: None,
        enabled: Some(enabled),
        priority: None,
        vni_ids: None,
    };
    match app.policy_update(&session.actor, &id, req).await {
        Ok(p) => {
            let what = if enabled { "Enabled" } else { "Disabled" };
            render::done(&format!("/policies/{}", p.id), &format!("{what} policy {}", p.name))
        }
        Err(e) => render::error_response(&session, &e),
    }
}

async fn delete(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    let name = match app.policy_get(&session.actor, &id).await {
        Ok(p) => p.name,
        Err(e) => return render::error_response(&session, &e),
    };
    match app.policy_delete(&session.actor, &id).await {
        Ok(()) => render::done("/policies", &format!("Deleted policy {name}")),
        Err(e) => render::error_response(&session, &e),
    }
}

async fn evaluate(State(app): State<App>, Path(id): Path<String>, Posted { session, form }: Posted) -> Response {
    let policy = match app.policy_get(&session.actor, &id).await {
        Ok(p) => p,
        Err(e) => return render::error_response(&session, &e),
    };
    let e = Editor::of(&policy);
    let mut page = edit_page(&session, Some(policy), e);
    page.eval_input = form.raw("input").unwrap_or_default().to_string();
    page.eval_all = form.checked("all");
    let input = match serde_json::from_str::<serde_json::Value>(&page.eval_input) {
        Ok(v) => v,
        Err(err) => {
            page.eval_error = Some(format!("The input is not valid JSON: {err}."));
            return with_status(page, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let req = EvaluateRequest { policy_id: (!page.eval_all).then(|| id.clone()), input };
    match app.policy_evaluate(&session.actor, req).await {
        Ok(ev) => {
            page.evaluation = Some(ev);
            page.into_response()
        }
        Err(err @ (Error::Forbidden { .. } | Error::Unauthenticated { .. })) => render::error_response(&session, &err),
        Err(err) => {
            page.eval_error = Some(render::message(&err));
            with_status(page, crate::http::error::status(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_input_follows_the_policy_action() {
        assert!(example_input("input.action == \"power\"").contains("\"action\": \"power\""));
        assert!(example_input("package x").contains("\"action\": \"wipe\""));
        let f = FormData::parse(b"priority=abc&vni_ids=vni_a%2C+vni_b");
        let e = Editor::from_form(&f);
        assert!(e.priority().is_err());
        assert_eq!(e.vni_list(), vec!["vni_a", "vni_b"]);
    }
}

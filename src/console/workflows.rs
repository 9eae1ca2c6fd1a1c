//! Console pages: a workflow (`/workflows/{id}`): its steps with their state, times, live
//! progress and logs, and the retry and cancel actions.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::form::Posted;
use super::render::{self, Layout};
use super::session::Session;
use crate::app::App;
use crate::app::workflows::{StepView, WorkflowView};
use crate::error::Error;
use crate::workflow::{StepStatus, WorkflowKind, WorkflowState};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/workflows/{id}", get(detail))
        .route("/workflows/{id}/retry", post(retry))
        .route("/workflows/{id}/cancel", post(cancel))
}

/// How far a long step is: from the agent's latest progress line.
struct Progress {
    done: u64,
    total: u64,
    label: String,
}

/// A step as the page shows it.
struct StepRow {
    v: StepView,
    progress: Option<Progress>,
    log: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/workflow_detail.html")]
struct WorkflowPage {
    l: Layout,
    w: WorkflowView,
    steps: Vec<StepRow>,
    error: Option<String>,
}

impl WorkflowPage {
    fn can_retry(&self) -> bool {
        self.w.state == WorkflowState::Failed
    }

    fn can_cancel(&self) -> bool {
        self.w.state.is_active() && !self.w.cancel_requested
    }

    /// Where the subject's page is: an asset's, or a cluster's for a cluster workflow.
    fn subject_href(&self) -> String {
        if self.w.kind == WorkflowKind::ClusterCreate {
            format!("/clusters/{}", self.w.asset_id)
        } else {
            format!("/assets/{}", self.w.asset_id)
        }
    }

    fn percent(&self, p: &Progress) -> u64 {
        render::percent(p.done, p.total)
    }

    fn bytes(&self, n: &u64) -> String {
        render::bytes(*n)
    }

    fn error_text(&self, e: &Value) -> String {
        match e.get("message").and_then(Value::as_str) {
            Some(m) => match e.get("code").and_then(Value::as_str) {
                Some(c) => format!("{m} ({c})"),
                None => m.to_string(),
            },
            None => e.to_string(),
        }
    }
}

/// A progress line (`{"bytes_done", "bytes_total", …}`), if `line` is one.
fn progress_of(line: &Value) -> Option<Progress> {
    let done = line.get("bytes_done")?.as_u64()?;
    let total = line.get("bytes_total")?.as_u64()?;
    let mut label = String::new();
    for key in ["step", "disk"] {
        if let Some(s) = line.get(key).and_then(Value::as_str) {
            if !label.is_empty() {
                label.push(' ');
            }
            label.push_str(s);
        }
    }
    Some(Progress { done, total, label })
}

/// A stored log line as one line of text: the engine's notes as written, the agent's lines as
/// their message or, failing that, their JSON.
fn log_text(line: &Value) -> String {
    let at = line.get("at").and_then(Value::as_str).unwrap_or_default();
    let body = if let Some(n) = line.get("note").and_then(Value::as_str) {
        n.to_string()
    } else if let Some(m) = line.get("message").or_else(|| line.get("msg")).and_then(Value::as_str) {
        m.to_string()
    } else if let Some(p) = progress_of(line) {
        format!("{} {} / {}", p.label, render::bytes(p.done), render::bytes(p.total))
    } else {
        let mut rest = line.clone();
        if let Some(o) = rest.as_object_mut() {
            o.remove("at");
        }
        rest.to_string()
    };
    if at.is_empty() { body } else { format!("{at}  {body}") }
}

fn page(app: &App, session: &Session, w: WorkflowView, error: Option<String>) -> WorkflowPage {
    let mut w = w;
    let views = std::mem::take(&mut w.steps);
    let steps = views
        .into_iter()
        .map(|v| {
            let lines: Vec<Value> = v.log.as_array().cloned().unwrap_or_default();
            // A running step's bar: this process's latest line, else the last one stored.
            let progress = if v.status == StepStatus::Running || v.status == StepStatus::Waiting {
                app.live
                    .latest_progress(&w.id, v.index)
                    .as_ref()
                    .and_then(progress_of)
                    .or_else(|| lines.iter().rev().find_map(progress_of))
            } else {
                None
            };
            StepRow { log: lines.iter().map(log_text).collect(), progress, v }
        })
        .collect();
    let title = format!("{} workflow {}", w.kind, w.id);
    WorkflowPage { l: Layout::new(session, title, "assets"), w, steps, error }
}

async fn detail(State(app): State<App>, session: Session, Path(id): Path<String>) -> Response {
    match app.workflow_get(&session.actor, &id).await {
        Ok(w) => page(&app, &session, w, None).into_response(),
        Err(e) => render::error_response(&session, &e),
    }
}

/// The workflow page with a refused action's message, answered with the error's status.
async fn refused(app: &App, session: &Session, id: &str, e: Error) -> Response {
    let status = crate::http::error::status(&e);
    match app.workflow_get(&session.actor, id).await {
        Ok(w) => {
            let mut resp = page(app, session, w, Some(render::message(&e))).into_response();
            *resp.status_mut() = status;
            resp
        }
        Err(_) => render::error_response(session, &e),
    }
}

async fn retry(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    match app.workflow_retry(&session.actor, &id).await {
        Ok(w) => render::done(&format!("/workflows/{}", w.id), "Retrying from the failed step."),
        Err(e) => refused(&app, &session, &id, e).await,
    }
}

async fn cancel(State(app): State<App>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Response {
    match app.workflow_cancel(&session.actor, &id).await {
        Ok(w) => {
            let notice = if w.state == WorkflowState::Cancelled {
                "Workflow cancelled."
            } else {
                "Cancel requested: the workflow stops when its running step ends."
            };
            render::done(&format!("/workflows/{}", w.id), notice)
        }
        Err(e) => refused(&app, &session, &id, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_and_log_lines_read_well() {
        let line = json!({"step": "zero", "disk": "/dev/sda", "bytes_done": 512, "bytes_total": 2048, "at": "t"});
        let p = progress_of(&line).expect("a progress line");
        assert_eq!((p.done, p.total, p.label.as_str()), (512, 2048, "zero /dev/sda"));
        assert_eq!(log_text(&line), "t  zero /dev/sda 512 B / 2.0 KiB");
        assert_eq!(log_text(&json!({"at": "t", "note": "BMC: power off"})), "t  BMC: power off");
        assert!(progress_of(&json!({"note": "x"})).is_none());
    }
}

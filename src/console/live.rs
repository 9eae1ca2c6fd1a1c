//! `GET /console/events`: server-sent events telling open pages what changed, so they re-fetch
//! the part of the page showing it. Events name what changed (topic, id, action), never its
//! content: a page fetches content through its own, permission-checked route. Each user gets
//! only the topics their role may read.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::broadcast::error::RecvError;

use super::session::Session;
use crate::app::App;
use crate::live::Change;
use crate::model::Scope;

pub fn routes() -> Router<App> {
    Router::new().route("/console/events", get(events))
}

/// The scope needed to hear about a change to `topic`.
fn scope_for(topic: &str) -> Scope {
    match topic {
        "asset" | "image" => Scope::AssetsRead,
        "workflow" => Scope::WorkflowsRead,
        "cluster" => Scope::ClustersRead,
        "vni" => Scope::VnisRead,
        "psk" => Scope::PsksRead,
        "device" | "enroll_token" | "enrollment_token" => Scope::DevicesRead,
        "policy" => Scope::PoliciesRead,
        "webhook" => Scope::WebhooksRead,
        "user" | "api_key" | "session" => Scope::Admin,
        _ => Scope::AuditRead,
    }
}

async fn events(axum::extract::State(app): axum::extract::State<App>, session: Session) -> Response {
    let mut rx = app.live.subscribe();
    let stream = async_stream(move |tx| async move {
        loop {
            let change: Change = match rx.recv().await {
                Ok(c) => c,
                // Too slow to keep up: the page reloads its live parts once instead.
                Err(RecvError::Lagged(_)) => {
                    Change { topic: "*".into(), id: None, action: "reload".into(), seq: None, asset_id: None }
                }
                Err(RecvError::Closed) => return,
            };
            if change.topic != "*" && !session.can(scope_for(&change.topic)) {
                continue;
            }
            let data = serde_json::to_string(&change).unwrap_or_default();
            if tx.send(Ok(Event::default().event("change").data(data))).await.is_err() {
                return; // the page was closed
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// A stream fed by a task: the task ends when the client goes away (its sends fail).
fn async_stream<F, Fut>(f: F) -> tokio_stream::wrappers::ReceiverStream<Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

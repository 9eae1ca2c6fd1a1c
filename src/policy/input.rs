//! The input document the guard hands to policies. Its shape is part of the API (policies are
//! written against it), documented in ARCHITECTURE.md and on `POST /api/v1/policies/evaluate`:
//!
//! ```json
//! {"action": "wipe",
//!  "asset": {"id": "ast_…", "name": "node-1", "tags": ["production"], "state": "provisioned", "vni_id": "vni_…"},
//!  "vni_id": "vni_…",
//!  "actor": {"type": "user", "id": "usr_…", "name": "admin", "role": "admin"},
//!  "time": {"now": "2026-11-21T03:00:00Z", "weekday": "saturday", "hour": 3, "minute": 0}}
//! ```
//! `asset.vni_id` and `vni_id` appear only when known; `time` is UTC.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::{Map, Value, json};

use crate::auth::{Actor, Principal};

/// An action the appliance asks policies about before doing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Wipe,
    Provision,
    Power,
    Connect,
    /// Removing an asset from the registry (`DELETE /api/v1/assets/{id}`).
    Delete,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Wipe => "wipe",
            Action::Provision => "provision",
            Action::Power => "power",
            Action::Connect => "connect",
            Action::Delete => "delete",
        }
    }
}

/// The asset an action is about, as policies see it.
#[derive(Debug, Clone)]
pub struct AssetSubject {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub state: String,
    pub vni_id: Option<String>,
}

/// What the action is applied to.
#[derive(Debug, Clone)]
pub enum GuardSubject {
    Asset(AssetSubject),
    /// Something on a network segment (a device connecting, a PSK used).
    Vni {
        vni_id: String,
    },
}

fn weekday_name(d: chrono::Weekday) -> &'static str {
    use chrono::Weekday::*;
    match d {
        Mon => "monday",
        Tue => "tuesday",
        Wed => "wednesday",
        Thu => "thursday",
        Fri => "friday",
        Sat => "saturday",
        Sun => "sunday",
    }
}

/// `{"now", "weekday", "hour", "minute"}` for `t` (UTC).
pub fn time_doc(t: DateTime<Utc>) -> Value {
    json!({
        "now": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "weekday": weekday_name(t.weekday()),
        "hour": t.hour(),
        "minute": t.minute(),
    })
}

/// Completes a caller-provided `time`: fields it gives are kept, missing ones come from its `now`
/// (when it parses) or from `fallback`. An input without `time` gets the whole document.
pub fn complete_time(input: &mut Map<String, Value>, fallback: DateTime<Utc>) {
    let given = input.get("time").cloned();
    let Some(Value::Object(mut given)) = given else {
        if given.is_none() || given == Some(Value::Null) {
            input.insert("time".into(), time_doc(fallback));
        }
        return;
    };
    let base = given
        .get("now")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(fallback);
    if let Value::Object(derived) = time_doc(base) {
        for (k, v) in derived {
            given.entry(k).or_insert(v);
        }
    }
    input.insert("time".into(), Value::Object(given));
}

fn actor_doc(actor: &Actor) -> Value {
    let role = match &actor.principal {
        Some(Principal::User { role, .. }) => Some(role.as_str()),
        _ => None,
    };
    json!({"type": actor.kind(), "id": actor.id(), "name": actor.name(), "role": role})
}

/// The whole input document for `action` by `actor` on `subject` at `now`.
pub fn guard_input(actor: &Actor, action: Action, subject: &GuardSubject, now: DateTime<Utc>) -> Value {
    let mut doc = Map::new();
    doc.insert("action".into(), action.as_str().into());
    match subject {
        GuardSubject::Asset(a) => {
            let mut asset = json!({"id": a.id, "name": a.name, "tags": a.tags, "state": a.state});
            if let Some(v) = &a.vni_id {
                asset["vni_id"] = v.clone().into();
                doc.insert("vni_id".into(), v.clone().into());
            }
            doc.insert("asset".into(), asset);
        }
        GuardSubject::Vni { vni_id } => {
            doc.insert("vni_id".into(), vni_id.clone().into());
        }
    }
    doc.insert("actor".into(), actor_doc(actor));
    doc.insert("time".into(), time_doc(now));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t() -> DateTime<Utc> {
        // A Saturday.
        Utc.with_ymd_and_hms(2026, 11, 21, 3, 7, 9).single().expect("valid time")
    }

    #[test]
    fn time_document_is_utc_with_named_weekday() {
        assert_eq!(
            time_doc(t()),
            json!({"now": "2026-11-21T03:07:09Z", "weekday": "saturday", "hour": 3, "minute": 7})
        );
    }

    #[test]
    fn provided_time_is_kept_and_completed_from_its_now() {
        let mut m = Map::new();
        m.insert("time".into(), json!({"now": "2026-11-23T14:30:00Z", "hour": 99}));
        complete_time(&mut m, t());
        assert_eq!(m["time"], json!({"now": "2026-11-23T14:30:00Z", "weekday": "monday", "hour": 99, "minute": 30}));
        let mut m = Map::new();
        complete_time(&mut m, t());
        assert_eq!(m["time"], time_doc(t()));
        let mut m = Map::new();
        m.insert("time".into(), json!("not an object"));
        complete_time(&mut m, t());
        assert_eq!(m["time"], json!("not an object"), "a caller's value is never overwritten");
    }

    #[test]
    fn guard_input_has_the_documented_shape() {
        let subject = GuardSubject::Asset(AssetSubject {
            id: "ast_1".into(),
            name: "node-1".into(),
            tags: vec!["production".into()],
            state: "provisioned".into(),
            vni_id: Some("vni_1".into()),
        });
        let doc = guard_input(&Actor::system(), Action::Wipe, &subject, t());
        assert_eq!(doc["action"], "wipe");
        assert_eq!(doc["asset"]["tags"], json!(["production"]));
        assert_eq!(doc["asset"]["vni_id"], "vni_1");
        assert_eq!(doc["vni_id"], "vni_1");
        assert_eq!(doc["actor"], json!({"type": "system", "id": null, "name": null, "role": null}));
        assert_eq!(doc["time"]["weekday"], "saturday");
    }
}

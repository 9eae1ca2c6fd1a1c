//! A step's bounded log: the engine's notes and the agent's progress lines, the most recent
//! `MAX_LINES` kept (a long zero wipe sends a progress line every half second).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

const MAX_LINES: usize = 200;

#[derive(Clone, Default)]
pub struct StepLog(Arc<Mutex<VecDeque<Value>>>);

impl StepLog {
    /// Starts from what the store holds (a step resumed after a wait keeps its earlier lines).
    pub fn from_json(text: &str) -> StepLog {
        let lines: Vec<Value> = serde_json::from_str(text).unwrap_or_default();
        let log = StepLog::default();
        for l in lines {
            log.push(l);
        }
        log
    }

    fn push(&self, line: Value) {
        if let Ok(mut q) = self.0.lock() {
            if q.len() >= MAX_LINES {
                q.pop_front();
            }
            q.push_back(line);
        }
    }

    /// An engine note.
    pub fn note(&self, msg: impl Into<String>) {
        self.push(json!({"at": crate::model::now_rfc3339(), "note": msg.into()}));
    }

    /// A line the agent sent (progress or log), as it sent it.
    pub fn agent(&self, line: Value) {
        let mut line = line;
        if let Some(o) = line.as_object_mut() {
            o.insert("at".into(), json!(crate::model::now_rfc3339()));
        }
        self.push(line);
    }

    pub fn to_json(&self) -> String {
        let lines: Vec<Value> = self.0.lock().map(|q| q.iter().cloned().collect()).unwrap_or_default();
        Value::Array(lines).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_latest_lines() {
        let log = StepLog::from_json("[]");
        for i in 0..(MAX_LINES + 5) {
            log.note(format!("line {i}"));
        }
        let lines: Vec<Value> = serde_json::from_str(&log.to_json()).unwrap();
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines[0]["note"], "line 5");
        assert_eq!(StepLog::from_json("not json").to_json(), "[]");
    }
}

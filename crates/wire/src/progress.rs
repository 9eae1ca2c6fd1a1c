//! What a command writes back, one JSON object a line: any number of [`Progress`] or [`Log`]
//! lines, then exactly one [`Outcome`] line. A stream that ends without an outcome means the
//! command died (or the connection did): the appliance treats it as a failure, never a success.

use serde::{Deserialize, Serialize};

/// `{"step","disk","bytes_done","bytes_total","rate"}`: how far a long step is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// `wipe-signatures`, `zero`, `discard`, `verify`, `write`, `sync`, ...
    pub step: String,
    /// `/dev/<name>` the step works on, when it works on one.
    pub disk: Option<String>,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Bytes per second since the step started.
    pub rate: f64,
}

/// A human-readable note (e.g. why a disk was skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    pub log: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Error,
}

/// The last line of every command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub result: Status,
    /// The command's name (`wipe`, `write-image`, ...).
    pub command: String,
    /// On error: what went wrong, readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// On error: a stable code (`SHA256_MISMATCH`, `DISK_NOT_FOUND`, `SECURE_ERASE_UNSUPPORTED`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The command's result (an inventory, per-disk wipe results, the written image's hash...).
    #[serde(default)]
    pub details: serde_json::Value,
}

impl Outcome {
    pub fn ok(command: &str, details: serde_json::Value) -> Outcome {
        Outcome { result: Status::Ok, command: command.into(), message: None, code: None, details }
    }
    pub fn error(command: &str, code: &str, message: impl Into<String>, details: serde_json::Value) -> Outcome {
        Outcome {
            result: Status::Error,
            command: command.into(),
            message: Some(message.into()),
            code: Some(code.into()),
            details,
        }
    }
}

/// One line of a command's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line {
    Outcome(Outcome),
    Progress(Progress),
    Log(Log),
}

impl Line {
    pub fn parse(text: &str) -> Result<Line, serde_json::Error> {
        serde_json::from_str(text)
    }
    /// The line as written: compact JSON, no newline.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Per-disk result of a wipe (in the wipe outcome's `details.disks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskWipe {
    pub disk: String,
    pub method: String,
    /// `wiped`, `skipped` or `failed`.
    pub status: String,
    /// Why it was skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub size_bytes: u64,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// Bytes actually overwritten or discarded.
    pub bytes_wiped: u64,
    pub started_at_unix_ms: u64,
    pub finished_at_unix_ms: u64,
    pub verification: Option<Verification>,
}

/// The sampled read-back after a wipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// `zeros` (every sample must read as zeros) or `signatures` (no known signature may remain).
    pub expect: String,
    pub samples: u32,
    pub bytes_read: u64,
    pub passed: bool,
    /// Offsets of samples that failed (at most a few).
    #[serde(default)]
    pub failures: Vec<u64>,
}

/// The result of a write-image (the outcome's `details`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageWrite {
    pub disk: String,
    pub url: String,
    /// `raw`, `gzip`, `zstd` or `xz`: what the stream's magic said.
    pub format: String,
    pub sha256: String,
    /// Bytes written to the disk (after decompression).
    pub bytes_written: u64,
    /// Bytes received over HTTP.
    pub bytes_received: u64,
    pub seconds: f64,
    /// Bytes written per second.
    pub rate: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_back_as_what_they_are() {
        let p = Line::Progress(Progress {
            step: "zero".into(),
            disk: Some("/dev/vda".into()),
            bytes_done: 1,
            bytes_total: 2,
            rate: 3.5,
        });
        let o = Line::Outcome(Outcome::error("wipe", "X", "boom", serde_json::json!({"a": 1})));
        let l = Line::Log(Log { log: "skipped /dev/sr0: read-only".into() });
        for line in [p, o, l] {
            assert_eq!(Line::parse(&line.to_json()).unwrap(), line);
        }
        assert!(Line::parse("{\"nope\":1}").is_err());
    }
}

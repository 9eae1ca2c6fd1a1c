//! How long operations report: every step emits [`Line`]s through an `Emit` callback (the SSH
//! channel, or stdout on the command line). A [`Meter`] turns "n more bytes done" into progress
//! lines at most every [`INTERVAL`], plus a final one, so a 4 TB zero-fill does not flood the
//! channel and a 1 MiB one still says it finished.

use std::time::{Duration, Instant};

pub use ironbay_wire::progress::{Line, Log, Outcome, Progress};

/// Where lines go. `Send` so a blocking worker thread can own it.
pub type Emit<'a> = &'a mut (dyn FnMut(Line) + Send);

/// Least time between two progress lines of one step.
pub const INTERVAL: Duration = Duration::from_millis(500);

pub fn log(emit: Emit<'_>, text: impl Into<String>) {
    emit(Line::Log(Log { log: text.into() }));
}

/// Progress of one step over one disk.
pub struct Meter {
    step: String,
    disk: Option<String>,
    total: u64,
    done: u64,
    started: Instant,
    last: Option<Instant>,
}

impl Meter {
    pub fn new(step: &str, disk: Option<&str>, total: u64) -> Meter {
        Meter { step: step.into(), disk: disk.map(Into::into), total, done: 0, started: Instant::now(), last: None }
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Bytes per second since the step started.
    pub fn rate(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 { self.done as f64 / secs } else { 0.0 }
    }

    /// Counts `n` more bytes and emits a line if the last one is older than [`INTERVAL`] (the
    /// first call always emits, so a step is visible as soon as it starts).
    pub fn advance(&mut self, n: u64, emit: Emit<'_>) {
        self.done += n;
        let due = self.last.is_none_or(|t| t.elapsed() >= INTERVAL);
        if due {
            self.emit_now(emit);
        }
    }

    /// Emits the step's last line (call once at the end).
    pub fn finish(&mut self, emit: Emit<'_>) {
        self.emit_now(emit);
    }

    fn emit_now(&mut self, emit: Emit<'_>) {
        self.last = Some(Instant::now());
        emit(Line::Progress(Progress {
            step: self.step.clone(),
            disk: self.disk.clone(),
            bytes_done: self.done,
            bytes_total: self.total,
            rate: self.rate(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_reports_its_start_and_its_end_but_not_every_chunk() {
        let mut lines = Vec::new();
        let mut emit = |l: Line| lines.push(l);
        let mut m = Meter::new("zero", Some("/dev/x"), 1000);
        for _ in 0..100 {
            m.advance(10, &mut emit);
        }
        m.finish(&mut emit);
        assert_eq!(lines.len(), 2, "{lines:?}");
        match &lines[1] {
            Line::Progress(p) => assert_eq!((p.bytes_done, p.bytes_total), (1000, 1000)),
            other => panic!("{other:?}"),
        }
    }
}

//! Which disk a provision writes to: resolved from the agent's inventory by a stable identifier
//! (serial, WWN) or a path, or picked by a fixed rule for `auto`. A hint that matches nothing is an
//! error; there is never a fallback to another disk.

use ironbay_wire::inventory::Disk;
use serde::{Deserialize, Serialize};

use super::step::DiskHint;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenDisk {
    pub path: String,
    pub name: String,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    pub size_bytes: u64,
    /// Why this disk, in words (shown in the step's result and log).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("no disk matches {0}: the agent reports {1}")]
    NoMatch(String, String),
    #[error("{0} matches {1} disks: use a serial or WWN that names one")]
    Ambiguous(String, usize),
    #[error("{0} is {1}: images are never written to it")]
    Protected(String, &'static str),
    #[error("{0} holds {1} bytes, the image needs {2}")]
    TooSmall(String, u64, u64),
    #[error("no writable disk large enough for the image: the agent reports {0}")]
    NoneSuitable(String),
}

impl ChoiceError {
    pub fn code(&self) -> &'static str {
        match self {
            ChoiceError::NoMatch(..) | ChoiceError::NoneSuitable(_) => "DISK_NOT_FOUND",
            ChoiceError::Ambiguous(..) => "DISK_AMBIGUOUS",
            ChoiceError::Protected(..) => "DISK_PROTECTED",
            ChoiceError::TooSmall(..) => "DISK_TOO_SMALL",
        }
    }
}

fn summary(disks: &[Disk]) -> String {
    if disks.is_empty() {
        return "no disks".into();
    }
    disks
        .iter()
        .map(|d| format!("{} (serial {}, {} bytes)", d.path, d.serial.as_deref().unwrap_or("none"), d.size_bytes))
        .collect::<Vec<_>>()
        .join(", ")
}

fn chosen(d: &Disk, reason: String) -> ChosenDisk {
    ChosenDisk {
        path: d.path.clone(),
        name: d.name.clone(),
        serial: d.serial.clone(),
        wwn: d.wwn.clone(),
        model: d.model.clone(),
        size_bytes: d.size_bytes,
        reason,
    }
}

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Resolves `hint` among `disks` for an image of `image_size` bytes (when known).
pub fn choose(disks: &[Disk], hint: &DiskHint, image_size: Option<u64>) -> Result<ChosenDisk, ChoiceError> {
    let fits = |d: &Disk| image_size.is_none_or(|n| d.size_bytes >= n);
    let (label, matches): (String, Vec<&Disk>) = match hint {
        DiskHint::Auto => {
            let mut ok: Vec<&Disk> =
                disks.iter().filter(|d| d.protected_reason().is_none() && d.size_bytes > 0 && fits(d)).collect();
            ok.sort_by(|a, b| a.size_bytes.cmp(&b.size_bytes).then_with(|| a.name.cmp(&b.name)));
            let first = ok.first().ok_or_else(|| ChoiceError::NoneSuitable(summary(disks)))?;
            return Ok(chosen(
                first,
                format!(
                    "auto: {} is the smallest writable disk{} ({} bytes; ties broken by name)",
                    first.path,
                    if image_size.is_some() { " that holds the image" } else { "" },
                    first.size_bytes
                ),
            ));
        }
        DiskHint::Serial(s) => (
            format!("serial `{s}`"),
            disks.iter().filter(|d| d.serial.as_deref().is_some_and(|x| same(x, s))).collect(),
        ),
        DiskHint::Wwn(w) => {
            (format!("WWN `{w}`"), disks.iter().filter(|d| d.wwn.as_deref().is_some_and(|x| same(x, w))).collect())
        }
        DiskHint::Path(p) => {
            let want = if p.starts_with('/') { p.clone() } else { format!("/dev/{p}") };
            (format!("path `{p}`"), disks.iter().filter(|d| d.path == want).collect())
        }
    };
    match matches.as_slice() {
        [] => Err(ChoiceError::NoMatch(label, summary(disks))),
        [d] => {
            if let Some(why) = d.protected_reason() {
                return Err(ChoiceError::Protected(d.path.clone(), why));
            }
            if let Some(n) = image_size
                && d.size_bytes < n
            {
                return Err(ChoiceError::TooSmall(d.path.clone(), d.size_bytes, n));
            }
            Ok(chosen(d, format!("{label} names {}", d.path)))
        }
        many => Err(ChoiceError::Ambiguous(label, many.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(name: &str, size: u64, serial: Option<&str>) -> Disk {
        Disk {
            name: name.into(),
            path: format!("/dev/{name}"),
            size_bytes: size,
            serial: serial.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn auto_takes_the_smallest_writable_disk_that_fits_and_says_so() {
        let mut usb = disk("sda", 100, Some("USB"));
        usb.removable = true;
        let disks = vec![disk("vdb", 500, Some("B")), usb, disk("vda", 500, Some("A")), disk("vdc", 200, None)];
        let c = choose(&disks, &DiskHint::Auto, None).unwrap();
        assert_eq!(c.path, "/dev/vdc");
        assert!(c.reason.contains("smallest"), "{}", c.reason);
        // Too small for the image: the next one, and equal sizes go by name.
        assert_eq!(choose(&disks, &DiskHint::Auto, Some(300)).unwrap().path, "/dev/vda");
        assert_eq!(choose(&disks, &DiskHint::Auto, Some(600)).unwrap_err().code(), "DISK_NOT_FOUND");
    }

    #[test]
    fn a_hint_that_matches_nothing_never_falls_back() {
        let disks = vec![disk("vda", 500, Some("A")), disk("vdb", 500, Some("B"))];
        assert_eq!(choose(&disks, &DiskHint::Serial("b".into()), None).unwrap().path, "/dev/vdb");
        let e = choose(&disks, &DiskHint::Serial("C".into()), None).unwrap_err();
        assert_eq!(e.code(), "DISK_NOT_FOUND");
        assert!(e.to_string().contains("/dev/vda"), "{e}");
        assert_eq!(choose(&disks, &DiskHint::Path("vda".into()), None).unwrap().path, "/dev/vda");
        assert_eq!(choose(&disks, &DiskHint::Wwn("x".into()), None).unwrap_err().code(), "DISK_NOT_FOUND");
        assert_eq!(choose(&disks, &DiskHint::Path("/dev/vda".into()), Some(501)).unwrap_err().code(), "DISK_TOO_SMALL");
    }

    #[test]
    fn protected_and_ambiguous_disks_are_refused() {
        let mut ro = disk("sr0", 500, Some("CD"));
        ro.read_only = true;
        let disks = vec![ro, disk("vda", 500, Some("SAME")), disk("vdb", 500, Some("SAME"))];
        assert_eq!(choose(&disks, &DiskHint::Serial("CD".into()), None).unwrap_err().code(), "DISK_PROTECTED");
        assert_eq!(choose(&disks, &DiskHint::Serial("SAME".into()), None).unwrap_err().code(), "DISK_AMBIGUOUS");
    }
}

//! Option negotiation (RFC 2347 framework; `blksize` RFC 2348, `timeout`/`tsize` RFC 2349,
//! `windowsize` RFC 7440) as a pure function: the options a client asked for, the file's size and
//! the path's limit in, the transfer parameters and the OACK to send out — or the option that
//! must be refused with error 8.
//!
//! Unknown options are ignored (RFC 2347: the server simply leaves them out of the OACK).
//! Out-of-range values are refused rather than silently dropped, so a misconfigured client sees
//! why its transfer failed instead of getting 512-byte blocks.

use std::time::Duration;

pub const DEFAULT_BLKSIZE: u16 = 512;
pub const MIN_BLKSIZE: u16 = 8;
pub const MAX_BLKSIZE: u16 = 65_464;

/// What the server allows on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest block that fits the interface's MTU unfragmented (see `server::max_blksize`).
    pub max_blksize: u16,
    /// Retransmission timeout when the client does not ask for one.
    pub default_timeout: Duration,
}

/// The parameters a transfer runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub blksize: u16,
    pub windowsize: u16,
    pub timeout: Duration,
    /// Options acknowledged, in the order asked; empty: no OACK, start with DATA 1.
    pub oack: Vec<(String, String)>,
}

/// An option whose value cannot be honoured: refused with error 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub option: String,
    pub value: String,
    pub expected: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad {} value {:?} (expected {})", self.option, self.value, self.expected)
    }
}

pub fn negotiate(asked: &[(String, String)], file_size: u64, limits: Limits) -> Result<Negotiated, Refused> {
    let mut n = Negotiated { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeout: limits.default_timeout, oack: vec![] };
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in asked {
        // A repeated option: the first one counts (RFC 2347 does not say; this is what tftp-hpa does).
        if seen.contains(&name.as_str()) {
            continue;
        }
        seen.push(name);
        let refuse = |expected| Refused { option: name.clone(), value: value.clone(), expected };
        let answer = match name.as_str() {
            "blksize" => {
                let v: u16 = value
                    .parse()
                    .ok()
                    .filter(|v| (MIN_BLKSIZE..=MAX_BLKSIZE).contains(v))
                    .ok_or_else(|| refuse("8..=65464"))?;
                n.blksize = v.min(limits.max_blksize.max(MIN_BLKSIZE));
                n.blksize.to_string()
            }
            "windowsize" => {
                let v: u16 = value.parse().ok().filter(|v| *v >= 1).ok_or_else(|| refuse("1..=65535"))?;
                n.windowsize = v;
                v.to_string()
            }
            "timeout" => {
                let v: u8 = value.parse().ok().filter(|v| *v >= 1).ok_or_else(|| refuse("1..=255 seconds"))?;
                n.timeout = Duration::from_secs(v.into());
                v.to_string()
            }
            "tsize" => {
                // On a read request the client sends 0 and the server answers with the real size.
                value.parse::<u64>().map_err(|_| refuse("a byte count"))?;
                file_size.to_string()
            }
            _ => continue,
        };
        n.oack.push((name.clone(), answer));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_blksize: 1468, default_timeout: Duration::from_secs(1) };

    fn opts(o: &[(&str, &str)]) -> Vec<(String, String)> {
        o.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn no_options_means_rfc_1350_defaults_and_no_oack() {
        let n = negotiate(&[], 100, LIMITS).unwrap();
        assert_eq!((n.blksize, n.windowsize, n.timeout), (512, 1, Duration::from_secs(1)));
        assert!(n.oack.is_empty());
    }

    #[test]
    fn answers_tsize_with_the_real_size_and_clamps_blksize_to_the_path() {
        let n =
            negotiate(&opts(&[("tsize", "0"), ("blksize", "65464"), ("windowsize", "16")]), 850_528, LIMITS).unwrap();
        assert_eq!((n.blksize, n.windowsize), (1468, 16));
        assert_eq!(n.oack, opts(&[("tsize", "850528"), ("blksize", "1468"), ("windowsize", "16")]));
        let loopback = Limits { max_blksize: 65_464, ..LIMITS };
        assert_eq!(negotiate(&opts(&[("blksize", "65464")]), 1, loopback).unwrap().blksize, 65_464);
        assert_eq!(negotiate(&opts(&[("blksize", "1024")]), 1, LIMITS).unwrap().blksize, 1024);
    }

    #[test]
    fn honours_timeout_and_ignores_unknown_options() {
        let n = negotiate(&opts(&[("timeout", "3"), ("multicast", ""), ("timeout", "9")]), 1, LIMITS).unwrap();
        assert_eq!(n.timeout, Duration::from_secs(3));
        assert_eq!(n.oack, opts(&[("timeout", "3")]));
    }

    #[test]
    fn refuses_values_out_of_range() {
        for (name, value) in [
            ("blksize", "7"),
            ("blksize", "65465"),
            ("blksize", "big"),
            ("windowsize", "0"),
            ("windowsize", "65536"),
            ("timeout", "0"),
            ("timeout", "256"),
            ("tsize", "-1"),
        ] {
            let err = negotiate(&opts(&[(name, value)]), 1, LIMITS).unwrap_err();
            assert_eq!((err.option.as_str(), err.value.as_str()), (name, value));
        }
    }
}

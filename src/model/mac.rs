//! A MAC address as a type: parsed once at the edge, always printed the same way
//! (lowercase, colon-separated), so `52-54-00-AB-CD-EF` and `52:54:00:ab:cd:ef` are one machine.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a MAC address (expected six hex octets, e.g. 52:54:00:12:34:56)")]
pub struct MacParseError(pub String);

impl Mac {
    pub const fn from_octets(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }

    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl FromStr for Mac {
    type Err = MacParseError;

    /// Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-…`, `aabb.ccdd.eeff` and bare `aabbccddeeff`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        // Groups of `width` characters between `sep`s, 12 / width of them.
        let grouped =
            |sep: char, width: usize| t.split(sep).count() == 12 / width && t.split(sep).all(|g| g.len() == width);
        let shape_ok = match t.len() {
            12 => true,
            14 => grouped('.', 4),
            17 => grouped(':', 2) || grouped('-', 2),
            _ => false,
        };
        let hex: String = t.chars().filter(|c| !matches!(c, ':' | '-' | '.')).collect();
        if !shape_ok || hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(MacParseError(s.to_string()));
        }
        let mut out = [0u8; 6];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| MacParseError(s.to_string()))?;
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_every_common_spelling() {
        for s in ["52:54:00:AB:cd:ef", "52-54-00-ab-cd-ef", "5254.00ab.cdef", "525400abcdef"] {
            assert_eq!(s.parse::<Mac>().unwrap().to_string(), "52:54:00:ab:cd:ef");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "52:54:00:ab:cd", "52:54:00:ab:cd:zz", "52:54:00:ab:cd:ef:01", "5:2:5:4:0:0abcdef"] {
            assert!(s.parse::<Mac>().is_err(), "{s}");
        }
    }
}

//! TFTP packets (RFC 1350, OACK from RFC 2347) as a pure function of bytes: `Packet::parse` turns
//! a datagram into a typed packet or says why it is not one; `Packet::encode` is its inverse. No
//! I/O, no allocation beyond the owned fields, no panics on any input (see the fuzz target and
//! `tests::random_and_mutated_input_never_panics_and_round_trips`).

use std::fmt;

pub const OP_RRQ: u16 = 1;
pub const OP_WRQ: u16 = 2;
pub const OP_DATA: u16 = 3;
pub const OP_ACK: u16 = 4;
pub const OP_ERROR: u16 = 5;
pub const OP_OACK: u16 = 6;

/// The largest data block RFC 2348 allows (and so the largest DATA payload we parse).
pub const MAX_BLOCK: usize = 65_464;

/// Transfer mode of a request. `mail` is obsolete (RFC 1350) but parses, so it can be refused
/// with a proper error rather than dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Netascii,
    Octet,
    Mail,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Netascii => "netascii",
            Mode::Octet => "octet",
            Mode::Mail => "mail",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        [Mode::Netascii, Mode::Octet, Mode::Mail].into_iter().find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

/// A read or write request: file name, mode and the RFC 2347 options in the order sent. Option
/// names are lowercased (they are case-insensitive); values are kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub filename: String,
    pub mode: Mode,
    pub options: Vec<(String, String)>,
}

impl Request {
    /// The value of option `name` (lowercase), the first one if it was sent twice.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Rrq(Request),
    Wrq(Request),
    Data { block: u16, data: Vec<u8> },
    Ack(u16),
    Error { code: ErrorCode, message: String },
    Oack(Vec<(String, String)>),
}

/// TFTP error codes (RFC 1350 §5, 8 from RFC 2347). Unknown codes from peers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NotDefined,
    FileNotFound,
    AccessViolation,
    DiskFull,
    IllegalOperation,
    UnknownTransferId,
    FileExists,
    NoSuchUser,
    OptionRefused,
    Other(u16),
}

impl ErrorCode {
    pub const fn code(self) -> u16 {
        match self {
            ErrorCode::NotDefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTransferId => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::NoSuchUser => 7,
            ErrorCode::OptionRefused => 8,
            ErrorCode::Other(c) => c,
        }
    }

    pub const fn from_code(c: u16) -> ErrorCode {
        match c {
            0 => ErrorCode::NotDefined,
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTransferId,
            6 => ErrorCode::FileExists,
            7 => ErrorCode::NoSuchUser,
            8 => ErrorCode::OptionRefused,
            c => ErrorCode::Other(c),
        }
    }
}

/// Why a datagram is not a TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    TooShort,
    UnknownOpcode(u16),
    /// A string field without its terminating NUL.
    Unterminated,
    NotUtf8,
    EmptyFilename,
    UnknownMode(String),
    /// An option name without a value.
    OddOptions,
    /// Bytes after a fixed-size packet (ACK) or an oversized DATA block.
    WrongLength,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooShort => f.write_str("packet too short"),
            ParseError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            ParseError::Unterminated => f.write_str("string field not NUL-terminated"),
            ParseError::NotUtf8 => f.write_str("string field is not text"),
            ParseError::EmptyFilename => f.write_str("empty file name"),
            ParseError::UnknownMode(m) => write!(f, "unknown mode {:?}", m),
            ParseError::OddOptions => f.write_str("option without a value"),
            ParseError::WrongLength => f.write_str("wrong packet length"),
        }
    }
}

impl std::error::Error for ParseError {}

impl Packet {
    pub fn parse(bytes: &[u8]) -> Result<Packet, ParseError> {
        let (op, body) = match bytes {
            [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
            _ => return Err(ParseError::TooShort),
        };
        match op {
            OP_RRQ => parse_request(body).map(Packet::Rrq),
            OP_WRQ => parse_request(body).map(Packet::Wrq),
            OP_DATA => match body {
                [a, b, data @ ..] if data.len() <= MAX_BLOCK => {
                    Ok(Packet::Data { block: u16::from_be_bytes([*a, *b]), data: data.to_vec() })
                }
                [_, _, ..] => Err(ParseError::WrongLength),
                _ => Err(ParseError::TooShort),
            },
            OP_ACK => match body {
                [a, b] => Ok(Packet::Ack(u16::from_be_bytes([*a, *b]))),
                [_, _, ..] => Err(ParseError::WrongLength),
                _ => Err(ParseError::TooShort),
            },
            OP_ERROR => match body {
                [a, b, rest @ ..] => {
                    // Lenient: some clients omit the final NUL of the message.
                    let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
                    let message = String::from_utf8_lossy(&rest[..end]).into_owned();
                    Ok(Packet::Error { code: ErrorCode::from_code(u16::from_be_bytes([*a, *b])), message })
                }
                _ => Err(ParseError::TooShort),
            },
            OP_OACK => parse_options(body).map(Packet::Oack),
            other => Err(ParseError::UnknownOpcode(other)),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Packet::Rrq(r) | Packet::Wrq(r) => {
                out.extend_from_slice(&(if matches!(self, Packet::Rrq(_)) { OP_RRQ } else { OP_WRQ }).to_be_bytes());
                push_str(out, &r.filename);
                push_str(out, r.mode.as_str());
                push_options(out, &r.options);
            }
            Packet::Data { block, data } => {
                encode_data_header(*block, out);
                out.extend_from_slice(data);
            }
            Packet::Ack(block) => {
                out.extend_from_slice(&OP_ACK.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => {
                out.extend_from_slice(&OP_ERROR.to_be_bytes());
                out.extend_from_slice(&code.code().to_be_bytes());
                // A NUL inside the message would end it early on the wire.
                out.extend(message.bytes().filter(|&b| b != 0));
                out.push(0);
            }
            Packet::Oack(options) => {
                out.extend_from_slice(&OP_OACK.to_be_bytes());
                push_options(out, options);
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// The 4-byte DATA header; the transfer appends the block itself (no intermediate `Packet`).
pub fn encode_data_header(block: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&OP_DATA.to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn push_options(out: &mut Vec<u8>, options: &[(String, String)]) {
    for (name, value) in options {
        push_str(out, name);
        push_str(out, value);
    }
}

/// Splits `body` into NUL-terminated text fields; every field must be terminated.
fn fields(body: &[u8]) -> Result<Vec<&str>, ParseError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = body.strip_suffix(&[0]) else { return Err(ParseError::Unterminated) };
    body.split(|&c| c == 0).map(|f| std::str::from_utf8(f).map_err(|_| ParseError::NotUtf8)).collect()
}

fn parse_request(body: &[u8]) -> Result<Request, ParseError> {
    let f = fields(body)?;
    let (filename, mode, rest) = match f.as_slice() {
        [filename, mode, rest @ ..] => (*filename, *mode, rest),
        _ => return Err(if f.is_empty() { ParseError::TooShort } else { ParseError::Unterminated }),
    };
    if filename.is_empty() {
        return Err(ParseError::EmptyFilename);
    }
    let mode = Mode::parse(mode).ok_or_else(|| ParseError::UnknownMode(mode.to_string()))?;
    Ok(Request { filename: filename.to_string(), mode, options: pairs(rest)? })
}

fn parse_options(body: &[u8]) -> Result<Vec<(String, String)>, ParseError> {
    pairs(&fields(body)?)
}

fn pairs(f: &[&str]) -> Result<Vec<(String, String)>, ParseError> {
    if !f.len().is_multiple_of(2) {
        return Err(ParseError::OddOptions);
    }
    Ok(f.chunks_exact(2).map(|p| (p[0].to_ascii_lowercase(), p[1].to_string())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(filename: &str, options: &[(&str, &str)]) -> Packet {
        Packet::Rrq(Request {
            filename: filename.into(),
            mode: Mode::Octet,
            options: options.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        })
    }

    #[test]
    fn parses_a_request_with_options() {
        let p = Packet::parse(b"\x00\x01ipxe.efi\0OCTET\0BlkSize\x001468\0windowsize\x008\0tsize\x000\0").unwrap();
        assert_eq!(p, rrq("ipxe.efi", &[("blksize", "1468"), ("windowsize", "8"), ("tsize", "0")]));
        let Packet::Rrq(r) = &p else { unreachable!() };
        assert_eq!(r.option("windowsize"), Some("8"));
        assert_eq!(Packet::parse(&p.to_bytes()).unwrap(), p);
    }

    #[test]
    fn refuses_malformed_requests() {
        assert_eq!(Packet::parse(b""), Err(ParseError::TooShort));
        assert_eq!(Packet::parse(b"\x00"), Err(ParseError::TooShort));
        assert_eq!(Packet::parse(b"\x00\x09x\0octet\0"), Err(ParseError::UnknownOpcode(9)));
        assert_eq!(Packet::parse(b"\x00\x01x\0octet"), Err(ParseError::Unterminated));
        assert_eq!(Packet::parse(b"\x00\x01x\0"), Err(ParseError::Unterminated));
        assert_eq!(Packet::parse(b"\x00\x01\0octet\0"), Err(ParseError::EmptyFilename));
        assert_eq!(Packet::parse(b"\x00\x01x\0binary\0"), Err(ParseError::UnknownMode("binary".into())));
        assert_eq!(Packet::parse(b"\x00\x01x\0octet\0blksize\0"), Err(ParseError::OddOptions));
        assert_eq!(Packet::parse(b"\x00\x01\xff\0octet\0"), Err(ParseError::NotUtf8));
        assert_eq!(Packet::parse(b"\x00\x04\x00"), Err(ParseError::TooShort));
        assert_eq!(Packet::parse(b"\x00\x04\x00\x01\x00"), Err(ParseError::WrongLength));
    }

    #[test]
    fn parses_the_other_packets() {
        assert_eq!(Packet::parse(b"\x00\x04\x01\x02"), Ok(Packet::Ack(0x0102)));
        assert_eq!(Packet::parse(b"\x00\x03\x00\x07abc"), Ok(Packet::Data { block: 7, data: b"abc".to_vec() }));
        assert_eq!(
            Packet::parse(b"\x00\x05\x00\x08no thanks\0"),
            Ok(Packet::Error { code: ErrorCode::OptionRefused, message: "no thanks".into() })
        );
        // A missing NUL after an error message is tolerated.
        assert_eq!(
            Packet::parse(b"\x00\x05\x00\x01gone"),
            Ok(Packet::Error { code: ErrorCode::FileNotFound, message: "gone".into() })
        );
        assert_eq!(Packet::parse(b"\x00\x06tsize\x00123\0"), Ok(Packet::Oack(vec![("tsize".into(), "123".into())])));
    }

    #[test]
    fn encodes_errors_and_oacks_as_on_the_wire() {
        let e = Packet::Error { code: ErrorCode::AccessViolation, message: "read-only server".into() };
        assert_eq!(e.to_bytes(), b"\x00\x05\x00\x02read-only server\0");
        let o = Packet::Oack(vec![("blksize".into(), "1468".into()), ("tsize".into(), "850528".into())]);
        assert_eq!(o.to_bytes(), b"\x00\x06blksize\x001468\0tsize\x00850528\0");
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// The fuzz target's property (`fuzz/fuzz_targets/tftp_packet.rs`), run in the normal suite
    /// over random bytes and over mutations of valid packets: parsing never panics, and whatever
    /// parses re-encodes to bytes that parse to the same packet.
    #[test]
    fn random_and_mutated_input_never_panics_and_round_trips() {
        let seeds: Vec<Vec<u8>> = vec![
            b"\x00\x01ipxe.efi\0octet\0blksize\x001468\0windowsize\x008\0tsize\x000\0".to_vec(),
            b"\x00\x02upload\0netascii\0".to_vec(),
            b"\x00\x03\x00\x01hello".to_vec(),
            b"\x00\x04\xff\xff".to_vec(),
            b"\x00\x05\x00\x01File not found\0".to_vec(),
            b"\x00\x06blksize\x00512\0".to_vec(),
        ];
        let mut rng = Rng(0x1b0a_7f7f_0000_0001);
        let mut parsed = 0;
        for i in 0..200_000 {
            let input: Vec<u8> = if i % 4 == 0 {
                (0..rng.below(64)).map(|_| rng.next() as u8).collect()
            } else {
                let mut b = seeds[rng.below(seeds.len())].clone();
                for _ in 0..=rng.below(4) {
                    match rng.below(4) {
                        0 if !b.is_empty() => {
                            let at = rng.below(b.len());
                            b[at] = rng.next() as u8;
                        }
                        1 if !b.is_empty() => {
                            b.remove(rng.below(b.len()));
                        }
                        2 => b.insert(rng.below(b.len() + 1), [0u8, b'a', 0xff][rng.below(3)]),
                        _ => b.truncate(rng.below(b.len() + 1)),
                    }
                }
                b
            };
            if let Ok(p) = Packet::parse(&input) {
                parsed += 1;
                let again = Packet::parse(&p.to_bytes());
                assert_eq!(again.as_ref(), Ok(&p), "round trip of {input:?}");
            }
        }
        assert!(parsed > 10_000, "the mutations should keep many packets valid ({parsed})");
    }
}

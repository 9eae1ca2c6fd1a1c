//! A small blocking TFTP client that asks for `blksize`, `windowsize` (RFC 7440) and `tsize`,
//! for tests and `examples/tftp_client.rs`: tftp-hpa's client sends no options and curl cannot
//! ask for a window. It acknowledges each full window, and on a gap or its own timeout the last
//! block it holds in order (RFC 7440 §4). Errors come back as `Err("ERROR <code> <message>")`.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Ask {
    pub blksize: Option<u16>,
    pub windowsize: Option<u16>,
    /// Raw extra options, sent as given (for refusal tests).
    pub extra: Vec<(String, String)>,
    /// How long to wait for a packet before re-acknowledging (and giving up after 10 such waits).
    pub timeout: Duration,
}

impl Default for Ask {
    fn default() -> Self {
        Ask { blksize: None, windowsize: None, extra: Vec::new(), timeout: Duration::from_millis(500) }
    }
}

fn push(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn ack(block: u16) -> [u8; 4] {
    let b = block.to_be_bytes();
    [0, 4, b[0], b[1]]
}

/// Sends a write request for `file` and returns the server's answer as `Err("ERROR ...")`, or
/// `Ok(())` if the server accepted it (it must not).
pub fn put(server: SocketAddr, file: &str) -> Result<(), String> {
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(3))).map_err(|e| e.to_string())?;
    let mut req = vec![0, 2];
    push(&mut req, file);
    push(&mut req, "octet");
    sock.send_to(&req, server).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1024];
    let (n, _) = sock.recv_from(&mut buf).map_err(|e| format!("no answer: {e}"))?;
    match &buf[..n] {
        [0, 5, hi, lo, msg @ ..] => Err(error_text(u16::from_be_bytes([*hi, *lo]), msg)),
        _ => Ok(()),
    }
}

fn error_text(code: u16, msg: &[u8]) -> String {
    let end = msg.iter().position(|&c| c == 0).unwrap_or(msg.len());
    format!("ERROR {code} {}", String::from_utf8_lossy(&msg[..end]))
}

/// Fetches `file` from `server` (its port 69 or whatever the address says).
pub fn get(server: SocketAddr, file: &str, ask: &Ask) -> Result<Vec<u8>, String> {
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(ask.timeout)).map_err(|e| e.to_string())?;
    let mut req = vec![0, 1];
    push(&mut req, file);
    push(&mut req, "octet");
    push(&mut req, "tsize");
    push(&mut req, "0");
    if let Some(b) = ask.blksize {
        push(&mut req, "blksize");
        push(&mut req, &b.to_string());
    }
    if let Some(w) = ask.windowsize {
        push(&mut req, "windowsize");
        push(&mut req, &w.to_string());
    }
    for (n, v) in &ask.extra {
        push(&mut req, n);
        push(&mut req, v);
    }
    let mut blksize = 512usize;
    let mut windowsize = 1u16;
    let mut tsize: Option<u64> = None;
    let mut peer: Option<SocketAddr> = None;
    let mut file_bytes = Vec::new();
    let mut expected: u16 = 1;
    let mut in_window = 0u16;
    let mut buf = vec![0u8; 65_536];
    let mut silent = 0;
    sock.send_to(&req, server).map_err(|e| e.to_string())?;
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => {
                silent += 1;
                if silent > 10 {
                    return Err(format!("timed out after {} bytes", file_bytes.len()));
                }
                match peer {
                    None => sock.send_to(&req, server),
                    Some(p) => sock.send_to(&ack(expected.wrapping_sub(1)), p),
                }
                .map_err(|e| e.to_string())?;
                continue;
            }
        };
        silent = 0;
        if from.ip() != server.ip() || peer.is_some_and(|p| p != from) {
            continue;
        }
        let pkt = &buf[..n];
        match pkt {
            [0, 5, hi, lo, msg @ ..] => return Err(error_text(u16::from_be_bytes([*hi, *lo]), msg)),
            [0, 6, opts @ ..] if peer.is_none() => {
                peer = Some(from);
                let fields: Vec<String> =
                    opts.split(|&c| c == 0).map(|f| String::from_utf8_lossy(f).to_ascii_lowercase()).collect();
                for pair in fields.chunks(2) {
                    if let [name, value] = pair {
                        match name.as_str() {
                            "blksize" => blksize = value.parse().map_err(|_| "bad blksize in OACK")?,
                            "windowsize" => windowsize = value.parse().map_err(|_| "bad windowsize in OACK")?,
                            "tsize" => tsize = Some(value.parse().map_err(|_| "bad tsize in OACK")?),
                            _ => {}
                        }
                    }
                }
                sock.send_to(&ack(0), from).map_err(|e| e.to_string())?;
            }
            [0, 3, hi, lo, data @ ..] => {
                peer.get_or_insert(from);
                let block = u16::from_be_bytes([*hi, *lo]);
                if block != expected {
                    // A gap (or a duplicate): say where we are.
                    in_window = 0;
                    sock.send_to(&ack(expected.wrapping_sub(1)), from).map_err(|e| e.to_string())?;
                    continue;
                }
                file_bytes.extend_from_slice(data);
                expected = expected.wrapping_add(1);
                in_window += 1;
                if data.len() < blksize {
                    sock.send_to(&ack(block), from).map_err(|e| e.to_string())?;
                    if let Some(t) = tsize
                        && t != file_bytes.len() as u64
                    {
                        return Err(format!("tsize said {t}, got {}", file_bytes.len()));
                    }
                    return Ok(file_bytes);
                }
                if in_window >= windowsize {
                    in_window = 0;
                    sock.send_to(&ack(block), from).map_err(|e| e.to_string())?;
                }
            }
            _ => {}
        }
    }
}

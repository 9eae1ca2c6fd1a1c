//! A tiny HTTP sink for lab machines that report over HTTP (the test disk image POSTs `booted
//! from disk`): every request body goes to a channel, every request is answered 200.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// Serves POSTs on `listener` until the test ends: every request body goes to the channel, and
/// each request is answered 200.
pub fn serve_reports(listener: TcpListener) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            if let Some(body) = read_request(stream)
                && tx.send(body).is_err()
            {
                return;
            }
        }
    });
    rx
}

/// One HTTP/1.x request's body (by its Content-Length), answered with 200 and an empty body.
fn read_request(mut stream: TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length.min(1 << 16)];
    reader.read_exact(&mut body).ok()?;
    stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").ok()?;
    Some(String::from_utf8_lossy(&body).to_string())
}

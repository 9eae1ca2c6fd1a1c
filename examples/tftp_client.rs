//! TFTP load client for `bench/tftp.sh`: fetches a file N times concurrently (one thread each)
//! with `blksize` and `windowsize` (which curl and tftp-hpa cannot ask for), checks every copy
//! against a reference file, and prints the aggregate throughput.
//!
//! `cargo run --release --example tftp_client -- <server-ip> <file> <reference> <n> <blksize> <windowsize>`
//! (windowsize 0: do not ask for one, as against tftpd-hpa, which ignores it anyway).

#[path = "../tests/support/tftp_client.rs"]
mod tftp_client;

use std::time::Instant;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, file, reference, n, blksize, windowsize] = args.as_slice() else {
        return Err("usage: tftp_client <server-ip> <file> <reference> <n> <blksize> <windowsize>".into());
    };
    let server: std::net::SocketAddr = format!("{server}:69").parse().map_err(|e| format!("server: {e}"))?;
    let reference = std::fs::read(reference).map_err(|e| format!("reference: {e}"))?;
    let n: usize = n.parse().map_err(|_| "n")?;
    let blksize: u16 = blksize.parse().map_err(|_| "blksize")?;
    let windowsize: u16 = windowsize.parse().map_err(|_| "windowsize")?;
    let ask = tftp_client::Ask {
        blksize: Some(blksize),
        windowsize: (windowsize > 0).then_some(windowsize),
        timeout: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let started = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (ask, file) = (ask.clone(), file.clone());
            std::thread::spawn(move || tftp_client::get(server, &file, &ask))
        })
        .collect();
    let mut identical = 0;
    let mut failures = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(bytes)) if bytes == reference => identical += 1,
            Ok(Ok(_)) => failures.push("bytes differ".to_string()),
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("thread panicked".into()),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let mb = (identical * reference.len()) as f64 / 1e6;
    println!("transfers={n} identical={identical} seconds={secs:.3} MB/s={:.1}", mb / secs);
    if let Some(f) = failures.first() {
        return Err(format!("{} transfers failed, first: {f}", failures.len()));
    }
    Ok(())
}

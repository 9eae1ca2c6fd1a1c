//! The sockets: one listener per IPv4 address of each named interface on `boot.tftp_port`,
//! re-scanned periodically so an interface that comes up (or gets its address) after start is
//! served then; one task and one ephemeral-port socket on the same local address per transfer
//! (RFC 1350's transfer identifier). Every request ends in exactly one boot-timeline event.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::files::{PxeFiles, Refusal};
use super::options::{self, Limits};
use super::packet::{ErrorCode, Mode, Packet, ParseError, Request};
use super::transfer::{self, End};
use super::{netif, requested};
use crate::boot::BootShared;
use crate::boot::journal::{BootEvent, Source};

/// How often the named interfaces' addresses are looked at again.
const RESCAN: Duration = Duration::from_secs(5);
/// Transfers at once; past it requests are refused with "server busy" (error 0).
const MAX_TRANSFERS: usize = 1024;
/// Retransmissions without progress before a transfer is abandoned.
const MAX_RETRIES: u32 = 5;
/// Retransmission timeout when the client does not negotiate `timeout` (tftp-hpa's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Settings {
    pub interfaces: Vec<String>,
    pub port: u16,
    pub pxe_dir: std::path::PathBuf,
}

struct Ctx {
    files: PxeFiles,
    boot: BootShared,
    transfers: Semaphore,
}

/// Starts the supervisor that binds the listeners (it runs for the life of the process).
pub fn start(settings: Settings, boot: BootShared) -> JoinHandle<()> {
    let ctx = Arc::new(Ctx { files: PxeFiles::new(&settings.pxe_dir), boot, transfers: Semaphore::new(MAX_TRANSFERS) });
    tokio::spawn(supervise(settings, ctx))
}

async fn supervise(settings: Settings, ctx: Arc<Ctx>) {
    let mut listeners: HashMap<SocketAddr, JoinHandle<()>> = HashMap::new();
    let mut warned: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(RESCAN);
    loop {
        tick.tick().await;
        let mut present = HashSet::new();
        for name in &settings.interfaces {
            let addresses = netif::ipv4_addresses(name);
            if addresses.is_empty() && warned.insert(name.clone()) {
                tracing::warn!(interface = %name, "tftp: interface has no IPv4 address (down or missing); retrying every {} s", RESCAN.as_secs());
            }
            for ip in addresses {
                let addr = SocketAddr::V4(SocketAddrV4::new(ip, settings.port));
                present.insert(addr);
                if listeners.get(&addr).is_some_and(|h| !h.is_finished()) {
                    continue;
                }
                match UdpSocket::bind(addr).await {
                    Ok(sock) => {
                        warned.remove(name);
                        let limits = Limits { max_blksize: netif::max_blksize(name), default_timeout: DEFAULT_TIMEOUT };
                        tracing::info!(%addr, interface = %name, max_blksize = limits.max_blksize, "tftp: listening");
                        ctx.boot.tftp.add(addr);
                        listeners.insert(addr, tokio::spawn(listen(sock, limits, ctx.clone())));
                    }
                    Err(e) => {
                        if warned.insert(format!("{addr}")) {
                            tracing::warn!(%addr, error = %e, "tftp: cannot bind; retrying");
                        }
                    }
                }
            }
        }
        // Addresses that went away, and listeners that died: forget them (a rescan rebinds).
        listeners.retain(|addr, h| {
            let keep = present.contains(addr) && !h.is_finished();
            if !keep {
                h.abort();
                ctx.boot.tftp.remove(*addr);
                tracing::info!(%addr, "tftp: stopped listening");
            }
            keep
        });
    }
}

async fn listen(sock: UdpSocket, limits: Limits, ctx: Arc<Ctx>) {
    let Ok(local) = sock.local_addr() else { return };
    let IpAddr::V4(local_ip) = local.ip() else { return };
    let active: Arc<Mutex<HashSet<SocketAddr>>> = Default::default();
    let mut buf = vec![0u8; 4096];
    loop {
        let (len, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            // An ICMP error left over from an earlier send; the socket is fine.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                tracing::warn!(addr = %local, error = %e, "tftp: listener failed");
                return;
            }
        };
        let SocketAddr::V4(peer) = peer else { continue };
        let request = match Packet::parse(&buf[..len]) {
            Ok(Packet::Rrq(r)) => Ok((r, true)),
            Ok(Packet::Wrq(r)) => Ok((r, false)),
            // A request we cannot read: answer it (error 4) so the client does not wait.
            Err(e @ (ParseError::UnknownMode(_) | ParseError::OddOptions | ParseError::EmptyFilename))
                if buf.get(1).is_some_and(|op| *op == 1 || *op == 2) =>
            {
                Err(e)
            }
            // DATA/ACK/ERROR on the request port, or noise: not ours to answer.
            _ => continue,
        };
        // A client that repeats its RRQ (its OACK or first block was lost) is already being
        // served; the transfer's timer resends.
        let Ok(mut a) = active.lock() else { return };
        if !a.insert(SocketAddr::V4(peer)) {
            continue;
        }
        drop(a);
        let (ctx, active) = (ctx.clone(), active.clone());
        tokio::spawn(async move {
            let event = match request {
                Ok((req, true)) => serve(&ctx, req, peer, local_ip, limits).await,
                Ok((req, false)) => {
                    let e = refuse(peer, local_ip, ErrorCode::AccessViolation, "Access violation: read-only server");
                    e.await.event(format!("WRQ {}", requested(&req)), "write requests are refused: read-only server")
                }
                Err(e) => refuse(peer, local_ip, ErrorCode::IllegalOperation, "Illegal TFTP operation")
                    .await
                    .event("unreadable request".into(), &format!("malformed request: {e}")),
            };
            ctx.record(peer, event);
            if let Ok(mut a) = active.lock() {
                a.remove(&SocketAddr::V4(peer));
            }
        });
    }
}

/// What goes into the timeline, less the client's addresses.
struct Event {
    request: String,
    response: String,
    reason: String,
}

/// An error answer that was sent (or could not be).
struct Refused {
    code: ErrorCode,
    message: &'static str,
    sent: bool,
}

impl Refused {
    fn event(&self, request: String, reason: &str) -> Event {
        let response =
            if self.sent { format!("ERROR {} {}", self.code.code(), self.message) } else { "none".to_string() };
        Event { request, response, reason: reason.to_string() }
    }
}

impl Ctx {
    fn record(&self, peer: SocketAddrV4, e: Event) {
        let ip = *peer.ip();
        self.boot.journal.record(BootEvent {
            source: Source::Tftp,
            mac: self.boot.neighbors.mac_of(ip),
            ip: Some(IpAddr::V4(ip)),
            request: e.request,
            response: e.response,
            reason: e.reason,
        });
    }
}

/// A socket for one exchange with `peer`: a new port on the address the request came to.
async fn transfer_socket(local: Ipv4Addr, peer: SocketAddrV4) -> std::io::Result<UdpSocket> {
    let sock = UdpSocket::bind(SocketAddrV4::new(local, 0)).await?;
    sock.connect(peer).await?;
    Ok(sock)
}

async fn refuse(peer: SocketAddrV4, local: Ipv4Addr, code: ErrorCode, message: &'static str) -> Refused {
    let packet = Packet::Error { code, message: message.to_string() }.to_bytes();
    let sent = match transfer_socket(local, peer).await {
        Ok(s) => s.send(&packet).await.is_ok(),
        Err(_) => false,
    };
    Refused { code, message, sent }
}

async fn serve(ctx: &Arc<Ctx>, req: Request, peer: SocketAddrV4, local: Ipv4Addr, limits: Limits) -> Event {
    let request = format!("RRQ {}", requested(&req));
    if req.mode == Mode::Mail {
        let r = refuse(peer, local, ErrorCode::IllegalOperation, "Illegal TFTP operation: mail mode");
        return r.await.event(request, "mode mail is obsolete (RFC 1350)");
    }
    let Ok(_permit) = ctx.transfers.try_acquire() else {
        let r = refuse(peer, local, ErrorCode::NotDefined, "Server busy, try again");
        return r.await.event(request, &format!("{MAX_TRANSFERS} transfers already running"));
    };
    let opened = {
        let (ctx, name) = (ctx.clone(), req.filename.clone());
        tokio::task::spawn_blocking(move || ctx.files.open(&name)).await
    };
    let content = match opened {
        Ok(Ok(c)) => c,
        Ok(Err(Refusal::NotFound)) => {
            let r = refuse(peer, local, ErrorCode::FileNotFound, "File not found");
            return r.await.event(request, "no such file in the pxe directory");
        }
        Ok(Err(Refusal::Forbidden(why))) => {
            return refuse(peer, local, ErrorCode::AccessViolation, "Access violation").await.event(request, why);
        }
        Err(_) => {
            let r = refuse(peer, local, ErrorCode::NotDefined, "Internal error");
            return r.await.event(request, "the file lookup failed");
        }
    };
    let n = match options::negotiate(&req.options, content.len(), limits) {
        Ok(n) => n,
        Err(refused) => {
            let r = refuse(peer, local, ErrorCode::OptionRefused, "Option negotiation failed");
            return r.await.event(request, &refused.to_string());
        }
    };
    let mut sock = match transfer_socket(local, peer).await {
        Ok(s) => s,
        Err(e) => {
            return Event { request, response: "none".into(), reason: format!("cannot open a transfer socket: {e}") };
        }
    };
    let o = transfer::send_file(&mut sock, &content, &n, MAX_RETRIES).await;
    let secs = o.elapsed.as_secs_f64();
    let params = format!(
        "blksize {} windowsize {} timeout {} s, {} retransmissions{}",
        n.blksize,
        n.windowsize,
        n.timeout.as_secs(),
        o.retransmissions,
        if req.mode == Mode::Netascii { "; netascii served as octet" } else { "" }
    );
    let stopped = format!("stopped after {} of {} bytes in {secs:.2} s", o.bytes, content.len());
    let (response, reason) = match o.end {
        End::Complete => (format!("sent {} bytes in {secs:.2} s", o.bytes), params),
        End::TimedOut(n) => (stopped, format!("no ACK after {n} retransmissions; {params}")),
        End::ClientError(code, msg) => (stopped, format!("the client sent ERROR {code} {msg:?}; {params}")),
        End::Io(e) => (stopped, format!("socket error: {e}; {params}")),
    };
    Event { request, response, reason }
}

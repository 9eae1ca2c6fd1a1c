//! The DHCP service: one receive loop per named interface (full or proxy mode), plus UDP 4011 in
//! proxy mode. Decisions are made in memory (`leases`, `segments`, `boot`); ACKs that create or
//! change a lease leave through the group committer (`persist`), every other reply directly.
//! Every exchange is recorded in the boot timeline with the reason for the answer.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcproto::Encodable;
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};

use super::boot::{self, BootOffer, BootServer, ClientKind};
use super::leases::{Ask, Lease, LeaseState, LeaseTable};
use super::options::{self, client_kind, client_mac};
use super::persist::{Committer, Outgoing, Pending};
use super::reply::{self, Destination, ReplyKind, RequestAddressing};
use super::segments::{DhcpSegment, Segments};
use super::socket::{self, IfaceSocket};
use crate::app::App;
use crate::boot::discovery::Sighting;
use crate::boot::journal::{BootEvent, Source};
use crate::config::{DhcpInterface, DhcpMode};
use crate::model::{Mac, now_rfc3339};
use crate::store::dhcp_leases::LeaseRow;

/// UDP port of the PXE boot server (proxy mode).
pub const PXE_PORT: u16 = 4011;
/// BOOTP's minimum message size: some PXE ROMs drop shorter replies.
const MIN_REPLY: usize = 300;

/// One named interface, ready to serve.
struct Iface {
    cfg: DhcpInterface,
    ctx: BootCtx,
    socket: Arc<IfaceSocket>,
}

/// What answers need to know about the interface: its address (server identifier) and where
/// its boot files are.
struct BootCtx {
    addr: Ipv4Addr,
    boot: BootServer,
}

/// State shared by every interface's loop.
struct Shared {
    app: App,
    segments: Segments,
    leases: Mutex<HashMap<String, LeaseTable>>,
    committer: Committer,
}

/// A decision about one packet: the reply (if any) and what the timeline records.
struct Answer {
    reply: Option<(Message, ReplyKind)>,
    /// Lease rows that must be durable before the reply leaves.
    persist: Vec<LeaseRow>,
    response: String,
    reason: String,
    /// The address the client now holds (so TFTP/HTTP can tell which MAC an address is).
    leased: Option<Ipv4Addr>,
}

impl Answer {
    fn silent(reason: impl Into<String>) -> Answer {
        Answer { reply: None, persist: Vec::new(), response: "none".into(), reason: reason.into(), leased: None }
    }
}

/// Starts DHCP on every interface named in config (none named: nothing starts). Interfaces that
/// are missing or have no IPv4 address yet are waited for.
pub async fn start(app: App) -> Vec<tokio::task::JoinHandle<()>> {
    let ifaces = app.config.dhcp.interfaces.clone();
    if ifaces.is_empty() {
        return Vec::new();
    }
    let segments = Segments::default();
    if let Err(e) = segments.refresh(&app.store).await {
        tracing::warn!(error = %e, "dhcp: could not read the VNIs yet");
    }
    let shared = Arc::new(Shared {
        committer: Committer::start(app.store.clone(), app.config.dhcp.lease_fsync),
        segments: segments.clone(),
        leases: Mutex::new(HashMap::new()),
        app: app.clone(),
    });
    let mut tasks = vec![tokio::spawn(segments.keep_fresh(app.store.clone()))];
    for cfg in ifaces {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move { serve_interface(shared, cfg).await }));
    }
    tasks
}

async fn serve_interface(shared: Arc<Shared>, cfg: DhcpInterface) {
    let addr = wait_for_address(&cfg.name).await;
    let name = cfg.name.clone();
    let bind = move |port: u16, any: bool| {
        let ip = if any { Ipv4Addr::UNSPECIFIED } else { addr };
        socket::bind(&name, SocketAddrV4::new(ip, port))
    };
    let main = match bind(reply::SERVER_PORT, true) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(interface = %cfg.name, error = %e, "dhcp: cannot bind UDP 67");
            return;
        }
    };
    let boot = BootServer {
        tftp: addr,
        http_base: http_base(&shared.app.config, addr),
        efi_binary: shared.app.config.boot.efi_binary,
    };
    let mode = cfg.mode;
    tracing::info!(interface = %cfg.name, %addr, mode = ?mode, vni = cfg.vni.as_deref().unwrap_or("-"), "dhcp: serving");
    shared.app.boot.dhcp.add(std::net::SocketAddr::V4(SocketAddrV4::new(addr, reply::SERVER_PORT)));
    let iface = Arc::new(Iface { cfg, ctx: BootCtx { addr, boot }, socket: main });
    if mode == DhcpMode::Proxy {
        match bind(PXE_PORT, false) {
            Ok(s) => {
                let (shared, iface) = (shared.clone(), iface.clone());
                tokio::spawn(async move { receive(shared, iface, Arc::new(s), true).await });
            }
            Err(e) => tracing::error!(interface = %iface.cfg.name, error = %e, "dhcp: cannot bind UDP 4011"),
        }
    }
    let socket = iface.socket.clone();
    receive(shared, iface, socket, false).await;
}

async fn wait_for_address(name: &str) -> Ipv4Addr {
    let mut warned = false;
    loop {
        if let Some(a) = crate::netif::first_ipv4(name) {
            return a.addr;
        }
        if !warned {
            tracing::warn!(interface = %name, "dhcp: interface missing or without an IPv4 address; waiting for it");
            warned = true;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// `boot.http_url`, else `http://<interface address>:<the port we listen on there>`.
fn http_base(config: &crate::config::Config, addr: Ipv4Addr) -> String {
    if let Some(url) = &config.boot.http_url {
        return url.clone();
    }
    let port = config
        .listen
        .iter()
        .find(|l| l.ip() == std::net::IpAddr::V4(addr) || l.ip().is_unspecified())
        .or(config.listen.first())
        .map_or(80, |l| l.port());
    format!("http://{addr}:{port}")
}

async fn receive(shared: Arc<Shared>, iface: Arc<Iface>, sock: Arc<IfaceSocket>, pxe_port: bool) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match sock.socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(interface = %iface.cfg.name, error = %e, "dhcp: receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(msg) = options::decode(&buf[..n]) else {
            tracing::debug!(interface = %iface.cfg.name, %peer, "dhcp: malformed packet ignored");
            continue;
        };
        let Some(kind) = msg.opts().msg_type() else { continue };
        if msg.opcode() != Opcode::BootRequest {
            continue;
        }
        let mac = client_mac(&msg);
        let request = options::describe_request(&msg, kind);
        let answer = match (iface.cfg.mode, pxe_port) {
            (DhcpMode::Full, _) => shared.full(&iface, &msg, kind, mac).await,
            (DhcpMode::Proxy, false) => proxy(&iface.ctx, &msg, kind),
            (DhcpMode::Proxy, true) => boot_server(&iface.ctx, &msg, kind),
        };
        observe(&shared.app, &msg, mac);
        let sent = answer.reply.as_ref().map(|(m, _)| m.yiaddr());
        shared.app.boot.journal.record(BootEvent {
            source: Source::Dhcp,
            mac,
            ip: Some(std::net::IpAddr::V4(match peer.ip() {
                std::net::IpAddr::V4(a) if !a.is_unspecified() => a,
                _ => sent.unwrap_or(msg.ciaddr()),
            })),
            request: if pxe_port { format!("{request} (port {PXE_PORT})") } else { request },
            response: answer.response.clone(),
            reason: answer.reason.clone(),
        });
        let Some((reply, kind)) = answer.reply else {
            if !answer.persist.is_empty() {
                shared.committer.submit(Pending { rows: answer.persist, reply: None });
            }
            continue;
        };
        let dest = if pxe_port {
            // The PXE boot server answers whoever asked, where they asked from.
            match peer {
                std::net::SocketAddr::V4(p) => Destination::Unicast(p),
                std::net::SocketAddr::V6(_) => continue,
            }
        } else {
            reply::destination(
                RequestAddressing {
                    giaddr: msg.giaddr(),
                    ciaddr: msg.ciaddr(),
                    broadcast_flag: msg.flags().broadcast(),
                },
                kind,
                reply.yiaddr(),
            )
        };
        let bytes = encode(&reply);
        if answer.persist.is_empty() {
            if let Err(e) = sock.send(&bytes, dest, mac).await {
                tracing::debug!(error = %e, "dhcp: could not send a reply");
            }
        } else {
            let out = Outgoing { socket: sock.clone(), bytes, dest, mac };
            if !shared.committer.submit(Pending { rows: answer.persist, reply: Some(out) }) {
                tracing::warn!("dhcp: lease writer is behind; reply dropped (the client will retry)");
            }
        }
    }
}

fn encode(m: &Message) -> Vec<u8> {
    let mut bytes = m.to_vec().unwrap_or_default();
    if bytes.len() < MIN_REPLY {
        bytes.resize(MIN_REPLY, 0);
    }
    bytes
}

/// Discovery, for machines that network-boot (not every laptop on the segment).
fn observe(app: &App, msg: &Message, mac: Option<Mac>) {
    let kind = client_kind(msg);
    if !(kind.is_pxe() || kind.is_http_client() || kind.is_ipxe()) {
        return;
    }
    app.boot.discovery.observe(Sighting {
        mac,
        firmware: kind.arch.map(|a| boot::firmware(a).to_string()),
        arch: kind.arch.map(|a| boot::cpu_arch(a).to_string()),
        uuid: options::machine_uuid(msg),
        via: "dhcp",
    });
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The reply skeleton: BOOTREPLY with the request's transaction, flags, relay and hardware address.
fn reply_to(req: &Message, kind: MessageType, server: Ipv4Addr) -> Message {
    let mut m = Message::new_with_id(
        req.xid(),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        req.giaddr(),
        req.chaddr(),
    );
    m.set_opcode(Opcode::BootReply).set_htype(req.htype()).set_flags(Flags::new(0));
    if req.flags().broadcast() {
        m.set_flags(Flags::default().set_broadcast());
    }
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ServerIdentifier(server));
    // Relay agent information goes back as it came (RFC 3046 §2.2).
    if let Some(o @ DhcpOption::RelayAgentInformation(_)) = req.opts().get(OptionCode::RelayAgentInformation) {
        opts.insert(o.clone());
    }
    m
}

/// Adds the boot program for PXE/HTTP/iPXE clients. Returns the timeline's description.
fn add_boot(m: &mut Message, req: &Message, iface: &BootCtx) -> (Option<String>, String) {
    let kind = client_kind(req);
    let offer = boot::choose(&kind, &iface.boot);
    let why = offer.describe(&kind);
    let file = match &offer {
        BootOffer::Tftp { server, file } => {
            m.set_siaddr(*server);
            m.set_fname_str(file);
            m.opts_mut().insert(DhcpOption::TFTPServerName(server.to_string().into_bytes()));
            m.opts_mut().insert(DhcpOption::BootfileName(file.as_bytes().to_vec()));
            format!("file={file} next-server={server}")
        }
        BootOffer::Http { url } => {
            m.set_fname_str(url);
            m.opts_mut().insert(DhcpOption::BootfileName(url.as_bytes().to_vec()));
            m.opts_mut().insert(DhcpOption::ClassIdentifier(b"HTTPClient".to_vec()));
            format!("file={url}")
        }
        BootOffer::Script { url } => {
            m.set_siaddr(iface.addr);
            m.set_fname_str(url);
            m.opts_mut().insert(DhcpOption::BootfileName(url.as_bytes().to_vec()));
            format!("file={url}")
        }
        BootOffer::None { .. } => return (None, why),
    };
    if kind.is_pxe() {
        pxe_identity(m, req);
    }
    (Some(file), why)
}

/// What a PXE client needs to accept the offer as a PXE offer: option 60 `PXEClient`, option 43
/// with the PXE sub-options, and its own GUID (option 97) echoed.
fn pxe_identity(m: &mut Message, req: &Message) {
    let opts = m.opts_mut();
    opts.insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
    opts.insert(DhcpOption::VendorExtensions(options::pxe_vendor_options()));
    if let Some(o @ DhcpOption::ClientMachineIdentifier(_)) = req.opts().get(OptionCode::ClientMachineIdentifier) {
        opts.insert(o.clone());
    }
}

fn is_boot_client(kind: &ClientKind<'_>) -> bool {
    kind.is_pxe() || kind.is_http_client()
}

/// Proxy mode, UDP 67: answer PXE clients' DISCOVERs with boot information only (no address).
fn proxy(iface: &BootCtx, req: &Message, kind: MessageType) -> Answer {
    let ck = client_kind(req);
    if !is_boot_client(&ck) {
        return Answer::silent("proxy mode: no PXEClient vendor class, ignored");
    }
    let reply_kind = match kind {
        MessageType::Discover => MessageType::Offer,
        // A REQUEST naming us (some firmware does) gets the same boot answer as an ACK.
        MessageType::Request if options::server_id(req) == Some(iface.addr) => MessageType::Ack,
        MessageType::Request => {
            return Answer::silent("proxy mode: a REQUEST for the address server, not for us");
        }
        _ => return Answer::silent("proxy mode: only DISCOVER (and REQUEST naming us) are answered"),
    };
    proxy_answer(iface, req, reply_kind, ReplyKind::Offer)
}

/// Proxy mode, UDP 4011: the PXE boot server answers REQUESTs (and INFORMs) with the boot file.
fn boot_server(iface: &BootCtx, req: &Message, kind: MessageType) -> Answer {
    if !is_boot_client(&client_kind(req)) {
        return Answer::silent("boot server (4011): no PXEClient vendor class, ignored");
    }
    if !matches!(kind, MessageType::Request | MessageType::Inform) {
        return Answer::silent("boot server (4011): only REQUEST and INFORM are answered");
    }
    proxy_answer(iface, req, MessageType::Ack, ReplyKind::Ack)
}

fn proxy_answer(iface: &BootCtx, req: &Message, reply_kind: MessageType, rk: ReplyKind) -> Answer {
    let mut m = reply_to(req, reply_kind, iface.addr);
    m.set_ciaddr(req.ciaddr());
    let (file, why) = add_boot(&mut m, req, iface);
    let Some(file) = file else {
        return Answer::silent(format!("proxy mode: {why}"));
    };
    Answer {
        response: format!("{} (proxy, no address) {file}", options::msg_name(reply_kind)),
        reason: format!("proxy mode: {why}"),
        reply: Some((m, rk)),
        persist: Vec::new(),
        leased: None,
    }
}

impl Shared {
    /// Full mode: leases from the segment's DHCP range.
    async fn full(&self, iface: &Iface, req: &Message, kind: MessageType, mac: Option<Mac>) -> Answer {
        let Some(mac) = mac else { return Answer::silent("no Ethernet hardware address (chaddr)") };
        let mut seg = self.segment_for(iface, req);
        if seg.is_none() {
            self.segments.refresh_after_miss(&self.app.store).await;
            seg = self.segment_for(iface, req);
        }
        let Some(seg) = seg else {
            let vni = iface.cfg.vni.as_deref().unwrap_or("-");
            return Answer::silent(if req.giaddr().is_unspecified() {
                format!("VNI `{vni}` does not exist or has no IPv4 DHCP range")
            } else {
                format!("relay {}: no VNI with a DHCP range contains it", req.giaddr())
            });
        };
        if let Err(e) = self.ensure_loaded(&seg.vni_id).await {
            return Answer::silent(format!("leases of VNI `{}` could not be read: {e}", seg.name));
        }
        let cfg = &self.app.config.dhcp;
        let full = Full {
            seg: &seg,
            ctx: &iface.ctx,
            lease_secs: cfg.lease_time.as_secs(),
            quarantine_secs: cfg.decline_quarantine.as_secs(),
            now: unix_now(),
        };
        let Ok(mut tables) = self.leases.lock() else { return Answer::silent("internal: lease table poisoned") };
        let Some(table) = tables.get_mut(&seg.vni_id) else { return Answer::silent("internal: lease table missing") };
        let answer = full.decide(table, req, kind, mac);
        if let Some(ip) = answer.leased {
            self.app.boot.neighbors.learn(ip, mac);
        }
        answer
    }

    /// The relay's segment, else the segment of the address the client has, else the
    /// interface's own VNI.
    fn segment_for(&self, iface: &Iface, req: &Message) -> Option<Arc<DhcpSegment>> {
        if !req.giaddr().is_unspecified() {
            return self.segments.by_relay(req.giaddr());
        }
        let own = iface.cfg.vni.as_deref().and_then(|v| self.segments.by_name(v));
        if !req.ciaddr().is_unspecified() && !own.as_ref().is_some_and(|s| s.contains(req.ciaddr())) {
            return self.segments.by_relay(req.ciaddr()).or(own);
        }
        own
    }

    async fn ensure_loaded(&self, vni_id: &str) -> Result<(), sqlx::Error> {
        if self.leases.lock().is_ok_and(|t| t.contains_key(vni_id)) {
            return Ok(());
        }
        let rows = self.app.store.dhcp_leases_of(vni_id).await?;
        let leases = rows.iter().filter_map(lease_of_row);
        let table = LeaseTable::from_leases(leases);
        if let Ok(mut t) = self.leases.lock() {
            t.entry(vni_id.to_string()).or_insert(table);
        }
        Ok(())
    }
}

/// One full-mode decision, pure: the segment, the interface and the clock in, the answer out.
struct Full<'a> {
    seg: &'a DhcpSegment,
    ctx: &'a BootCtx,
    lease_secs: u64,
    quarantine_secs: u64,
    now: u64,
}

impl Full<'_> {
    fn decide(&self, table: &mut LeaseTable, req: &Message, kind: MessageType, mac: Mac) -> Answer {
        let (seg, now) = (self.seg, self.now);
        match kind {
            MessageType::Discover => match table.offer(mac, options::requested_ip(req), seg, now) {
                None => Answer::silent(format!("VNI `{}`: no free address in the DHCP range", seg.name)),
                Some(ip) => {
                    let mut m = reply_to(req, MessageType::Offer, self.ctx.addr);
                    m.set_yiaddr(ip);
                    lease_options(&mut m, seg, self.lease_secs);
                    let (file, why) = add_boot(&mut m, req, self.ctx);
                    let reserved =
                        if seg.reservations.get(&mac) == Some(&ip) { " (the asset's IPAM address)" } else { "" };
                    Answer {
                        response: format!("DHCPOFFER {ip}{}", file.map(|f| format!(" {f}")).unwrap_or_default()),
                        reason: format!("VNI `{}`: offered {ip}{reserved}; {why}", seg.name),
                        reply: Some((m, ReplyKind::Offer)),
                        persist: Vec::new(),
                        leased: None,
                    }
                }
            },
            MessageType::Request => self.request(table, req, mac),
            MessageType::Release => match table.release(mac, req.ciaddr(), now) {
                Some(l) => Answer {
                    reply: None,
                    persist: vec![row(&seg.vni_id, &l)],
                    response: "none".into(),
                    reason: format!("released {}", l.ip),
                    leased: None,
                },
                None => Answer::silent(format!("RELEASE of {} which this client does not hold", req.ciaddr())),
            },
            MessageType::Decline => {
                let ip = options::requested_ip(req).unwrap_or(Ipv4Addr::UNSPECIFIED);
                match table.decline(mac, ip, self.quarantine_secs, now) {
                    Some(l) => Answer {
                        reply: None,
                        persist: vec![row(&seg.vni_id, &l)],
                        response: "none".into(),
                        reason: format!("client found {ip} in use: quarantined for {} s", self.quarantine_secs),
                        leased: None,
                    },
                    None => Answer::silent(format!("DECLINE of {ip}, which was not offered or leased to this client")),
                }
            }
            MessageType::Inform => {
                let mut m = reply_to(req, MessageType::Ack, self.ctx.addr);
                m.set_ciaddr(req.ciaddr());
                config_options(&mut m, seg);
                Answer {
                    response: "DHCPACK (configuration only)".into(),
                    reason: format!("INFORM: VNI `{}` options", seg.name),
                    reply: Some((m, ReplyKind::Ack)),
                    persist: Vec::new(),
                    leased: None,
                }
            }
            _ => Answer::silent("not a client message"),
        }
    }

    fn request(&self, table: &mut LeaseTable, req: &Message, mac: Mac) -> Answer {
        let (seg, now) = (self.seg, self.now);
        let server_id = options::server_id(req);
        if let Some(sid) = server_id
            && sid != self.ctx.addr
        {
            table.withdraw_offer(&mac);
            return Answer::silent(format!("the client chose server {sid}"));
        }
        // SELECTING and INIT-REBOOT name the address in option 50; RENEWING/REBINDING in ciaddr.
        let (ip, phase) = match (server_id, options::requested_ip(req)) {
            (Some(_), Some(ip)) => (ip, "selecting"),
            (None, Some(ip)) if req.ciaddr().is_unspecified() => (ip, "init-reboot"),
            _ if !req.ciaddr().is_unspecified() => (req.ciaddr(), "renewing"),
            _ => return Answer::silent("REQUEST without a requested address or ciaddr"),
        };
        let nak = |why: String| {
            let mut m = reply_to(req, MessageType::Nak, self.ctx.addr);
            m.opts_mut().insert(DhcpOption::Message(why.clone()));
            Answer {
                response: format!("DHCPNAK {ip}"),
                reason: format!("{phase}: {why}"),
                reply: Some((m, ReplyKind::Nak)),
                persist: Vec::new(),
                leased: None,
            }
        };
        if !seg.contains(ip) {
            return nak(format!("{ip} is not on VNI `{}` ({})", seg.name, seg.net));
        }
        let lease_secs = self.lease_secs;
        let client_id = options::bytes(req, OptionCode::ClientIdentifier).map(<[u8]>::to_vec);
        let ask = Ask { mac, ip, lease_secs, hostname: options::hostname(req), client_id };
        match table.request(ask, seg, now) {
            Err(refusal) => nak(refusal.to_string()),
            Ok((lease, previous)) => {
                let mut m = reply_to(req, MessageType::Ack, self.ctx.addr);
                m.set_yiaddr(ip).set_ciaddr(req.ciaddr());
                lease_options(&mut m, seg, lease_secs);
                let (file, why) = add_boot(&mut m, req, self.ctx);
                let mut persist = vec![row(&seg.vni_id, &lease)];
                persist.extend(previous.as_ref().map(|p| row(&seg.vni_id, p)));
                Answer {
                    response: format!("DHCPACK {ip}{}", file.map(|f| format!(" {f}")).unwrap_or_default()),
                    reason: format!("{phase}: leased {ip} for {lease_secs} s on VNI `{}`; {why}", seg.name),
                    reply: Some((m, ReplyKind::Ack)),
                    persist,
                    leased: Some(ip),
                }
            }
        }
    }
}

/// Address options: mask, broadcast, lease time with T1 = 50 % and T2 = 87.5 %, then the
/// segment's configuration options.
fn lease_options(m: &mut Message, seg: &DhcpSegment, lease_secs: u64) {
    let secs = u32::try_from(lease_secs).unwrap_or(u32::MAX);
    let opts = m.opts_mut();
    opts.insert(DhcpOption::AddressLeaseTime(secs));
    opts.insert(DhcpOption::Renewal(secs / 2));
    opts.insert(DhcpOption::Rebinding(secs / 8 * 7));
    config_options(m, seg);
}

fn config_options(m: &mut Message, seg: &DhcpSegment) {
    let opts = m.opts_mut();
    opts.insert(DhcpOption::SubnetMask(seg.net.netmask()));
    opts.insert(DhcpOption::BroadcastAddr(seg.net.broadcast()));
    if let Some(gw) = seg.gateway {
        opts.insert(DhcpOption::Router(vec![gw]));
    }
    if !seg.dns.is_empty() {
        opts.insert(DhcpOption::DomainNameServer(seg.dns.clone()));
    }
    if let Some(domain) = &seg.domain {
        opts.insert(DhcpOption::DomainName(domain.clone()));
    }
}

fn row(vni_id: &str, l: &Lease) -> LeaseRow {
    LeaseRow {
        vni_id: vni_id.to_string(),
        address: l.ip.to_string(),
        mac: l.mac.to_string(),
        client_id: l.client_id.as_ref().map(hex::encode),
        hostname: l.hostname.clone(),
        state: l.state.as_str().to_string(),
        expires_at: i64::try_from(l.expires).unwrap_or(i64::MAX),
        updated_at: now_rfc3339(),
    }
}

fn lease_of_row(r: &LeaseRow) -> Option<Lease> {
    Some(Lease {
        ip: r.address.parse().ok()?,
        mac: r.mac.parse().ok()?,
        state: LeaseState::parse(&r.state)?,
        expires: u64::try_from(r.expires_at).ok()?,
        hostname: r.hostname.clone(),
        client_id: r.client_id.as_deref().and_then(|h| hex::decode(h).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::relay::{RelayAgentInformation, RelayInfo};

    fn ctx() -> BootCtx {
        BootCtx {
            addr: Ipv4Addr::new(10, 213, 0, 1),
            boot: BootServer {
                tftp: Ipv4Addr::new(10, 213, 0, 1),
                http_base: "http://10.213.0.1:8080".into(),
                efi_binary: boot::EfiBinary::Ipxe,
            },
        }
    }

    fn discover(vendor: &[u8], arch: u16) -> Message {
        let mut m = Message::new(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &[0x52, 0x54, 0, 0x13, 1, 0],
        );
        m.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
        m.opts_mut().insert(DhcpOption::ClassIdentifier(vendor.to_vec()));
        m.opts_mut().insert(DhcpOption::ClientSystemArchitecture(arch.into()));
        m.opts_mut().insert(DhcpOption::ClientMachineIdentifier(vec![0; 17]));
        m
    }

    #[test]
    fn proxy_offers_carry_the_boot_file_and_pxe_options_but_no_address() {
        let req = discover(b"PXEClient:Arch:00007:UNDI:003016", 7);
        let a = proxy(&ctx(), &req, MessageType::Discover);
        let (m, _) = a.reply.expect("a proxy offer");
        assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED, "proxy mode never hands out addresses");
        assert_eq!(m.siaddr(), Ipv4Addr::new(10, 213, 0, 1));
        assert_eq!(m.fname_str().and_then(Result::ok), Some("ipxe.efi"));
        assert_eq!(
            m.opts().get(OptionCode::ClassIdentifier),
            Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec()))
        );
        assert_eq!(
            m.opts().get(OptionCode::VendorExtensions),
            Some(&DhcpOption::VendorExtensions(options::pxe_vendor_options())),
            "EDK2 needs option 43 in a proxy offer (edk2#6944)"
        );
        assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
        // Encoded, it is at least BOOTP's 300 bytes and decodes back.
        let bytes = encode(&m);
        assert!(bytes.len() >= MIN_REPLY);
        assert!(options::decode(&bytes).is_some());
    }

    #[test]
    fn proxy_ignores_clients_that_are_not_pxe_and_says_why() {
        let req = discover(b"udhcp 1.36.1", 0);
        let a = proxy(&ctx(), &req, MessageType::Discover);
        assert!(a.reply.is_none());
        assert_eq!(a.reason, "proxy mode: no PXEClient vendor class, ignored");
    }

    #[test]
    fn the_boot_server_on_4011_acks_requests_with_the_file() {
        let mut req = discover(b"PXEClient:Arch:00000:UNDI:002001", 0);
        req.opts_mut().insert(DhcpOption::MessageType(MessageType::Request));
        req.set_ciaddr(Ipv4Addr::new(10, 213, 0, 150));
        let a = boot_server(&ctx(), &req, MessageType::Request);
        let (m, _) = a.reply.expect("an ACK");
        assert_eq!(m.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(m.fname_str().and_then(Result::ok), Some("undionly.kpxe"));
        assert_eq!(m.ciaddr(), Ipv4Addr::new(10, 213, 0, 150));
        assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    }

    #[test]
    fn ipxe_gets_the_script_url_not_another_ipxe() {
        let mut req = discover(b"PXEClient:Arch:00000:UNDI:002001", 0);
        req.opts_mut().insert(DhcpOption::UserClass(b"iPXE".to_vec()));
        let (m, _) = proxy(&ctx(), &req, MessageType::Discover).reply.expect("offer");
        assert_eq!(m.fname_str().and_then(Result::ok), Some("http://10.213.0.1:8080/boot.ipxe"));
    }

    #[test]
    fn relay_agent_information_is_echoed() {
        let mut req = discover(b"PXEClient", 0);
        req.set_giaddr(Ipv4Addr::new(10, 214, 0, 1));
        let mut info = RelayAgentInformation::default();
        info.insert(RelayInfo::AgentCircuitId(b"rack-b/port-7".to_vec()));
        req.opts_mut().insert(DhcpOption::RelayAgentInformation(info.clone()));
        let m = reply_to(&req, MessageType::Offer, Ipv4Addr::new(10, 213, 0, 1));
        assert_eq!(m.giaddr(), Ipv4Addr::new(10, 214, 0, 1));
        assert_eq!(m.opts().get(OptionCode::RelayAgentInformation), Some(&DhcpOption::RelayAgentInformation(info)));
        assert_eq!(m.xid(), req.xid());
    }
}

/// See `dhcp::fuzzing`. Panics when an invariant breaks.
pub fn fuzz_packet(table: &mut LeaseTable, bytes: &[u8]) {
    use crate::ipam::Pool;
    let Some(req) = options::decode(bytes) else { return };
    let Some(kind) = req.opts().msg_type() else { return };
    let net: ipnet::Ipv4Net = "10.213.0.0/24".parse().unwrap_or_default();
    let range = (Ipv4Addr::new(10, 213, 0, 100), Ipv4Addr::new(10, 213, 0, 110));
    let Ok(pool) = Pool::new(
        ipnet::IpNet::V4(net),
        Some(Ipv4Addr::new(10, 213, 0, 1).into()),
        Vec::new(),
        Some(crate::ipam::Range { start: range.0.into(), end: range.1.into() }),
    ) else {
        return;
    };
    let seg = DhcpSegment {
        vni_id: "vni_fuzz".into(),
        name: "fuzz".into(),
        net,
        pool,
        range,
        gateway: Some(Ipv4Addr::new(10, 213, 0, 1)),
        dns: vec![Ipv4Addr::new(10, 213, 0, 53)],
        domain: Some("fuzz.test".into()),
        ipam_held: Default::default(),
        reservations: Default::default(),
    };
    let ctx = BootCtx {
        addr: Ipv4Addr::new(10, 213, 0, 1),
        boot: BootServer {
            tftp: Ipv4Addr::new(10, 213, 0, 1),
            http_base: "http://10.213.0.1:8080".into(),
            efi_binary: boot::EfiBinary::Ipxe,
        },
    };
    let full = Full { seg: &seg, ctx: &ctx, lease_secs: 3600, quarantine_secs: 600, now: 1_000_000 };
    let check = |a: &Answer, proxy: bool| {
        let Some((m, _)) = &a.reply else { return };
        let y = m.yiaddr();
        if proxy {
            assert!(y.is_unspecified(), "proxy mode set yiaddr {y}");
        } else {
            assert!(y.is_unspecified() || (range.0 <= y && y <= range.1), "yiaddr {y} outside the range");
        }
        let bytes = encode(m);
        assert!(options::decode(&bytes).is_some(), "a reply we encoded does not decode");
    };
    if let Some(mac) = client_mac(&req) {
        check(&full.decide(table, &req, kind, mac), false);
    }
    check(&proxy(&ctx, &req, kind), true);
    check(&boot_server(&ctx, &req, kind), true);
}

#[cfg(test)]
mod fuzz_in_suite {
    use super::*;

    /// A tiny deterministic PRNG (xorshift): the same inputs on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn seeds() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (kind, vendor, uc) in [
            (MessageType::Discover, &b"PXEClient:Arch:00007:UNDI:003016"[..], None),
            (MessageType::Request, &b"PXEClient:Arch:00000:UNDI:002001"[..], Some(&b"iPXE"[..])),
            (MessageType::Release, &b"udhcp 1.35.0"[..], None),
            (MessageType::Decline, &b"HTTPClient:Arch:00016"[..], None),
            (MessageType::Inform, &b"MSFT 5.0"[..], None),
        ] {
            let mut m = Message::new(
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED,
                &[0x52, 0x54, 0, 1, 2, 3],
            );
            m.opts_mut().insert(DhcpOption::MessageType(kind));
            m.opts_mut().insert(DhcpOption::ClassIdentifier(vendor.to_vec()));
            m.opts_mut().insert(DhcpOption::ClientSystemArchitecture(7.into()));
            m.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 213, 0, 105)));
            m.opts_mut().insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 213, 0, 1)));
            if let Some(uc) = uc {
                m.opts_mut().insert(DhcpOption::UserClass(uc.to_vec()));
            }
            out.push(m.to_vec().unwrap_or_default());
        }
        out
    }

    #[test]
    fn mutated_and_random_packets_never_panic_or_break_invariants() {
        let mut rng = Rng(0x1b0a_7e57_d4c9_0001);
        let mut table = LeaseTable::default();
        let seeds = seeds();
        for seed in &seeds {
            fuzz_packet(&mut table, seed);
        }
        for i in 0..20_000 {
            let mut p = seeds[i % seeds.len()].clone();
            match rng.next() % 4 {
                0 => {
                    for _ in 0..1 + rng.next() % 8 {
                        let at = (rng.next() as usize) % p.len();
                        p[at] = rng.next() as u8;
                    }
                }
                1 => p.truncate((rng.next() as usize) % p.len()),
                2 => p.extend((0..rng.next() % 64).map(|_| rng.next() as u8)),
                _ => p = (0..rng.next() % 600).map(|_| rng.next() as u8).collect(),
            }
            fuzz_packet(&mut table, &p);
        }
    }
}

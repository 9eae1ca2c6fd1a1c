//! The DHCP server against real clients in a lab (namespaces + bridge, tests/support/lab.rs):
//! ISC dhclient, busybox udhcpc and Kea's perfdhcp in full mode; dnsmasq beside ironbay in
//! proxy mode. Runs as root (CI does).

mod common;
#[path = "support/lab.rs"]
mod lab;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use common::{Appliance, Backend, Client, Options, eventually};
use lab::{ClientNs, Lab};
use serde_json::{Value, json};

const SERVER: &str = "10.213.0.1";

/// The appliance inside the lab's server namespace with DHCP on `ibbr0` in `mode`.
async fn appliance(lab: &Lab, interfaces: &str, extra: &[(&str, &str)]) -> Appliance {
    let mut opts = Options { netns: Some(lab.server_ns.clone()), ..Options::default() }
        .env("IRONBAY_LISTEN", &format!("{SERVER}:8080"))
        .env("IRONBAY_DHCP__INTERFACES", interfaces);
    for (k, v) in extra {
        opts = opts.env(k, v);
    }
    Appliance::start_with(Backend::Sqlite, opts).await
}

fn full_mode() -> &'static str {
    r#"[{name="ibbr0",mode="full",vni="rack-a"}]"#
}

async fn create_rack_a(admin: &Client) -> String {
    let r = admin
        .post(
            "/api/v1/vnis",
            json!({
                "name": "rack-a", "cidr": "10.213.0.0/24", "vni": 100,
                "dhcp": {"start": "10.213.0.100", "end": "10.213.0.199"},
                "gateway": "10.213.0.1", "dns_servers": ["10.213.0.53"], "domain": "rack-a.test"
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["id"].as_str().expect("vni id").to_string()
}

/// A client script that records what it was given (and configures the address, inside the
/// client namespace only: never the host's resolv.conf, unlike the stock scripts).
fn write_script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
    Command::new("chmod").arg("755").arg(&path).status().expect("chmod");
    path.display().to_string()
}

fn dhclient_script(dir: &Path) -> String {
    let log = dir.join("dhclient.log");
    write_script(
        dir,
        "dhclient-script",
        &format!(
            r#"case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    echo "$reason ip=$new_ip_address mask=$new_subnet_mask router=$new_routers dns=$new_domain_name_servers domain=$new_domain_name lease=$new_dhcp_lease_time" >> {log}
    ;;
esac
exit 0"#,
            log = log.display()
        ),
    )
}

fn udhcpc_script(dir: &Path) -> String {
    let log = dir.join("udhcpc.log");
    write_script(
        dir,
        "udhcpc-script",
        &format!(
            r#"case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    ;;
esac
echo "$1 ip=$ip mask=$mask router=$router dns=$dns domain=$domain lease=$lease serverid=$serverid" >> {log}
exit 0"#,
            log = log.display()
        ),
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn output(c: &mut Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn address_of(lab: &Lab, c: &ClientNs) -> Option<String> {
    let out = lab.ip(&c.ns, &["-4", "-o", "addr", "show", "dev", &c.ifname]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace().skip_while(|w| *w != "inet").nth(1).map(|a| a.split('/').next().unwrap_or(a).to_string())
}

async fn events_of(admin: &Client, mac: &str) -> Vec<Value> {
    let r = admin.get(&format!("/api/v1/boot-events?mac={mac}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().cloned().unwrap_or_default()
}

fn mac_of(lab: &Lab, c: &ClientNs) -> String {
    let out = lab.ip(&c.ns, &["-o", "link", "show", "dev", &c.ifname]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).expect("mac").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhclient_obtains_renews_and_releases_a_lease() {
    let mut lab = Lab::new();
    let app = appliance(&lab, full_mode(), &[]).await;
    let admin = app.admin().await;
    let vni = create_rack_a(&admin).await;
    let health = eventually("DHCP bound", 10, || async {
        let h = admin.get("/api/v1/health").await.json;
        if h["services"]["dhcp"]["state"] == "up" { Ok(h) } else { Err(h.to_string()) }
    })
    .await;
    assert_eq!(health["services"]["dhcp"]["detail"], "10.213.0.1:67", "{health}");
    let client = lab.add_client();
    let mac = mac_of(&lab, &client);
    let dir = tempfile::tempdir().expect("tmp");
    let script = dhclient_script(dir.path());
    let (lf, pf) = (dir.path().join("leases"), dir.path().join("pid"));
    let dhclient = |extra: &[&str]| {
        let mut c = lab.command(&client.ns, "dhclient");
        c.args(["-4", "-v", "-sf", &script, "-lf"]).arg(&lf).arg("-pf").arg(&pf).args(extra).arg(&client.ifname);
        c
    };
    // DORA; -1: one attempt, fail instead of retrying forever.
    output(&mut dhclient(&["-1"]));
    let log = read(&dir.path().join("dhclient.log"));
    assert!(log.starts_with("BOUND ip=10.213.0.1"), "{log}");
    let first = address_of(&lab, &client).expect("an address");
    assert!(first.starts_with("10.213.0.1") && first.len() == "10.213.0.100".len(), "{first} from the range");
    for want in ["mask=255.255.255.0", "router=10.213.0.1", "dns=10.213.0.53", "domain=rack-a.test", "lease=3600"] {
        assert!(log.contains(want), "{want} missing: {log}");
    }
    // IPAM knows the lease: next-free skips it, and it cannot be allocated to someone else.
    let alloc = admin
        .post(&format!("/api/v1/vnis/{vni}/allocations"), json!({"holder_type": "other", "holder_id": "printer"}))
        .await;
    assert_eq!(alloc.status, 201, "{}", alloc.text);
    assert_ne!(alloc.json["address"], first.as_str(), "IPAM must not hand out a DHCP-leased address");
    let clash = admin
        .post(
            &format!("/api/v1/vnis/{vni}/allocations"),
            json!({"holder_type": "other", "holder_id": "laptop", "address": first}),
        )
        .await;
    assert_eq!((clash.status, clash.error_code()), (409, "ADDRESS_TAKEN".to_string()), "{}", clash.text);
    // Release (-r): the daemon sends DHCPRELEASE and exits.
    output(&mut dhclient(&["-r"]));
    let events = eventually("the release in the boot timeline", 10, || async {
        let ev = events_of(&admin, &mac).await;
        let released = ev.iter().any(|e| e["request"].as_str().is_some_and(|r| r.starts_with("DHCPRELEASE")));
        if released { Ok(ev) } else { Err(format!("{ev:#?}")) }
    })
    .await;
    assert!(events.iter().any(|e| e["reason"].as_str().is_some_and(|r| r.contains(&format!("released {first}")))));
    // INIT-REBOOT from the lease file: the same address again, acknowledged.
    output(&mut dhclient(&["-1"]));
    assert_eq!(address_of(&lab, &client).as_deref(), Some(first.as_str()), "the client gets its address back");
    let ev = events_of(&admin, &mac).await;
    assert!(
        ev.iter().any(|e| e["reason"].as_str().is_some_and(|r| r.starts_with("init-reboot: leased")))
            || ev.iter().filter(|e| e["response"].as_str().is_some_and(|r| r.starts_with("DHCPACK"))).count() >= 2,
        "{ev:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udhcpc_renews_and_releases_and_a_restart_keeps_leases() {
    let mut lab = Lab::new();
    // With fsync on (the other tests run without): the committer's FULL path is exercised too.
    let app = appliance(&lab, full_mode(), &[("IRONBAY_DHCP__LEASE_FSYNC", "true")]).await;
    let admin = app.admin().await;
    create_rack_a(&admin).await;
    let a = lab.add_client();
    let dir = tempfile::tempdir().expect("tmp");
    let script = udhcpc_script(dir.path());
    let log_path = dir.path().join("udhcpc.log");
    // Foreground, stays running: SIGUSR1 renews, SIGUSR2 releases.
    let mut udhcpc: Child = lab
        .command(&a.ns, "udhcpc")
        .args(["-f", "-i", &a.ifname, "-s", &script, "-t", "10", "-T", "1", "-A", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("udhcpc");
    let bound = eventually("udhcpc bound", 30, || async {
        let log = read(&log_path);
        log.lines().find(|l| l.starts_with("bound")).map(str::to_string).ok_or(log)
    })
    .await;
    assert!(bound.contains("serverid=10.213.0.1") && bound.contains("router=10.213.0.1"), "{bound}");
    let ip_a = address_of(&lab, &a).expect("address");
    let pid = udhcpc.id().to_string();
    output(Command::new("kill").args(["-USR1", &pid]));
    let renewed = eventually("udhcpc renewed", 30, || async {
        let log = read(&log_path);
        log.lines().find(|l| l.starts_with("renew")).map(str::to_string).ok_or(log)
    })
    .await;
    assert!(renewed.contains(&format!("ip={ip_a}")), "renewal keeps the address: {renewed}");

    // Restart ironbay (SIGKILL: no clean shutdown): the lease must survive.
    let app = app.restart().await;
    let admin = app.admin().await;
    // A second client asking for the first one's address is refused it (offered another).
    let b = lab.add_client();
    let dir_b = tempfile::tempdir().expect("tmp");
    let script_b = udhcpc_script(dir_b.path());
    output(
        lab.command(&b.ns, "udhcpc")
            .args(["-f", "-q", "-n", "-i", &b.ifname, "-s", &script_b, "-t", "10", "-T", "1", "-r", &ip_a]),
    );
    let ip_b = address_of(&lab, &b).expect("address for b");
    assert_ne!(ip_a, ip_b, "after a restart, a leased address is not handed to another client");
    // And the first client renews its lease with the restarted server.
    output(Command::new("kill").args(["-USR1", &pid]));
    eventually("a second renewal after the restart", 30, || async {
        let log = read(&log_path);
        let n = log.lines().filter(|l| l.starts_with("renew") && l.contains(&format!("ip={ip_a}"))).count();
        if n >= 2 { Ok(()) } else { Err(log) }
    })
    .await;
    // SIGUSR2: release.
    let mac_a = mac_of(&lab, &a);
    output(Command::new("kill").args(["-USR2", &pid]));
    eventually("the release recorded", 15, || async {
        let ev = events_of(&admin, &mac_a).await;
        let ok = ev.iter().any(|e| e["reason"].as_str().is_some_and(|r| r == format!("released {ip_a}")));
        if ok { Ok(()) } else { Err(format!("{ev:#?}")) }
    })
    .await;
    let _ = udhcpc.kill();
    let _ = udhcpc.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perfdhcp_completes_dora_exchanges_without_drops() {
    let mut lab = Lab::new();
    let app = appliance(&lab, full_mode(), &[]).await;
    let admin = app.admin().await;
    create_rack_a(&admin).await;
    let c = lab.add_client();
    lab.set_address(&c, "10.213.0.9");
    // 50 simulated clients (distinct MACs), DORA each, at 50/s; -W: wait up to 3 s for answers
    // still in flight when the 50th exchange starts.
    let out = lab
        .command(&c.ns, "perfdhcp")
        .args([
            "-4", "-l", &c.ifname, "-r", "50", "-R", "50", "-n", "50", "-p", "20", "-W", "3000000", "-t", "1", SERVER,
        ])
        .output()
        .expect("perfdhcp");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let received = received_counts(&text);
    assert_eq!(received.len(), 2, "DISCOVER-OFFER and REQUEST-ACK statistics: {text}");
    assert!(received.iter().all(|&(sent, got)| sent >= 50 && got == sent), "every exchange answered: {text}");
    // perfdhcp sends as a relay agent (giaddr = its address): the relay path chose the VNI.
    let r = admin.get("/api/v1/boot-events?limit=20").await;
    let relayed = r.json["data"].as_array().cloned().unwrap_or_default();
    assert!(
        relayed.iter().any(|e| e["request"].as_str().is_some_and(|q| q.contains("giaddr=10.213.0.9"))
            && e["reason"].as_str().is_some_and(|q| q.contains("VNI `rack-a`"))),
        "{relayed:#?}"
    );
    drop(app);
}

/// perfdhcp's "sent packets: N" / "received packets: M" pairs, per exchange.
fn received_counts(text: &str) -> Vec<(u64, u64)> {
    let num = |line: &str| line.rsplit(':').next().and_then(|n| n.trim().parse::<u64>().ok());
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("sent packets:")
            && let Some(r) = lines.get(i + 1).filter(|n| n.starts_with("received packets:"))
            && let (Some(s), Some(r)) = (num(l), num(r))
        {
            out.push((s, r));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interface_not_named_in_config_never_sees_a_reply() {
    let mut lab = Lab::new();
    let (stranger, _server_end) = lab.add_isolated_client("10.214.0.1/24");
    let app = appliance(&lab, full_mode(), &[]).await;
    let admin = app.admin().await;
    create_rack_a(&admin).await;
    // A VNI for the other segment too: it would be served if the interface were listened on.
    let r = admin
        .post(
            "/api/v1/vnis",
            json!({"name": "other", "cidr": "10.214.0.0/24", "vni": 101, "dhcp": {"start": "10.214.0.100", "end": "10.214.0.110"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Control: a bridged client is answered, so the server is up and serving.
    let named = lab.add_client();
    let dir = tempfile::tempdir().expect("tmp");
    let script = udhcpc_script(dir.path());
    output(lab.command(&named.ns, "udhcpc").args([
        "-f",
        "-q",
        "-n",
        "-i",
        &named.ifname,
        "-s",
        &script,
        "-t",
        "5",
        "-T",
        "1",
    ]));
    assert!(address_of(&lab, &named).is_some());
    let out = lab
        .command(&stranger.ns, "udhcpc")
        .args(["-f", "-q", "-n", "-i", &stranger.ifname, "-s", &script, "-t", "3", "-T", "1"])
        .output()
        .expect("udhcpc");
    assert!(!out.status.success(), "udhcpc must fail: no server answers on an unnamed interface");
    assert_eq!(address_of(&lab, &stranger), None);
    let ev = events_of(&admin, &mac_of(&lab, &stranger)).await;
    assert!(ev.is_empty(), "ironbay must not even have seen the packets: {ev:#?}");
}

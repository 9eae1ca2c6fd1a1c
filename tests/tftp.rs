//! TFTP end to end: the real binary in a lab namespace serving a `pxe/` directory of real iPXE
//! binaries on the named interface, fetched by real clients (tftp-hpa, curl, busybox) and by
//! `support/tftp_client.rs` (windowsize) from a client namespace.

mod common;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/tftp_client.rs"]
mod tftp_client;

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Appliance, Backend, Options, eventually};
use lab::{ClientNs, Lab};
use serde_json::Value;
use tftp_client::Ask;

const SERVER: &str = "10.213.0.1";
const CLIENT_IP: &str = "10.213.0.50";
const FILES: [&str; 2] = ["ipxe.efi", "undionly.kpxe"];

/// Extra options a request carries, as sent.
type ExtraOptions = Vec<(String, String)>;

struct Setup {
    lab: Lab,
    client: ClientNs,
    app: Appliance,
    /// Holds `pxe/` and, next to it, `secret.txt` that traversal must not reach.
    dir: tempfile::TempDir,
    /// Scratch space for downloads.
    out: tempfile::TempDir,
}

impl Setup {
    fn pxe(&self) -> PathBuf {
        self.dir.path().join("pxe")
    }

    fn original(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.pxe().join(name)).expect("source file")
    }

    fn server(&self) -> SocketAddr {
        format!("{SERVER}:69").parse().expect("addr")
    }

    /// Runs `program args` in the client namespace.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        self.lab.command(&self.client.ns, program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    fn download(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }
}

fn ipxe_source(name: &str) -> PathBuf {
    let p = Path::new("/usr/lib/ipxe").join(name);
    assert!(p.exists(), "{} missing: run scripts/install-deps.sh (Debian package ipxe)", p.display());
    p
}

async fn setup() -> Setup {
    let mut lab = Lab::new();
    let client = lab.add_client();
    lab.set_address(&client, CLIENT_IP);
    let dir = tempfile::tempdir().expect("tempdir");
    let pxe = dir.path().join("pxe");
    std::fs::create_dir(&pxe).expect("pxe dir");
    for f in FILES {
        std::fs::copy(ipxe_source(f), pxe.join(f)).expect("copy iPXE binary");
    }
    std::fs::write(dir.path().join("secret.txt"), "not for TFTP").expect("secret");
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), pxe.join("escape")).expect("symlink");
    let out = tempfile::tempdir().expect("tempdir");
    let opts = Options { netns: Some(lab.server_ns.clone()), ..Default::default() }
        .env("IRONBAY_DHCP__INTERFACES", r#"[{name="ibbr0",mode="proxy"}]"#)
        .env("IRONBAY_BOOT__PXE_DIR", &pxe.display().to_string())
        .env("IRONBAY_LISTEN", &format!("{SERVER}:8080"));
    let app = Appliance::start_with(Backend::Sqlite, opts).await;
    let c = app.client();
    eventually("tftp up in health", 20, || {
        let c = c.clone();
        async move {
            let r = c.get("/api/v1/health").await;
            let tftp = &r.json["services"]["tftp"];
            (tftp["state"] == "up").then_some(()).ok_or_else(|| tftp.to_string())
        }
    })
    .await;
    Setup { lab, client, app, dir, out }
}

/// Runs `f` on a thread inside network namespace `ns` (sockets it opens live there).
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = File::open(format!("/run/netns/{ns}")).expect("netns handle");
    std::thread::spawn(move || {
        // SAFETY: setns on this thread only, with a namespace fd we hold open.
        let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("client thread")
}

async fn boot_events(app: &Appliance) -> Vec<Value> {
    let r = app.admin().await.get("/api/v1/boot-events?limit=500").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().cloned().unwrap_or_default()
}

/// Waits until the timeline has a TFTP event whose request starts with the first word of
/// `request` (`RRQ name`) and contains each further word (the options, in any order), and whose
/// response contains `response`; returns it.
async fn event(app: &Appliance, request: &str, response: &str) -> Value {
    let words: Vec<&str> = request.split(' ').collect();
    let head = words.iter().take(2).copied().collect::<Vec<_>>().join(" ");
    let matches = |r: &str| {
        r.split(' ').take(2).collect::<Vec<_>>().join(" ") == head
            && words.iter().skip(2).all(|w| r.split(' ').any(|x| x == *w))
    };
    eventually(&format!("a tftp event `{request}` → `{response}`"), 20, || async {
        let events = boot_events(app).await;
        events
            .iter()
            .find(|e| {
                e["source"] == "tftp"
                    && e["request"].as_str().is_some_and(matches)
                    && e["response"].as_str().is_some_and(|r| r.contains(response))
            })
            .cloned()
            .ok_or_else(|| format!("{events:#?}"))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_fetch_the_ipxe_binaries_byte_identical() {
    let s = setup().await;
    for f in FILES {
        // tftp-hpa: no options, 512-byte blocks.
        let dest = s.download(&format!("{f}.hpa"));
        let o = s.run("tftp", &["-m", "binary", SERVER, "-c", "get", f, &dest.display().to_string()]);
        assert!(o.status.success(), "tftp-hpa get {f}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::read(&dest).expect("download") == s.original(f), "tftp-hpa: {f} differs");
        // curl with blksize (8192 is clamped to the bridge's MTU: 1468).
        for blksize in ["1468", "8192"] {
            let dest = s.download(&format!("{f}.curl{blksize}"));
            let url = format!("tftp://{SERVER}/{f}");
            let o = s.run("curl", &["-sS", "--tftp-blksize", blksize, "-o", &dest.display().to_string(), &url]);
            assert!(o.status.success(), "curl {f} blksize {blksize}: {}", String::from_utf8_lossy(&o.stderr));
            assert!(std::fs::read(&dest).expect("download") == s.original(f), "curl {blksize}: {f} differs");
        }
        // busybox tftp -b.
        let dest = s.download(&format!("{f}.bb"));
        let o = s.run("busybox", &["tftp", "-g", "-b", "1468", "-r", f, "-l", &dest.display().to_string(), SERVER]);
        assert!(o.status.success(), "busybox tftp {f}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::read(&dest).expect("download") == s.original(f), "busybox: {f} differs");
    }
    // Each request is one timeline event with the file, the options asked and the bytes sent.
    let size = s.original("ipxe.efi").len();
    let e = event(&s.app, "RRQ ipxe.efi blksize=8192", &format!("sent {size} bytes")).await;
    assert_eq!(e["ip"], CLIENT_IP);
    assert!(e["reason"].as_str().unwrap_or("").contains("blksize 1468"), "{e}");
    event(&s.app, "RRQ undionly.kpxe", "sent 74213 bytes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowsize_and_large_blocks_arrive_byte_identical() {
    let s = setup().await;
    let server = s.server();
    for (blksize, windowsize) in [(1468, 8), (1468, 64), (512, 1), (65_464, 4)] {
        let ask = Ask { blksize: Some(blksize), windowsize: Some(windowsize), ..Default::default() };
        let got = in_ns(&s.client.ns, move || tftp_client::get(server, "ipxe.efi", &ask));
        let got = got.unwrap_or_else(|e| panic!("blksize {blksize} windowsize {windowsize}: {e}"));
        assert!(got == s.original("ipxe.efi"), "blksize {blksize} windowsize {windowsize}: bytes differ");
    }
    event(&s.app, "RRQ ipxe.efi tsize blksize=1468 windowsize=64", "sent 850528 bytes").await;
    // 65464 is clamped to what the 1500-byte MTU carries unfragmented.
    let e = event(&s.app, "RRQ ipxe.efi tsize blksize=65464 windowsize=4", "sent").await;
    assert!(e["reason"].as_str().unwrap_or("").starts_with("blksize 1468 windowsize 4"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_writes_unknown_files_and_bad_options_are_refused_with_the_right_code() {
    let s = setup().await;
    let server = s.server();
    let cases: [(&str, ExtraOptions, &str); 8] = [
        ("../../etc/passwd", vec![], "ERROR 2 "),
        ("pxe/../../x", vec![], "ERROR 2 "),
        ("../secret.txt", vec![], "ERROR 2 "),
        ("//etc/passwd", vec![], "ERROR 2 "),
        ("escape", vec![], "ERROR 2 "),
        // A leading `/` is stripped (PXE clients send it): this is `pxe/etc/passwd`, which does not exist.
        ("/etc/passwd", vec![], "ERROR 1 File not found"),
        ("no-such-file.efi", vec![], "ERROR 1 File not found"),
        ("ipxe.efi", vec![("blksize".into(), "4".into())], "ERROR 8 "),
    ];
    for (name, extra, want) in cases {
        let ask = Ask { extra, ..Default::default() };
        let n = name.to_string();
        let got = in_ns(&s.client.ns, move || tftp_client::get(server, &n, &ask));
        match got {
            Err(e) => assert!(e.starts_with(want), "{name}: expected {want}, got {e}"),
            Ok(bytes) => panic!("{name} was served ({} bytes)", bytes.len()),
        }
    }
    // The leading slash is only a prefix: `/ipxe.efi` is served.
    let got = in_ns(&s.client.ns, move || tftp_client::get(server, "/ipxe.efi", &Ask::default()));
    assert!(got.expect("/ipxe.efi") == s.original("ipxe.efi"));

    // Writes: refused with error 2, by our client and by tftp-hpa's `put`.
    let put = in_ns(&s.client.ns, move || tftp_client::put(server, "upload.bin"));
    assert_eq!(put, Err("ERROR 2 Access violation: read-only server".to_string()));
    let local = s.download("upload.bin");
    std::fs::write(&local, b"data").expect("local file");
    let o = s.run("tftp", &["-m", "binary", SERVER, "-c", "put", &local.display().to_string(), "upload.bin"]);
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("Access violation"), "tftp put: {said}");
    assert!(!s.pxe().join("upload.bin").exists(), "nothing was written");

    // curl maps TFTP errors to exit codes: 68 file not found, 69 permission problem.
    let dest = s.download("curl-traversal").display().to_string();
    let o = s.run("curl", &["-sS", "-o", &dest, &format!("tftp://{SERVER}/..%2F..%2Fetc%2Fpasswd")]);
    assert_eq!(o.status.code(), Some(69), "curl traversal: {}", String::from_utf8_lossy(&o.stderr));
    let o = s.run("curl", &["-sS", "-o", &dest, &format!("tftp://{SERVER}/nothing-here")]);
    assert_eq!(o.status.code(), Some(68), "curl unknown file: {}", String::from_utf8_lossy(&o.stderr));

    // Every refusal is in the timeline with its code and why.
    let e = event(&s.app, "RRQ ../../etc/passwd", "ERROR 2 Access violation").await;
    assert!(e["reason"].as_str().unwrap_or("").contains(".."), "{e}");
    let e = event(&s.app, "RRQ escape", "ERROR 2").await;
    assert!(e["reason"].as_str().unwrap_or("").contains("symlink"), "{e}");
    event(&s.app, "RRQ no-such-file.efi", "ERROR 1 File not found").await;
    event(&s.app, "WRQ upload.bin", "ERROR 2 Access violation").await;
    let e = event(&s.app, "RRQ ipxe.efi tsize blksize=4", "ERROR 8").await;
    assert!(e["reason"].as_str().unwrap_or("").contains("blksize"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_transfers_are_all_byte_identical() {
    let s = setup().await;
    let mut children = Vec::new();
    for i in 0..20 {
        let f = FILES[i % 2];
        let dest = s.download(&format!("{i}-{f}"));
        let child = s
            .lab
            .command(&s.client.ns, "curl")
            .args(["-sS", "--tftp-blksize", "1468", "-o", &dest.display().to_string(), &format!("tftp://{SERVER}/{f}")])
            .spawn()
            .expect("curl");
        children.push((child, dest, f));
    }
    for (child, dest, f) in children {
        let o = child.wait_with_output().expect("curl");
        assert!(o.status.success(), "{f}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::read(&dest).expect("download") == s.original(f), "{}: bytes differ", dest.display());
    }
    eventually("20 tftp events", 20, || async {
        let n = boot_events(&s.app)
            .await
            .iter()
            .filter(|e| e["source"] == "tftp" && e["response"].as_str().is_some_and(|r| r.starts_with("sent ")))
            .count();
        (n == 20).then_some(()).ok_or_else(|| format!("{n} events"))
    })
    .await;
}

/// The kernel here has no `sch_netem`, so loss is made with nftables: 10% of the UDP datagrams
/// dropped on arrival in each direction (input hooks in the client and the server namespace;
/// dropping on output would fail the sender's `send` with EPERM instead of losing the packet),
/// requests to port 69 spared. The transfer state machine's own loss test (`tftp::transfer` unit
/// tests) runs at 20% both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_survive_packet_loss() {
    let s = setup().await;
    for (ns, port_rule) in [(&s.client.ns, "udp sport != 69"), (&s.lab.server_ns, "udp dport != 69")] {
        let rules = format!(
            "table inet ibloss {{\n  chain in {{ type filter hook input priority 0; {port_rule} numgen random mod 100 < 10 drop; }}\n}}\n"
        );
        let rules_file = s.out.path().join(format!("{ns}.nft"));
        std::fs::write(&rules_file, rules).expect("rules");
        let o = s.lab.command(ns, "nft").args(["-f", &rules_file.display().to_string()]).output().expect("nft");
        assert!(o.status.success(), "nft (package nftables): {}", String::from_utf8_lossy(&o.stderr));
    }

    let dest = s.download("lossy-curl");
    let url = format!("tftp://{SERVER}/undionly.kpxe");
    // curl asks for `timeout` = its connect timeout / 3 (at least 1 s): 1 s here, instead of the
    // 5 s it asks for otherwise, which would make every loss cost 5 s.
    let o = s.run(
        "curl",
        &["-sS", "--connect-timeout", "3", "--tftp-blksize", "1468", "-o", &dest.display().to_string(), &url],
    );
    assert!(o.status.success(), "curl through loss: {}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&dest).expect("download") == s.original("undionly.kpxe"), "curl: bytes differ");

    let server = s.server();
    let ask = Ask { blksize: Some(1468), windowsize: Some(8), ..Default::default() };
    let got = in_ns(&s.client.ns, move || tftp_client::get(server, "undionly.kpxe", &ask));
    assert!(got.expect("windowed fetch through loss") == s.original("undionly.kpxe"), "windowed: bytes differ");

    // The timeline says the loss was felt: retransmissions were counted.
    eventually("a transfer with retransmissions", 20, || async {
        let events = boot_events(&s.app).await;
        events
            .iter()
            .find(|e| {
                e["source"] == "tftp"
                    && e["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains(" retransmissions") && !r.contains(" 0 retransmissions"))
            })
            .map(|_| ())
            .ok_or_else(|| format!("{events:#?}"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_named_interfaces_are_served() {
    let s = setup().await;
    let h = s.app.client().get("/api/v1/health").await;
    assert_eq!(h.json["services"]["tftp"]["detail"], "10.213.0.1:69", "{}", h.text);
    // Loopback in the server namespace is not named: nothing answers there.
    let lo: SocketAddr = "127.0.0.1:69".parse().expect("addr");
    let ask = Ask { timeout: std::time::Duration::from_millis(100), ..Default::default() };
    let got = in_ns(&s.lab.server_ns, move || tftp_client::get(lo, "ipxe.efi", &ask));
    assert!(got.is_err(), "loopback answered TFTP");
    let ss = s.lab.command(&s.lab.server_ns, "ss").args(["-Hlunp", "sport", "= :69"]).output().expect("ss");
    let listening = String::from_utf8_lossy(&ss.stdout).to_string();
    assert!(listening.contains("10.213.0.1:69") && !listening.contains("0.0.0.0:69"), "{listening}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_named_interface_means_no_tftp() {
    let app = Appliance::start(Backend::Sqlite).await;
    let h = app.client().get("/api/v1/health").await;
    assert_eq!(h.json["services"]["tftp"]["state"], "disabled", "{}", h.text);
    assert_eq!(h.json["status"], "ok");
}

//! A network lab for boot-service tests: private network namespaces joined by a bridge, so DHCP,
//! TFTP, PXE and BMC traffic never reaches the machine's real interfaces.
//!
//! Topology: a "server" namespace `ib<id>s` holds the bridge `ibbr0` (10.213.0.1/24 unless told
//! otherwise); each client is a namespace `ib<id>c<n>` whose `ibc<n>` is one end of a veth pair
//! whose other end (`ibp<n>`) is a port of the bridge; qemu VMs attach through taps `ibtap<n>`
//! on the bridge. Every name starts with `ib`; `<id>` is random, so labs of parallel tests never
//! meet.
//!
//! Teardown, even when the test panics or the test process is killed: a watchdog shell holds the
//! read end of a pipe whose write end lives in the `Lab`. When the `Lab` is dropped (normally or
//! while unwinding) or the process dies, the pipe closes and the watchdog kills every process
//! inside the lab's namespaces and deletes them, which deletes their interfaces too. `Drop` waits
//! for it, so a test that ends has left nothing behind.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs as root with the lab's namespace prefix as `$1`: waits for EOF on stdin, then kills what
/// runs in the namespaces and deletes them. `exec 0<&-` is not used: `read` must see the EOF.
const WATCHDOG: &str = r#"
prefix=$1
read _
for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix"); do
    pids=$(ip netns pids "$ns")
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    ip netns del "$ns"
done
"#;

pub struct Lab {
    /// `ib<id>`: every namespace of this lab starts with it.
    prefix: String,
    pub server_ns: String,
    /// The bridge's address in the server namespace.
    pub server_ip: String,
    prefix_len: u8,
    clients: u32,
    taps: u32,
    lifeline: Option<ChildStdin>,
    watchdog: Child,
}

/// One client namespace and its interface.
#[derive(Debug, Clone)]
pub struct ClientNs {
    pub ns: String,
    pub ifname: String,
}

impl Lab {
    /// A lab with the bridge at 10.213.0.1/24.
    pub fn new() -> Lab {
        Self::with_subnet("10.213.0.1", 24)
    }

    pub fn with_subnet(server_ip: &str, prefix_len: u8) -> Lab {
        let prefix = format!("ib{}", random_id(5));
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "lab-watchdog", &prefix])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            // Its own process group: a Ctrl-C meant for the test run must not kill the cleanup.
            .process_group(0)
            .spawn()
            .expect("start the lab watchdog");
        let mut lab = Lab {
            server_ns: format!("{prefix}s"),
            prefix,
            server_ip: server_ip.to_string(),
            prefix_len,
            clients: 0,
            taps: 0,
            lifeline: None,
            watchdog,
        };
        lab.lifeline = lab.watchdog.stdin.take();
        let ns = lab.server_ns.clone();
        run(Command::new("ip").args(["netns", "add", &ns]));
        lab.ip(&ns, &["link", "set", "lo", "up"]);
        lab.ip(&ns, &["link", "add", "ibbr0", "type", "bridge", "stp_state", "0", "forward_delay", "0"]);
        lab.ip(&ns, &["addr", "add", &format!("{server_ip}/{prefix_len}"), "dev", "ibbr0"]);
        lab.ip(&ns, &["link", "set", "ibbr0", "up"]);
        lab
    }

    /// Adds a client namespace joined to the bridge, its interface up but without an address
    /// (a DHCP client configures it).
    pub fn add_client(&mut self) -> ClientNs {
        let (client, port) = self.veth_client("ibp");
        self.ip(&self.server_ns, &["link", "set", &port, "master", "ibbr0", "up"]);
        client
    }

    /// A new client namespace with a veth pair: `ibc<n>` inside (up), `<outside_prefix><n>` in
    /// the server namespace (returned, down). Created in the client namespace, the other end
    /// moved to the server's: nothing is ever created in the default namespace, not even for a
    /// moment.
    fn veth_client(&mut self, outside_prefix: &str) -> (ClientNs, String) {
        let n = self.clients;
        self.clients += 1;
        let ns = format!("{}c{n}", self.prefix);
        let (inside, outside) = (format!("ibc{n}"), format!("{outside_prefix}{n}"));
        run(Command::new("ip").args(["netns", "add", &ns]));
        self.ip(&ns, &["link", "set", "lo", "up"]);
        self.ip(&ns, &["link", "add", &inside, "type", "veth", "peer", "name", &outside, "netns", &self.server_ns]);
        self.ip(&ns, &["link", "set", &inside, "up"]);
        (ClientNs { ns, ifname: inside }, outside)
    }

    /// Adds a client namespace linked to the server namespace by its own veth pair, not through
    /// the bridge: the server's end (`ibq<n>`, returned) gets `server_addr` (CIDR form). For "an
    /// interface not named in config" tests.
    pub fn add_isolated_client(&mut self, server_addr: &str) -> (ClientNs, String) {
        let (client, outside) = self.veth_client("ibq");
        self.ip(&self.server_ns, &["addr", "add", server_addr, "dev", &outside]);
        self.ip(&self.server_ns, &["link", "set", &outside, "up"]);
        (client, outside)
    }

    /// Adds a tap on the bridge for a qemu VM (run qemu in the server namespace) and names it.
    pub fn add_tap(&mut self) -> String {
        let name = format!("ibtap{}", self.taps);
        self.taps += 1;
        let server = self.server_ns.clone();
        self.ip(&server, &["tuntap", "add", "dev", &name, "mode", "tap"]);
        self.ip(&server, &["link", "set", &name, "master", "ibbr0", "up"]);
        name
    }

    /// Gives a client a static address in the lab's subnet.
    pub fn set_address(&self, client: &ClientNs, address: &str) {
        self.ip(&client.ns, &["addr", "add", &format!("{address}/{}", self.prefix_len), "dev", &client.ifname]);
    }

    /// `program` to run inside namespace `ns`. Processes spawned from it are killed at teardown
    /// (they live in the lab's namespaces); a test may still end them earlier by PID.
    pub fn command(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// Runs `ip <args>` inside `ns` and panics with its stderr if it fails.
    pub fn ip(&self, ns: &str, args: &[&str]) -> Output {
        run(Command::new("ip").args(["-n", ns]).args(args))
    }

    /// The namespaces that exist now and belong to this lab.
    pub fn namespaces(&self) -> Vec<String> {
        lab_namespaces(&self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Closing the pipe is the teardown signal; then wait (bounded) for the watchdog to finish.
        if let Some(mut l) = self.lifeline.take() {
            let _ = l.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.watchdog.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("lab {}: teardown did not finish in 30 s", self.prefix);
    }
}

/// The namespaces whose names start with `prefix`.
pub fn lab_namespaces(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(out.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn random_id(len: usize) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut x = RandomState::new().hash_one(std::process::id()) ^ RandomState::new().hash_one(Instant::now());
    (0..len)
        .map(|_| {
            let c = ALPHABET[(x % 36) as usize] as char;
            x /= 36;
            c
        })
        .collect()
}

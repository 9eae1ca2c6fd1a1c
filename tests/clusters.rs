//! Talos clusters through the real appliance, with the Talos node stand-in (`tests/talos-standin`,
//! NOT Talos: it serves the real `machine.MachineService` over TLS with apid's client-certificate
//! rules) playing each node's apid on a loopback address. The machines' side of the install is
//! played with real HTTP requests: the node fetches its config from `/talos/config?uuid=` as Talos
//! would, then PXE-boots again (`/boot.ipxe`). The qemu version of this is `tests/cluster_vm.rs`.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::{Appliance, Backend, Client, Options, eventually};
use serde_json::{Value, json};
use talos_standin::apid::{self, PreconditionFailures, ServeOptions};
use talos_standin::config::MachineConfig;

const TALOS: &str = "v1.13.9";

/// Fake release files with a matching `sha256sum.txt` (the appliance verifies them at create).
fn talos_artifacts(images: &Path) {
    let dir = images.join("talos").join(TALOS);
    std::fs::create_dir_all(&dir).unwrap();
    let mut sums = String::new();
    for (name, body) in
        [("vmlinuz-amd64", b"stand-in kernel".as_slice()), ("initramfs-amd64.xz", b"stand-in initramfs")]
    {
        std::fs::write(dir.join(name), body).unwrap();
        let out = Command::new("sha256sum").arg(dir.join(name)).output().unwrap();
        let hash = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string();
        sums.push_str(&format!("{hash}  {name}\n"));
    }
    std::fs::write(dir.join("sha256sum.txt"), sums).unwrap();
}

async fn start(backend: Backend, images: &Path) -> Appliance {
    let opts = Options::default()
        .env("IRONBAY_BOOT__IMAGES_DIR", &images.display().to_string())
        .env("IRONBAY_TALOS__BOOTSTRAP_TIMEOUT_SECS", "6");
    Appliance::start_with(backend, opts).await
}

/// An available asset with a known SMBIOS UUID and no BMC (power steps are skipped: the test
/// plays the machine).
async fn asset(admin: &Client, name: &str, n: u8) -> (String, String, String) {
    let mac = format!("52:54:00:c1:00:{n:02x}");
    let uuid = format!("5a1a2b3c-0000-4000-8000-0000000000{n:02x}");
    let r = admin.post("/api/v1/assets", json!({"hostname": name, "macs": [mac], "smbios_uuid": uuid})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (r.json["id"].as_str().unwrap().to_string(), mac, uuid)
}

/// What Talos does at boot: GET talos.config with the UUID filled in (gzip accepted).
async fn fetch_config(app: &Appliance, uuid: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(&format!("/talos/config?uuid={uuid}")))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap()
}

async fn config_text(app: &Appliance, uuid: &str) -> String {
    let r = fetch_config(app, uuid).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("content-encoding").map(|v| v.to_str().unwrap()), Some("gzip"));
    let body = r.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
    text
}

async fn boot_script(app: &Appliance, mac: &str) -> String {
    reqwest::get(app.url(&format!("/boot.ipxe?mac={mac}&arch=x86_64&platform=pcbios")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn cluster_state(admin: &Client, id: &str, want: &str) -> Value {
    eventually(&format!("cluster {id} {want}"), 90, || async move {
        let c = admin.get(&format!("/api/v1/clusters/{id}")).await.json;
        if c["state"] == want { Ok(c) } else { Err(format!("{c:#}")) }
    })
    .await
}

/// The node's side: config fetched, PXE boot again (answered `exit`), apid up at its address.
async fn play_node(app: &Appliance, mac: &str, uuid: &str, failures: PreconditionFailures) -> (apid::Running, String) {
    let script = boot_script(app, mac).await;
    assert!(script.contains("/images/talos/v1.13.9/vmlinuz-amd64 talos.platform=metal "), "{script}");
    assert!(script.contains("talos.config="), "{script}");
    assert!(script.contains("initrd --name initramfs.xz "), "{script}");
    let text = config_text(app, uuid).await;
    let config = MachineConfig::parse(&text).expect("the served config parses as Talos would");
    let exit = boot_script(app, mac).await;
    assert!(exit.lines().any(|l| l.trim() == "exit"), "installed: boot from disk\n{exit}");
    let (ip, _) = config.static_address().expect("a static address");
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 50000)).await.unwrap();
    let running =
        apid::start(&config, listener, ServeOptions { precondition_failures: failures, ..Default::default() })
            .await
            .unwrap();
    (running, text)
}

/// The documents of a multi-document machine config.
fn docs(text: &str) -> Vec<Value> {
    text.split("\n---").map(|d| yaml_serde::from_str(d).expect("a YAML document")).collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind} document"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn b64(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_is_built_bootstrapped_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    talos_artifacts(dir.path());
    let app = start(Backend::Sqlite, dir.path()).await;
    let admin = app.admin().await;
    let vni = admin
        .post(
            "/api/v1/vnis",
            json!({"name": "k8s", "cidr": "127.0.20.0/24", "vni": 120, "gateway": "127.0.20.1",
                   "dns_servers": ["127.0.20.1"]}),
        )
        .await;
    assert_eq!(vni.status, 201, "{}", vni.text);
    let vni_id = vni.json["id"].as_str().unwrap().to_string();
    let (cp, cp_mac, cp_uuid) = asset(&admin, "cp-1", 1).await;
    let (wk, wk_mac, wk_uuid) = asset(&admin, "worker-1", 2).await;

    let r = admin
        .post(
            "/api/v1/clusters",
            json!({"name": "lab", "type": "bare_metal", "flavor": "talos", "vniId": vni_id,
                   "controlPlanes": [{"assetId": cp, "ip": "127.0.20.10"}], "workers": [{"assetId": wk}],
                   "endpoint": "127.0.20.50",
                   "installDisk": "/dev/vda", "ntpServers": ["127.0.20.1"], "discovery": false,
                   "registryMirrors": {"ghcr.io": "http://127.0.20.1:5000"}, "certSANs": ["k8s.lab.example"]}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    assert_eq!(r.json["state"], "creating");
    assert_eq!(r.json["workflow"]["kind"], "cluster_create");
    assert_eq!(r.json["talosVersion"], TALOS);
    // An endpoint address that is no node's is a VIP the control planes share.
    assert_eq!(r.json["endpoint"], "https://127.0.20.50:6443");
    // The worker's address came from the VNI: the lowest free one, held by the cluster.
    let worker_ip = r.json["nodes"][1]["ip"].as_str().unwrap().to_string();
    assert_eq!(worker_ip, "127.0.20.2", "{:#}", r.json);
    let held = admin.get(&format!("/api/v1/vnis/{vni_id}/allocations")).await;
    let holders: Vec<(String, String)> = held.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["address"].as_str().unwrap().to_string(), a["holder_id"].as_str().unwrap().to_string()))
        .collect();
    assert!(
        holders.contains(&("127.0.20.10".into(), id.clone())) && holders.contains(&(worker_ip.clone(), id.clone())),
        "{holders:?}"
    );
    // A member cannot be wiped or put in another cluster.
    let wipe = admin.post(&format!("/api/v1/assets/{cp}/wipe"), json!({"confirm": "cp-1"})).await;
    assert_eq!((wipe.status, wipe.error_code().as_str()), (409, "ASSET_IN_CLUSTER"), "{}", wipe.text);
    // Only members get a config; a stranger's UUID gets 404.
    assert_eq!(fetch_config(&app, "11111111-2222-4333-8444-555555555555").await.status(), 404);

    // The control plane's config, as served.
    let (cp_node, cp_config) = play_node(&app, &cp_mac, &cp_uuid, PreconditionFailures::Count(3)).await;
    let (wk_node, wk_config) = play_node(&app, &wk_mac, &wk_uuid, PreconditionFailures::Count(3)).await;
    // What each node was told: its role, static address, install disk, mirrors, NTP, discovery.
    let cp_docs = docs(&cp_config);
    let main = &cp_docs[0];
    assert_eq!(main["machine"]["type"], "controlplane");
    assert_eq!(main["machine"]["install"]["disk"], "/dev/vda");
    assert_eq!(main["cluster"]["discovery"]["enabled"], false);
    assert_eq!(kind(&cp_docs, "LinkConfig")["addresses"][0]["address"], "127.0.20.10/24");
    assert_eq!(kind(&cp_docs, "LinkConfig")["routes"][0]["gateway"], "127.0.20.1");
    assert!(kind(&cp_docs, "LinkAliasConfig")["selector"]["match"].as_str().unwrap().contains(&cp_mac));
    assert_eq!(kind(&cp_docs, "HostnameConfig")["hostname"], "cp-1");
    assert_eq!(kind(&cp_docs, "Layer2VIPConfig")["name"], "127.0.20.50");
    assert_eq!(main["cluster"]["controlPlane"]["endpoint"], "https://127.0.20.50:6443");
    assert_eq!(kind(&cp_docs, "TimeSyncConfig")["ntp"]["servers"][0], "127.0.20.1", "{cp_config}");
    assert_eq!(kind(&cp_docs, "RegistryMirrorConfig")["endpoints"][0]["url"], "http://127.0.20.1:5000");
    let wk_docs = docs(&wk_config);
    assert!(!wk_docs.iter().any(|d| d["kind"] == "Layer2VIPConfig"), "workers do not share the VIP");
    assert_eq!(wk_docs[0]["machine"]["type"], "worker");
    assert_eq!(wk_docs[0]["machine"]["ca"]["key"], "", "workers get no OS CA key");
    assert_eq!(kind(&wk_docs, "LinkConfig")["addresses"][0]["address"], format!("{worker_ip}/24"));
    let c = cluster_state(&admin, &id, "ready").await;
    assert_eq!(c["bootstrapState"], "bootstrapped", "{c:#}");
    for n in c["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "ready", "{c:#}");
        assert_eq!(
            admin.get(&format!("/api/v1/assets/{}", n["assetId"].as_str().unwrap())).await.json["state"],
            "provisioned"
        );
    }
    // One Bootstrap, to the control plane only, after three FailedPrecondition answers.
    let codes: Vec<String> = cp_node.calls.calls().into_iter().map(|c| c.code).collect();
    assert_eq!(codes, ["FailedPrecondition", "FailedPrecondition", "FailedPrecondition", "OK"]);
    assert!(wk_node.calls.is_empty());
    let wf = admin.get(&format!("/api/v1/workflows/{}", c["workflowId"].as_str().unwrap())).await.json;
    let log = wf["steps"][1]["log"].to_string();
    assert!(log.contains("FailedPrecondition") && log.contains("etcd bootstrapped"), "{log}");

    // The kubeconfig loads in kubectl; its client certificate verifies against its CA.
    let kc = admin.get(&format!("/api/v1/clusters/{id}/kubeconfig")).await;
    assert_eq!(kc.status, 200, "{}", kc.text);
    let kpath = dir.path().join("kubeconfig");
    std::fs::write(&kpath, &kc.text).unwrap();
    let view = run_ok(Command::new("kubectl").arg("--kubeconfig").arg(&kpath).args(["config", "view", "-o", "json"]));
    let view: Value = serde_json::from_str(&view).unwrap();
    assert_eq!(view["current-context"], "admin@lab");
    assert_eq!(view["clusters"][0]["cluster"]["server"], "https://127.0.20.50:6443");
    let ctx = run_ok(Command::new("kubectl").arg("--kubeconfig").arg(&kpath).args(["config", "get-contexts"]));
    assert!(ctx.contains("admin@lab"), "{ctx}");
    let kube: Value = yaml_serde::from_str(&kc.text).unwrap();
    std::fs::write(dir.path().join("ca.pem"), b64(&kube["clusters"][0]["cluster"]["certificate-authority-data"]))
        .unwrap();
    std::fs::write(dir.path().join("client.pem"), b64(&kube["users"][0]["user"]["client-certificate-data"])).unwrap();
    let verified = run_ok(
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(dir.path().join("ca.pem"))
            .arg(dir.path().join("client.pem")),
    );
    assert!(verified.contains(": OK"), "{verified}");
    let subject =
        run_ok(Command::new("openssl").args(["x509", "-noout", "-subject", "-in"]).arg(dir.path().join("client.pem")));
    assert!(subject.contains("O = system:masters") && subject.contains("CN = admin"), "{subject}");

    // The talosconfig's certificate is accepted by the node (a second Bootstrap: AlreadyExists).
    let tc = admin.get(&format!("/api/v1/clusters/{id}/talosconfig")).await;
    assert_eq!(tc.status, 200, "{}", tc.text);
    let tc: Value = yaml_serde::from_str(&tc.text).unwrap();
    let ctx = &tc["contexts"]["lab"];
    let (ca, crt, key) = (b64(&ctx["ca"]), b64(&ctx["crt"]), b64(&ctx["key"]));
    let (ca, crt, key) =
        (String::from_utf8(ca).unwrap(), String::from_utf8(crt).unwrap(), String::from_utf8(key).unwrap());
    let outcome = ironbay::talos::bootstrap::bootstrap(
        cp_node.local_addr,
        &ca,
        ironbay::talos::bootstrap::ClientIdentity { cert_pem: &crt, key_pem: &key },
        std::time::Duration::from_secs(10),
    )
    .await
    .expect("the talosconfig certificate is accepted");
    assert_eq!(outcome, ironbay::talos::bootstrap::BootstrapOutcome::AlreadyBootstrapped);
    // Reading credentials is audited.
    let audit = admin.get("/api/v1/audit?action=cluster.read_kubeconfig").await;
    assert!(audit.text.contains(&id), "{}", audit.text);

    // Delete: members leave and are wiped, addresses go back, the cluster is gone.
    let d = admin.delete(&format!("/api/v1/clusters/{id}")).await;
    assert_eq!(d.status, 202, "{}", d.text);
    assert_eq!(d.json["wipeWorkflows"].as_array().unwrap().len(), 2, "{}", d.text);
    assert_eq!(admin.get(&format!("/api/v1/clusters/{id}")).await.status, 404);
    for a in [&cp, &wk] {
        let w = admin.get(&format!("/api/v1/workflows?asset_id={a}&kind=wipe")).await;
        assert_eq!(w.json["data"].as_array().unwrap().len(), 1, "{}", w.text);
        assert_eq!(admin.get(&format!("/api/v1/assets/{a}")).await.json["state"], "wiping");
    }
    let held = admin.get(&format!("/api/v1/vnis/{vni_id}/allocations")).await;
    assert_eq!(held.json["meta"]["total"], 0, "{}", held.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_that_never_succeeds_fails_with_the_last_status_and_retry_works() {
    let dir = tempfile::tempdir().unwrap();
    talos_artifacts(dir.path());
    let app = start(Backend::Postgres, dir.path()).await;
    let admin = app.admin().await;
    let (cp, mac, uuid) = asset(&admin, "solo", 9).await;
    let r = admin
        .post(
            "/api/v1/clusters",
            json!({"name": "solo", "type": "bare_metal", "gateway": "127.0.21.1",
                   "controlPlanes": [{"assetId": cp, "ip": "127.0.21.10", "subnet": "24"}], "installDisk": "/dev/sda"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    let (node, config_text) = play_node(&app, &mac, &uuid, PreconditionFailures::Never).await;
    let c = cluster_state(&admin, &id, "failed").await;
    assert_eq!(c["bootstrapState"], "failed");
    let wf = admin.get(&format!("/api/v1/workflows/{}", c["workflowId"].as_str().unwrap())).await.json;
    assert_eq!(wf["error"]["code"], "BOOTSTRAP_TIMEOUT", "{wf:#}");
    assert!(wf["error"]["message"].as_str().unwrap().contains("FailedPrecondition"), "{wf:#}");
    assert!(wf["steps"][1]["log"].to_string().contains("FailedPrecondition: bootstrap is not available yet"), "{wf:#}");
    assert_eq!(admin.get(&format!("/api/v1/clusters/{id}/kubeconfig")).await.error_code(), "CLUSTER_NOT_READY");
    let tried = node.calls.len();
    assert!(tried >= 2, "retried while FailedPrecondition: {tried}");

    // The node gets ready (a new apid that accepts after one more refusal); an explicit retry.
    let addr = node.local_addr;
    drop(node);
    let config = MachineConfig::parse(&config_text).unwrap();
    let listener = bind_retrying(addr).await;
    let node = apid::start(
        &config,
        listener,
        ServeOptions { precondition_failures: PreconditionFailures::Count(1), ..Default::default() },
    )
    .await
    .unwrap();
    let retry = admin.post(&format!("/api/v1/workflows/{}/retry", c["workflowId"].as_str().unwrap()), json!({})).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    let c = cluster_state(&admin, &id, "ready").await;
    assert_eq!(c["bootstrapState"], "bootstrapped");
    assert_eq!(node.calls.calls().last().unwrap().code, "OK");
}

async fn bind_retrying(addr: SocketAddr) -> tokio::net::TcpListener {
    eventually(&format!("bind {addr}"), 10, || async move {
        tokio::net::TcpListener::bind(addr).await.map_err(|e| e.to_string())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cluster_requests_get_clear_errors_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    talos_artifacts(dir.path());
    let app = start(Backend::Sqlite, dir.path()).await;
    let admin = app.admin().await;
    // The nodes' network is a VNI (found by address: no vniId) with a reserved block.
    let vni = admin
        .post(
            "/api/v1/vnis",
            json!({"name": "nodes", "cidr": "10.30.0.0/24", "vni": 130, "gateway": "10.30.0.1",
                   "reserved": [{"start": "10.30.0.200", "end": "10.30.0.210"}]}),
        )
        .await;
    assert_eq!(vni.status, 201, "{}", vni.text);
    let vni_id = vni.json["id"].as_str().unwrap().to_string();
    let (a, _, _) = asset(&admin, "n-a", 0x21).await;
    let (b, _, _) = asset(&admin, "n-b", 0x22).await;
    let ok = |extra: Value| {
        let mut body = json!({"name": "c1", "type": "bare_metal", "gateway": "10.30.0.1", "installDisk": "/dev/sda",
            "controlPlanes": [{"assetId": a, "ip": "10.30.0.10", "subnet": "24"}],
            "workers": [{"assetId": b, "ip": "10.30.0.11", "subnet": "24"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (json!({"type": "civo_stack"}), 422, "UNSUPPORTED_CLUSTER_TYPE"),
        (json!({"flavor": "k3s"}), 422, "UNSUPPORTED_FLAVOR"),
        (json!({"controlPlanes": []}), 422, "INVALID_FIELD"),
        (
            json!({"controlPlanes": [{"assetId": "ast_doesnotexist0000", "ip": "10.30.0.10", "subnet": "24"}]}),
            422,
            "ASSET_NOT_FOUND",
        ),
        (json!({"workers": [{"assetId": a, "ip": "10.30.0.12", "subnet": "24"}]}), 422, "DUPLICATE_ASSET"),
        (json!({"workers": [{"assetId": b, "ip": "10.30.0.10", "subnet": "24"}]}), 422, "DUPLICATE_IP"),
        (json!({"gateway": "10.31.0.1"}), 422, "GATEWAY_OUTSIDE_SUBNET"),
        (json!({"workers": [{"assetId": b, "ip": "10.30.0.0", "subnet": "24"}]}), 422, "IP_UNASSIGNABLE"),
        (json!({"workers": [{"assetId": b}]}), 422, "INVALID_FIELD"),
        (json!({"workers": [{"assetId": b, "ip": "10.30.0.205", "subnet": "24"}]}), 422, "ADDRESS_UNASSIGNABLE"),
        (json!({"talosVersion": "1.14.0"}), 422, "UNSUPPORTED_TALOS_VERSION"),
        (json!({"talosVersion": "1.13.1"}), 422, "TALOS_ARTIFACTS_MISSING"),
        (json!({"kubernetesVersion": "1.20.0"}), 422, "INVALID_CLUSTER_SPEC"),
        (json!({"name": "Not A Name!"}), 422, "INVALID_FIELD"),
        (json!({"installDisk": "sda"}), 422, "INVALID_FIELD"),
        (json!({"registryMirrors": {"ghcr.io": "ftp://x"}}), 422, "INVALID_FIELD"),
        (json!({"vniId": "vni_doesnotexist0000"}), 422, "VNI_NOT_FOUND"),
        (json!({"surprise": 1}), 422, "UNKNOWN_FIELD"),
    ];
    for (extra, status, code) in cases {
        let r = admin.post("/api/v1/clusters", ok(extra.clone())).await;
        assert_eq!((r.status, r.error_code().as_str()), (status, code), "{extra}: {}", r.text);
    }
    // Nothing was created: no cluster, the assets still available, no address held.
    assert_eq!(admin.get("/api/v1/clusters").await.json["meta"]["total"], 0);
    assert_eq!(admin.get(&format!("/api/v1/vnis/{vni_id}/allocations")).await.json["meta"]["total"], 0);
    for x in [&a, &b] {
        assert_eq!(admin.get(&format!("/api/v1/assets/{x}")).await.json["state"], "available");
    }
    // An even number of control planes is allowed, with a warning.
    let r = admin
        .post("/api/v1/clusters", ok(json!({"controlPlanes": [{"assetId": a, "ip": "10.30.0.10", "subnet": "24"}, {"assetId": b, "ip": "10.30.0.11", "subnet": "24"}], "workers": []})))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.json["warnings"][0].as_str().unwrap().contains("odd number"), "{}", r.text);
    // Its assets are taken now.
    let (c, _, _) = asset(&admin, "n-c", 0x23).await;
    let again = admin
        .post("/api/v1/clusters", json!({"name": "c2", "type": "bare_metal", "gateway": "10.30.0.1", "installDisk": "/dev/sda",
            "controlPlanes": [{"assetId": c, "ip": "10.30.0.20", "subnet": "24"}], "workers": [{"assetId": a, "ip": "10.30.0.21", "subnet": "24"}]}))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(
        ["ASSET_IN_CLUSTER", "ASSET_BUSY", "ASSET_NOT_AVAILABLE"].contains(&again.error_code().as_str()),
        "{}",
        again.text
    );
    let dup = admin
        .post(
            "/api/v1/clusters",
            json!({"name": "c1", "type": "bare_metal", "gateway": "10.30.0.1", "installDisk": "/dev/sda",
            "controlPlanes": [{"assetId": c, "ip": "10.30.0.20", "subnet": "24"}]}),
        )
        .await;
    assert_eq!((dup.status, dup.error_code().as_str()), (409, "CLUSTER_EXISTS"), "{}", dup.text);
    // Deleting a cluster whose workflows run is refused with what to do.
    let id = r.json["id"].as_str().unwrap();
    let d = admin.delete(&format!("/api/v1/clusters/{id}")).await;
    assert_eq!((d.status, d.error_code().as_str()), (409, "CLUSTER_BUSY"), "{}", d.text);
    // A viewer reads but cannot create; credentials need clusters:read.
    let viewer = app.user(&admin, "watcher", "viewer").await;
    assert_eq!(viewer.get("/api/v1/clusters").await.status, 200);
    assert_eq!(viewer.post("/api/v1/clusters", ok(json!({"name": "c3"}))).await.status, 403);
}

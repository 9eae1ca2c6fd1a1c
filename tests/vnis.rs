//! VNIs (virtual network segments) and their address allocations over real HTTP on both backends:
//! create/get/list/patch/delete, every validation and conflict class (with nothing changed after a
//! rejected write), CIDR overlap in both directions for IPv4 and IPv6, allocation order, explicit
//! addresses, release, delete protection, the audit trail, permissions, and concurrent allocation.

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use common::{Appliance, Backend, Client, Options, Resp};
use serde_json::{Value, json};

/// The appliance with rate limits out of the way: these tests send many requests quickly.
async fn start(backend: Backend) -> Appliance {
    let opts = Options::default()
        .env("IRONBAY_RATE_LIMIT__API_PER_MINUTE", "100000")
        .env("IRONBAY_RATE_LIMIT__API_BURST", "100000");
    Appliance::start_with(backend, opts).await
}

async fn create(c: &Client, body: Value) -> Value {
    let r = c.post("/api/v1/vnis", body.clone()).await;
    assert_eq!(r.status, 201, "create {body}: {}", r.text);
    r.json
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_string()
}

fn path(id: &str) -> String {
    format!("/api/v1/vnis/{id}")
}

fn allocs_path(id: &str) -> String {
    format!("/api/v1/vnis/{id}/allocations")
}

async fn get(c: &Client, id: &str) -> Resp {
    c.get(&path(id)).await
}

/// A 200 GET of the VNI.
async fn fetch(c: &Client, id: &str) -> Value {
    let r = get(c, id).await;
    assert_eq!(r.status, 200, "GET {id}: {}", r.text);
    r.json
}

async fn list(c: &Client, query: &str) -> (Vec<Value>, Value) {
    let r = c.get(&format!("/api/v1/vnis{query}")).await;
    assert_eq!(r.status, 200, "list {query}: {}", r.text);
    let items = r.json["data"].as_array().unwrap_or_else(|| panic!("no data: {}", r.text)).clone();
    (items, r.json["meta"].clone())
}

async fn total(c: &Client) -> i64 {
    list(c, "").await.1["total"].as_i64().expect("meta.total")
}

/// Allocates and asserts the 201.
async fn allocate(c: &Client, id: &str, body: Value) -> Value {
    let r = c.post(&allocs_path(id), body.clone()).await;
    assert_eq!(r.status, 201, "allocate {body} in {id}: {}", r.text);
    r.json
}

/// The addresses of the allocation list, in the order served, after checking the 200 and `meta`.
async fn allocations(c: &Client, id: &str, query: &str) -> (Vec<String>, Value) {
    let r = c.get(&format!("{}{query}", allocs_path(id))).await;
    assert_eq!(r.status, 200, "allocations {query}: {}", r.text);
    let addrs = r.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {}", r.text))
        .iter()
        .map(|a| a["address"].as_str().unwrap_or_else(|| panic!("no address in {a}")).to_string())
        .collect();
    (addrs, r.json["meta"].clone())
}

fn expect_code(label: &str, r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{label}: {}", r.text);
    assert_eq!(r.error_code(), code, "{label}: {}", r.text);
}

fn expect_field(label: &str, r: &Resp, status: u16, code: &str, field: &str) {
    expect_code(label, r, status, code);
    assert_eq!(r.json["details"]["field"], field, "{label}: details.field: {}", r.text);
}

/// The number of entries in the whole audit chain.
async fn audit_entries(c: &Client) -> Value {
    let r = c.get("/api/v1/audit/verify").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["entries"].is_u64(), "{}", r.text);
    r.json["entries"].clone()
}

/// The audit entries about one target, newest first.
async fn audit_of(c: &Client, target_id: &str) -> Vec<Value> {
    let r = c.get(&format!("/api/v1/audit?target_id={target_id}&per_page=100")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().unwrap_or_else(|| panic!("no data: {}", r.text)).clone()
}

fn actions(entries: &[Value]) -> Vec<String> {
    entries.iter().map(|e| e["action"].as_str().unwrap_or("").to_string()).collect()
}

fn v4(a: &str) -> Ipv4Addr {
    a.parse().unwrap_or_else(|_| panic!("not an IPv4 address: {a}"))
}

async fn create_get_list(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;

    // A minimal VNI: the CIDR is normalised, absent optionals have their documented defaults.
    let r = admin
        .post("/api/v1/vnis", json!({"name": "lab-net", "cidr": "10.0.0.5/24", "vni": 100, "gateway": "10.0.0.1"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let a = r.json.clone();
    let a_id = id_of(&a);
    assert!(a_id.starts_with("vni_") && a_id.len() > 4, "id {a_id}");
    assert_eq!(a["name"], "lab-net");
    assert_eq!(a["cidr"], "10.0.0.0/24", "the CIDR is normalised to its network");
    assert_eq!(a["vni"], 100);
    assert_eq!(a["description"], "");
    assert_eq!(a["status"], "active");
    assert!(a["dhcp"].is_null(), "{a}");
    assert_eq!(a["gateway"], "10.0.0.1");
    assert_eq!(a["dns_servers"], json!([]));
    assert_eq!(a["reserved"], json!([]));
    assert_eq!(a["allocation_count"], 0);
    assert_eq!(a["asset_count"], 0);
    assert_eq!(a["device_count"], 0);
    assert!(a["capacity"].is_number(), "capacity is a JSON number: {a}");
    assert_eq!(a["capacity"], 253, "a /24 less network, broadcast and gateway");
    assert!(a["created_at"].is_string() && a["created_at"] == a["updated_at"], "{a}");

    // A full IPv6 VNI: every optional field is kept.
    let body = json!({
        "name": "v6.storage_1",
        "cidr": "fd00:10::7/64",
        "vni": 16777215,
        "description": "storage fabric",
        "dhcp": {"start": "fd00:10::100", "end": "fd00:10::1ff"},
        "gateway": "fd00:10::1",
        "dns_servers": ["fd00:10::53", "fd00:10::54"],
        "reserved": [{"start": "fd00:10::2", "end": "fd00:10::f"}]
    });
    let b = create(&admin, body).await;
    let b_id = id_of(&b);
    assert_ne!(a_id, b_id);
    assert_eq!(b["cidr"], "fd00:10::/64");
    assert_eq!(b["vni"], 16777215);
    assert_eq!(b["name"], "v6.storage_1");
    assert_eq!(b["description"], "storage fabric");
    assert_eq!(b["dhcp"], json!({"start": "fd00:10::100", "end": "fd00:10::1ff"}));
    assert_eq!(b["gateway"], "fd00:10::1");
    assert_eq!(b["dns_servers"], json!(["fd00:10::53", "fd00:10::54"]));
    assert_eq!(b["reserved"], json!([{"start": "fd00:10::2", "end": "fd00:10::f"}]));
    assert_eq!(b["status"], "active");
    assert_eq!(b["allocation_count"], 0);
    assert!(b["capacity"].is_number(), "capacity is a JSON number even for a /64: {b}");

    // A small network without a gateway: everything but network and broadcast.
    let c = create(&admin, json!({"name": "tiny", "cidr": "192.168.7.0/29", "vni": 1})).await;
    assert_eq!(c["capacity"], 6, "{c}");
    assert!(c["gateway"].is_null(), "{c}");
    // IPv6 has no broadcast: a /120 without gateway loses only its network address.
    let d = create(&admin, json!({"name": "tiny6", "cidr": "fd00:77::/120", "vni": 2})).await;
    assert_eq!(d["capacity"], 255, "{d}");

    // GET answers exactly what create answered; the list holds the same items.
    assert_eq!(fetch(&admin, &a_id).await, a);
    assert_eq!(fetch(&admin, &b_id).await, b);
    let (items, meta) = list(&admin, "").await;
    assert_eq!(meta, json!({"page": 1, "per_page": 20, "total": 4}));
    let expected: HashSet<String> = [&a, &b, &c, &d].iter().map(|v| v.to_string()).collect();
    assert_eq!(items.iter().map(Value::to_string).collect::<HashSet<_>>(), expected, "list items equal single reads");
    let (page1, meta) = list(&admin, "?per_page=3").await;
    assert_eq!((page1.len(), meta["total"].clone()), (3, json!(4)));
    let (page2, meta) = list(&admin, "?per_page=3&page=2").await;
    assert_eq!((page2.len(), meta["page"].clone()), (1, json!(2)));
    let mut ids: HashSet<String> = page1.iter().map(id_of).collect();
    assert!(ids.insert(id_of(&page2[0])), "pages overlap");
    assert_eq!(ids.len(), 4);

    // Unknown ids.
    expect_code("GET unknown", &get(&admin, "vni_doesnotexist").await, 404, "VNI_NOT_FOUND");
    expect_code("allocations of unknown VNI", &admin.get(&allocs_path("vni_doesnotexist")).await, 404, "VNI_NOT_FOUND");
}

async fn patch_and_delete(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let created =
        create(&admin, json!({"name": "edit-me", "cidr": "10.5.0.0/24", "vni": 500, "gateway": "10.5.0.1"})).await;
    let id = id_of(&created);
    let p = path(&id);

    let r = admin
        .patch(
            &p,
            json!({
                "name": "edited",
                "description": "after",
                "dhcp": {"start": "10.5.0.100", "end": "10.5.0.199"},
                "gateway": "10.5.0.254",
                "dns_servers": ["10.5.0.53", "1.1.1.1"],
                "reserved": [{"start": "10.5.0.2", "end": "10.5.0.9"}]
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let u = r.json.clone();
    assert_eq!(u["id"], id.as_str());
    assert_eq!(u["name"], "edited");
    assert_eq!(u["description"], "after");
    assert_eq!(u["dhcp"], json!({"start": "10.5.0.100", "end": "10.5.0.199"}));
    assert_eq!(u["gateway"], "10.5.0.254");
    assert_eq!(u["dns_servers"], json!(["10.5.0.53", "1.1.1.1"]));
    assert_eq!(u["reserved"], json!([{"start": "10.5.0.2", "end": "10.5.0.9"}]));
    for field in ["cidr", "vni", "status", "created_at", "allocation_count"] {
        assert_eq!(u[field], created[field], "{field} was not in the PATCH");
    }
    assert!(u["updated_at"].as_str() > created["updated_at"].as_str(), "updated_at moves: {u}");
    assert_eq!(fetch(&admin, &id).await, u, "GET shows what PATCH answered");

    // A partial PATCH leaves the rest alone.
    let r = admin.patch(&p, json!({"description": "only this"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["description"], "only this");
    for field in ["name", "dhcp", "gateway", "dns_servers", "reserved"] {
        assert_eq!(r.json[field], u[field], "{field} was not in the PATCH");
    }

    // `null` clears dhcp and gateway; clearing the reservations frees their addresses.
    let r = admin.patch(&p, json!({"dhcp": null, "gateway": null, "reserved": [], "dns_servers": []})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["dhcp"].is_null() && r.json["gateway"].is_null(), "{}", r.text);
    assert_eq!(r.json["reserved"], json!([]));
    assert_eq!(r.json["dns_servers"], json!([]));
    assert_eq!(r.json["capacity"], 254, "no gateway, no reservations: {}", r.text);
    let cleared = fetch(&admin, &id).await;
    assert_eq!(cleared, r.json);

    // The network and the VNI number cannot change; nothing does.
    let audit_before = audit_entries(&admin).await;
    let r = admin.patch(&p, json!({"cidr": "10.6.0.0/24"})).await;
    expect_field("PATCH cidr", &r, 422, "IMMUTABLE_FIELD", "cidr");
    let r = admin.patch(&p, json!({"vni": 501, "description": "sneaky"})).await;
    expect_field("PATCH vni", &r, 422, "IMMUTABLE_FIELD", "vni");
    let r = admin.patch(&p, json!({"colour": "red"})).await;
    expect_field("PATCH unknown field", &r, 422, "UNKNOWN_FIELD", "colour");
    assert_eq!(fetch(&admin, &id).await, cleared, "rejected PATCHes changed nothing");
    assert_eq!(audit_entries(&admin).await, audit_before);
    expect_code(
        "PATCH unknown VNI",
        &admin.patch(&path("vni_nope"), json!({"description": "x"})).await,
        404,
        "VNI_NOT_FOUND",
    );

    // Delete.
    let keep = id_of(&create(&admin, json!({"name": "keeper", "cidr": "10.7.0.0/24", "vni": 700})).await);
    let r = admin.delete(&p).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty(), "204 has no body: {:?}", r.text);
    expect_code("GET after delete", &get(&admin, &id).await, 404, "VNI_NOT_FOUND");
    expect_code("DELETE twice", &admin.delete(&p).await, 404, "VNI_NOT_FOUND");
    expect_code("PATCH after delete", &admin.patch(&p, json!({"description": "x"})).await, 404, "VNI_NOT_FOUND");
    let (items, meta) = list(&admin, "").await;
    assert_eq!((items.iter().map(id_of).collect::<Vec<_>>(), meta["total"].clone()), (vec![keep.clone()], json!(1)));

    // Name, network and number are free again.
    let again = create(&admin, json!({"name": "edited", "cidr": "10.5.0.0/24", "vni": 500})).await;
    assert_ne!(id_of(&again), id);
}

async fn create_validation_errors(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let existing = create(&admin, json!({"name": "existing", "cidr": "172.16.0.0/24", "vni": 42})).await;
    let audit_before = audit_entries(&admin).await;

    let ok = |name: &str| json!({"name": name, "cidr": "10.100.0.0/24", "vni": 4242});
    let with = |k: &str, v: Value| {
        let mut b = ok("candidate");
        b[k] = v;
        b
    };
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("cidr not a CIDR", with("cidr", json!("not-a-cidr")), "INVALID_FIELD", "cidr"),
        ("cidr prefix too long", with("cidr", json!("10.100.0.0/33")), "INVALID_FIELD", "cidr"),
        ("cidr bad octet", with("cidr", json!("10.100.0.300/24")), "INVALID_FIELD", "cidr"),
        ("cidr without prefix", with("cidr", json!("10.100.0.0")), "INVALID_FIELD", "cidr"),
        ("cidr v6 prefix too long", with("cidr", json!("fd00::/129")), "INVALID_FIELD", "cidr"),
        ("vni 0", with("vni", json!(0)), "INVALID_FIELD", "vni"),
        ("vni 2^24", with("vni", json!(16777216)), "INVALID_FIELD", "vni"),
        ("vni negative", with("vni", json!(-1)), "INVALID_FIELD", "vni"),
        ("name empty", ok(""), "INVALID_FIELD", "name"),
        ("name upper case", ok("Lab-Net"), "INVALID_FIELD", "name"),
        ("name with space", ok("lab net"), "INVALID_FIELD", "name"),
        ("name with slash", ok("lab/net"), "INVALID_FIELD", "name"),
        ("name 65 chars", ok(&"a".repeat(65)), "INVALID_FIELD", "name"),
        ("dhcp outside", with("dhcp", json!({"start": "10.100.1.10", "end": "10.100.1.20"})), "INVALID_FIELD", "dhcp"),
        (
            "dhcp end outside",
            with("dhcp", json!({"start": "10.100.0.10", "end": "10.100.1.20"})),
            "INVALID_FIELD",
            "dhcp",
        ),
        ("dhcp reversed", with("dhcp", json!({"start": "10.100.0.20", "end": "10.100.0.10"})), "INVALID_FIELD", "dhcp"),
        ("gateway outside", with("gateway", json!("10.100.1.1")), "INVALID_FIELD", "gateway"),
        ("gateway not an IP", with("gateway", json!("gw.example")), "INVALID_FIELD", "gateway"),
        (
            "reserved outside",
            with(
                "reserved",
                json!([{"start": "10.100.0.2", "end": "10.100.0.3"}, {"start": "10.200.0.1", "end": "10.200.0.2"}]),
            ),
            "INVALID_FIELD",
            "reserved",
        ),
        (
            "reserved reversed",
            with("reserved", json!([{"start": "10.100.0.9", "end": "10.100.0.3"}])),
            "INVALID_FIELD",
            "reserved",
        ),
        ("unknown field", with("colour", json!("red")), "UNKNOWN_FIELD", "colour"),
    ];
    for (label, body, code, field) in cases {
        let r = admin.post("/api/v1/vnis", body).await;
        expect_field(label, &r, 422, code, field);
    }
    // Missing required fields.
    for field in ["name", "cidr", "vni"] {
        let mut b = ok("candidate");
        b.as_object_mut().expect("object").remove(field);
        let r = admin.post("/api/v1/vnis", b).await;
        assert_eq!(r.status, 422, "missing {field}: {}", r.text);
        assert_eq!(r.json["details"]["field"], field, "missing {field}: {}", r.text);
    }

    // Nothing was created, nothing audited, and the existing VNI is untouched.
    assert_eq!(total(&admin).await, 1);
    assert_eq!(audit_entries(&admin).await, audit_before);
    assert_eq!(fetch(&admin, &id_of(&existing)).await, existing);

    // The boundaries themselves are accepted.
    create(&admin, json!({"name": "a", "cidr": "10.101.0.0/24", "vni": 1})).await;
    create(&admin, json!({"name": "z".repeat(64), "cidr": "10.102.0.0/24", "vni": 16777215})).await;
    create(
        &admin,
        json!({"name": "a-b_c.9", "cidr": "10.103.0.0/24", "vni": 7,
               "dhcp": {"start": "10.103.0.10", "end": "10.103.0.10"}, "gateway": "10.103.0.1",
               "reserved": [{"start": "10.103.0.2", "end": "10.103.0.2"}]}),
    )
    .await;
    assert_eq!(total(&admin).await, 4);
}

async fn patch_validation_errors(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    create(&admin, json!({"name": "other", "cidr": "10.50.0.0/24", "vni": 50})).await;
    let v = create(
        &admin,
        json!({"name": "target", "cidr": "10.51.0.0/24", "vni": 51, "gateway": "10.51.0.1",
               "dhcp": {"start": "10.51.0.100", "end": "10.51.0.200"}}),
    )
    .await;
    let id = id_of(&v);
    let p = path(&id);
    let audit_before = audit_entries(&admin).await;

    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        ("name invalid", json!({"name": "Bad Name"}), 422, "INVALID_FIELD", "name"),
        ("dhcp outside", json!({"dhcp": {"start": "10.52.0.1", "end": "10.52.0.9"}}), 422, "INVALID_FIELD", "dhcp"),
        ("dhcp reversed", json!({"dhcp": {"start": "10.51.0.9", "end": "10.51.0.1"}}), 422, "INVALID_FIELD", "dhcp"),
        ("gateway outside", json!({"gateway": "10.52.0.1"}), 422, "INVALID_FIELD", "gateway"),
        (
            "reserved outside",
            json!({"reserved": [{"start": "10.0.0.1", "end": "10.0.0.2"}]}),
            422,
            "INVALID_FIELD",
            "reserved",
        ),
        (
            "reserved reversed",
            json!({"reserved": [{"start": "10.51.0.5", "end": "10.51.0.4"}]}),
            422,
            "INVALID_FIELD",
            "reserved",
        ),
        // A valid change next to an invalid one is not applied either.
        ("valid + invalid", json!({"description": "x", "gateway": "192.0.2.1"}), 422, "INVALID_FIELD", "gateway"),
    ];
    for (label, body, status, code, field) in cases {
        let r = admin.patch(&p, body).await;
        expect_field(label, &r, status, code, field);
    }
    let r = admin.patch(&p, json!({"name": "other"})).await;
    expect_code("PATCH to another VNI's name", &r, 409, "DUPLICATE_NAME");

    assert_eq!(fetch(&admin, &id).await, v, "rejected PATCHes changed nothing");
    assert_eq!(audit_entries(&admin).await, audit_before);

    // A VNI does not conflict with itself.
    let r = admin.patch(&p, json!({"name": "target"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["name"], "target");
}

async fn conflicts_on_create(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let a = create(&admin, json!({"name": "net-a", "cidr": "10.1.0.0/16", "vni": 10})).await;
    let b = create(&admin, json!({"name": "net-b6", "cidr": "fd00:a::/48", "vni": 11})).await;
    let (a_id, b_id) = (id_of(&a), id_of(&b));
    let audit_before = audit_entries(&admin).await;

    let overlaps = [
        ("v4 inside an existing", "10.1.2.0/24", &a_id, "net-a"),
        ("v4 single host inside", "10.1.255.255/32", &a_id, "net-a"),
        ("v4 containing an existing", "10.0.0.0/8", &a_id, "net-a"),
        ("v4 everything", "0.0.0.0/0", &a_id, "net-a"),
        ("v4 identical", "10.1.0.0/16", &a_id, "net-a"),
        ("v4 identical, unnormalised", "10.1.77.3/16", &a_id, "net-a"),
        ("v6 inside an existing", "fd00:a:0:1::/64", &b_id, "net-b6"),
        ("v6 containing an existing", "fd00::/16", &b_id, "net-b6"),
        ("v6 identical", "fd00:a::/48", &b_id, "net-b6"),
    ];
    for (i, (label, cidr, owner, owner_name)) in overlaps.into_iter().enumerate() {
        let r = admin.post("/api/v1/vnis", json!({"name": format!("new-{i}"), "cidr": cidr, "vni": 1000 + i})).await;
        expect_code(label, &r, 409, "CIDR_OVERLAP");
        assert_eq!(r.json["details"]["vni_id"], owner.as_str(), "{label}: {}", r.text);
        assert_eq!(r.json["details"]["name"], owner_name, "{label}: {}", r.text);
        assert!(r.json["error"].as_str().is_some_and(|m| m.contains(owner_name)), "{label}: message: {}", r.text);
    }

    let r = admin.post("/api/v1/vnis", json!({"name": "net-a", "cidr": "10.2.0.0/16", "vni": 12})).await;
    expect_code("duplicate name", &r, 409, "DUPLICATE_NAME");
    let r = admin.post("/api/v1/vnis", json!({"name": "net-c", "cidr": "10.2.0.0/16", "vni": 10})).await;
    expect_code("duplicate vni (v4 owner)", &r, 409, "DUPLICATE_VNI");
    let r = admin.post("/api/v1/vnis", json!({"name": "net-c", "cidr": "10.2.0.0/16", "vni": 11})).await;
    expect_code("duplicate vni (v6 owner)", &r, 409, "DUPLICATE_VNI");

    // Nothing was created or audited; the owners are untouched.
    assert_eq!(total(&admin).await, 2);
    assert_eq!(audit_entries(&admin).await, audit_before);
    assert_eq!(fetch(&admin, &a_id).await, a);
    assert_eq!(fetch(&admin, &b_id).await, b);

    // Neighbours that touch but do not share an address are fine, as are other families.
    create(&admin, json!({"name": "below", "cidr": "10.0.0.0/16", "vni": 20})).await;
    create(&admin, json!({"name": "above", "cidr": "10.2.0.0/16", "vni": 21})).await;
    create(&admin, json!({"name": "v6-next", "cidr": "fd00:b::/48", "vni": 22})).await;
    create(&admin, json!({"name": "v6-prev", "cidr": "fd00:9:ffff::/48", "vni": 23})).await;
    assert_eq!(total(&admin).await, 6);
    // The newcomers are now guarded too.
    let r = admin.post("/api/v1/vnis", json!({"name": "late", "cidr": "fd00:b:0:1::/64", "vni": 30})).await;
    expect_code("overlap with a later VNI", &r, 409, "CIDR_OVERLAP");
    assert_eq!(r.json["details"]["name"], "v6-next", "{}", r.text);
}

async fn allocation_order_and_exhaustion(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let v = create(
        &admin,
        json!({"name": "small", "cidr": "10.9.0.0/29", "vni": 9, "gateway": "10.9.0.1",
               "reserved": [{"start": "10.9.0.2", "end": "10.9.0.3"}]}),
    )
    .await;
    assert_eq!(v["capacity"], 3, "{v}");
    let id = id_of(&v);

    let first = allocate(&admin, &id, json!({"holder_type": "asset", "holder_id": "ast_one"})).await;
    assert_eq!(first["vni_id"], id.as_str());
    assert_eq!(first["address"], "10.9.0.4");
    assert_eq!(first["holder_type"], "asset");
    assert_eq!(first["holder_id"], "ast_one");
    assert!(first["created_at"].is_string(), "{first}");
    let second = allocate(&admin, &id, json!({"holder_type": "device", "holder_id": "dev-2"})).await;
    assert_eq!(second["address"], "10.9.0.5");
    let third = allocate(&admin, &id, json!({"holder_type": "cluster", "holder_id": "cl-3"})).await;
    assert_eq!(third["address"], "10.9.0.6");

    let audit_before = audit_entries(&admin).await;
    let r = admin.post(&allocs_path(&id), json!({"holder_type": "other", "holder_id": "x"})).await;
    expect_code("pool exhausted", &r, 409, "POOL_EXHAUSTED");
    assert_eq!(audit_entries(&admin).await, audit_before, "the refused allocation was not audited");
    assert_eq!(fetch(&admin, &id).await["allocation_count"], 3);

    let (addrs, meta) = allocations(&admin, &id, "").await;
    assert_eq!(addrs, ["10.9.0.4", "10.9.0.5", "10.9.0.6"]);
    assert_eq!(meta["total"], 3);
    let r = admin.get(&allocs_path(&id)).await;
    assert_eq!(r.json["data"][0], first, "the list shows the allocation as created");
    assert_eq!(r.json["data"][2]["holder_type"], "cluster");

    // With a DHCP range, addresses come from it only.
    let d = create(
        &admin,
        json!({"name": "ranged", "cidr": "10.10.0.0/24", "vni": 10, "gateway": "10.10.0.1",
               "dhcp": {"start": "10.10.0.100", "end": "10.10.0.101"}}),
    )
    .await;
    let d_id = id_of(&d);
    let got = allocate(&admin, &d_id, json!({"holder_type": "other", "holder_id": "a"})).await;
    assert_eq!(got["address"], "10.10.0.100");
    let got = allocate(&admin, &d_id, json!({"holder_type": "other", "holder_id": "b"})).await;
    assert_eq!(got["address"], "10.10.0.101");
    let r = admin.post(&allocs_path(&d_id), json!({"holder_type": "other", "holder_id": "c"})).await;
    expect_code("DHCP range exhausted", &r, 409, "POOL_EXHAUSTED");
    assert_eq!(allocations(&admin, &d_id, "").await.0, ["10.10.0.100", "10.10.0.101"]);
    // The first VNI's allocations are its own.
    assert_eq!(allocations(&admin, &id, "").await.0.len(), 3);

    // The list is ordered by address, numerically, whatever the order of allocation; and pages.
    let o = create(&admin, json!({"name": "ordered", "cidr": "10.11.0.0/24", "vni": 11})).await;
    let o_id = id_of(&o);
    for a in ["10.11.0.10", "10.11.0.9", "10.11.0.100", "10.11.0.2", "10.11.0.20"] {
        let got = allocate(&admin, &o_id, json!({"holder_type": "other", "holder_id": a, "address": a})).await;
        assert_eq!(got["address"], a);
    }
    let (addrs, meta) = allocations(&admin, &o_id, "").await;
    assert_eq!(addrs, ["10.11.0.2", "10.11.0.9", "10.11.0.10", "10.11.0.20", "10.11.0.100"]);
    assert_eq!(meta["total"], 5);
    let (p2, meta) = allocations(&admin, &o_id, "?per_page=2&page=2").await;
    assert_eq!(p2, ["10.11.0.10", "10.11.0.20"]);
    assert_eq!((meta["page"].clone(), meta["per_page"].clone(), meta["total"].clone()), (json!(2), json!(2), json!(5)));
    // Lowest free first fills the holes.
    let got = allocate(&admin, &o_id, json!({"holder_type": "other", "holder_id": "hole"})).await;
    assert_eq!(got["address"], "10.11.0.1", "no gateway: .1 is the lowest assignable");
    let got = allocate(&admin, &o_id, json!({"holder_type": "other", "holder_id": "hole2"})).await;
    assert_eq!(got["address"], "10.11.0.3");

    // IPv6: no broadcast, and the network address is never handed out.
    let six = create(&admin, json!({"name": "six", "cidr": "fd00:99::/126", "vni": 99})).await;
    let six_id = id_of(&six);
    let mut got6 = Vec::new();
    for i in 0..3 {
        got6.push(
            allocate(&admin, &six_id, json!({"holder_type": "other", "holder_id": format!("h{i}")})).await["address"]
                .clone(),
        );
    }
    assert_eq!(got6, [json!("fd00:99::1"), json!("fd00:99::2"), json!("fd00:99::3")]);
    let r = admin.post(&allocs_path(&six_id), json!({"holder_type": "other", "holder_id": "h4"})).await;
    expect_code("IPv6 /126 exhausted", &r, 409, "POOL_EXHAUSTED");
}

async fn explicit_address_allocation(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let v = create(
        &admin,
        json!({"name": "explicit", "cidr": "10.20.0.0/24", "vni": 20, "gateway": "10.20.0.1",
               "reserved": [{"start": "10.20.0.10", "end": "10.20.0.19"}]}),
    )
    .await;
    let id = id_of(&v);
    let got =
        allocate(&admin, &id, json!({"holder_type": "asset", "holder_id": "ast_first", "address": "10.20.0.50"})).await;
    assert_eq!(got["address"], "10.20.0.50");
    assert_eq!(got["holder_id"], "ast_first");
    let audit_before = audit_entries(&admin).await;

    for (label, addr) in [
        ("network address", "10.20.0.0"),
        ("broadcast", "10.20.0.255"),
        ("gateway", "10.20.0.1"),
        ("reserved start", "10.20.0.10"),
        ("reserved middle", "10.20.0.15"),
        ("reserved end", "10.20.0.19"),
        ("outside the network", "10.21.0.5"),
        ("other family", "fd00::5"),
    ] {
        let r = admin.post(&allocs_path(&id), json!({"holder_type": "other", "holder_id": "x", "address": addr})).await;
        expect_code(label, &r, 422, "ADDRESS_UNASSIGNABLE");
        assert_eq!(r.json["details"]["address"], addr, "{label}: {}", r.text);
        assert!(
            r.json["details"]["reason"].as_str().is_some_and(|s| !s.is_empty()),
            "{label}: details.reason: {}",
            r.text
        );
    }
    let r = admin
        .post(&allocs_path(&id), json!({"holder_type": "device", "holder_id": "dev-2", "address": "10.20.0.50"}))
        .await;
    expect_code("address taken", &r, 409, "ADDRESS_TAKEN");
    assert_eq!(r.json["details"]["holder_id"], "ast_first", "{}", r.text);

    // Malformed requests.
    let bad: Vec<(&str, Value, &str, &str)> = vec![
        (
            "address not an IP",
            json!({"holder_type": "other", "holder_id": "x", "address": "10.20.0"}),
            "INVALID_FIELD",
            "address",
        ),
        ("unknown holder_type", json!({"holder_type": "robot", "holder_id": "x"}), "INVALID_FIELD", "holder_type"),
        ("unknown field", json!({"holder_type": "other", "holder_id": "x", "mac": "x"}), "UNKNOWN_FIELD", "mac"),
    ];
    for (label, body, code, field) in bad {
        expect_field(label, &admin.post(&allocs_path(&id), body).await, 422, code, field);
    }
    let r = admin.post(&allocs_path(&id), json!({"holder_type": "other"})).await;
    assert_eq!(r.status, 422, "missing holder_id: {}", r.text);
    assert_eq!(r.json["details"]["field"], "holder_id", "{}", r.text);
    expect_code(
        "allocate in unknown VNI",
        &admin.post(&allocs_path("vni_nope"), json!({"holder_type": "other", "holder_id": "x"})).await,
        404,
        "VNI_NOT_FOUND",
    );

    // None of the refusals changed anything.
    assert_eq!(audit_entries(&admin).await, audit_before);
    assert_eq!(allocations(&admin, &id, "").await.0, ["10.20.0.50"]);
    assert_eq!(fetch(&admin, &id).await["allocation_count"], 1);

    // Next-free skips the gateway, the reservations and explicitly taken addresses.
    let low = allocate(&admin, &id, json!({"holder_type": "other", "holder_id": "a", "address": "10.20.0.2"})).await;
    assert_eq!(low["address"], "10.20.0.2");
    let next = allocate(&admin, &id, json!({"holder_type": "other", "holder_id": "b"})).await;
    assert_eq!(next["address"], "10.20.0.3");
    for i in 4..=9 {
        let got = allocate(&admin, &id, json!({"holder_type": "other", "holder_id": format!("c{i}")})).await;
        assert_eq!(got["address"], format!("10.20.0.{i}"));
    }
    let got = allocate(&admin, &id, json!({"holder_type": "other", "holder_id": "after-reserved"})).await;
    assert_eq!(got["address"], "10.20.0.20", "the reserved block .10-.19 is skipped");
    // The broadcast's neighbour is fine.
    let top =
        allocate(&admin, &id, json!({"holder_type": "other", "holder_id": "top", "address": "10.20.0.254"})).await;
    assert_eq!(top["address"], "10.20.0.254");

    // IPv6: the last address of the network is assignable (no broadcast), the first is not.
    let six = create(&admin, json!({"name": "six", "cidr": "fd00:20::/120", "vni": 21})).await;
    let six_id = id_of(&six);
    let got =
        allocate(&admin, &six_id, json!({"holder_type": "other", "holder_id": "last", "address": "fd00:20::ff"})).await;
    assert_eq!(got["address"], "fd00:20::ff");
    let r = admin
        .post(&allocs_path(&six_id), json!({"holder_type": "other", "holder_id": "n", "address": "fd00:20::"}))
        .await;
    expect_code("IPv6 network address", &r, 422, "ADDRESS_UNASSIGNABLE");
    let r = admin
        .post(&allocs_path(&six_id), json!({"holder_type": "other", "holder_id": "n", "address": "10.20.0.77"}))
        .await;
    expect_code("IPv4 in an IPv6 VNI", &r, 422, "ADDRESS_UNASSIGNABLE");
    let got = allocate(&admin, &six_id, json!({"holder_type": "other", "holder_id": "auto"})).await;
    assert_eq!(got["address"], "fd00:20::1");
}

async fn release_and_reallocate(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let v = create(
        &admin,
        json!({"name": "cycle", "cidr": "10.9.0.0/29", "vni": 9, "gateway": "10.9.0.1",
               "reserved": [{"start": "10.9.0.2", "end": "10.9.0.3"}]}),
    )
    .await;
    let id = id_of(&v);
    for h in ["a", "b", "c"] {
        allocate(&admin, &id, json!({"holder_type": "other", "holder_id": h})).await;
    }
    let r = admin.delete(&format!("{}/10.9.0.5", allocs_path(&id))).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty(), "204 has no body: {:?}", r.text);
    assert_eq!(allocations(&admin, &id, "").await.0, ["10.9.0.4", "10.9.0.6"]);
    assert_eq!(fetch(&admin, &id).await["allocation_count"], 2);

    let audit_before = audit_entries(&admin).await;
    for (label, addr) in [("released twice", "10.9.0.5"), ("never held", "10.9.0.2"), ("outside", "192.0.2.1")] {
        let r = admin.delete(&format!("{}/{addr}", allocs_path(&id))).await;
        expect_code(label, &r, 404, "ALLOCATION_NOT_FOUND");
    }
    assert_eq!(audit_entries(&admin).await, audit_before);

    // The freed address is the lowest free one again, and may be asked for by name too.
    let again = allocate(&admin, &id, json!({"holder_type": "device", "holder_id": "new-holder"})).await;
    assert_eq!(again["address"], "10.9.0.5");
    assert_eq!(again["holder_id"], "new-holder");
    let r = admin.post(&allocs_path(&id), json!({"holder_type": "other", "holder_id": "z"})).await;
    expect_code("full again", &r, 409, "POOL_EXHAUSTED");
    assert_eq!(admin.delete(&format!("{}/10.9.0.6", allocs_path(&id))).await.status, 204);
    let named =
        allocate(&admin, &id, json!({"holder_type": "other", "holder_id": "named", "address": "10.9.0.6"})).await;
    assert_eq!(named["address"], "10.9.0.6");

    // IPv6 addresses in the path.
    let six = id_of(&create(&admin, json!({"name": "six", "cidr": "fd00:5::/64", "vni": 5})).await);
    let got = allocate(&admin, &six, json!({"holder_type": "other", "holder_id": "v6"})).await;
    let addr = got["address"].as_str().expect("address").to_string();
    assert_eq!(addr, "fd00:5::1");
    assert_eq!(admin.delete(&format!("{}/{addr}", allocs_path(&six))).await.status, 204);
    assert!(allocations(&admin, &six, "").await.0.is_empty());
}

/// Next-free always means the lowest free address, also after the pool's shape changes (reserved
/// range dropped) and around addresses taken by name ahead of the scan.
async fn next_free_stays_lowest_after_changes(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let v = create(
        &admin,
        json!({"name": "shape", "cidr": "10.8.0.0/28", "vni": 8, "gateway": "10.8.0.1",
               "reserved": [{"start": "10.8.0.2", "end": "10.8.0.3"}]}),
    )
    .await;
    let id = id_of(&v);
    let next = |h: &'static str| {
        let admin = admin.clone();
        let id = id.clone();
        async move { allocate(&admin, &id, json!({"holder_type": "other", "holder_id": h})).await["address"].clone() }
    };
    assert_eq!(next("a").await, "10.8.0.4");
    assert_eq!(next("b").await, "10.8.0.5");
    let r = admin.patch(&path(&id), json!({"reserved": []})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(next("c").await, "10.8.0.2", "a dropped reservation frees addresses below the last one handed out");
    allocate(&admin, &id, json!({"holder_type": "other", "holder_id": "named", "address": "10.8.0.7"})).await;
    assert_eq!(next("d").await, "10.8.0.3");
    assert_eq!(next("e").await, "10.8.0.6");
    assert_eq!(next("f").await, "10.8.0.8", "an address taken by name is skipped");
}

async fn delete_blocked_while_allocated(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let v = create(&admin, json!({"name": "busy", "cidr": "10.40.0.0/24", "vni": 40})).await;
    let id = id_of(&v);
    allocate(&admin, &id, json!({"holder_type": "asset", "holder_id": "ast_x"})).await;
    let before = fetch(&admin, &id).await;
    let audit_before = audit_entries(&admin).await;

    let r = admin.delete(&path(&id)).await;
    expect_code("delete with allocations", &r, 409, "VNI_IN_USE");
    assert_eq!(fetch(&admin, &id).await, before, "nothing deleted");
    assert_eq!(allocations(&admin, &id, "").await.0, ["10.40.0.1"]);
    assert_eq!(total(&admin).await, 1);
    assert_eq!(audit_entries(&admin).await, audit_before);

    assert_eq!(admin.delete(&format!("{}/10.40.0.1", allocs_path(&id))).await.status, 204);
    let r = admin.delete(&path(&id)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(total(&admin).await, 0);
    expect_code("allocations of a deleted VNI", &admin.get(&allocs_path(&id)).await, 404, "VNI_NOT_FOUND");
}

async fn changes_are_audited(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let id = id_of(&create(&admin, json!({"name": "audited", "cidr": "10.60.0.0/24", "vni": 60})).await);
    let other = id_of(&create(&admin, json!({"name": "bystander", "cidr": "10.61.0.0/24", "vni": 61})).await);
    assert_eq!(admin.patch(&path(&id), json!({"description": "d"})).await.status, 200);
    allocate(&admin, &id, json!({"holder_type": "other", "holder_id": "h"})).await;
    // Rejected changes are not recorded.
    assert_eq!(admin.patch(&path(&id), json!({"name": "bystander"})).await.status, 409);
    assert_eq!(admin.delete(&path(&id)).await.status, 409);
    assert_eq!(admin.delete(&format!("{}/10.60.0.1", allocs_path(&id))).await.status, 204);
    assert_eq!(admin.delete(&path(&id)).await.status, 204);

    let entries = audit_of(&admin, &id).await;
    assert_eq!(
        actions(&entries),
        ["vni.delete", "vni.release", "vni.allocate", "vni.update", "vni.create"],
        "newest first: {entries:?}"
    );
    for e in &entries {
        assert_eq!(e["target_type"], "vni", "{e}");
        assert_eq!(e["target_id"], id.as_str(), "{e}");
        assert_eq!(e["outcome"], "success", "{e}");
        assert_eq!(e["actor_name"], "admin", "{e}");
    }
    let by = audit_of(&admin, &other).await;
    assert_eq!(actions(&by), ["vni.create"], "only the bystander's creation");
    let fam = admin.get(&format!("/api/v1/audit?action=vni.*&target_id={id}")).await;
    assert_eq!(fam.json["meta"]["total"], 5, "{}", fam.text);
    let v = admin.get("/api/v1/audit/verify").await;
    assert_eq!(v.json["valid"], true, "{}", v.text);
}

async fn permissions(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let viewer = app.user(&admin, "vic", "viewer").await;
    let operator = app.user(&admin, "olga", "operator").await;
    let v = create(&admin, json!({"name": "shared", "cidr": "10.70.0.0/24", "vni": 70})).await;
    let id = id_of(&v);
    allocate(&admin, &id, json!({"holder_type": "other", "holder_id": "pre"})).await;
    let before = fetch(&admin, &id).await;
    let vni_audit_before = audit_of(&admin, &id).await.len();

    // A viewer reads...
    assert_eq!(viewer.get("/api/v1/vnis").await.status, 200);
    assert_eq!(fetch(&viewer, &id).await, before);
    assert_eq!(allocations(&viewer, &id, "").await.0, ["10.70.0.1"]);
    // ...but every write is refused, naming the missing scope.
    let denied = |label: &'static str, r: Resp| {
        expect_code(label, &r, 403, "INSUFFICIENT_SCOPE");
        assert_eq!(r.json["details"]["missing_scope"], "vnis:write", "{label}: {}", r.text);
    };
    denied("viewer create", viewer.post("/api/v1/vnis", json!({"name": "v", "cidr": "10.71.0.0/24", "vni": 71})).await);
    denied("viewer patch", viewer.patch(&path(&id), json!({"description": "mine"})).await);
    denied("viewer delete", viewer.delete(&path(&id)).await);
    denied("viewer allocate", viewer.post(&allocs_path(&id), json!({"holder_type": "other", "holder_id": "v"})).await);
    denied("viewer release", viewer.delete(&format!("{}/10.70.0.1", allocs_path(&id))).await);
    assert_eq!(fetch(&admin, &id).await, before, "the viewer changed nothing");
    assert_eq!(total(&admin).await, 1);
    assert_eq!(audit_of(&admin, &id).await.len(), vni_audit_before);

    // API keys carry exactly their scopes.
    let reader = admin.api_key(&["vnis:read"]).await;
    assert_eq!(fetch(&reader, &id).await, before);
    denied(
        "read-only key create",
        reader.post("/api/v1/vnis", json!({"name": "k", "cidr": "10.72.0.0/24", "vni": 72})).await,
    );
    let writer = admin.api_key(&["vnis:write"]).await;
    let r = writer.get(&path(&id)).await;
    expect_code("write-only key read", &r, 403, "INSUFFICIENT_SCOPE");
    assert_eq!(r.json["details"]["missing_scope"], "vnis:read", "{}", r.text);
    let r = app.client().get("/api/v1/vnis").await;
    assert_eq!(r.status, 401, "anonymous: {}", r.text);

    // An operator does everything.
    let o = create(&operator, json!({"name": "ops", "cidr": "10.73.0.0/24", "vni": 73})).await;
    let o_id = id_of(&o);
    assert_eq!(operator.patch(&path(&o_id), json!({"description": "by ops"})).await.status, 200);
    let got = allocate(&operator, &o_id, json!({"holder_type": "device", "holder_id": "d1"})).await;
    assert_eq!(got["address"], "10.73.0.1");
    assert_eq!(operator.delete(&format!("{}/10.73.0.1", allocs_path(&o_id))).await.status, 204);
    assert_eq!(operator.delete(&path(&o_id)).await.status, 204);
    let entries = audit_of(&admin, &o_id).await;
    assert_eq!(actions(&entries), ["vni.delete", "vni.release", "vni.allocate", "vni.update", "vni.create"]);
    assert!(entries.iter().all(|e| e["actor_name"] == "olga"), "{entries:?}");
}

async fn concurrent_allocations(backend: Backend) {
    const N: usize = 40;
    const SAME: usize = 20;
    let app = start(backend).await;
    let admin = app.admin().await;
    let v = create(&admin, json!({"name": "hammer", "cidr": "10.30.0.0/24", "vni": 30, "gateway": "10.30.0.1"})).await;
    let id = id_of(&v);

    let gate = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let (c, gate, p) = (admin.clone(), gate.clone(), allocs_path(&id));
        tasks.spawn(async move {
            gate.wait().await;
            c.post(&p, json!({"holder_type": "asset", "holder_id": format!("ast_{i:02}")})).await
        });
    }
    let mut got = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        assert_eq!(r.status, 201, "every concurrent allocation succeeds: {}", r.text);
        got.push(v4(r.json["address"].as_str().unwrap_or_else(|| panic!("no address: {}", r.text))));
    }
    let distinct: HashSet<Ipv4Addr> = got.iter().copied().collect();
    assert_eq!(distinct.len(), N, "{N} distinct addresses: {got:?}");
    for a in &got {
        let o = a.octets();
        assert_eq!(&o[..3], &[10, 30, 0], "{a} is inside the network");
        assert!(!matches!(o[3], 0 | 1 | 255), "{a} is the network, gateway or broadcast address");
    }
    // Lowest first: whatever the interleaving, the result is the 40 lowest assignable addresses.
    let expected: HashSet<Ipv4Addr> = (2..2 + N as u8).map(|i| Ipv4Addr::new(10, 30, 0, i)).collect();
    assert_eq!(distinct, expected, "lowest free addresses first");
    assert_eq!(fetch(&admin, &id).await["allocation_count"], N);
    let (listed, meta) = allocations(&admin, &id, "?per_page=100").await;
    assert_eq!(meta["total"], N);
    assert_eq!(listed.iter().map(|a| v4(a)).collect::<HashSet<_>>(), expected);
    let audit = admin.get(&format!("/api/v1/audit?action=vni.allocate&target_id={id}")).await;
    assert_eq!(audit.json["meta"]["total"], N, "one audit entry per allocation: {}", audit.text);

    // Many callers asking for the same address: exactly one gets it.
    let gate = Arc::new(tokio::sync::Barrier::new(SAME));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..SAME {
        let (c, gate, p) = (admin.clone(), gate.clone(), allocs_path(&id));
        tasks.spawn(async move {
            gate.wait().await;
            c.post(&p, json!({"holder_type": "device", "holder_id": format!("racer-{i:02}"), "address": "10.30.0.200"}))
                .await
        });
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        match r.status {
            201 => winners.push(r.json),
            409 => {
                assert_eq!(r.error_code(), "ADDRESS_TAKEN", "{}", r.text);
                losers.push(r.json);
            }
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one wins: {winners:?}");
    assert_eq!(losers.len(), SAME - 1);
    assert_eq!(winners[0]["address"], "10.30.0.200");
    let holder = winners[0]["holder_id"].clone();
    for l in &losers {
        assert_eq!(l["details"]["holder_id"], holder, "losers name the winner: {l}");
    }
    assert_eq!(fetch(&admin, &id).await["allocation_count"], N + 1);
    let (listed, _) = allocations(&admin, &id, "?per_page=100").await;
    assert_eq!(listed.iter().filter(|a| *a == "10.30.0.200").count(), 1);
    let r = admin.get(&allocs_path(&id)).await;
    assert_eq!(r.json["meta"]["total"], N + 1, "{}", r.text);
    let v = admin.get("/api/v1/audit/verify").await;
    assert_eq!(v.json["valid"], true, "{}", v.text);
}

both_backends!(
    next_free_stays_lowest_after_changes,
    create_get_list,
    patch_and_delete,
    create_validation_errors,
    patch_validation_errors,
    conflicts_on_create,
    allocation_order_and_exhaustion,
    explicit_address_allocation,
    release_and_reallocate,
    delete_blocked_while_allocated,
    changes_are_audited,
    permissions,
    concurrent_allocations,
);

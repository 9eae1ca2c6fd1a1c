//! Hardware drift: what changed between two registrations of the same asset. A disk, NIC, memory
//! size, CPU or serial that changes is reported, so a swapped drive or a moved NIC is visible
//! instead of silently becoming the new truth. Link state, speed and partition tables are not
//! hardware (they change on their own) and are not compared.

use std::collections::BTreeMap;

use ironbay_wire::inventory::{Disk, Inventory, Nic};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `disk`, `nic`, `memory`, `cpu`, `system`, `firmware`.
    pub kind: &'static str,
    /// Which one: a disk's serial (or name), a NIC's MAC, or the field's name.
    pub item: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// For `changed`: the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    pub before: Value,
    pub after: Value,
}

fn changed(kind: &'static str, item: impl Into<String>, field: &'static str, before: Value, after: Value) -> Change {
    Change { kind, item: item.into(), change: "changed", field: Some(field), before, after }
}

/// Everything that differs from `old` to `new`, in a stable order.
pub fn diff(old: &Inventory, new: &Inventory) -> Vec<Change> {
    let mut out = Vec::new();
    let fields: [(&'static str, &'static str, &Option<String>, &Option<String>); 5] = [
        ("system", "serial", &old.system.serial, &new.system.serial),
        ("system", "uuid", &old.system.uuid, &new.system.uuid),
        ("system", "vendor", &old.system.vendor, &new.system.vendor),
        ("system", "product", &old.system.product, &new.system.product),
        ("cpu", "model", &old.cpu.model, &new.cpu.model),
    ];
    for (kind, field, a, b) in fields {
        if a != b {
            out.push(changed(kind, field, field, json!(a), json!(b)));
        }
    }
    for (field, a, b) in [
        ("sockets", old.cpu.sockets, new.cpu.sockets),
        ("cores", old.cpu.cores, new.cpu.cores),
        ("threads", old.cpu.threads, new.cpu.threads),
    ] {
        if a != b {
            out.push(changed("cpu", field, field, json!(a), json!(b)));
        }
    }
    if old.memory.total_bytes != new.memory.total_bytes {
        out.push(changed(
            "memory",
            "total_bytes",
            "total_bytes",
            json!(old.memory.total_bytes),
            json!(new.memory.total_bytes),
        ));
    }
    if old.firmware.kind != new.firmware.kind {
        out.push(changed("firmware", "kind", "kind", json!(old.firmware.kind), json!(new.firmware.kind)));
    }
    diff_keyed(&mut out, "disk", keyed_disks(&old.disks), keyed_disks(&new.disks), disk_changes);
    diff_keyed(&mut out, "nic", keyed_nics(&old.nics), keyed_nics(&new.nics), nic_changes);
    out
}

/// A disk is itself by its serial, else its WWN, else (a disk that reports neither) its name.
fn disk_key(d: &Disk) -> String {
    d.serial.clone().or_else(|| d.wwn.clone()).unwrap_or_else(|| format!("name:{}", d.name))
}

fn keyed_disks(disks: &[Disk]) -> BTreeMap<String, &Disk> {
    disks.iter().map(|d| (disk_key(d), d)).collect()
}

fn keyed_nics(nics: &[Nic]) -> BTreeMap<String, &Nic> {
    nics.iter().map(|n| (n.mac.to_ascii_lowercase(), n)).collect()
}

fn disk_changes(key: &str, a: &Disk, b: &Disk, out: &mut Vec<Change>) {
    if a.size_bytes != b.size_bytes {
        out.push(changed("disk", key, "size_bytes", json!(a.size_bytes), json!(b.size_bytes)));
    }
    if a.model != b.model {
        out.push(changed("disk", key, "model", json!(a.model), json!(b.model)));
    }
}

fn nic_changes(key: &str, a: &Nic, b: &Nic, out: &mut Vec<Change>) {
    if a.driver != b.driver {
        out.push(changed("nic", key, "driver", json!(a.driver), json!(b.driver)));
    }
}

fn diff_keyed<T: Serialize>(
    out: &mut Vec<Change>,
    kind: &'static str,
    old: BTreeMap<String, &T>,
    new: BTreeMap<String, &T>,
    same: fn(&str, &T, &T, &mut Vec<Change>),
) {
    for (key, a) in &old {
        match new.get(key) {
            None => out.push(Change {
                kind,
                item: key.clone(),
                change: "removed",
                field: None,
                before: json!(a),
                after: Value::Null,
            }),
            Some(b) => same(key, a, b, out),
        }
    }
    for (key, b) in &new {
        if !old.contains_key(key) {
            out.push(Change {
                kind,
                item: key.clone(),
                change: "added",
                field: None,
                before: Value::Null,
                after: json!(b),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(name: &str, serial: &str, size: u64) -> Disk {
        Disk {
            name: name.into(),
            path: format!("/dev/{name}"),
            serial: Some(serial.into()),
            size_bytes: size,
            ..Default::default()
        }
    }

    fn machine() -> Inventory {
        let mut inv = Inventory::default();
        inv.system.serial = Some("SN1".into());
        inv.memory.total_bytes = 8 << 30;
        inv.disks = vec![disk("vda", "D1", 10 << 30), disk("vdb", "D2", 20 << 30)];
        inv.nics = vec![Nic { name: "eth0".into(), mac: "52:54:00:00:00:01".into(), ..Default::default() }];
        inv
    }

    #[test]
    fn the_same_machine_has_no_changes_even_if_links_flap_and_names_move() {
        let a = machine();
        let mut b = machine();
        b.nics[0].link = Some("down".into());
        b.nics[0].speed_mbps = Some(1000);
        b.disks.reverse();
        b.disks[0].name = "vdc".into();
        b.disks[0].partition_table = Some("gpt".into());
        assert_eq!(diff(&a, &b), vec![]);
    }

    #[test]
    fn a_swapped_disk_a_grown_memory_and_a_new_serial_are_each_reported() {
        let a = machine();
        let mut b = machine();
        b.disks[1] = disk("vdb", "D3", 20 << 30);
        b.memory.total_bytes = 16 << 30;
        b.system.serial = Some("SN2".into());
        b.nics.push(Nic { name: "eth1".into(), mac: "52:54:00:00:00:02".into(), ..Default::default() });
        let changes = diff(&a, &b);
        let summary: Vec<(&str, &str, &str)> = changes.iter().map(|c| (c.kind, c.item.as_str(), c.change)).collect();
        assert_eq!(
            summary,
            vec![
                ("system", "serial", "changed"),
                ("memory", "total_bytes", "changed"),
                ("disk", "D2", "removed"),
                ("disk", "D3", "added"),
                ("nic", "52:54:00:00:00:02", "added"),
            ]
        );
        assert_eq!(changes[1].before, json!(8u64 << 30));
        assert_eq!(changes[1].after, json!(16u64 << 30));
    }
}

//! The readers on a fixture tree shaped like a real machine's /sys, /proc and /dev (devices
//! reached through relative symlinks, as sysfs has them), and on the machine the tests run on.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn link(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(target, p).unwrap();
}

/// A block device at `/sys/devices/<devpath>/block/<name>` with its `device` link to
/// `<devpath>`, and `/sys/block/<name>` linking to it.
fn block(root: &Path, devpath: &str, name: &str, files: &[(&str, &str)]) {
    let dir = format!("sys/devices/{devpath}/block/{name}");
    for (f, v) in files {
        write(root, &format!("{dir}/{f}"), v);
    }
    link(root, &format!("{dir}/device"), "../..");
    link(root, &format!("sys/block/{name}"), &format!("../devices/{devpath}/block/{name}"));
}

const CPUINFO_2S_2C_2T: &str = "\
processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 0\nsiblings\t: 4\ncore id\t\t: 0\ncpu cores\t: 2\n\n\
processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 0\ncore id\t\t: 0\n\n\
processor\t: 2\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 0\ncore id\t\t: 1\n\n\
processor\t: 3\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 0\ncore id\t\t: 1\n\n\
processor\t: 4\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 1\ncore id\t\t: 0\n\n\
processor\t: 5\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 1\ncore id\t\t: 0\n\n\
processor\t: 6\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 1\ncore id\t\t: 1\n\n\
processor\t: 7\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 1\ncore id\t\t: 1\n\n";

/// A protective MBR then a GPT header at LBA 1 of `lbs` bytes.
fn gpt_image(lbs: usize) -> Vec<u8> {
    let mut img = vec![0u8; lbs * 4];
    img[446 + 4] = 0xEE;
    img[510] = 0x55;
    img[511] = 0xAA;
    img[lbs..lbs + 8].copy_from_slice(b"EFI PART");
    img
}

fn fixture(root: &Path) {
    // SMBIOS, with the whitespace and placeholders real firmware leaves.
    for (f, v) in [
        ("sys_vendor", "Dell Inc.\n"),
        ("product_name", "PowerEdge R650\n"),
        ("product_serial", "  7XJ4KD3 \n"),
        ("product_uuid", "4C4C4544-0058-4A10-8034-B7C04F4B4433\n"),
        ("board_vendor", "Dell Inc.\n"),
        ("board_name", "0PYXKY\n"),
        ("board_serial", ".7XJ4KD3.CNFCP0019B002M.\n"),
        ("chassis_serial", "To Be Filled By O.E.M.\n"),
        ("bios_vendor", "Dell Inc.\n"),
        ("bios_version", "1.9.2\n"),
        ("bios_date", "01/19/2023\n"),
    ] {
        write(root, &format!("sys/class/dmi/id/{f}"), v);
    }
    fs::create_dir_all(root.join("sys/firmware/efi/efivars")).unwrap();
    write(root, "proc/cpuinfo", CPUINFO_2S_2C_2T);
    write(root, "proc/meminfo", "MemTotal:       65739452 kB\nMemFree:        61234567 kB\n");
    write(root, "proc/sys/kernel/osrelease", "6.1.0-56-amd64\n");

    // virtio-blk: serial on the block node, GPT on the device.
    block(
        root,
        "pci0000:00/0000:00:02.0/virtio1",
        "vda",
        &[
            ("size", "41943040\n"),
            ("serial", "ib-vda-01\n"),
            ("ro", "0\n"),
            ("removable", "0\n"),
            ("queue/rotational", "1\n"),
            ("queue/logical_block_size", "512\n"),
            ("queue/physical_block_size", "4096\n"),
        ],
    );
    write(root, "dev/vda", gpt_image(512));

    // NVMe under native multipath: the namespace is under /sys/devices/virtual, its `device` is
    // the subsystem (serial, model), its wwid on the block node; 4K sectors.
    let ns = "sys/devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1";
    for (f, v) in [
        ("size", "1875385008\n"),
        ("wwid", "eui.0025385b71b0a1c2\n"),
        ("ro", "0\n"),
        ("removable", "0\n"),
        ("queue/rotational", "0\n"),
        ("queue/logical_block_size", "4096\n"),
        ("queue/physical_block_size", "4096\n"),
    ] {
        write(root, &format!("{ns}/{f}"), v);
    }
    write(root, "sys/devices/virtual/nvme-subsystem/nvme-subsys0/serial", "S4EWNX0R123456      \n");
    write(root, "sys/devices/virtual/nvme-subsystem/nvme-subsys0/model", "Samsung SSD 980 PRO 1TB                 \n");
    link(root, &format!("{ns}/device"), "..");
    link(root, "sys/block/nvme0n1", "../devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1");
    write(root, "dev/nvme0n1", gpt_image(4096));

    // SATA behind libata: model and wwid on the SCSI device, serial in VPD page 0x80, an MBR.
    let sata = "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0";
    block(
        root,
        sata,
        "sda",
        &[
            ("size", "3907029168\n"),
            ("ro", "0\n"),
            ("removable", "0\n"),
            ("queue/rotational", "1\n"),
            ("queue/logical_block_size", "512\n"),
            ("queue/physical_block_size", "4096\n"),
        ],
    );
    write(root, &format!("sys/devices/{sata}/model"), "ST2000NM0008-2F3\n");
    write(root, &format!("sys/devices/{sata}/vendor"), "ATA     \n");
    write(root, &format!("sys/devices/{sata}/wwid"), "naa.5000c500c1a2b3c4\n");
    let mut vpd = vec![0x00, 0x80, 0x00, 0x14];
    vpd.extend_from_slice(b"            ZFL1ABCD");
    write(root, &format!("sys/devices/{sata}/vpd_pg80"), vpd);
    write(root, &format!("sys/devices/{sata}/scsi_level"), "6\n");
    let mut mbr = vec![0u8; 1024];
    mbr[446] = 0x80;
    mbr[446 + 4] = 0x83;
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    write(root, "dev/sda", mbr);

    // A BMC's virtual CD-ROM over USB, no medium (size 0), no device file to read.
    let usb = "pci0000:00/0000:00:14.0/usb1/1-4/1-4:1.0/host6/target6:0:0/6:0:0:0";
    block(root, usb, "sr0", &[("size", "0\n"), ("ro", "0\n"), ("removable", "1\n")]);
    write(root, &format!("sys/devices/{usb}/vendor"), "AMI     \n");
    write(root, &format!("sys/devices/{usb}/model"), "Virtual CDROM0  \n");
    write(root, &format!("sys/devices/{usb}/serial"), "\n");

    // Virtual block devices: never disks.
    for name in ["loop0", "zram0", "dm-0"] {
        write(root, &format!("sys/devices/virtual/block/{name}/size"), "2048\n");
        link(root, &format!("sys/block/{name}"), &format!("../devices/virtual/block/{name}"));
    }

    // NICs: a virtio NIC that is up, an e1000e that is down (speed and carrier would fail with
    // EINVAL: no files), loopback and a bridge (no `device`).
    let eth0 = "sys/devices/pci0000:00/0000:00:03.0/virtio0/net/eth0";
    write(root, &format!("{eth0}/address"), "52:54:00:AB:CD:EF\n");
    write(root, &format!("{eth0}/operstate"), "up\n");
    write(root, &format!("{eth0}/speed"), "-1\n");
    write(root, &format!("{eth0}/carrier"), "1\n");
    link(root, &format!("{eth0}/device"), "../..");
    link(root, "sys/devices/pci0000:00/0000:00:03.0/virtio0/driver", "../../../../bus/virtio/drivers/virtio_net");
    link(root, "sys/class/net/eth0", "../../devices/pci0000:00/0000:00:03.0/virtio0/net/eth0");
    let eno1 = "sys/devices/pci0000:00/0000:00:1f.6/net/eno1";
    write(root, &format!("{eno1}/address"), "d0:94:66:0a:0b:0c\n");
    write(root, &format!("{eno1}/operstate"), "down\n");
    link(root, &format!("{eno1}/device"), "../..");
    link(root, "sys/devices/pci0000:00/0000:00:1f.6/driver", "../../../bus/pci/drivers/e1000e");
    link(root, "sys/class/net/eno1", "../../devices/pci0000:00/0000:00:1f.6/net/eno1");
    write(root, "sys/devices/pci0000:00/0000:00:05.0/net/ens5/address", "52:54:00:00:00:05\n");
    write(root, "sys/devices/pci0000:00/0000:00:05.0/net/ens5/speed", "10000\n");
    link(root, "sys/devices/pci0000:00/0000:00:05.0/net/ens5/device", "../..");
    link(root, "sys/class/net/ens5", "../../devices/pci0000:00/0000:00:05.0/net/ens5");
    for name in ["lo", "br0"] {
        write(root, &format!("sys/devices/virtual/net/{name}/address"), "00:00:00:00:00:00\n");
        link(root, &format!("sys/class/net/{name}"), &format!("../../devices/virtual/net/{name}"));
    }
}

#[test]
fn a_fixture_machine_reads_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fixture(root);
    let inv = collect_from(root);

    assert_eq!(
        inv.system,
        System {
            vendor: Some("Dell Inc.".into()),
            product: Some("PowerEdge R650".into()),
            serial: Some("7XJ4KD3".into()),
            uuid: Some("4c4c4544-0058-4a10-8034-b7c04f4b4433".into()),
            board_vendor: Some("Dell Inc.".into()),
            board_product: Some("0PYXKY".into()),
            board_serial: Some(".7XJ4KD3.CNFCP0019B002M.".into()),
            chassis_serial: None,
        }
    );
    assert_eq!(
        inv.firmware,
        Firmware {
            kind: FirmwareKind::Uefi,
            vendor: Some("Dell Inc.".into()),
            version: Some("1.9.2".into()),
            date: Some("01/19/2023".into()),
        }
    );
    assert_eq!(
        inv.cpu,
        Cpu {
            model: Some("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz".into()),
            arch: std::env::consts::ARCH.into(),
            sockets: 2,
            cores: 4,
            threads: 8,
        }
    );
    assert_eq!(inv.memory.total_bytes, 65739452 * 1024);
    assert_eq!(inv.kernel.as_deref(), Some("6.1.0-56-amd64"));
    assert_eq!(inv.bmc, None);

    let names: Vec<&str> = inv.disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["nvme0n1", "sda", "sr0", "vda"]);
    assert_eq!(inv.disks, disks_from(root));
    let disk = |n: &str| inv.disks.iter().find(|d| d.name == n).unwrap().clone();
    assert_eq!(
        disk("vda"),
        Disk {
            name: "vda".into(),
            path: "/dev/vda".into(),
            size_bytes: 41943040 * 512,
            model: None,
            serial: Some("ib-vda-01".into()),
            wwn: None,
            rotational: true,
            removable: false,
            read_only: false,
            transport: Some("virtio".into()),
            partition_table: Some("gpt".into()),
            virtual_media: false,
            logical_block_size: 512,
            physical_block_size: 4096,
        }
    );
    assert_eq!(
        disk("nvme0n1"),
        Disk {
            name: "nvme0n1".into(),
            path: "/dev/nvme0n1".into(),
            size_bytes: 1875385008 * 512,
            model: Some("Samsung SSD 980 PRO 1TB".into()),
            serial: Some("S4EWNX0R123456".into()),
            wwn: Some("eui.0025385b71b0a1c2".into()),
            rotational: false,
            removable: false,
            read_only: false,
            transport: Some("nvme".into()),
            partition_table: Some("gpt".into()),
            virtual_media: false,
            logical_block_size: 4096,
            physical_block_size: 4096,
        }
    );
    assert_eq!(
        disk("sda"),
        Disk {
            name: "sda".into(),
            path: "/dev/sda".into(),
            size_bytes: 3907029168 * 512,
            model: Some("ST2000NM0008-2F3".into()),
            serial: Some("ZFL1ABCD".into()),
            wwn: Some("naa.5000c500c1a2b3c4".into()),
            rotational: true,
            removable: false,
            read_only: false,
            transport: Some("sata".into()),
            partition_table: Some("dos".into()),
            virtual_media: false,
            logical_block_size: 512,
            physical_block_size: 4096,
        }
    );
    let sr0 = disk("sr0");
    assert_eq!(
        sr0,
        Disk {
            name: "sr0".into(),
            path: "/dev/sr0".into(),
            size_bytes: 0,
            model: Some("Virtual CDROM0".into()),
            serial: None,
            wwn: None,
            rotational: false,
            removable: true,
            read_only: false,
            transport: Some("usb".into()),
            partition_table: None,
            virtual_media: true,
            logical_block_size: 512,
            physical_block_size: 512,
        }
    );
    assert_eq!(sr0.protected_reason(), Some("virtual media"));
    assert_eq!(disk("vda").protected_reason(), None);

    assert_eq!(
        inv.nics,
        [
            Nic {
                name: "eno1".into(),
                mac: "d0:94:66:0a:0b:0c".into(),
                driver: Some("e1000e".into()),
                link: Some("down".into()),
                speed_mbps: None,
                carrier: None,
            },
            Nic {
                name: "ens5".into(),
                mac: "52:54:00:00:00:05".into(),
                driver: None,
                link: None,
                speed_mbps: Some(10000),
                carrier: None,
            },
            Nic {
                name: "eth0".into(),
                mac: "52:54:00:ab:cd:ef".into(),
                driver: Some("virtio_net".into()),
                link: Some("up".into()),
                speed_mbps: None,
                carrier: Some(true),
            },
        ]
    );
}

#[test]
fn an_ipmi_node_that_cannot_be_queried_is_a_bmc_of_unknown_details() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file: the IPMI ioctls fail (ENOTTY), which must not panic or hang.
    write(dir.path(), "dev/ipmi0", "");
    assert_eq!(collect_from(dir.path()).bmc, Some(Bmc::default()));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "dev/ipmi/0", "");
    assert_eq!(bmc::read(dir.path()), Some(Bmc::default()));
}

#[test]
fn an_empty_root_is_an_empty_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let inv = collect_from(dir.path());
    assert_eq!(inv.system, System::default());
    assert_eq!(inv.firmware.kind, FirmwareKind::Bios);
    assert_eq!((inv.cpu.sockets, inv.cpu.cores, inv.cpu.threads, inv.memory.total_bytes), (0, 0, 0, 0));
    assert!(inv.disks.is_empty() && inv.nics.is_empty() && inv.bmc.is_none() && inv.kernel.is_none());
}

/// The machine the tests run on: whatever it is, its inventory must hold together.
#[test]
fn this_machine_is_consistent() {
    let inv = collect();
    assert!(inv.cpu.sockets >= 1, "{:?}", inv.cpu);
    assert!(inv.cpu.cores >= inv.cpu.sockets, "{:?}", inv.cpu);
    assert!(inv.cpu.threads >= inv.cpu.cores, "{:?}", inv.cpu);
    assert_eq!(inv.cpu.arch, std::env::consts::ARCH);
    assert!(inv.memory.total_bytes > 0);
    assert!(inv.kernel.is_some());
    for d in &inv.disks {
        assert!(d.path.starts_with("/dev/"), "{d:?}");
        assert_eq!(d.path, format!("/dev/{}", d.name));
        assert!(d.logical_block_size >= 512 && d.physical_block_size >= d.logical_block_size, "{d:?}");
        for s in [&d.model, &d.serial, &d.wwn, &d.transport] {
            assert_ne!(s.as_deref(), Some(""), "{d:?}");
        }
    }
    for n in &inv.nics {
        assert_ne!(n.name, "lo");
        assert!(!n.mac.is_empty(), "{n:?}");
    }
    // The wire format carries it.
    let json = serde_json::to_string(&inv).unwrap();
    assert_eq!(serde_json::from_str::<Inventory>(&json).unwrap(), inv);
}

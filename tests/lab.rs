//! The test lab itself (`support::lab`): namespaces joined by a bridge carry traffic between
//! them, nothing appears in the default namespace, and everything is gone after the lab is
//! dropped — also when the test panics.

#[path = "support/lab.rs"]
mod lab;

use std::process::Command;

use lab::{Lab, lab_namespaces};

fn ping(lab: &Lab, ns: &str, address: &str) -> bool {
    lab.command(ns, "ping").args(["-c", "1", "-W", "5", address]).output().expect("ping").status.success()
}

fn link_exists_in_default_namespace(name: &str) -> bool {
    Command::new("ip").args(["link", "show", name]).output().expect("ip link").status.success()
}

#[test]
fn clients_reach_the_server_through_the_bridge_and_nothing_leaks() {
    let mut lab = Lab::new();
    let a = lab.add_client();
    let b = lab.add_client();
    let tap = lab.add_tap();
    lab.set_address(&a, "10.213.0.10");
    lab.set_address(&b, "10.213.0.11");
    assert!(ping(&lab, &a.ns, "10.213.0.1"), "client a reaches the server namespace");
    assert!(ping(&lab, &b.ns, "10.213.0.10"), "client b reaches client a across the bridge");
    for name in ["ibbr0", &a.ifname, "ibp0", "ibp1", &tap] {
        assert!(!link_exists_in_default_namespace(name), "{name} must not exist outside the lab");
    }
    // The server namespace has the bridge, its two veth ports and the tap, and nothing else but lo.
    let links = String::from_utf8(lab.ip(&lab.server_ns, &["-br", "link"]).stdout).expect("utf8");
    let names: Vec<&str> = links.lines().filter_map(|l| l.split_whitespace().next()).collect();
    let mut names: Vec<String> = names.iter().map(|n| n.split('@').next().unwrap_or(n).to_string()).collect();
    names.sort();
    assert_eq!(names, ["ibbr0", "ibp0", "ibp1", "ibtap0", "lo"]);
    let prefix = lab.prefix().to_string();
    assert_eq!(lab.namespaces().len(), 3);
    drop(lab);
    assert!(lab_namespaces(&prefix).is_empty(), "namespaces left behind: {:?}", lab_namespaces(&prefix));
}

#[test]
fn a_panicking_test_still_tears_its_lab_down() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::panic::catch_unwind(move || {
        let mut lab = Lab::new();
        let c = lab.add_client();
        // A process running inside the lab when the test dies.
        let child = lab.command(&c.ns, "sleep").arg("600").spawn().expect("sleep");
        tx.send((lab.prefix().to_string(), child)).expect("send");
        panic!("the test failed");
    });
    assert!(outcome.is_err());
    let (prefix, mut child) = rx.recv().expect("prefix");
    // Ended by the teardown (`ip netns exec` became the sleep): it has already exited, killed.
    let status = child.try_wait().expect("try_wait");
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(status.is_some_and(|s| !s.success()), "a process started in the lab outlived it: {status:?}");
    assert!(lab_namespaces(&prefix).is_empty(), "namespaces left behind: {:?}", lab_namespaces(&prefix));
}

//! The IPMI driver against OpenIPMI's `ipmi_sim` in a lab namespace (`support::bmc::SimBmc`):
//! power status and actions really start and stop the simulated machine, boot devices reach the
//! chassis, wrong passwords and absent BMCs fail fast with the right codes, many calls at once
//! succeed, and every session is closed behind itself. Also the `ironbay bmc` CLI.

#[path = "support/bmc.rs"]
mod bmc_sim;
#[path = "support/lab.rs"]
mod lab;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bmc_sim::{SimBmc, runtime_in};
use ironbay::bmc::{
    Bmc, BmcError, BmcKind, BmcSettings, BmcTarget, BootDevice, BootOverride, PowerAction, PowerState, driver,
};
use ironbay::secret::Secret;
use lab::Lab;

const PASSWORD: &str = "sim-password-1";

fn target(bmc: &SimBmc) -> BmcTarget {
    BmcTarget {
        kind: BmcKind::Ipmi,
        address: bmc.address.clone(),
        port: bmc.port,
        username: bmc.username.clone(),
        password: Secret::new(bmc.password.clone()),
        cipher_suite: 3,
    }
}

/// A lab with one simulated BMC, a runtime inside the lab and the IPMI driver.
struct Rig {
    // Field order is drop order: the BMC goes before its lab.
    sim: SimBmc,
    rt: tokio::runtime::Runtime,
    bmc: Arc<dyn Bmc>,
    lab: Lab,
}

impl Rig {
    fn new(address: &str, settings: BmcSettings) -> Rig {
        let lab = Lab::new();
        let sim = SimBmc::dummy(&lab, address, PASSWORD);
        Rig { rt: runtime_in(&lab.server_ns), bmc: driver(BmcKind::Ipmi, settings), sim, lab }
    }
}

/// Polls `check` every 20 ms for up to `secs`.
fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn power_actions_drive_the_machine() {
    let Rig { sim, rt, bmc, lab } = Rig::new("10.213.0.11", BmcSettings::default());
    let t = target(&sim);
    let status = || rt.block_on(bmc.power_status(&t)).expect("status");
    let power = |a| rt.block_on(bmc.power(&t, a)).unwrap_or_else(|e| panic!("{a:?}: {e}"));

    assert_eq!(status(), PowerState::Off);
    power(PowerAction::On);
    assert_eq!(status(), PowerState::On);
    let first = sim.machine_pid().expect("the chassis script started the machine");
    // Idempotent: on when on succeeds and the machine keeps running.
    power(PowerAction::On);
    assert_eq!(sim.machine_pid(), Some(first));

    power(PowerAction::Off);
    assert!(!sim.power_is_on(), "the machine's process is gone");
    assert_eq!(status(), PowerState::Off);
    power(PowerAction::Off);
    assert!(!sim.power_is_on());

    // Cycle: ipmi_sim powers off, then on again from a 1 s timer once it sees the power off.
    power(PowerAction::On);
    let before = sim.machine_pid().expect("on");
    power(PowerAction::Cycle);
    eventually("the machine back on after the cycle", 10, || sim.machine_pid().is_some_and(|p| p != before));
    assert_eq!(status(), PowerState::On);

    let before = sim.machine_pid().expect("on");
    power(PowerAction::Reset);
    assert!(sim.log().contains("set reset 1"), "{}", sim.log());
    assert!(sim.machine_pid().is_some_and(|p| p != before), "a hard reset restarts the machine");

    power(PowerAction::Soft);
    assert!(sim.log().contains("set shutdown 1"), "{}", sim.log());
    assert!(!sim.power_is_on(), "the machine obeyed the ACPI power-off");
    assert_eq!(status(), PowerState::Off);
    // Soft when already off succeeds and leaves it off.
    power(PowerAction::Soft);
    assert!(!sim.power_is_on());

    // A BMC that refuses "on" when on and "off" when off: still success, power unchanged.
    sim.set_strict(true);
    power(PowerAction::Off);
    power(PowerAction::On);
    let on = sim.machine_pid().expect("on");
    power(PowerAction::On);
    assert!(sim.log().ends_with("set power 1\nget power\n"), "refused, then checked: {}", sim.log());
    assert_eq!(sim.machine_pid(), Some(on));
    power(PowerAction::Off);
    power(PowerAction::Off);
    assert!(!sim.power_is_on());
    assert!(sim.log().ends_with("set power 0\nget power\n"), "{}", sim.log());

    // Every session of those calls was closed: only ipmitool's own is open.
    assert_eq!(sim.active_sessions(&lab), 1);
}

#[test]
fn boot_devices_reach_the_chassis() {
    let Rig { sim, rt, bmc, lab: _lab } = Rig::new("10.213.0.12", BmcSettings::default());
    let t = target(&sim);
    let set = |device, efi, persistent| {
        rt.block_on(bmc.set_boot(&t, BootOverride { device, efi, persistent })).expect("set_boot");
    };

    set(BootDevice::Pxe, false, false);
    assert_eq!(sim.boot_device().as_deref(), Some("pxe"));
    set(BootDevice::Disk, false, true);
    // ipmi_sim names "force boot from default hard drive" `default`.
    assert_eq!(sim.boot_device().as_deref(), Some("default"));
    set(BootDevice::Pxe, true, false);
    assert_eq!(sim.boot_device().as_deref(), Some("pxe"));
    let log = sim.log();
    let boots: Vec<&str> = log.lines().filter(|l| l.starts_with("set boot")).map(str::trim).collect();
    assert_eq!(boots, ["set boot pxe", "set boot default", "set boot pxe"]);
}

#[test]
fn a_wrong_password_is_auth_failed_at_once() {
    let Rig { sim, rt, bmc, lab: _lab } = Rig::new("10.213.0.13", BmcSettings::default());
    let wrong = BmcTarget { password: Secret::new("not-the-password".into()), ..target(&sim) };
    let started = Instant::now();
    let e = rt.block_on(bmc.power(&wrong, PowerAction::On)).expect_err("wrong password");
    assert!(matches!(e, BmcError::AuthFailed { .. }), "{e}");
    assert_eq!(e.code(), "BMC_AUTH_FAILED");
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    // Not retried: one session attempt's worth of time.
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert!(!sim.power_is_on(), "nothing was powered on");
    let unknown = BmcTarget { username: "nobody".into(), ..target(&sim) };
    let e = rt.block_on(bmc.power_status(&unknown)).expect_err("unknown user");
    assert_eq!(e.code(), "BMC_AUTH_FAILED", "{e}");
}

#[test]
fn an_absent_bmc_is_unreachable_within_the_retries() {
    let settings = BmcSettings { timeout: Duration::from_millis(300), retries: 2 };
    let Rig { mut sim, rt, bmc, lab: _lab } = Rig::new("10.213.0.14", settings);
    // Bound: timeout × (retries + 1), plus the backoffs (50 + 100 ms) and slack.
    let bound = settings.timeout * (settings.retries + 1) + Duration::from_millis(150 + 500);

    // An address nobody has: silence, each attempt waits its whole timeout.
    let silent = BmcTarget { address: "10.213.0.250".into(), ..target(&sim) };
    let started = Instant::now();
    let e = rt.block_on(bmc.power_status(&silent)).expect_err("no BMC there");
    let took = started.elapsed();
    assert!(matches!(e, BmcError::Unreachable { .. }), "{e}");
    assert!(took >= settings.timeout * (settings.retries + 1), "all attempts were made: {took:?}");
    assert!(took < bound, "{took:?} > {bound:?}");

    // The BMC stopped: ICMP port unreachable, so it fails even faster.
    assert_eq!(rt.block_on(bmc.power_status(&target(&sim))).expect("up"), PowerState::Off);
    sim.stop();
    let started = Instant::now();
    let e = rt.block_on(bmc.power(&target(&sim), PowerAction::On)).expect_err("BMC down");
    assert_eq!(e.code(), "BMC_UNREACHABLE", "{e}");
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
}

#[test]
fn twenty_concurrent_calls_on_one_bmc_succeed_and_close_their_sessions() {
    let Rig { sim, rt, bmc, lab } = Rig::new("10.213.0.15", BmcSettings::default());
    let t = target(&sim);
    rt.block_on(bmc.power(&t, PowerAction::On)).expect("on");
    let results = rt.block_on(async {
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let (bmc, t) = (bmc.clone(), t.clone());
                tokio::spawn(async move { bmc.power_status(&t).await })
            })
            .collect();
        let mut out = Vec::new();
        for c in calls {
            out.push(c.await.expect("task"));
        }
        out
    });
    for r in results {
        assert_eq!(r.expect("status"), PowerState::On);
    }
    assert_eq!(sim.active_sessions(&lab), 1, "every session was closed");
}

#[test]
fn the_cli_reports_each_host_and_fails_if_one_failed() {
    let lab = Lab::new();
    let sim = SimBmc::dummy(&lab, "10.213.0.16", PASSWORD);
    let cli = |args: &[&str], password: Option<&str>| {
        let mut c = lab.command(&lab.server_ns, env!("CARGO_BIN_EXE_ironbay"));
        c.arg("bmc").args(args).env_remove("IRONBAY_BMC_PASSWORD");
        if let Some(p) = password {
            c.env("IRONBAY_BMC_PASSWORD", p);
        }
        let out = c.output().expect("ironbay bmc");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let host = format!("{}:623", sim.address);
    let (code, out) = cli(&["on", "--host", &host, "--username", "admin"], Some(PASSWORD));
    assert_eq!((code, out.as_str()), (Some(0), format!("{host}: ok\n").as_str()));
    assert!(sim.power_is_on());
    let (code, out) = cli(
        &["status", "--host", &host, "--host", "10.213.0.251", "--username", "admin", "--timeout-ms", "200"],
        Some(PASSWORD),
    );
    assert_eq!(code, Some(1), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("{host}: on"));
    assert!(lines[1].starts_with("10.213.0.251: BMC_UNREACHABLE: "), "{out}");
    let (code, _) = cli(&["status", "--host", &host, "--username", "admin"], None);
    assert_eq!(code, Some(2), "no password, no call");
}

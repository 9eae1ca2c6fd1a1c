//! The IPMI driver: each call is a fresh RMCP+ session (`session::perform`) on tokio's blocking
//! pool, bounded in time, retried with a short backoff when the failure may pass. A session per
//! call costs ~9 round trips, a few milliseconds on a LAN; it keeps no state that a BMC reboot
//! or session timeout could make stale.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::session::{self, Attempt, Done, Op};
use super::{Bmc, BmcError, BmcKind, BmcSettings, BmcTarget, BootOverride, BoxFuture, PowerAction, PowerState};

/// An attempt that still runs after this many timeouts is abandoned (see `BmcSettings::timeout`).
const ATTEMPT_TIMEOUTS: u32 = 4;

pub(super) struct IpmiDriver {
    settings: BmcSettings,
}

impl IpmiDriver {
    pub(super) fn new(settings: BmcSettings) -> Self {
        IpmiDriver { settings }
    }

    async fn call(&self, target: &BmcTarget, op: Op) -> Result<Done, BmcError> {
        if target.kind != BmcKind::Ipmi {
            return Err(BmcError::Unsupported {
                what: format!("a {} BMC through the IPMI driver", target.kind.as_str()),
            });
        }
        if target.cipher_suite != 3 {
            return Err(BmcError::Unsupported {
                what: format!("cipher suite {} (only 3 is implemented)", target.cipher_suite),
            });
        }
        let timeout = self.settings.timeout;
        let mut attempt_no = 0;
        loop {
            let attempt = Arc::new(Attempt::default());
            let error = match self.attempt(target, op, attempt.clone()).await {
                Ok(done) => return Ok(done),
                Err(e) => e,
            };
            // A cycle, reset or soft-off that may have reached the BMC is not sent twice.
            let sent = attempt.control_sent.load(Ordering::SeqCst);
            if attempt_no >= self.settings.retries || !error.retryable() || sent {
                return Err(error);
            }
            tracing::debug!(bmc = %target.address, attempt = attempt_no, error = %error, "BMC call failed, retrying");
            attempt_no += 1;
            // Short and growing: 50, 100, 200 ms..., never more than the timeout.
            let backoff = Duration::from_millis(50u64 << attempt_no.min(6)).min(timeout);
            tokio::time::sleep(backoff).await;
        }
    }

    async fn attempt(&self, target: &BmcTarget, op: Op, attempt: Arc<Attempt>) -> Result<Done, BmcError> {
        let timeout = self.settings.timeout;
        let (t, a) = (target.clone(), attempt.clone());
        // ipmi-rs is blocking and may panic on malformed packets: a panic is this call's
        // protocol error, never the appliance's crash.
        let task = tokio::task::spawn_blocking(move || {
            catch_unwind(AssertUnwindSafe(|| session::perform(&t, op, timeout, &a))).map_err(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown panic");
                BmcError::Protocol(format!("the IPMI library failed on the BMC's answer: {what}"))
            })?
        });
        match tokio::time::timeout(timeout * ATTEMPT_TIMEOUTS, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(BmcError::Protocol(format!("the BMC call's thread failed: {join}"))),
            Err(_) => {
                // The thread finishes on its own (its socket reads are bounded); it sends no
                // further command once it sees this.
                attempt.abandoned.store(true, Ordering::SeqCst);
                Err(BmcError::Unreachable {
                    address: format!("{}:{}", target.address, target.port),
                    detail: format!("the session did not complete within {:?}", timeout * ATTEMPT_TIMEOUTS),
                })
            }
        }
    }
}

impl Bmc for IpmiDriver {
    fn power_status<'a>(&'a self, t: &'a BmcTarget) -> BoxFuture<'a, Result<PowerState, BmcError>> {
        Box::pin(async move {
            match self.call(t, Op::Status).await? {
                Done::Status(s) => Ok(s),
                Done::Ok => Err(BmcError::Protocol("no power state in the answer".into())),
            }
        })
    }

    fn power<'a>(&'a self, t: &'a BmcTarget, action: PowerAction) -> BoxFuture<'a, Result<(), BmcError>> {
        Box::pin(async move { self.call(t, Op::Power(action)).await.map(|_| ()) })
    }

    fn set_boot<'a>(&'a self, t: &'a BmcTarget, boot: BootOverride) -> BoxFuture<'a, Result<(), BmcError>> {
        Box::pin(async move { self.call(t, Op::Boot(boot)).await.map(|_| ()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn target(port: u16) -> BmcTarget {
        BmcTarget {
            kind: BmcKind::Ipmi,
            address: "127.0.0.1".into(),
            port,
            username: "admin".into(),
            password: Secret::new("pw".into()),
            cipher_suite: 3,
        }
    }

    #[tokio::test]
    async fn other_cipher_suites_and_kinds_are_refused_without_traffic() {
        let d = IpmiDriver::new(BmcSettings::default());
        let e = d.power_status(&BmcTarget { cipher_suite: 17, ..target(623) }).await.expect_err("suite 17");
        assert_eq!(e.code(), "BMC_UNSUPPORTED");
        let e = d.power_status(&BmcTarget { kind: BmcKind::Redfish, ..target(623) }).await.expect_err("redfish");
        assert_eq!(e.code(), "BMC_UNSUPPORTED");
    }

    /// A port nothing listens on (loopback answers ICMP port unreachable): every attempt fails
    /// at once, so the call returns after the retries' backoff only.
    #[tokio::test]
    async fn a_closed_port_is_unreachable_after_the_retries() {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("port").port();
        let d = IpmiDriver::new(BmcSettings { timeout: Duration::from_millis(500), retries: 2 });
        let started = std::time::Instant::now();
        let e = d.power_status(&target(port)).await.expect_err("nothing there");
        assert_eq!(e.code(), "BMC_UNREACHABLE", "{e}");
        assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    }

    /// A "BMC" that answers the presence ping with garbage: a protocol error, not a crash.
    #[tokio::test]
    async fn garbage_answers_are_protocol_errors() {
        let bmc = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = bmc.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok((_, from)) = bmc.recv_from(&mut buf) {
                let _ = bmc.send_to(&[0x06, 0x00, 0xFF, 0x06, 0xde, 0xad], from);
            }
        });
        let d = IpmiDriver::new(BmcSettings { timeout: Duration::from_millis(300), retries: 1 });
        let e = d.power_status(&target(port)).await.expect_err("garbage");
        assert_eq!(e.code(), "BMC_PROTOCOL_ERROR", "{e}");
    }
}

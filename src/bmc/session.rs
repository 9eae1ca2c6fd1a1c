//! One RMCP+ session over ipmi-rs, blocking (callers run it on the blocking pool): open with cipher
//! suite 3, raise the privilege to Administrator, exchange commands, close. ipmi-rs errors are
//! mapped here to `BmcError`, once.
//!
//! Closing: ipmi-rs 0.6 neither closes its sessions nor exposes the BMC's session ID that Close
//! Session needs (ipmi_sim refuses the spec's "ID 0 + handle" form). Sessions left open hold one
//! of the BMC's few slots until its timeout (ipmi_sim: 30 s; real BMCs often have only 4-16
//! slots), so the ID is read from the connection's `Debug` text, the one place ipmi-rs shows it;
//! the scan stops formatting right after it, before the key material. If a later ipmi-rs changes
//! that text, sessions are no longer closed: `tests/bmc.rs` counts the BMC's sessions to catch it.

use std::fmt::{self, Write};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ipmi_rs::connection::{IpmiCommand, IpmiConnection, LogicalUnit, Message, Request, RequestTargetAddress};
use ipmi_rs::rmcp::{
    ActivationError, ParseSessionResponseError, RakpMessage2ErrorStatusCode, RakpMessage2ParseError,
    RakpMessage4ErrorStatusCode, RakpMessage4ParseError, Rmcp, RmcpIpmiError, RmcpIpmiReceiveError, RmcpIpmiSendError,
    V2_0ActivationError, V2_0WriteError,
};

use super::chassis::{ChassisControl, CloseSession, GetChassisStatus, SetBootFlags, SetSessionPrivilegeAdministrator};
use super::{BmcError, BmcTarget, BootOverride, PowerAction, PowerState};

/// What one call asks of the BMC.
#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Status,
    Power(PowerAction),
    Boot(BootOverride),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Done {
    Status(PowerState),
    Ok,
}

/// Shared between one attempt's blocking thread and the caller waiting for it.
#[derive(Debug, Default)]
pub(super) struct Attempt {
    /// Set by the caller when it gave up on this attempt: send nothing more.
    pub abandoned: AtomicBool,
    /// Set just before a command that must not be repeated (cycle, reset, soft) goes out.
    pub control_sent: AtomicBool,
}

/// Opens a session, carries out `op`, closes the session.
pub(super) fn perform(target: &BmcTarget, op: Op, timeout: Duration, attempt: &Attempt) -> Result<Done, BmcError> {
    let mut session = Session::open(target, timeout)?;
    let result = session.run(op, attempt);
    session.close();
    result
}

struct Session {
    rmcp: Rmcp,
    /// The BMC's ID of this session, for Close Session (see the module comment).
    id: Option<u32>,
    address: String,
    timeout: Duration,
}

impl Session {
    fn open(target: &BmcTarget, timeout: Duration) -> Result<Session, BmcError> {
        let address = format!("{}:{}", target.address, target.port);
        let user = target.username.as_str();
        let password = target.password.expose().as_bytes();
        // ipmi-rs would silently log in as the null user with a name it cannot send.
        if user.len() > 16 || !user.bytes().all(|b| b.is_ascii() && b != 0) {
            return Err(BmcError::AuthFailed { address, detail: "user names are at most 16 ASCII characters".into() });
        }
        if password.len() > 20 {
            return Err(BmcError::AuthFailed { address, detail: "IPMI passwords are at most 20 bytes".into() });
        }
        let mut rmcp = Rmcp::new((target.address.as_str(), target.port), timeout)
            .map_err(|e| BmcError::Unreachable { address: address.clone(), detail: format!("cannot resolve: {e}") })?;
        rmcp.activate(true, Some(user), Some(password)).map_err(|e| activation_error(&address, timeout, e))?;
        let seen = SessionDebug::scan(&rmcp);
        if seen.ipmi15 {
            return Err(BmcError::Unsupported { what: format!("{address} offers only IPMI 1.5, not RMCP+") });
        }
        let mut session = Session { rmcp, id: seen.id, address, timeout };
        if let Err(e) = session.exchange("Set Session Privilege Level", SetSessionPrivilegeAdministrator) {
            let e = match e {
                // 0x80 "requested level not available for this user", 0x81 "exceeds the user's
                // or channel's limit", 0xD4: the account may not administer the BMC.
                BmcError::Command { completion_code: cc @ (0x80 | 0x81 | 0xD4), .. } => BmcError::AuthFailed {
                    address: session.address.clone(),
                    detail: format!("the user may not act as Administrator (completion code 0x{cc:02X})"),
                },
                other => other,
            };
            session.close();
            return Err(e);
        }
        Ok(session)
    }

    fn run(&mut self, op: Op, attempt: &Attempt) -> Result<Done, BmcError> {
        match op {
            Op::Status => Ok(Done::Status(self.exchange("Get Chassis Status", GetChassisStatus)?)),
            Op::Boot(boot) => {
                self.exchange("Set System Boot Options (boot flags)", SetBootFlags(boot))?;
                Ok(Done::Ok)
            }
            Op::Power(action) => {
                if attempt.abandoned.load(Ordering::SeqCst) {
                    return Err(BmcError::Unreachable { address: self.address.clone(), detail: "abandoned".into() });
                }
                let target = match action {
                    PowerAction::On => Some(PowerState::On),
                    PowerAction::Off | PowerAction::Soft => Some(PowerState::Off),
                    PowerAction::Cycle | PowerAction::Reset => None,
                };
                if matches!(action, PowerAction::Soft | PowerAction::Cycle | PowerAction::Reset) {
                    attempt.control_sent.store(true, Ordering::SeqCst);
                }
                let what = format!("Chassis Control ({})", action.as_str());
                match self.exchange(&what, ChassisControl(action)) {
                    Ok(()) => Ok(Done::Ok),
                    // Most BMCs take "on" when on and "off" when off; some refuse (0xD5 "not in
                    // present state", 0xCC): asking first would cost every call a round trip.
                    Err(e @ BmcError::Command { .. }) => match target {
                        Some(t) if self.exchange("Get Chassis Status", GetChassisStatus)? == t => Ok(Done::Ok),
                        _ => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Sends `cmd` and parses its answer; a completion code other than 0 is `BmcError::Command`
    /// (0xC1 "invalid command": `Unsupported`).
    fn exchange<C: IpmiCommand>(&mut self, what: &str, cmd: C) -> Result<C::Output, BmcError> {
        let message: Message = cmd.into();
        let (netfn, code) = (message.netfn(), message.cmd());
        let mut request = Request::new(message, RequestTargetAddress::Bmc(LogicalUnit::Zero));
        let response = self.rmcp.send_recv(&mut request).map_err(|e| self.connection_error(what, e))?;
        if response.netfn_raw() != netfn.response_value() || response.cmd() != code {
            return Err(BmcError::Protocol(format!(
                "{what}: answer is for netfn 0x{:02X} command 0x{:02X}",
                response.netfn_raw(),
                response.cmd()
            )));
        }
        match response.cc() {
            0 => C::parse_success_response(response.data())
                .map_err(|_| BmcError::Protocol(format!("{what}: malformed answer {:02X?}", response.data()))),
            0xC1 => Err(BmcError::Unsupported { what: format!("{what} (the BMC does not know the command)") }),
            cc => Err(BmcError::Command { what: what.to_string(), completion_code: cc }),
        }
    }

    /// Sends Close Session and does not wait for the answer: the call's work is done, and a lost
    /// close only costs the BMC a slot until its session timeout. ipmi-rs panics on a failed send;
    /// that must not turn a finished call into an error.
    fn close(mut self) {
        let Some(id) = self.id else { return };
        let mut request = Request::new(CloseSession(id).into(), RequestTargetAddress::Bmc(LogicalUnit::Zero));
        let rmcp = &mut self.rmcp;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rmcp.send(&mut request)));
    }

    fn connection_error(&self, what: &str, e: RmcpIpmiError) -> BmcError {
        match e {
            RmcpIpmiError::Receive(RmcpIpmiReceiveError::Io(io))
            | RmcpIpmiError::Send(RmcpIpmiSendError::V2_0(V2_0WriteError::Io(io))) => {
                io_error(&self.address, self.timeout, what, &io)
            }
            other => BmcError::Protocol(format!("{what}: {other:?}")),
        }
    }
}

/// A socket error while waiting for `what`: silence, or ICMP "port unreachable" (nothing
/// listens), or a network error.
fn io_error(address: &str, timeout: Duration, what: &str, e: &io::Error) -> BmcError {
    let detail = match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!("no answer to {what} within {timeout:?}"),
        io::ErrorKind::ConnectionRefused => format!("nothing listens there ({what}: ICMP port unreachable)"),
        _ => format!("{what}: {e}"),
    };
    BmcError::Unreachable { address: address.to_string(), detail }
}

fn activation_error(address: &str, timeout: Duration, e: ActivationError) -> BmcError {
    let auth = |detail: &str| BmcError::AuthFailed { address: address.to_string(), detail: detail.to_string() };
    match e {
        ActivationError::BindSocket(io) => io_error(address, timeout, "binding a UDP socket", &io),
        ActivationError::PingSend(io) | ActivationError::PongReceive(io) => {
            io_error(address, timeout, "the RMCP presence ping", &io)
        }
        ActivationError::IpmiNotSupported => {
            BmcError::Unsupported { what: format!("{address} answers RMCP but does not offer IPMI") }
        }
        ActivationError::NoSupportedIpmiLANVersions | ActivationError::V1_5(_) => {
            BmcError::Unsupported { what: format!("{address} offers only IPMI 1.5, not RMCP+") }
        }
        ActivationError::GetChannelAuthenticationCapabilities(ipmi_rs::IpmiError::Connection(
            RmcpIpmiError::Receive(RmcpIpmiReceiveError::Io(io)),
        )) => io_error(address, timeout, "Get Channel Authentication Capabilities", &io),
        ActivationError::V2_0(e) => match e {
            V2_0ActivationError::Io(io) => io_error(address, timeout, "opening the session", &io),
            V2_0ActivationError::OpenSessionRequestSend(V2_0WriteError::Io(io))
            | V2_0ActivationError::SendRakpMessage1(V2_0WriteError::Io(io))
            | V2_0ActivationError::RakpMessage3Send(V2_0WriteError::Io(io))
            | V2_0ActivationError::OpenSessionResponseReceive(RmcpIpmiReceiveError::Io(io))
            | V2_0ActivationError::RakpMessage2Receive(RmcpIpmiReceiveError::Io(io))
            | V2_0ActivationError::RakpMessage4Receive(RmcpIpmiReceiveError::Io(io)) => {
                io_error(address, timeout, "opening the RMCP+ session", &io)
            }
            V2_0ActivationError::OpenSessionResponseParse(ParseSessionResponseError::HaveErrorCode(status)) => {
                // ipmi-rs does not export the status type, only its `Debug` names.
                let code = match status {
                    Ok(s) => format!("{s:?}"),
                    Err(raw) => format!("0x{raw:02X}"),
                };
                match code.as_str() {
                    "CommonRakp(InsufficientResourcesForSessionCreation)" => {
                        BmcError::Protocol(format!("{address} has no free session slot (RMCP+ status {code})"))
                    }
                    "InvalidRole" => auth(&format!("Administrator role refused (RMCP+ status {code})")),
                    _ if code.contains("Algorithm") || code.starts_with("NoMatching") => BmcError::Unsupported {
                        what: format!("cipher suite 3 on {address} (open session refused: {code})"),
                    },
                    _ => BmcError::Protocol(format!("{address} refused to open a session (status {code})")),
                }
            }
            V2_0ActivationError::RakpMessage2Parse(RakpMessage2ParseError::ErrorStatusCode(status)) => {
                // The codes shared by all RAKP messages are a type ipmi-rs does not export.
                let common = match status {
                    RakpMessage2ErrorStatusCode::Common(c) => format!("{c:?}"),
                    _ => String::new(),
                };
                match status {
                    RakpMessage2ErrorStatusCode::InsufficientResourcesToCreateSessionAtRequestedRole => {
                        BmcError::Protocol(format!("{address} has no free session slot (RAKP 2: {status:?})"))
                    }
                    _ if common == "InsufficientResourcesForSessionCreation" => {
                        BmcError::Protocol(format!("{address} has no free session slot (RAKP 2: {status:?})"))
                    }
                    // ipmi_sim answers an unknown user with "illegal parameter"; the spec's code
                    // is "unauthorized name".
                    RakpMessage2ErrorStatusCode::UnauthorizedName | RakpMessage2ErrorStatusCode::InvalidNameLength => {
                        auth(&format!("unknown user name (RAKP 2: {status:?})"))
                    }
                    _ if common == "IllegalOrUnrecognizedParameter" => {
                        auth(&format!("unknown user name (RAKP 2: {status:?})"))
                    }
                    RakpMessage2ErrorStatusCode::InvalidRole
                    | RakpMessage2ErrorStatusCode::UnauthorizedRoleOrPrivilegeLevelRequested => {
                        auth(&format!("the user may not act as Administrator (RAKP 2: {status:?})"))
                    }
                    other => BmcError::Protocol(format!("RAKP 2 from {address}: {other:?}")),
                }
            }
            V2_0ActivationError::ServerAuthenticationFailed => {
                auth("wrong password (the BMC's RAKP 2 key exchange code does not match)")
            }
            V2_0ActivationError::RakpMessage4Parse(RakpMessage4ParseError::ErrorStatusCode(
                RakpMessage4ErrorStatusCode::InvalidIntegrityCheckValue,
            ))
            | V2_0ActivationError::RakpMessage4InvalidIntegrityCheckValue => {
                auth("RAKP 4 integrity check failed (wrong password, or the BMC has a key Kg set)")
            }
            other => BmcError::Protocol(format!("opening a session with {address}: {other:?}")),
        },
        other => BmcError::Protocol(format!("opening a session with {address}: {other:?}")),
    }
}

/// What `Rmcp`'s `Debug` text says about its active session (see the module comment).
#[derive(Debug, Default, PartialEq, Eq)]
struct SessionDebug {
    id: Option<u32>,
    ipmi15: bool,
}

impl SessionDebug {
    fn scan(rmcp: &Rmcp) -> SessionDebug {
        let mut scan = DebugScan::default();
        // The scan returns an error to stop formatting once it has the ID.
        let _ = write!(scan, "{rmcp:?}");
        scan.parse()
    }
}

/// A `fmt::Write` that keeps the text up to the first `session_id: <digits>` and then refuses
/// more, so the rest (the session's keys) is never formatted.
#[derive(Default)]
struct DebugScan {
    text: String,
    done: bool,
}

/// Longer than any `Rmcp` text before the session ID (its 1 KiB buffer prints as ~4 KiB).
const SCAN_LIMIT: usize = 64 * 1024;
const ID_FIELD: &str = "session_id: ";

impl DebugScan {
    fn parse(&self) -> SessionDebug {
        let ipmi15 = self.text.contains("V1_5(");
        let id = self.id_text().and_then(|digits| digits.parse().ok());
        SessionDebug { id, ipmi15 }
    }

    /// The digits after the first `session_id: ` that is a whole field name, if they are complete.
    fn id_text(&self) -> Option<&str> {
        let mut from = 0;
        while let Some(i) = self.text[from..].find(ID_FIELD) {
            let at = from + i;
            let whole_name = self.text[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let rest = &self.text[at + ID_FIELD.len()..];
            let end = rest.find(|c: char| !c.is_ascii_digit())?;
            if whole_name && end > 0 {
                return Some(&rest[..end]);
            }
            from = at + ID_FIELD.len();
        }
        None
    }
}

impl Write for DebugScan {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.done || self.text.len() > SCAN_LIMIT {
            return Err(fmt::Error);
        }
        self.text.push_str(s);
        if self.id_text().is_some() {
            self.done = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&str]) -> (SessionDebug, String) {
        let mut s = DebugScan::default();
        for p in pieces {
            if s.write_str(p).is_err() {
                break;
            }
        }
        (s.parse(), s.text)
    }

    #[test]
    fn the_session_id_is_read_and_nothing_after_it_is_formatted() {
        let (seen, text) = scan(&[
            "Rmcp { active_state: Some(RmcpWithState(V2_0(State { socket: RmcpIpmiSocket { buffer: [1, 2] }, ",
            "session_id",
            ": ",
            "305419896",
            ", ",
            "state: CryptoState { keys: SECRET",
        ]);
        assert_eq!(seen, SessionDebug { id: Some(305_419_896), ipmi15: false });
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn other_fields_ending_in_session_id_do_not_count() {
        let (seen, _) = scan(&["X { remote_console_session_id: 7, ", "session_id: 9, more"]);
        assert_eq!(seen.id, Some(9));
    }

    #[test]
    fn an_ipmi15_session_or_a_missing_id_is_reported() {
        assert_eq!(
            scan(&["Rmcp { active_state: Some(V1_5(State { x: 1 })) }"]).0,
            SessionDebug { id: None, ipmi15: true }
        );
        assert_eq!(scan(&["Rmcp { active_state: None }"]).0, SessionDebug::default());
    }

    /// What ipmi-rs makes of an Open Session Response carrying `status`.
    fn open_session_refused(status: u8) -> ActivationError {
        // The status type is not exported; inference names it.
        let code = TryFrom::try_from(status).map_err(|()| status);
        ActivationError::V2_0(V2_0ActivationError::OpenSessionResponseParse(ParseSessionResponseError::HaveErrorCode(
            code,
        )))
    }

    #[test]
    fn socket_errors_map_to_unreachable_with_the_reason() {
        let t = Duration::from_secs(2);
        let silent = io_error("10.0.0.9:623", t, "the RMCP presence ping", &io::ErrorKind::WouldBlock.into());
        assert_eq!(silent.to_string(), "BMC 10.0.0.9:623 unreachable: no answer to the RMCP presence ping within 2s");
        let refused = io_error("10.0.0.9:623", t, "x", &io::ErrorKind::ConnectionRefused.into());
        assert_eq!(refused.code(), "BMC_UNREACHABLE");
        assert!(refused.to_string().contains("nothing listens"), "{refused}");
    }

    #[test]
    fn rakp_failures_map_to_auth_failed_and_busy_slots_are_retryable() {
        let t = Duration::from_secs(2);
        let wrong_password =
            activation_error("b:623", t, ActivationError::V2_0(V2_0ActivationError::ServerAuthenticationFailed));
        assert_eq!(wrong_password.code(), "BMC_AUTH_FAILED");
        assert!(!wrong_password.retryable());
        // What ipmi-rs makes of ipmi_sim's RAKP 2 for an unknown user (status 0x12).
        let status = RakpMessage2ErrorStatusCode::try_from(0x12).expect("a known status");
        let parsed = RakpMessage2ParseError::ErrorStatusCode(status);
        let unknown_user =
            activation_error("b:623", t, ActivationError::V2_0(V2_0ActivationError::RakpMessage2Parse(parsed)));
        assert_eq!(unknown_user.code(), "BMC_AUTH_FAILED");
        let full = activation_error("b:623", t, open_session_refused(0x01));
        assert!(full.retryable() && full.to_string().contains("no free session slot"), "{full}");
        let suite = activation_error("b:623", t, open_session_refused(0x11));
        assert_eq!(suite.code(), "BMC_UNSUPPORTED");
        let not_ipmi = activation_error("b:623", t, ActivationError::IpmiNotSupported);
        assert_eq!(not_ipmi.code(), "BMC_UNSUPPORTED");
    }
}

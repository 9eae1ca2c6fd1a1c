//! Runs one agent command over SSH `exec` and streams its lines. The agent's host key is pinned
//! (the key it enrolled with; any other is refused before authentication), the appliance
//! authenticates with its own key, and the command's stdout is parsed line by line as the agent
//! protocol's JSON. A stream that ends without an outcome line is an error, never a success.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ironbay_wire::progress::{Line, Outcome};
use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use tokio::sync::mpsc;

/// The user the appliance logs in as (the agent accepts only the appliance's key for it).
pub const USER: &str = "ironbay";
/// Longest line the appliance accepts from an agent.
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot reach the agent at {addr}: {source}")]
    Connect { addr: SocketAddr, source: russh::Error },
    #[error("the agent at {0} did not present the host key it enrolled with")]
    HostKeyMismatch(SocketAddr),
    #[error("the agent at {0} refused the appliance's key")]
    AuthRefused(SocketAddr),
    #[error("connecting to the agent at {0} timed out")]
    Timeout(SocketAddr),
    #[error("SSH error talking to the agent: {0}")]
    Protocol(#[from] russh::Error),
    #[error("the agent sent a line that is not the protocol's JSON: {0}")]
    BadLine(String),
    #[error(
        "the agent's output ended without a result line (exit status {0:?}): the command died or the connection dropped"
    )]
    NoOutcome(Option<u32>),
}

impl SshError {
    pub fn code(&self) -> &'static str {
        match self {
            SshError::Connect { .. } | SshError::Timeout(_) => "AGENT_UNREACHABLE",
            SshError::HostKeyMismatch(_) => "AGENT_HOST_KEY_MISMATCH",
            SshError::AuthRefused(_) => "AGENT_AUTH_REFUSED",
            SshError::Protocol(_) | SshError::BadLine(_) => "AGENT_PROTOCOL_ERROR",
            SshError::NoOutcome(_) => "AGENT_NO_RESULT",
        }
    }
}

/// Where an agent is and who it must be.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host_key: PublicKey,
}

struct Pinned {
    expected: PublicKey,
    mismatch: bool,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        // Only the plain key it enrolled: a certificate is not what was pinned.
        let ok = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.key_data() == self.expected.key_data(),
            russh::keys::PublicKeyOrCertificate::Certificate(_) => false,
        };
        self.mismatch = !ok;
        Ok(ok)
    }
}

/// Runs `command` on the agent; every line but the outcome goes to `lines` as it arrives (a
/// closed receiver is fine: the command still runs to its end). Returns the outcome line.
pub async fn run(
    key: Arc<PrivateKey>,
    target: &Target,
    command: &str,
    lines: Option<mpsc::Sender<Line>>,
    connect_timeout: Duration,
) -> Result<Outcome, SshError> {
    let config = Arc::new(client::Config {
        // Long commands (a zero wipe of a large disk) send progress every half second; silence
        // this long means the agent is gone.
        inactivity_timeout: Some(Duration::from_secs(120)),
        keepalive_interval: Some(Duration::from_secs(15)),
        ..Default::default()
    });
    let addr = target.addr;
    let handler = Pinned { expected: target.host_key.clone(), mismatch: false };
    let mut session = match tokio::time::timeout(connect_timeout, client::connect(config, addr, handler)).await {
        Err(_) => return Err(SshError::Timeout(addr)),
        Ok(Err(russh::Error::UnknownKey)) => return Err(SshError::HostKeyMismatch(addr)),
        Ok(Err(e)) => return Err(SshError::Connect { addr, source: e }),
        Ok(Ok(s)) => s,
    };
    let auth = session.authenticate_publickey(USER, PrivateKeyWithHashAlg::new(key, None)).await?;
    if !auth.success() {
        return Err(SshError::AuthRefused(addr));
    }
    let mut channel = session.channel_open_session().await?;
    channel.exec(true, command).await?;

    let mut buf: Vec<u8> = Vec::new();
    let mut outcome = None;
    let mut exit = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            russh::ChannelMsg::Data { data } => {
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let raw: Vec<u8> = buf.drain(..=pos).collect();
                    handle_line(&raw[..raw.len() - 1], &mut outcome, lines.as_ref()).await?;
                }
                if buf.len() > MAX_LINE {
                    return Err(SshError::BadLine(format!("a line longer than {MAX_LINE} bytes")));
                }
            }
            russh::ChannelMsg::ExtendedData { data, .. } => {
                // stderr: diagnostics, shown as log lines.
                let text = String::from_utf8_lossy(&data).trim().to_string();
                if !text.is_empty()
                    && let Some(tx) = &lines
                {
                    let _ = tx.send(Line::Log(ironbay_wire::progress::Log { log: text })).await;
                }
            }
            russh::ChannelMsg::ExitStatus { exit_status } => exit = Some(exit_status),
            _ => {}
        }
    }
    if !buf.is_empty() {
        let rest = std::mem::take(&mut buf);
        handle_line(&rest, &mut outcome, lines.as_ref()).await?;
    }
    let _ = session.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    outcome.ok_or(SshError::NoOutcome(exit))
}

async fn handle_line(
    raw: &[u8],
    outcome: &mut Option<Outcome>,
    lines: Option<&mpsc::Sender<Line>>,
) -> Result<(), SshError> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    match Line::parse(text) {
        Ok(Line::Outcome(o)) => *outcome = Some(o),
        Ok(line) => {
            if let Some(tx) = lines {
                let _ = tx.send(line).await;
            }
        }
        Err(_) => return Err(SshError::BadLine(text.chars().take(200).collect())),
    }
    Ok(())
}

//! The agent's SSH server. Public keys only, never a password: user `ironbay` with the
//! appliance's key runs agent commands (`exec`, one command per channel, JSON lines back); user
//! `root` with a rescue key an admin was given (handed over by the appliance with `rescue-key`)
//! gets a shell or runs a command. The host key is the key the agent enrolled, so the appliance
//! knows it talks to the machine that registered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironbay_wire::command::Command;
use ironbay_wire::progress::{Line, Outcome};
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Handle, Msg, Server as _, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::exec::{self, History};

pub const APPLIANCE_USER: &str = "ironbay";
pub const RESCUE_USER: &str = "root";

/// What every connection shares.
#[derive(Clone)]
pub struct Shared {
    pub appliance_key: PublicKey,
    pub rescue_keys: Arc<Mutex<Vec<PublicKey>>>,
    pub history: History,
    /// The command running now (heartbeats report it).
    pub busy: Arc<Mutex<Option<String>>>,
    /// What commands do; `None`: `exec::run` on this machine. Stand-ins (tests, benchmarks) give
    /// their own, keeping the real SSH server and history.
    pub dispatch: Option<exec::Dispatch>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Appliance,
    Rescuer,
}

struct Conn {
    shared: Shared,
    who: Who,
    /// Rescue shells' stdin, per channel.
    stdin: HashMap<ChannelId, mpsc::UnboundedSender<Vec<u8>>>,
}

struct Server(Shared);

impl russh::server::Server for Server {
    type Handler = Conn;
    fn new_client(&mut self, _: Option<SocketAddr>) -> Conn {
        Conn { shared: self.0.clone(), who: Who::Nobody, stdin: HashMap::new() }
    }
}

/// Serves SSH on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, host_key: PrivateKey, shared: Shared) -> std::io::Result<()> {
    let mut methods = MethodSet::empty();
    methods.push(MethodKind::PublicKey);
    let config = Arc::new(russh::server::Config {
        methods,
        keys: vec![host_key],
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(3600)),
        keepalive_interval: Some(Duration::from_secs(15)),
        ..Default::default()
    });
    Server(shared).run_on_socket(config, &listener).await
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

async fn finish(handle: &Handle, channel: ChannelId, status: u32) {
    let _ = handle.exit_status_request(channel, status).await;
    let _ = handle.eof(channel).await;
    let _ = handle.close(channel).await;
}

async fn send_line(handle: &Handle, channel: ChannelId, line: &Line) -> bool {
    let mut text = line.to_json();
    text.push('\n');
    handle.data(channel, text.into_bytes()).await.is_ok()
}

impl Conn {
    /// An agent command from the appliance: runs on a blocking thread, lines streamed as they come.
    fn run_command(&mut self, channel: ChannelId, text: &str, session: &mut Session) {
        let handle = session.handle();
        let shared = self.shared.clone();
        let parsed = Command::parse_exec(text);
        tokio::spawn(async move {
            let command = match parsed {
                Ok(c) => c,
                Err(e) => {
                    let o = Outcome::error("parse", "BAD_COMMAND", e.trim().to_string(), serde_json::Value::Null);
                    send_line(&handle, channel, &Line::Outcome(o)).await;
                    finish(&handle, channel, 2).await;
                    return;
                }
            };
            if let Command::RescueKey { key_type, key_base64 } = &command {
                let o = match PublicKey::from_openssh(&format!("{key_type} {key_base64}")) {
                    Ok(k) => {
                        if let Ok(mut keys) = shared.rescue_keys.lock()
                            && !keys.iter().any(|x| same_key(x, &k))
                        {
                            keys.push(k);
                        }
                        Outcome::ok("rescue-key", serde_json::json!({"accepted": true}))
                    }
                    Err(e) => Outcome::error(
                        "rescue-key",
                        "BAD_KEY",
                        format!("not a public key: {e}"),
                        serde_json::Value::Null,
                    ),
                };
                let ok = exec::succeeded(&o);
                send_line(&handle, channel, &Line::Outcome(o)).await;
                finish(&handle, channel, if ok { 0 } else { 1 }).await;
                return;
            }
            if let Ok(mut b) = shared.busy.lock() {
                *b = Some(command.name().to_string());
            }
            let (tx, mut rx) = mpsc::unbounded_channel::<Line>();
            let history = shared.history.clone();
            let cmd = command.clone();
            let dispatch = shared.dispatch.clone();
            let work = tokio::task::spawn_blocking(move || {
                let mut emit = |l: Line| {
                    let _ = tx.send(l);
                };
                match dispatch {
                    Some(d) => exec::run_with(&cmd, &history, &mut emit, &*d),
                    None => exec::run(&cmd, &history, &mut emit),
                }
            });
            // The channel may close under us (the appliance died): the command still runs to its
            // end and lands in the history; only its lines are lost.
            while let Some(line) = rx.recv().await {
                send_line(&handle, channel, &line).await;
            }
            let outcome = work.await.unwrap_or_else(|e| {
                Outcome::error(
                    command.name(),
                    "AGENT_PANIC",
                    format!("the command crashed: {e}"),
                    serde_json::Value::Null,
                )
            });
            if let Ok(mut b) = shared.busy.lock() {
                *b = None;
            }
            let ok = exec::succeeded(&outcome);
            send_line(&handle, channel, &Line::Outcome(outcome)).await;
            finish(&handle, channel, if ok { 0 } else { 1 }).await;
            if ok && shared.dispatch.is_none() && matches!(command, Command::Reboot | Command::Poweroff) {
                // Let the result reach the appliance first.
                tokio::time::sleep(Duration::from_millis(500)).await;
                exec::after(&command);
            }
        });
    }

    /// A rescue shell (`command` None) or a rescue command, over pipes.
    fn run_shell(&mut self, channel: ChannelId, command: Option<String>, session: &mut Session) {
        let handle = session.handle();
        let mut cmd = tokio::process::Command::new("/bin/sh");
        match &command {
            Some(c) => {
                cmd.arg("-c").arg(c);
            }
            None => {
                cmd.arg("-i");
            }
        }
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .env("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
            .env("HOME", "/root")
            .env("PS1", "ironbay-rescue# ");
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tokio::spawn(async move {
                    let _ = handle.extended_data(channel, 1, format!("cannot start a shell: {e}\n").into_bytes()).await;
                    finish(&handle, channel, 127).await;
                });
                return;
            }
        };
        let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        self.stdin.insert(channel, in_tx);
        let mut stdin = child.stdin.take();
        tokio::spawn(async move {
            while let Some(bytes) = in_rx.recv().await {
                let Some(s) = stdin.as_mut() else { break };
                if bytes.is_empty() {
                    stdin = None; // EOF from the client
                    continue;
                }
                if s.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        let out = child.stdout.take();
        let err = child.stderr.take();
        tokio::spawn(async move {
            let h1 = handle.clone();
            let pump_out = async move {
                if let Some(mut out) = out {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = out.read(&mut buf).await {
                        if n == 0 || h1.data(channel, buf[..n].to_vec()).await.is_err() {
                            break;
                        }
                    }
                }
            };
            let h2 = handle.clone();
            let pump_err = async move {
                if let Some(mut err) = err {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = err.read(&mut buf).await {
                        if n == 0 || h2.extended_data(channel, 1, buf[..n].to_vec()).await.is_err() {
                            break;
                        }
                    }
                }
            };
            tokio::join!(pump_out, pump_err);
            let status = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(1);
            finish(&handle, channel, u32::try_from(status).unwrap_or(1)).await;
        });
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let key = key.public_key;
        if user == APPLIANCE_USER && same_key(key, &self.shared.appliance_key) {
            self.who = Who::Appliance;
            return Ok(Auth::Accept);
        }
        let rescuer = self.shared.rescue_keys.lock().map(|keys| keys.iter().any(|k| same_key(k, key))).unwrap_or(false);
        if user == RESCUE_USER && rescuer {
            eprintln!("ironbay-agent: rescue login with {}", key.fingerprint(Default::default()));
            self.who = Who::Rescuer;
            return Ok(Auth::Accept);
        }
        Ok(Auth::reject())
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.who == Who::Nobody {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
        } else {
            reply.accept().await;
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let text = String::from_utf8_lossy(data).to_string();
        session.channel_success(channel)?;
        match self.who {
            Who::Appliance => self.run_command(channel, &text, session),
            Who::Rescuer => self.run_shell(channel, Some(text), session),
            Who::Nobody => session.close(channel)?,
        }
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        if self.who == Who::Rescuer {
            session.channel_success(channel)?;
            self.run_shell(channel, None, session);
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The rescue shell runs over pipes: accepted so `ssh` without -T works, line by line.
        session.channel_success(channel)?;
        Ok(())
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], _session: &mut Session) -> Result<(), Self::Error> {
        if let Some(tx) = self.stdin.get(&channel) {
            let _ = tx.send(data.to_vec());
        }
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        if let Some(tx) = self.stdin.get(&channel) {
            let _ = tx.send(Vec::new());
        }
        Ok(())
    }
}

//! Sending one file: `Window`, the pure state machine (RFC 1350 lock-step generalised to RFC 7440
//! windows), and `send_file`, which drives it over a `Link` (the transfer's own UDP socket, or a
//! lossy in-memory link in tests) with the retransmission timer.
//!
//! Rules it keeps:
//! - Only the timer retransmits. A duplicate ACK (one that acknowledges nothing new) is ignored,
//!   so a delayed ACK cannot double the traffic for the rest of the transfer (the "Sorcerer's
//!   Apprentice" bug, RFC 1123 §4.2.3.1).
//! - An ACK for a block inside the window that was sent (RFC 7440: the client saw a gap and
//!   acknowledges the last block it got in order) moves the window there and sends it again
//!   from the next block (go-back-N).
//! - Block numbers roll over from 65535 to 0, as tftp-hpa and iPXE expect for files of more than
//!   65535 blocks.
//! - Consecutive timeouts without progress end the transfer after `max_retries`.

use std::borrow::Cow;
use std::io;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use super::files::Content;
use super::options::Negotiated;
use super::packet::{Packet, encode_data_header};

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    SendOack,
    /// Send these blocks (1-based file block indices, not wire numbers).
    Send(RangeInclusive<u64>),
    Wait,
    Done,
}

#[derive(Debug, Clone)]
pub struct Window {
    blocks: u64,
    size: u64,
    acked: u64,
    sent: u64,
    awaiting_oack_ack: bool,
}

impl Window {
    /// A window over `len` bytes: `len / blksize + 1` blocks, the last one short (maybe empty).
    pub fn new(len: u64, blksize: u16, windowsize: u16, oack: bool) -> Window {
        Window {
            blocks: len / u64::from(blksize.max(1)) + 1,
            size: u64::from(windowsize.max(1)),
            acked: 0,
            sent: 0,
            awaiting_oack_ack: oack,
        }
    }

    pub fn start(&mut self) -> Next {
        if self.awaiting_oack_ack { Next::SendOack } else { self.advance() }
    }

    /// Blocks the client has acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    fn advance(&mut self) -> Next {
        if self.acked >= self.blocks {
            return Next::Done;
        }
        let first = self.acked + 1;
        self.sent = (self.acked + self.size).min(self.blocks);
        Next::Send(first..=self.sent)
    }

    pub fn on_ack(&mut self, wire: u16) -> Next {
        if self.awaiting_oack_ack {
            if wire != 0 {
                return Next::Wait;
            }
            self.awaiting_oack_ack = false;
            return self.advance();
        }
        // Which sent block this wire number names: at most 65535 blocks are ever outstanding.
        let delta = u64::from(wire.wrapping_sub(self.acked as u16));
        if delta == 0 || delta > self.sent - self.acked {
            return Next::Wait;
        }
        self.acked += delta;
        self.advance()
    }

    pub fn on_timeout(&mut self) -> Next {
        if self.awaiting_oack_ack {
            Next::SendOack
        } else if self.acked >= self.blocks {
            Next::Done
        } else {
            Next::Send(self.acked + 1..=self.sent)
        }
    }
}

/// One peer's datagrams: the transfer's connected UDP socket, or a test double.
pub trait Link {
    fn send(&mut self, packet: &[u8]) -> impl std::future::Future<Output = io::Result<()>> + Send;
    fn recv(&mut self, buf: &mut [u8]) -> impl std::future::Future<Output = io::Result<usize>> + Send;
}

impl Link for tokio::net::UdpSocket {
    async fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        tokio::net::UdpSocket::send(self, packet).await.map(|_| ())
    }
    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::net::UdpSocket::recv(self, buf).await
    }
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Complete,
    /// No progress after this many retransmissions.
    TimedOut(u32),
    /// The client sent an ERROR packet.
    ClientError(u16, String),
    /// The socket failed (ICMP port unreachable: the client went away).
    Io(String),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub end: End,
    /// Bytes the client acknowledged.
    pub bytes: u64,
    pub retransmissions: u32,
    pub elapsed: Duration,
}

/// Disk-backed content is read in chunks of at most this many bytes per blocking call.
const DISK_CHUNK: usize = 1024 * 1024;

pub async fn send_file<L: Link>(link: &mut L, content: &Content, n: &Negotiated, max_retries: u32) -> Outcome {
    let started = Instant::now();
    let mut window = Window::new(content.len(), n.blksize, n.windowsize, !n.oack.is_empty());
    let mut retries = 0u32;
    let mut retransmissions = 0u32;
    let mut next = window.start();
    let mut deadline = tokio::time::Instant::now();
    let mut packet = Vec::with_capacity(usize::from(n.blksize) + 4);
    let mut buf = vec![0u8; 1024];
    let end = loop {
        match std::mem::replace(&mut next, Next::Wait) {
            Next::Done => break End::Complete,
            Next::Wait => {}
            Next::SendOack => {
                if let Err(e) = link.send(&Packet::Oack(n.oack.clone()).to_bytes()).await {
                    break End::Io(e.to_string());
                }
                deadline = tokio::time::Instant::now() + n.timeout;
            }
            Next::Send(range) => {
                if let Err(e) = send_blocks(link, content, n.blksize, range, &mut packet).await {
                    break End::Io(e.to_string());
                }
                deadline = tokio::time::Instant::now() + n.timeout;
            }
        }
        match tokio::time::timeout_at(deadline, link.recv(&mut buf)).await {
            Err(_elapsed) => {
                if retries >= max_retries {
                    break End::TimedOut(retries);
                }
                retries += 1;
                retransmissions += 1;
                next = window.on_timeout();
            }
            Ok(Err(e)) => break End::Io(e.to_string()),
            Ok(Ok(len)) => match Packet::parse(&buf[..len]) {
                Ok(Packet::Ack(block)) => {
                    next = window.on_ack(block);
                    // Anything but `Wait` means the ACK acknowledged something new.
                    if next != Next::Wait {
                        retries = 0;
                    }
                }
                Ok(Packet::Error { code, message }) => break End::ClientError(code.code(), message),
                // Anything else from the client's port is noise for a sender: keep the timer.
                _ => {}
            },
        }
    };
    let bytes = (window.acked() * u64::from(n.blksize)).min(content.len());
    Outcome { end, bytes, retransmissions, elapsed: started.elapsed() }
}

async fn send_blocks<L: Link>(
    link: &mut L,
    content: &Content,
    blksize: u16,
    range: RangeInclusive<u64>,
    packet: &mut Vec<u8>,
) -> io::Result<()> {
    let blk = u64::from(blksize);
    let per_chunk = (DISK_CHUNK / usize::from(blksize)).max(1) as u64;
    let mut first = *range.start();
    while first <= *range.end() {
        let last = (*range.end()).min(first + per_chunk - 1);
        let offset = (first - 1) * blk;
        let span = usize::try_from((last - first + 1) * blk).unwrap_or(usize::MAX);
        let data = fetch(content, offset, span).await?;
        for (i, block) in (first..=last).enumerate() {
            let start = (i * usize::from(blksize)).min(data.len());
            let end = (start + usize::from(blksize)).min(data.len());
            packet.clear();
            encode_data_header(block as u16, packet);
            packet.extend_from_slice(&data[start..end]);
            link.send(packet).await?;
        }
        first = last + 1;
    }
    Ok(())
}

/// `n` bytes at `offset`: borrowed from memory, or read from disk off the async runtime.
async fn fetch(content: &Content, offset: u64, n: usize) -> io::Result<Cow<'_, [u8]>> {
    match content {
        Content::Memory(bytes) => {
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
            Ok(Cow::Borrowed(&bytes[start..start.saturating_add(n).min(bytes.len())]))
        }
        Content::Disk { .. } => {
            let c = content.clone();
            tokio::task::spawn_blocking(move || {
                let mut v = Vec::new();
                c.read_into(offset, n, &mut v).map(|()| v)
            })
            .await
            .map_err(io::Error::other)?
            .map(Cow::Owned)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    #[test]
    fn lock_step_without_options() {
        let mut w = Window::new(1000, 512, 1, false);
        assert_eq!(w.start(), Next::Send(1..=1));
        assert_eq!(w.on_ack(1), Next::Send(2..=2));
        assert_eq!(w.on_ack(2), Next::Done);
    }

    #[test]
    fn a_duplicate_ack_never_triggers_a_retransmission() {
        let mut w = Window::new(10 * 512, 512, 1, false);
        w.start();
        assert_eq!(w.on_ack(1), Next::Send(2..=2));
        // The client's ACK 1 arrives twice (it timed out too): the Sorcerer's Apprentice would
        // send block 2 again here, and from then on every block twice.
        assert_eq!(w.on_ack(1), Next::Wait);
        assert_eq!(w.on_ack(0), Next::Wait);
        assert_eq!(w.on_ack(7), Next::Wait, "an ACK for a block never sent is ignored");
        assert_eq!(w.on_timeout(), Next::Send(2..=2), "only the timer retransmits");
    }

    #[test]
    fn oack_then_windows_with_a_partial_ack() {
        let mut w = Window::new(20 * 100 + 5, 100, 8, true);
        assert_eq!(w.start(), Next::SendOack);
        assert_eq!(w.on_ack(1), Next::Wait);
        assert_eq!(w.on_timeout(), Next::SendOack);
        assert_eq!(w.on_ack(0), Next::Send(1..=8));
        // Block 4 was lost: the client acknowledges 3, the window restarts at 4.
        assert_eq!(w.on_ack(3), Next::Send(4..=11));
        assert_eq!(w.on_ack(11), Next::Send(12..=19));
        assert_eq!(w.on_ack(19), Next::Send(20..=21));
        assert_eq!(w.on_timeout(), Next::Send(20..=21));
        assert_eq!(w.on_ack(21), Next::Done);
    }

    #[test]
    fn block_numbers_roll_over() {
        let mut w = Window::new(70_000 * 8, 8, 4, false);
        w.start();
        let mut acked = 0u64;
        while acked < 65_534 {
            acked += 4;
            w.on_ack(acked as u16);
        }
        assert_eq!(w.acked(), 65_536);
        // Block 65536 went out as wire number 0 and 65537 as 1.
        assert_eq!(w.on_ack(1), Next::Send(65_538..=65_541));
        assert_eq!(w.acked(), 65_537);
    }

    /// An in-memory link that loses a share of the datagrams, decided by a seeded generator.
    struct Lossy {
        tx: mpsc::UnboundedSender<Vec<u8>>,
        rx: mpsc::UnboundedReceiver<Vec<u8>>,
        seed: u64,
        loss_percent: u64,
        sent: Arc<std::sync::atomic::AtomicU64>,
    }

    impl Lossy {
        fn drop_this(&mut self) -> bool {
            self.seed = self.seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.seed >> 33) % 100 < self.loss_percent
        }
    }

    impl Link for Lossy {
        async fn send(&mut self, packet: &[u8]) -> io::Result<()> {
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if !self.drop_this() {
                let _ = self.tx.send(packet.to_vec());
            }
            Ok(())
        }
        async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let p = self.rx.recv().await.ok_or_else(|| io::Error::other("closed"))?;
            let n = p.len().min(buf.len());
            buf[..n].copy_from_slice(&p[..n]);
            Ok(n)
        }
    }

    fn lossy_pair(loss_percent: u64) -> (Lossy, Lossy) {
        let (a_tx, b_rx) = mpsc::unbounded_channel();
        let (b_tx, a_rx) = mpsc::unbounded_channel();
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        (
            Lossy { tx: a_tx, rx: a_rx, seed: 7, loss_percent, sent: sent.clone() },
            Lossy { tx: b_tx, rx: b_rx, seed: 11, loss_percent, sent: Arc::new(Default::default()) },
        )
    }

    /// An RFC 7440 receiver: acknowledges the end of each window, and on a gap or its own timeout
    /// the last block it has in order.
    async fn receive(link: &mut Lossy, blksize: usize, windowsize: u16) -> Vec<u8> {
        let mut file = Vec::new();
        let mut expected: u16 = 1;
        let mut in_window = 0u16;
        let mut buf = vec![0u8; blksize + 4];
        // The OACK comes first.
        loop {
            match tokio::time::timeout(Duration::from_millis(30), link.recv(&mut buf)).await {
                Ok(Ok(n)) if matches!(Packet::parse(&buf[..n]), Ok(Packet::Oack(_))) => break,
                _ => {}
            }
            link.send(&Packet::Ack(0).to_bytes()).await.unwrap();
        }
        link.send(&Packet::Ack(0).to_bytes()).await.unwrap();
        loop {
            let got = tokio::time::timeout(Duration::from_millis(30), link.recv(&mut buf)).await;
            let ack = match got {
                Ok(Ok(n)) => match Packet::parse(&buf[..n]) {
                    Ok(Packet::Data { block, data }) if block == expected => {
                        file.extend_from_slice(&data);
                        expected = expected.wrapping_add(1);
                        in_window += 1;
                        if data.len() < blksize {
                            // The last block; a real client dallies to re-ACK a retransmission.
                            for _ in 0..3 {
                                link.send(&Packet::Ack(block).to_bytes()).await.unwrap();
                            }
                            return file;
                        }
                        in_window == windowsize
                    }
                    Ok(Packet::Data { .. }) => true,
                    _ => false,
                },
                _ => true,
            };
            if ack {
                in_window = 0;
                link.send(&Packet::Ack(expected.wrapping_sub(1)).to_bytes()).await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_windowed_transfer_survives_twenty_percent_loss_both_ways() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let content = Content::Memory(data.clone().into());
        let n = Negotiated {
            blksize: 512,
            windowsize: 8,
            timeout: Duration::from_millis(20),
            oack: vec![("windowsize".into(), "8".into())],
        };
        let (mut server, mut client) = lossy_pair(20);
        let sent = server.sent.clone();
        let (outcome, received) = tokio::join!(send_file(&mut server, &content, &n, 50), receive(&mut client, 512, 8));
        assert_eq!(outcome.end, End::Complete);
        assert_eq!(outcome.bytes, data.len() as u64);
        assert!(received == data, "the file arrives byte-identical");
        assert!(outcome.retransmissions > 0, "the loss was felt");
        // Go-back-N costs resends, but nothing like the doubling of the Sorcerer's Apprentice.
        let blocks = data.len() as u64 / 512 + 1;
        assert!(sent.load(std::sync::atomic::Ordering::Relaxed) < blocks * 4, "{sent:?} packets for {blocks} blocks");
    }

    #[tokio::test]
    async fn a_silent_client_ends_the_transfer_after_the_retries() {
        let content = Content::Memory(vec![1u8; 2000].into());
        let n = Negotiated { blksize: 512, windowsize: 1, timeout: Duration::from_millis(5), oack: vec![] };
        let (mut server, _client) = lossy_pair(100);
        let outcome = send_file(&mut server, &content, &n, 3).await;
        assert_eq!(outcome.end, End::TimedOut(3));
        assert_eq!((outcome.bytes, outcome.retransmissions), (0, 3));
    }
}

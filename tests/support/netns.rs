//! Reaching a server inside a network namespace from the test process: a loopback TCP port in the
//! test's namespace relays every connection to an address inside the lab namespace. A thread that
//! has joined the namespace (`setns`) opens the inner connections; the sockets it creates stay
//! there, whichever thread then uses them. The same way, `bind_tcp` gives the test a listener
//! inside the namespace, for VMs in the lab to call.
#![allow(dead_code)]

use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;

type ConnectRequest = (SocketAddr, mpsc::Sender<io::Result<TcpStream>>);

/// Moves the calling thread (only it) into the network namespace `handle` names.
fn join_netns(handle: &File) -> io::Result<()> {
    // SAFETY: setns on this thread only, with a namespace file descriptor the caller holds open.
    if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A connector thread living in namespace `ns`: send it an address, get back a connected stream.
fn connector(ns: &str) -> io::Result<mpsc::Sender<ConnectRequest>> {
    let handle = File::open(format!("/run/netns/{ns}"))?;
    let (tx, rx) = mpsc::channel::<ConnectRequest>();
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::spawn(move || {
        let joined = join_netns(&handle);
        let failed = joined.is_err();
        let _ = ready_tx.send(joined);
        if failed {
            return;
        }
        for (addr, reply) in rx {
            let _ = reply.send(TcpStream::connect(addr));
        }
    });
    ready_rx.recv().map_err(|_| io::Error::other("connector thread died"))??;
    Ok(tx)
}

/// A TCP listener bound to `addr` inside namespace `ns` (port 0: any free port; see
/// `local_addr`). A short-lived thread joins the namespace only to bind: the socket stays there,
/// and the caller accepts from any thread, in its own namespace.
pub fn bind_tcp(ns: &str, addr: SocketAddr) -> io::Result<TcpListener> {
    let handle = File::open(format!("/run/netns/{ns}"))?;
    thread::spawn(move || {
        join_netns(&handle)?;
        TcpListener::bind(addr)
    })
    .join()
    .map_err(|_| io::Error::other("bind thread panicked"))?
}

/// Starts relaying `127.0.0.1:<port>` (returned) to `target` inside `ns`, for the rest of the
/// test process's life.
pub fn forward_tcp(ns: &str, target: SocketAddr) -> io::Result<SocketAddr> {
    let connect = connector(ns)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let local = listener.local_addr()?;
    thread::spawn(move || {
        for outer in listener.incoming().map_while(Result::ok) {
            let (tx, rx) = mpsc::channel();
            if connect.send((target, tx)).is_err() {
                return;
            }
            let Ok(Ok(inner)) = rx.recv() else { continue };
            relay(outer, inner);
        }
    });
    Ok(local)
}

fn relay(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else { return };
    thread::spawn(move || pipe(a, b2));
    thread::spawn(move || pipe(b, a2));
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

//! `ironbay-agent`: at boot (`ironbay-agent boot`, from the initramfs's /init) it brings up the
//! network, enrolls, registers and serves SSH; run by hand, each command works locally.

fn main() {
    println!("ironbay-agent {}", env!("CARGO_PKG_VERSION"));
}

//! `talos-standin node`: what a lab VM runs instead of Talos (TEST STAND-IN, not Talos). /init
//! has mounted /proc, /sys and /dev, loaded the NIC and disk drivers and, on a PXE boot, taken a
//! DHCP lease; stdout/stderr go to the console.
//!
//! - PXE boot: `talos.config=<url>` from /proc/cmdline (an empty `uuid=` query value, or
//!   `${uuid}` in one, filled with the SMBIOS UUID as Talos does), fetched every 2 s until a 200
//!   (gzip accepted), then "installed": the installer image `machine.install.image` is resolved
//!   through `machine.registries.mirrors.<registry>.endpoints[0]` to
//!   `<endpoint>/talos-standin-installer.img` (a raw disk image), written to
//!   `machine.install.disk`, followed by the config record in the disk's last MiB; then reboot.
//! - Installed boot (`talos.standin.installed` on the kernel command line): the config record is
//!   read back from a disk, the static address, routes and hostname set as the config says, and
//!   the apid stand-in serves on 0.0.0.0:50000.
//!
//! Console lines the lab tests wait for: `TALOS-STANDIN-CONFIG <hostname> <type>`,
//! `TALOS-STANDIN-INSTALLED <disk>`, `TALOS-STANDIN-UP <ip>`.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use tokio::io::AsyncWriteExt as _;

use crate::apid::{self, PreconditionFailures, ServeOptions};
use crate::config::{Interface, LinkSelector, MachineConfig};

/// Size of the area at the end of the disk that holds the config record.
pub const RECORD_AREA: u64 = 1 << 20;
/// First line of the config record.
pub const RECORD_MAGIC: &str = "TALOS-STANDIN-CONFIG-V1\n";
/// The file the installer image is fetched as, under the mirror endpoint.
pub const INSTALLER_FILE: &str = "talos-standin-installer.img";

/// What the stand-in reads from the kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    pub installed: bool,
    pub config_url: Option<String>,
    pub precondition_failures: Option<PreconditionFailures>,
}

impl Cmdline {
    pub fn parse(text: &str) -> Cmdline {
        let mut c = Cmdline::default();
        for word in text.split_ascii_whitespace() {
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            match k {
                "talos.standin.installed" => c.installed = true,
                "talos.config" if !v.is_empty() => c.config_url = Some(v.to_owned()),
                "talos.standin.precondition_failures" => {
                    c.precondition_failures = v.parse().ok();
                }
                _ => {}
            }
        }
        c
    }
}

/// Talos's URL variables, the `uuid` one: an empty `uuid=` query value, or `${uuid}` (any case)
/// inside a query value, becomes the SMBIOS UUID. Only the query is touched; its order is kept.
pub fn substitute_uuid(url: &str, uuid: &str) -> String {
    let (base, rest) = match url.split_once('?') {
        Some(x) => x,
        None => return url.to_owned(),
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (k, v) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            if k == "uuid" && v.is_none_or(|v| v.trim().is_empty()) {
                return format!("uuid={uuid}");
            }
            match v {
                Some(v) => format!("{k}={}", replace_ci(v, "${uuid}", uuid)),
                None => k.to_owned(),
            }
        })
        .collect();
    let mut out = format!("{base}?{}", parts.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn replace_ci(haystack: &str, needle: &str, with: &str) -> String {
    let lower = haystack.to_ascii_lowercase();
    let mut out = String::new();
    let mut i = 0;
    while let Some(pos) = lower[i..].find(needle) {
        out.push_str(&haystack[i..i + pos]);
        out.push_str(with);
        i += pos + needle.len();
    }
    out.push_str(&haystack[i..]);
    out
}

/// The registry host of an image reference (`docker.io` when the first component is not a host).
pub fn image_registry(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// The installer image's URL: `<mirror endpoint[0]>/talos-standin-installer.img`, the mirror
/// being `machine.registries.mirrors.<registry>` (or `*`).
pub fn installer_url(config: &MachineConfig) -> Result<String> {
    let image = config.install_image.as_deref().ok_or_else(|| anyhow!("machine.install.image is not set"))?;
    let registry = image_registry(image);
    let endpoint = config
        .mirrors
        .get(registry)
        .or_else(|| config.mirrors.get("*"))
        .and_then(|e| e.first())
        .ok_or_else(|| {
            anyhow!(
                "no registry mirror for {registry} (image {image}): machine.registries.mirrors.{registry}.endpoints is empty; the stand-in cannot pull from the Internet"
            )
        })?;
    Ok(format!("{}/{INSTALLER_FILE}", endpoint.trim_end_matches('/')))
}

/// The config record: the magic line, the decimal length, a newline, the bytes.
pub fn encode_record(config: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(config.len() + 40);
    out.extend_from_slice(RECORD_MAGIC.as_bytes());
    out.extend_from_slice(format!("{}\n", config.len()).as_bytes());
    out.extend_from_slice(config);
    if out.len() as u64 > RECORD_AREA {
        bail!("config ({} bytes) does not fit in the last MiB", config.len());
    }
    Ok(out)
}

/// The config bytes of a record at the start of `area`, if there is one.
pub fn decode_record(area: &[u8]) -> Option<Vec<u8>> {
    let rest = area.strip_prefix(RECORD_MAGIC.as_bytes())?;
    let nl = rest.iter().take(21).position(|b| *b == b'\n')?;
    let len: usize = std::str::from_utf8(&rest[..nl]).ok()?.parse().ok()?;
    let body = rest.get(nl + 1..nl + 1 + len)?;
    Some(body.to_vec())
}

/// A network link as /sys/class/net shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub name: String,
    pub mac: String,
    /// Backed by a device (`/sys/class/net/<if>/device` exists).
    pub physical: bool,
}

/// The link an interface item selects: by MAC (case-insensitive), by name, or the first
/// physical link (by name order).
pub fn choose_interface<'a>(nics: &'a [Nic], selector: &LinkSelector) -> Option<&'a Nic> {
    match selector {
        LinkSelector::HardwareAddr(mac) => nics.iter().find(|n| n.mac.eq_ignore_ascii_case(mac)),
        LinkSelector::Name(name) => nics.iter().find(|n| &n.name == name),
        LinkSelector::Physical => {
            let mut phys: Vec<&Nic> = nics.iter().filter(|n| n.physical).collect();
            phys.sort_by(|a, b| a.name.cmp(&b.name));
            phys.first().copied()
        }
    }
}

fn list_nics() -> Result<Vec<Nic>> {
    let mut nics = Vec::new();
    for e in std::fs::read_dir("/sys/class/net").context("/sys/class/net")? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "lo" {
            continue;
        }
        let mac = std::fs::read_to_string(e.path().join("address")).unwrap_or_default().trim().to_owned();
        nics.push(Nic { physical: e.path().join("device").exists(), name, mac });
    }
    nics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nics)
}

fn run_ip(args: &[&str]) -> Result<()> {
    eprintln!("talos-standin: ip {}", args.join(" "));
    let status = std::process::Command::new("ip")
        .args(args)
        .status()
        .with_context(|| format!("running ip {}", args.join(" ")))?;
    if !status.success() {
        bail!("ip {} failed: {status}", args.join(" "));
    }
    Ok(())
}

/// The `ip` commands for one interface item on `link` (flush, up, addresses, routes).
pub fn ip_commands(link: &str, item: &Interface) -> Vec<Vec<String>> {
    let mut cmds = vec![
        vec!["link".into(), "set".into(), link.into(), "up".into()],
        vec!["-4".into(), "addr".into(), "flush".into(), "dev".into(), link.into()],
    ];
    for a in &item.addresses {
        cmds.push(vec!["addr".into(), "add".into(), a.clone(), "dev".into(), link.into()]);
    }
    for (net, gw) in &item.routes {
        let dest = if net == "0.0.0.0/0" || net == "::/0" { "default".to_owned() } else { net.clone() };
        cmds.push(vec!["route".into(), "replace".into(), dest, "via".into(), gw.clone(), "dev".into(), link.into()]);
    }
    cmds
}

/// Sets the links, addresses and routes of every configured interface (DHCP ones are left to
/// /init's udhcpc); returns the first static address.
fn configure_network(config: &MachineConfig) -> Result<IpAddr> {
    let nics = list_nics()?;
    eprintln!("talos-standin: links {nics:?}");
    for item in &config.interfaces {
        if item.addresses.is_empty() && item.dhcp {
            continue;
        }
        let nic =
            choose_interface(&nics, &item.selector).ok_or_else(|| anyhow!("no link matches {:?}", item.selector))?;
        for cmd in ip_commands(&nic.name, item) {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            run_ip(&args)?;
        }
    }
    if let Some(h) = &config.hostname {
        std::fs::write("/proc/sys/kernel/hostname", h).context("setting the hostname")?;
    }
    config.static_address().map(|(ip, _)| ip).ok_or_else(|| anyhow!("the config has no static address"))
}

fn read_record(dev: &Path) -> Result<Option<Vec<u8>>> {
    let mut f = std::fs::File::open(dev)?;
    let size = f.seek(SeekFrom::End(0))?;
    if size < RECORD_AREA {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(size - RECORD_AREA))?;
    let mut buf = vec![0u8; RECORD_AREA as usize];
    f.read_exact(&mut buf)?;
    Ok(decode_record(&buf))
}

/// Scans the whole disks (/sys/block) for a config record.
pub fn find_config_on_disks() -> Result<(PathBuf, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .context("/sys/block")?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !["loop", "ram", "zram", "sr", "fd"].iter().any(|p| n.starts_with(p)))
        .collect();
    names.sort();
    for name in names {
        let dev = PathBuf::from("/dev").join(&name);
        match read_record(&dev) {
            Ok(Some(bytes)) => return Ok((dev, bytes)),
            Ok(None) => {}
            Err(e) => eprintln!("talos-standin: {}: {e}", dev.display()),
        }
    }
    bail!("no disk holds a {} record", RECORD_MAGIC.trim())
}

/// Writes the record into the last MiB of `dev` (a disk or a file) and syncs.
pub fn write_record(dev: &Path, config: &[u8]) -> Result<()> {
    let rec = encode_record(config)?;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .with_context(|| format!("open {}", dev.display()))?;
    let size = f.seek(SeekFrom::End(0))?;
    if size < RECORD_AREA {
        bail!("{} is smaller than 1 MiB", dev.display());
    }
    f.seek(SeekFrom::Start(size - RECORD_AREA))?;
    f.write_all(&rec)?;
    f.sync_all()?;
    Ok(())
}

/// A plain-http GET (HTTP/1.1, no TLS); returns the status, the content encoding and the body.
async fn http_get(url: &str, gzip: bool) -> Result<(u16, Option<String>, hyper::body::Incoming)> {
    let uri: hyper::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("{url}: only http:// is supported");
    }
    let host = uri.host().ok_or_else(|| anyhow!("{url}: no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .with_context(|| format!("connect {host}:{port}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
    let mut req = hyper::Request::get(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "talos-standin");
    if gzip {
        req = req.header(hyper::header::ACCEPT_ENCODING, "gzip");
    }
    let resp = sender.send_request(req.body(Empty::<Bytes>::new())?).await?;
    let enc = resp.headers().get(hyper::header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok((resp.status().as_u16(), enc, resp.into_body()))
}

/// GETs the machine config once: 200 -> the (gunzipped) body.
pub async fn fetch_config_once(url: &str) -> Result<Vec<u8>> {
    let (status, enc, body) = http_get(url, true).await?;
    let bytes = body.collect().await?.to_bytes();
    if status != 200 {
        bail!("HTTP {status}");
    }
    let gz = enc.as_deref().is_some_and(|e| e.eq_ignore_ascii_case("gzip")) || bytes.starts_with(&[0x1f, 0x8b]);
    if gz {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).context("gunzip")?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// GETs the config every 2 s until it is a 200 with a config the stand-in can read.
pub async fn fetch_config(url: &str) -> (Vec<u8>, MachineConfig) {
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        match fetch_config_once(url).await.and_then(|b| {
            let text = std::str::from_utf8(&b).context("config is not UTF-8")?;
            let c = MachineConfig::parse(text)?;
            Ok((b, c))
        }) {
            Ok(x) => return x,
            Err(e) => eprintln!(
                "talos-standin: fetching the machine config from {url} (attempt {attempt}): {e:#}; retrying in 2s"
            ),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Streams `url` onto `disk` and syncs; returns the bytes written.
pub async fn write_image(url: &str, disk: &Path) -> Result<u64> {
    let (status, _, mut body) = http_get(url, false).await?;
    if status != 200 {
        bail!("GET {url}: HTTP {status}");
    }
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .await
        .with_context(|| format!("open {}", disk.display()))?;
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the installer image")?;
        if let Ok(data) = frame.into_data() {
            f.write_all(&data).await?;
            n += data.len() as u64;
        }
    }
    f.flush().await?;
    f.sync_all().await?;
    Ok(n)
}

fn smbios_uuid() -> Result<String> {
    Ok(std::fs::read_to_string("/sys/class/dmi/id/product_uuid")
        .context("/sys/class/dmi/id/product_uuid")?
        .trim()
        .to_ascii_lowercase())
}

/// The PXE-boot path: config, "install", reboot.
async fn pxe(cmdline: &Cmdline) -> Result<()> {
    let url = cmdline.config_url.as_deref().ok_or_else(|| anyhow!("no talos.config= on the kernel command line"))?;
    let url = if url.contains('?') { substitute_uuid(url, &smbios_uuid()?) } else { url.to_owned() };
    eprintln!("talos-standin: machine config URL {url}");
    let (bytes, config) = fetch_config(&url).await;
    println!("TALOS-STANDIN-CONFIG {} {}", config.hostname.as_deref().unwrap_or("-"), config.machine_type.as_str());
    let disk = PathBuf::from(config.install_disk.clone().ok_or_else(|| anyhow!("machine.install.disk is not set"))?);
    let image = installer_url(&config)?;
    let mut attempt = 0;
    let written = loop {
        attempt += 1;
        match write_image(&image, &disk).await {
            Ok(n) => break n,
            Err(e) if attempt < 5 => {
                eprintln!("talos-standin: installing {image} (attempt {attempt}): {e:#}; retrying in 2s");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e.context(format!("installing {image} to {}", disk.display()))),
        }
    };
    eprintln!("talos-standin: wrote {written} bytes of {image} to {}", disk.display());
    write_record(&disk, &bytes)?;
    println!("TALOS-STANDIN-INSTALLED {}", disk.display());
    std::io::stdout().flush().ok();
    // SAFETY: plain syscalls; the process is about to restart the machine.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    bail!("reboot failed: {}", std::io::Error::last_os_error())
}

/// The installed-boot path: config from disk, static network, apid on :50000.
async fn installed(cmdline: &Cmdline) -> Result<()> {
    let (dev, bytes) = find_config_on_disks()?;
    eprintln!("talos-standin: config record ({} bytes) on {}", bytes.len(), dev.display());
    let config = MachineConfig::parse(std::str::from_utf8(&bytes).context("config is not UTF-8")?)?;
    let ip = configure_network(&config)?;
    println!("TALOS-STANDIN-UP {ip}");
    std::io::stdout().flush().ok();
    let opts = ServeOptions {
        precondition_failures: cmdline.precondition_failures.unwrap_or_default(),
        state_file: None,
        extra_ips: vec![ip],
    };
    apid::serve(&config, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 50000), opts).await
}

/// `talos-standin node`.
pub async fn run() -> Result<()> {
    let text = std::fs::read_to_string("/proc/cmdline").context("/proc/cmdline")?;
    let cmdline = Cmdline::parse(&text);
    if cmdline.installed { installed(&cmdline).await } else { pxe(&cmdline).await }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline() {
        let c = Cmdline::parse(
            "console=ttyS0 talos.platform=metal talos.config=http://10.0.0.1/talos/config?uuid= initrd=x\n",
        );
        assert_eq!(c.config_url.as_deref(), Some("http://10.0.0.1/talos/config?uuid="));
        assert!(!c.installed);
        let c = Cmdline::parse("talos.standin.installed talos.standin.precondition_failures=never");
        assert!(c.installed);
        assert_eq!(c.precondition_failures, Some(PreconditionFailures::Never));
        let c = Cmdline::parse("talos.standin.precondition_failures=2");
        assert_eq!(c.precondition_failures, Some(PreconditionFailures::Count(2)));
    }

    #[test]
    fn uuid_substitution_only_in_query_values() {
        let u = "4c4c4544-0031-3610-8052-b4c04f4e4d32";
        assert_eq!(substitute_uuid("http://a/talos/config?uuid=", u), format!("http://a/talos/config?uuid={u}"));
        assert_eq!(
            substitute_uuid("http://a/talos/config?x=1&uuid=&y=2", u),
            format!("http://a/talos/config?x=1&uuid={u}&y=2")
        );
        // a set value is kept
        assert_eq!(substitute_uuid("http://a/c?uuid=abc", u), "http://a/c?uuid=abc");
        // ${uuid} in any query value, any case; not in the path
        assert_eq!(substitute_uuid("http://a/${uuid}/c?id=${UUID}&k=v", u), format!("http://a/${{uuid}}/c?id={u}&k=v"));
        // no query: untouched
        assert_eq!(substitute_uuid("http://a/uuid=", u), "http://a/uuid=");
    }

    fn cfg(image: Option<&str>, mirrors: &[(&str, &str)]) -> MachineConfig {
        MachineConfig {
            machine_type: crate::config::MachineType::ControlPlane,
            ca_crt_pem: String::new(),
            ca_key_pem: None,
            install_disk: Some("/dev/vda".into()),
            install_image: image.map(str::to_owned),
            mirrors: mirrors.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect(),
            interfaces: vec![],
            hostname: None,
        }
    }

    #[test]
    fn mirror_resolution() {
        let c = cfg(Some("ghcr.io/siderolabs/installer:v1.13.9"), &[("ghcr.io", "http://10.0.0.1:8080/mirror/ghcr/")]);
        assert_eq!(installer_url(&c).unwrap(), "http://10.0.0.1:8080/mirror/ghcr/talos-standin-installer.img");
        let c = cfg(Some("siderolabs/installer:v1"), &[("docker.io", "http://m")]);
        assert_eq!(installer_url(&c).unwrap(), "http://m/talos-standin-installer.img");
        let c = cfg(Some("ghcr.io/x:v1"), &[("*", "http://any")]);
        assert_eq!(installer_url(&c).unwrap(), "http://any/talos-standin-installer.img");
        let err = installer_url(&cfg(Some("ghcr.io/x:v1"), &[("quay.io", "http://q")])).unwrap_err().to_string();
        assert!(err.contains("no registry mirror for ghcr.io"), "{err}");
        assert!(installer_url(&cfg(None, &[])).is_err());
        assert_eq!(image_registry("localhost:5000/x"), "localhost:5000");
    }

    #[test]
    fn record_round_trip() {
        let body = b"version: v1alpha1\nmachine: {}\n";
        let mut area = encode_record(body).unwrap();
        assert!(area.starts_with(b"TALOS-STANDIN-CONFIG-V1\n30\n"));
        area.resize(RECORD_AREA as usize, 0);
        assert_eq!(decode_record(&area).unwrap(), body);
        assert!(decode_record(&[0u8; 64]).is_none());
        // truncated
        assert!(decode_record(b"TALOS-STANDIN-CONFIG-V1\n99\nabc").is_none());
        assert!(encode_record(&vec![b'x'; RECORD_AREA as usize]).is_err());
    }

    #[test]
    fn record_on_a_file_disk() {
        let path = std::env::temp_dir().join(format!("talos-standin-disk-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 3 << 20]).unwrap();
        write_record(&path, b"hello").unwrap();
        assert_eq!(read_record(&path).unwrap().unwrap(), b"hello");
        // the image part is untouched
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len(), 3 << 20);
        assert!(data[..(2 << 20)].iter().all(|b| *b == 7));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn interface_choice() {
        let nics = vec![
            Nic { name: "bond0".into(), mac: "aa:aa:aa:aa:aa:aa".into(), physical: false },
            Nic { name: "ens4".into(), mac: "52:54:00:00:00:02".into(), physical: true },
            Nic { name: "ens3".into(), mac: "52:54:00:00:00:01".into(), physical: true },
        ];
        assert_eq!(
            choose_interface(&nics, &LinkSelector::HardwareAddr("52:54:00:00:00:02".into())).unwrap().name,
            "ens4"
        );
        assert_eq!(choose_interface(&nics, &LinkSelector::HardwareAddr("52:54:00:00:00:0A".into())), None);
        assert_eq!(choose_interface(&nics, &LinkSelector::Physical).unwrap().name, "ens3");
        assert_eq!(choose_interface(&nics, &LinkSelector::Name("bond0".into())).unwrap().name, "bond0");
        let item = Interface {
            selector: LinkSelector::Physical,
            addresses: vec!["10.0.0.5/24".into()],
            routes: vec![("0.0.0.0/0".into(), "10.0.0.1".into())],
            dhcp: false,
        };
        let cmds = ip_commands("ens3", &item);
        assert!(cmds.contains(&"addr add 10.0.0.5/24 dev ens3".split(' ').map(String::from).collect()));
        assert!(cmds.contains(&"route replace default via 10.0.0.1 dev ens3".split(' ').map(String::from).collect()));
    }
}

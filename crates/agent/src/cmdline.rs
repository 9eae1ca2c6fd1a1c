//! What the boot script put on the kernel command line: `ironbay.url=<appliance>`,
//! `ironbay.token=<boot token>`, optionally `ironbay.asset=<id>` and `ironbay.ssh_port=<port>`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootArgs {
    pub url: String,
    pub token: String,
    pub asset: Option<String>,
    pub ssh_port: u16,
}

pub fn parse(cmdline: &str) -> Result<BootArgs, String> {
    let mut url = None;
    let mut token = None;
    let mut asset = None;
    let mut ssh_port = 22;
    for word in cmdline.split_whitespace() {
        if let Some((k, v)) = word.split_once('=') {
            match k {
                "ironbay.url" => url = Some(v.trim_end_matches('/').to_string()),
                "ironbay.token" => token = Some(v.to_string()),
                "ironbay.asset" => asset = Some(v.to_string()),
                "ironbay.ssh_port" => {
                    ssh_port = v.parse().map_err(|_| format!("ironbay.ssh_port `{v}` is not a port"))?;
                }
                _ => {}
            }
        }
    }
    let url = url.ok_or("the kernel command line has no ironbay.url=")?;
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!("ironbay.url `{url}` is not an http(s) URL"));
    }
    let token = token.ok_or("the kernel command line has no ironbay.token=")?;
    Ok(BootArgs { url, token, asset, ssh_port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_boot_script_writes() {
        let a = parse("BOOT_IMAGE=x ironbay.url=http://10.9.0.1:8080/ ironbay.token=abc.def ironbay.asset=ast_1 console=ttyS0,115200 initrd=initrd.img").unwrap();
        assert_eq!(a.url, "http://10.9.0.1:8080");
        assert_eq!(a.token, "abc.def");
        assert_eq!(a.asset.as_deref(), Some("ast_1"));
        assert_eq!(a.ssh_port, 22);
        assert!(parse("ironbay.token=x").unwrap_err().contains("ironbay.url"));
        assert!(parse("ironbay.url=http://x").unwrap_err().contains("ironbay.token"));
        assert!(parse("ironbay.url=ftp://x ironbay.token=t").is_err());
        assert!(parse("ironbay.url=http://x ironbay.token=t ironbay.ssh_port=99999").is_err());
    }
}

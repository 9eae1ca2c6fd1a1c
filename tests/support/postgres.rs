//! Throwaway PostgreSQL server for integration tests, so Postgres-backed tests need no pre-provisioned database.
//!
//! One server per test process is started lazily by [`PgCluster::shared`];
//! every test then calls [`PgCluster::create_database`] to get its own empty
//! database, so tests can run concurrently without seeing each other's data.
//!
//! Lifetime: `initdb` and `postgres` run under a small `sh` watchdog whose
//! stdin is a pipe whose only write end lives in the static `PgCluster`. When
//! the test process ends for any reason (normal exit, panic, SIGKILL), the
//! kernel closes that end, the watchdog's `read` hits EOF, and it stops
//! postgres with SIGINT (fast shutdown) and deletes the temp dir. The watchdog
//! gets its own process group so a terminal Ctrl-C kills only the test process
//! and not the cleanup.
//!
//! Set `IRONBAY_TEST_POSTGRES_URL` to an admin-capable database URL to use an
//! existing server instead; databases are then created there (and left behind).

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::fs;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Env var naming an existing server to use instead of starting one.
const URL_OVERRIDE_ENV: &str = "IRONBAY_TEST_POSTGRES_URL";
/// Superuser created by `initdb`; tests connect as this role over TCP.
const SUPERUSER: &str = "ibtest";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Unix socket paths (dir + "/.s.PGSQL.NNNNN") are limited to 107 bytes.
const MAX_SOCKET_PATH: usize = 107;

/// Runs as the postgres user. Positional args: root dir, bin dir, port,
/// superuser, then `-c name=value` server settings.
/// fd 3 holds the lifeline pipe (the original stdin). Postgres itself gets
/// /dev/null and no fd 3, so only the watchdog waits on the pipe.
/// `exited` is a marker the test process polls to detect an early failure;
/// the dir is only removed after EOF so that the test can still read the logs.
const WATCHDOG_SCRIPT: &str = r#"
root=$1 bin=$2 port=$3 user=$4
shift 4
exec 3<&0 </dev/null
if "$bin/initdb" -D "$root/data" -U "$user" --pwfile="$root/pwfile" \
    --auth-host=scram-sha-256 --auth-local=trust --encoding=UTF8 --locale=C \
    --no-sync --no-instructions >"$root/initdb.log" 2>&1
then
    rm -f "$root/pwfile"
    "$bin/postgres" -D "$root/data" -p "$port" "$@" >"$root/server.log" 2>&1 3<&- &
    pid=$!
    ( read _ <&3; kill -INT "$pid" 2>/dev/null ) &
    wait "$pid"
    echo "postgres exited with status $?" >"$root/exited"
else
    echo "initdb failed with status $?" >"$root/exited"
fi
read _ <&3
rm -rf "$root"
"#;

/// A PostgreSQL server that tests can create databases on.
pub struct PgCluster {
    /// URL of a database the superuser can run `CREATE DATABASE` from.
    admin_url: String,
    psql: PathBuf,
    /// Never read: holding it keeps the watchdog's stdin pipe open until this
    /// process exits. `None` when using `IRONBAY_TEST_POSTGRES_URL`.
    _watchdog: Option<Child>,
}

impl PgCluster {
    /// The process-wide server, started on first use.
    ///
    /// Panics (in every caller, not only the first) if the server could not
    /// be started, so a broken setup fails fast instead of retrying per test.
    #[allow(dead_code)]
    pub fn shared() -> &'static PgCluster {
        static CLUSTER: OnceLock<Result<PgCluster, String>> = OnceLock::new();
        match CLUSTER.get_or_init(PgCluster::start) {
            Ok(cluster) => cluster,
            Err(msg) => panic!("{msg}"),
        }
    }

    /// Creates a new, empty, uniquely named database and returns its URL,
    /// `postgres://USER:PASS@127.0.0.1:PORT/DBNAME`.
    #[allow(dead_code)]
    pub fn create_database(&self) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // The random part keeps names unique across processes sharing an
        // override server and across reruns against it.
        let name = format!("ibtest_{}_{n}", random_hex());
        let out = Command::new(&self.psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &self.admin_url, "-c"])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.psql.display()));
        assert!(
            out.status.success(),
            "CREATE DATABASE {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        with_database(&self.admin_url, &name)
    }

    /// URL of the admin database (superuser), e.g. for ad-hoc inspection.
    #[allow(dead_code)]
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    fn start() -> Result<PgCluster, String> {
        if let Ok(url) = std::env::var(URL_OVERRIDE_ENV) {
            let psql = find_bin_dir().map_or_else(|| PathBuf::from("psql"), |dir| dir.join("psql"));
            return Ok(PgCluster { admin_url: url, psql, _watchdog: None });
        }
        let bin = find_bin_dir()
            .ok_or_else(|| "no PostgreSQL under /usr/lib/postgresql/*/bin; run scripts/install-deps.sh".to_string())?;

        let root = std::env::temp_dir().join(format!("ironbay-pg-{}-{}", std::process::id(), random_hex()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&root)
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        // PostgreSQL refuses to run as root, so when root, everything from
        // here on (including the watchdog's final `rm -rf`) runs as postgres.
        let owner = if is_root() { Some(postgres_ids()?) } else { None };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&root, Some(uid), Some(gid))
                .map_err(|e| format!("cannot chown {}: {e}", root.display()))?;
        }

        let password = format!("{}{}", random_hex(), random_hex());
        fs::write(root.join("pwfile"), format!("{password}\n"))
            .map_err(|e| format!("cannot write password file: {e}"))?;
        let port = free_port()?;
        // A too-long socket path would stop postgres from starting; TCP is
        // all the tests need, so then just go without the socket.
        let socket_dir = if root.as_os_str().len() + ".s.PGSQL.65535".len() < MAX_SOCKET_PATH {
            root.display().to_string()
        } else {
            String::new()
        };
        let settings = [
            "listen_addresses=127.0.0.1".to_string(),
            format!("unix_socket_directories={socket_dir}"),
            // Durability is pointless for a throwaway server; these make
            // DDL-heavy tests (CREATE DATABASE, migrations) much faster.
            "fsync=off".to_string(),
            "synchronous_commit=off".to_string(),
            "full_page_writes=off".to_string(),
            // Many concurrent tests, each with its own connection pool.
            "max_connections=300".to_string(),
        ];

        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("ironbay-pg-watchdog")
            .arg(&root)
            .arg(&bin)
            .arg(port.to_string())
            .arg(SUPERUSER);
        for s in &settings {
            cmd.arg("-c").arg(s);
        }
        cmd.current_dir(&root).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
        if let Some((uid, gid)) = owner {
            cmd.uid(uid).gid(gid);
        }
        let watchdog = cmd.spawn().map_err(|e| format!("cannot spawn postgres watchdog: {e}"))?;
        // From here on, dropping `watchdog` (also on the error paths) closes
        // the pipe and the watchdog removes `root`.

        wait_ready(&bin, port, &root)?;
        Ok(PgCluster {
            admin_url: format!("postgres://{SUPERUSER}:{password}@127.0.0.1:{port}/postgres"),
            psql: bin.join("psql"),
            _watchdog: Some(watchdog),
        })
    }
}

/// Polls `pg_isready` until the server accepts connections, the watchdog
/// reports that initdb/postgres exited, or the timeout passes.
fn wait_ready(bin: &Path, port: u16, root: &Path) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if let Ok(why) = fs::read_to_string(root.join("exited")) {
            return Err(startup_failure(why.trim(), root));
        }
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "1"])
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run pg_isready: {e}"))?;
        if ready.success() {
            return Ok(());
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            return Err(startup_failure(&format!("not ready after {STARTUP_TIMEOUT:?}"), root));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn startup_failure(why: &str, root: &Path) -> String {
    let mut msg = format!("test PostgreSQL in {} failed to start: {why}", root.display());
    for log in ["initdb.log", "server.log"] {
        if let Ok(text) = fs::read_to_string(root.join(log)) {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            let _ = write!(msg, "\n--- {log} (last 40 lines) ---\n{tail}");
        }
    }
    msg
}

/// `/usr/lib/postgresql/<highest version>/bin`, if any version is installed.
fn find_bin_dir() -> Option<PathBuf> {
    let version = |name: &str| -> Option<Vec<u32>> { name.split('.').map(|part| part.parse().ok()).collect() };
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let v = version(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// `/proc/self` is owned by the effective uid; std has no `geteuid`.
fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The postgres OS user's (uid, gid), from /etc/passwd.
fn postgres_ids() -> Result<(u32, u32), String> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 4 || fields[0] != "postgres" {
                return None;
            }
            Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
        })
        .ok_or_else(|| "running as root but no `postgres` user; run scripts/install-deps.sh".to_string())
}

/// A port that was free a moment ago. Another process could grab it before
/// postgres binds; that shows up as a clear "could not bind" startup error.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// 16 random hex digits. `RandomState` is seeded from the OS RNG, which
/// gives std-only randomness good enough for names and a test password.
fn random_hex() -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{:016x}", RandomState::new().hash_one(nanos))
}

/// `url` with its database (path) replaced by `db`, keeping any `?query`.
fn with_database(url: &str, db: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => url.split_at(q),
        None => (url, ""),
    };
    let authority_end = base[after_scheme..].find('/').map_or(base.len(), |i| after_scheme + i);
    format!("{}/{db}{query}", &base[..authority_end])
}

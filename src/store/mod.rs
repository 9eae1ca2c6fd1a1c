//! The store: one code path over SQLite (default, embedded) and PostgreSQL, through sqlx's `Any`
//! driver. Every statement is written once with `$n` placeholders, which both engines accept;
//! each engine has its own migrations folder because their DDL differs. One file per resource.

pub mod agents;
pub mod api_keys;
pub mod assets;
pub mod audit;
pub mod boot_events;
pub mod clusters;
pub mod console_assets;
pub mod dashboard;
pub mod devices;
pub mod dhcp_leases;
pub mod images;
pub mod page_cache;
pub mod policies;
pub mod psks;
pub mod sessions;
pub mod users;
pub mod vnis;
pub mod webhooks;
pub mod workflows;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Executor};

pub use sqlx::Any;
pub type Tx = sqlx::Transaction<'static, Any>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    pages: page_cache::PageCache,
    /// Per-VNI start of the next-free scan (`Store::allocation_hint`).
    alloc_hints: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    /// Taken by this process's high-rate background writers (DHCP lease commits, the boot
    /// timeline) around their transactions: on SQLite they would otherwise meet as SQLITE_BUSY and
    /// back off in the busy handler's millisecond sleeps.
    bulk_writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// SQLite's WAL checkpoints, off every writer's path: PASSIVE never waits for readers or blocks
/// writers, so commits only append to the WAL. Ends when the pool is closed.
async fn checkpoint_loop(pool: AnyPool) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::debug!(error = %e, "sqlite: checkpoint failed");
        }
    }
}

/// `($1, $2), ($3, $4)` for `rows` rows of `cols` columns: a multi-row VALUES list.
pub(crate) fn values_placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let marks: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", marks.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Connects (creating an SQLite file if needed) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let pool = match backend {
            Backend::Sqlite => {
                // Make sure the file can be created; the URL may or may not carry a mode already.
                let url = if url.contains("mode=") {
                    url.to_string()
                } else if url.contains('?') {
                    format!("{url}&mode=rwc")
                } else {
                    format!("{url}?mode=rwc")
                };
                // Four connections: on two cores more SQLite worker threads only add context
                // switches (measured: 2 → 4.3k, 4 → 6.5k, 8 → 5.0k list pages/s; bench/api.sh).
                AnyPoolOptions::new()
                    .max_connections(4)
                    .min_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL: readers never block the writer; NORMAL sync is durable across
                            // process crashes (the WAL is fsynced at checkpoints). A 32 MiB page
                            // cache per connection and memory-mapped reads keep list pages off
                            // the read() syscall path. Checkpoints are not run by whichever commit
                            // crosses the WAL threshold (its fsync would stall that writer: a DHCP
                            // lease group, say) but by `checkpoint_loop`, passively, in the background.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                 PRAGMA cache_size = -32768; PRAGMA mmap_size = 268435456; \
                                 PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
                    .map_err(StoreError::Connect)?
            }
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(StoreError::Connect)?,
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(StoreError::Migrate)?;
        if backend == Backend::Sqlite {
            tokio::spawn(checkpoint_loop(pool.clone()));
        }
        Ok(Store {
            pool,
            backend,
            pages: Default::default(),
            alloc_hints: Default::default(),
            bulk_writer: Default::default(),
        })
    }

    /// Serialises this process's bulk writers (see the field); held for one transaction.
    pub async fn bulk_write_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.bulk_writer.lock().await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A write transaction. On SQLite it starts with `BEGIN IMMEDIATE` so the write lock is taken
    /// up front (a deferred transaction that later upgrades can fail with SQLITE_BUSY instead of
    /// waiting).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Records a change to `resource` (a row of `generations`) inside the writer's transaction, so
    /// cached pages of it stop being served once the change commits.
    pub async fn bump_generation(conn: &mut AnyConnection, resource: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE generations SET seq = seq + 1 WHERE name = $1").bind(resource).execute(conn).await?;
        Ok(())
    }

    /// The current generation of `resource`.
    pub async fn generation(&self, resource: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT seq FROM generations WHERE name = $1").bind(resource).fetch_one(&self.pool).await
    }

    /// Health probe for `/api/v1/health`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    pub async fn meta_get(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = $1").bind(key).fetch_optional(&self.pool).await
    }

    pub async fn meta_set(conn: &mut AnyConnection, key: &str, value: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(conn)
        .await
        .map(|_| ())
    }
}

/// Is this a unique-constraint violation? `hint` narrows it to one constraint: SQLite names the
/// column (`assets.hostname`), PostgreSQL the index (`assets_hostname_key`), so we match both.
pub fn is_unique_violation(e: &sqlx::Error, hint: &str) -> bool {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => {
            let in_constraint = db.constraint().is_some_and(|c| c.contains(hint));
            let in_message = db.message().contains(hint);
            in_constraint || in_message
        }
        _ => false,
    }
}

/// Parses an enum stored as text; a bad value in the database is our bug, reported as such.
pub fn parse_column<T: FromStr>(column: &str, value: &str) -> Result<T, sqlx::Error> {
    value.parse().map_err(|_| sqlx::Error::Decode(format!("column {column}: unexpected value `{value}`").into()))
}

/// JSON text column to value.
pub fn json_column<T: serde::de::DeserializeOwned>(column: &str, value: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(value).map_err(|e| sqlx::Error::Decode(format!("column {column}: {e}").into()))
}

/// A `WHERE` clause assembled from optional text filters with numbered placeholders (sqlx's
/// `QueryBuilder` writes `?` for `Any`, which PostgreSQL rejects).
#[derive(Default)]
pub struct Filter {
    clauses: Vec<String>,
    args: Vec<String>,
}

impl Filter {
    /// Adds a condition; `{}` in `clause` stands for this value's placeholder.
    pub fn push(&mut self, clause: &str, value: impl Into<String>) {
        self.args.push(value.into());
        self.clauses.push(clause.replace("{}", &format!("${}", self.args.len())));
    }

    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!("WHERE {}", self.clauses.join(" AND ")) }
    }

    /// The placeholder number the next bound value after the filter's own will get.
    pub fn next_placeholder(&self) -> usize {
        self.args.len() + 1
    }

    pub fn bind_all<'q, O>(
        &self,
        mut q: sqlx::query::QueryAs<'q, Any, O, sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryAs<'q, Any, O, sqlx::any::AnyArguments> {
        for a in &self.args {
            q = q.bind(a.clone());
        }
        q
    }

    pub fn bind_scalar<'q, O>(
        &self,
        mut q: sqlx::query::QueryScalar<'q, Any, O, sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryScalar<'q, Any, O, sqlx::any::AnyArguments> {
        for a in &self.args {
            q = q.bind(a.clone());
        }
        q
    }
}

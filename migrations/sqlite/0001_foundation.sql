-- Foundation: users, sessions, API keys, audit chain, assets.
-- Timestamps are RFC 3339 UTC text of fixed width (text order = time order).
-- Booleans are INTEGER 0/1 (the same code reads SQLite and PostgreSQL through sqlx's Any driver).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    totp_secret    BLOB,
    totp_enabled   INTEGER NOT NULL DEFAULT 0,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash   TEXT NOT NULL UNIQUE,
    remember_me   INTEGER NOT NULL DEFAULT 0,
    source_ip     TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    revoked_at    TEXT,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX api_keys_user ON api_keys(user_id);

-- The audit chain. `audit_head` holds the newest entry's hash; every append updates it first,
-- which takes the write lock at once and serialises appends (across appliances on PostgreSQL).
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    ts          TEXT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    source_ip   TEXT,
    outcome     TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_log_action ON audit_log(action);
CREATE INDEX audit_log_actor ON audit_log(actor_id);
CREATE INDEX audit_log_target ON audit_log(target_id);

CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- `macs` and `tags` are kept as JSON on the row for one-query reads, and in side tables that
-- enforce MAC uniqueness and index tag filters. Only the store writes both, in one transaction.
CREATE TABLE assets (
    id            TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL,
    macs          TEXT NOT NULL,
    tags          TEXT NOT NULL,
    specs         TEXT NOT NULL,
    smbios_uuid   TEXT UNIQUE,
    serial        TEXT,
    bmc_driver    TEXT,
    bmc_address   TEXT,
    bmc_port      INTEGER,
    bmc_username  TEXT,
    bmc_password  BLOB,
    generation    INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    -- The row as the API shows it (AssetView JSON, no secrets), rendered on every write so lists
    -- are served by joining strings.
    view          TEXT NOT NULL
);
CREATE INDEX assets_state ON assets(state);
CREATE INDEX assets_created ON assets(created_at, id);

CREATE TABLE asset_macs (
    mac       TEXT PRIMARY KEY,
    asset_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE
);
CREATE INDEX asset_macs_asset ON asset_macs(asset_id);

CREATE TABLE asset_tags (
    asset_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (asset_id, tag)
);
CREATE INDEX asset_tags_tag ON asset_tags(tag);

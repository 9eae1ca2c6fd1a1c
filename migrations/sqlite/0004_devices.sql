-- Device enrollment: the device CA, enrollment tokens, enrolled devices, their certificates and
-- history. Devices are never deleted: a deleted device is a revoked tombstone, so its history and
-- its certificates' revocations outlive it.

-- One row (id = 1): the CA every appliance sharing this store signs with. The key is sealed with
-- the master key; the first appliance to insert wins and the others load its row.
CREATE TABLE device_ca (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    cert_pem    TEXT NOT NULL,
    key_sealed  BLOB NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE enroll_tokens (
    id           TEXT PRIMARY KEY,
    -- HMAC of the token value (`secret::MasterKey::hash_token`); the value itself is never stored.
    token_hash   TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL,
    max_uses     INTEGER NOT NULL,
    uses         INTEGER NOT NULL DEFAULT 0,
    expires_at   TEXT,
    tags         TEXT NOT NULL,
    -- No foreign key: a VNI's deletion is governed by its own rules; enrollment re-checks it.
    vni_id       TEXT,
    created_by   TEXT,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    CHECK (uses <= max_uses)
);

CREATE TABLE devices (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    key_type         TEXT NOT NULL,
    public_key       TEXT NOT NULL,
    tags             TEXT NOT NULL,
    metadata         TEXT NOT NULL,
    vni_id           TEXT,
    enroll_token_id  TEXT NOT NULL,
    cert_serial      TEXT NOT NULL,
    cert_expires_at  TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    revoked_at       TEXT
);
CREATE INDEX devices_order ON devices(created_at, id);
CREATE INDEX devices_vni ON devices(vni_id);

CREATE TABLE device_tags (
    device_id  TEXT NOT NULL REFERENCES devices(id),
    tag        TEXT NOT NULL,
    PRIMARY KEY (device_id, tag)
);
CREATE INDEX device_tags_tag ON device_tags(tag);

-- Every certificate issued, by serial (uppercase hex): the CRL lists the revoked ones.
CREATE TABLE device_certs (
    serial      TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices(id),
    not_after   TEXT NOT NULL,
    issued_at   TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX device_certs_device ON device_certs(device_id);
CREATE INDEX device_certs_revoked ON device_certs(revoked_at);

CREATE TABLE device_events (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices(id),
    event       TEXT NOT NULL,
    at          TEXT NOT NULL,
    details     TEXT NOT NULL
);
CREATE INDEX device_events_device ON device_events(device_id, at);

-- Renewal proofs already used: the primary key makes each (device, timestamp) count once.
CREATE TABLE device_renewals (
    device_id  TEXT NOT NULL,
    ts         TEXT NOT NULL,
    used_at    TEXT NOT NULL,
    PRIMARY KEY (device_id, ts)
);
CREATE INDEX device_renewals_used ON device_renewals(used_at);

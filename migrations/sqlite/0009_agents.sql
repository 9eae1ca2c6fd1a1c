-- The in-RAM agent: its hardware report on the asset (disks, NICs; the rest in specs), the agent
-- last registered per asset (where to reach it over SSH, the host key it enrolled, its last
-- heartbeat and full inventory), and the hardware changes seen between registrations.
ALTER TABLE assets ADD COLUMN disks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE assets ADD COLUMN nics TEXT NOT NULL DEFAULT '[]';

CREATE TABLE agents (
    asset_id        TEXT PRIMARY KEY REFERENCES assets(id) ON DELETE CASCADE,
    device_id       TEXT NOT NULL,
    address         TEXT NOT NULL,
    ssh_port        INTEGER NOT NULL,
    -- OpenSSH public key line: the enrolled key, pinned as the SSH host key.
    host_key        TEXT NOT NULL,
    agent_version   TEXT NOT NULL,
    mac             TEXT,
    -- The full inventory of the last registration (JSON), the base of the next diff.
    inventory       TEXT NOT NULL,
    heartbeat_secs  INTEGER NOT NULL,
    registered_at   TEXT NOT NULL,
    last_heartbeat  TEXT NOT NULL,
    busy            TEXT,
    -- Admin public keys allowed a rescue shell on this agent (JSON array of OpenSSH lines).
    rescue_keys     TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE inventory_changes (
    id        TEXT PRIMARY KEY,
    asset_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    at        TEXT NOT NULL,
    -- JSON array of {kind, item, field, before, after}.
    changes   TEXT NOT NULL
);
CREATE INDEX inventory_changes_asset ON inventory_changes (asset_id, at, id);

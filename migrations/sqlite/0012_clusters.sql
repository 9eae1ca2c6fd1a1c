-- Talos clusters. A cluster owns its secrets bundle (sealed with the master key), a plan per member
-- (the immutable per-node settings the request resolved to) and the workflows that build it: one
-- talos_install workflow per member and one cluster workflow (asset_id = the cluster's id) that
-- waits for them and bootstraps.
CREATE TABLE clusters (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    -- creating | ready | failed
    state              TEXT NOT NULL,
    flavor             TEXT NOT NULL,
    talos_version      TEXT NOT NULL,
    kubernetes_version TEXT NOT NULL,
    endpoint           TEXT NOT NULL,
    -- The resolved request and cluster-wide settings (talos::config::ClusterSettings), JSON; no secrets.
    settings           TEXT NOT NULL,
    -- talos::secrets::SecretsBundle as JSON, sealed (XChaCha20-Poly1305, the cluster id in the AAD).
    secrets_sealed     BLOB NOT NULL,
    -- pending | bootstrapped | already_bootstrapped | failed
    bootstrap_state    TEXT NOT NULL,
    workflow_id        TEXT NOT NULL,
    warnings           TEXT NOT NULL DEFAULT '[]',
    created_by         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    ready_at           TEXT
);

-- Members: cluster_members (0010) gains the node's plan and its install milestones.
ALTER TABLE cluster_members ADD COLUMN role TEXT NOT NULL DEFAULT 'worker';
ALTER TABLE cluster_members ADD COLUMN ordinal INTEGER NOT NULL DEFAULT 0;
-- talos::config::NodeSettings, JSON.
ALTER TABLE cluster_members ADD COLUMN node TEXT NOT NULL DEFAULT '{}';
ALTER TABLE cluster_members ADD COLUMN address TEXT NOT NULL DEFAULT '';
-- The VNI the address is allocated in (ip_allocations, holder cluster), if any.
ALTER TABLE cluster_members ADD COLUMN vni_id TEXT;
ALTER TABLE cluster_members ADD COLUMN workflow_id TEXT NOT NULL DEFAULT '';
-- When the node fetched its machine config, then PXE-booted again (installed: boots answer `exit`),
-- then its apid answered on :50000.
ALTER TABLE cluster_members ADD COLUMN config_served_at TEXT;
ALTER TABLE cluster_members ADD COLUMN installed_at TEXT;
ALTER TABLE cluster_members ADD COLUMN apid_at TEXT;
CREATE INDEX cluster_members_cluster ON cluster_members (cluster_id, ordinal);

-- Workflows: a persisted, ordered list of typed steps per asset (wipe, provision). The engine claims
-- the current step of a due workflow with a lease (owner + expiry in unix ms) by one conditional
-- UPDATE, so a step runs in one appliance at a time, and a step whose appliance died is found by
-- its expired lease and re-examined before anything is retried.
CREATE TABLE workflows (
    id              TEXT PRIMARY KEY,
    asset_id        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    -- pending | running | succeeded | failed | cancelled
    state           TEXT NOT NULL,
    -- The request as resolved (image url/sha256, disk hint, wipe method), JSON.
    params          TEXT NOT NULL,
    current_step    INTEGER NOT NULL DEFAULT 0,
    -- The asset's state when the workflow started (a cancel before any destructive step returns to it).
    from_state      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    -- {code, message, step} of the failure, JSON.
    error           TEXT,
    -- The signed wipe certificate, JSON, once a wipe step finished.
    certificate     TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    -- When the current step may next be tried (unix ms): backoff and polling waits.
    next_run_at     BIGINT NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT
);
-- One active workflow per asset: the store, not a check-then-insert, refuses a second one.
CREATE UNIQUE INDEX workflows_one_active ON workflows (asset_id) WHERE state IN ('pending', 'running');
CREATE INDEX workflows_due ON workflows (state, next_run_at);
CREATE INDEX workflows_asset ON workflows (asset_id, created_at);

CREATE TABLE workflow_steps (
    workflow_id   TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    -- The typed step (`workflow::Step`), JSON.
    step          TEXT NOT NULL,
    -- pending | running | waiting | succeeded | failed | skipped | cancelled
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT,
    finished_at   TEXT,
    -- Bounded log (the agent's progress lines and the engine's notes), JSON array.
    log           TEXT NOT NULL DEFAULT '[]',
    result        TEXT,
    error         TEXT,
    lease_owner   TEXT,
    lease_until   BIGINT,
    PRIMARY KEY (workflow_id, idx)
);

-- Where the agent reached the appliance (its base URL): images are served to it from there.
ALTER TABLE agents ADD COLUMN appliance_url TEXT;

-- Cluster membership (the clusters issue fills it): a member cannot be wiped or re-provisioned.
CREATE TABLE cluster_members (
    asset_id    TEXT PRIMARY KEY,
    cluster_id  TEXT NOT NULL
);

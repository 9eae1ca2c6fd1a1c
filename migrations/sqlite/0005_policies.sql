-- Policies: Rego modules evaluated before guarded actions (wipe, provision, delete, ...).
-- `vni_ids` is a JSON array of VNI ids: a bound policy applies only to inputs naming one of them.
-- It is deliberately not a foreign key: deleting a VNI must not silently turn a policy bound to it
-- into one that applies everywhere.
CREATE TABLE policies (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL,
    rego         TEXT NOT NULL,
    -- The Rego dialect the source parsed as: 'v1' (current) or 'v0' (rules without `if`).
    rego_version TEXT NOT NULL,
    enabled      INTEGER NOT NULL DEFAULT 1,
    priority     INTEGER NOT NULL,
    vni_ids      TEXT NOT NULL,
    generation   INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX policies_order ON policies(priority, name);

-- One row: bumped in the transaction of every policy change. Each appliance caches its compiled
-- policies keyed on this number and compares it (one indexed read) before each evaluation, so a
-- change made through any appliance sharing the database takes effect on the next decision.
CREATE TABLE policy_revision (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  INTEGER NOT NULL
);
INSERT INTO policy_revision (id, revision) VALUES (1, 0);

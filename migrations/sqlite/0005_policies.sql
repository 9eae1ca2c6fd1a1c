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
-- The policy cache is keyed on the `policies` row of `generations` (migration 0007).

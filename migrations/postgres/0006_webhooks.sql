-- Webhooks: subscriptions, an outbox of events written in the same transaction as the change
-- (audit::append), and one delivery row per (event, webhook) with its retry schedule and lease.
CREATE TABLE webhooks (
    id                    TEXT PRIMARY KEY,
    url                   TEXT NOT NULL,
    description           TEXT NOT NULL,
    -- JSON array of patterns: "*", "asset.*", "psk.rotated".
    events                TEXT NOT NULL,
    -- HMAC key, sealed with the master key (context "webhooks.secret:<id>").
    secret_sealed         BYTEA NOT NULL,
    enabled               BIGINT NOT NULL DEFAULT 1,
    disabled_reason       TEXT,
    consecutive_failures  BIGINT NOT NULL DEFAULT 0,
    generation            BIGINT NOT NULL DEFAULT 1,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);

CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    -- The JSON body every delivery of this event sends.
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- status: pending (due at next_attempt_at), delivered, failed (attempts exhausted).
-- A worker claims a due row by setting lease_until; a lease left behind by a killed process
-- expires and the row is claimed again.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES webhook_events(id),
    event            TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    lease_until      TEXT,
    lease_owner      TEXT,
    last_status_code BIGINT,
    last_error       TEXT,
    delivered_at     TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries(webhook_id, created_at);

-- Every attempt, for the delivery log.
CREATE TABLE webhook_attempts (
    delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt      BIGINT NOT NULL,
    at           TEXT NOT NULL,
    status_code  BIGINT,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- Pre-shared keys (NetKey shape). The value is sealed with the master key (context
-- "psks.value:<id>"); after a rotation the previous value stays sealed beside it until
-- previous_valid_until, then it is no longer valid (and is cleared at the next write).
CREATE TABLE psks (
    id                    TEXT PRIMARY KEY,
    psk_id                TEXT NOT NULL UNIQUE,
    value_sealed          BLOB NOT NULL,
    description           TEXT NOT NULL,
    -- A VNI's number (vnis.vni); checked by the application, which names the field when absent.
    vlan_id               INTEGER,
    expires               TEXT,
    enabled               INTEGER NOT NULL DEFAULT 1,
    previous_sealed       BLOB,
    previous_valid_until  TEXT,
    rotated_at            TEXT,
    generation            INTEGER NOT NULL DEFAULT 1,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX psks_vlan ON psks(vlan_id);
CREATE INDEX psks_order ON psks(created_at, id);

-- The boot timeline: every DHCP, TFTP and HTTP boot event per MAC (what was asked, what was
-- answered, why). Written in batches off the packet path; bounded by pruning (total rows and
-- rows per MAC). mac is NULL when the sender could not be tied to one (e.g. TFTP before ARP).
CREATE TABLE boot_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mac       TEXT,
    ip        TEXT,
    at        TEXT NOT NULL,
    source    TEXT NOT NULL,
    request   TEXT NOT NULL,
    response  TEXT NOT NULL,
    reason    TEXT NOT NULL
);
CREATE INDEX boot_events_mac ON boot_events (mac, id);

-- DHCP leases (full mode), per VNI and address. state: active (held by mac until expires_at),
-- released (free, remembered for the same client), declined (quarantined until expires_at,
-- mac is the client that declined). Written by group commit before the ACK leaves.
CREATE TABLE dhcp_leases (
    vni_id      TEXT NOT NULL,
    address     TEXT NOT NULL,
    mac         TEXT NOT NULL,
    client_id   TEXT,
    hostname    TEXT,
    state       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (vni_id, address)
);
CREATE INDEX dhcp_leases_mac ON dhcp_leases (mac);

-- Option 15 (domain name) handed to DHCP clients of a VNI.
ALTER TABLE vnis ADD COLUMN domain TEXT;

-- VNI and allocation writes bump this, so the DHCP server re-reads its segments only on change.
INSERT INTO generations (name, seq) VALUES ('vnis', 0);

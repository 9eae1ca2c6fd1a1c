-- Network segments (VNIs) and the addresses allocated in them (IPAM).
CREATE TABLE vnis (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    cidr         TEXT NOT NULL,
    vni          BIGINT NOT NULL UNIQUE,
    description  TEXT NOT NULL,
    status       TEXT NOT NULL,
    dhcp_start   TEXT,
    dhcp_end     TEXT,
    gateway      TEXT,
    dns_servers  TEXT NOT NULL,
    reserved     TEXT NOT NULL,
    generation   BIGINT NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- One row per held address: the primary key is what makes a double allocation impossible,
-- whatever the concurrency. No cascade: a VNI that holds addresses cannot be deleted.
CREATE TABLE ip_allocations (
    vni_id       TEXT NOT NULL REFERENCES vnis(id),
    address      TEXT NOT NULL,
    -- Fixed-width hex of the address (`4:0a000005`, `6:fd00…`): text order = numeric order.
    sort_key     TEXT NOT NULL,
    holder_type  TEXT NOT NULL,
    holder_id    TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (vni_id, address)
);
CREATE INDEX ip_allocations_order ON ip_allocations(vni_id, sort_key);
CREATE INDEX ip_allocations_holder ON ip_allocations(holder_type, holder_id);

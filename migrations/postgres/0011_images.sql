-- The images registry: OS images the agent writes to disks, either known by URL (ready at once)
-- or uploaded to the appliance (stored as <boot.images_dir>/library/<id>, served by the boot
-- routes at /images/library/<id>).
-- `sha256` / `size_bytes` describe the image as written to disk (decompressed: what the agent
-- verifies); `file_sha256` / `file_size_bytes` the stored bytes of an upload.
-- status: pending (waiting for its upload), uploading, ready, failed (`status_reason` says why).
-- An upload holds the row with `upload_owner` (a random token) and a lease in Unix milliseconds
-- that it renews every second; a lease left behind by a killed process expires and the image can
-- be uploaded again.
CREATE TABLE images (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    -- '' when the image has no version (so (name, version) stays unique without NULLs).
    version            TEXT NOT NULL,
    format             TEXT NOT NULL,
    source             TEXT NOT NULL,
    url                TEXT,
    size_bytes         BIGINT,
    sha256             TEXT,
    file_size_bytes    BIGINT,
    file_sha256        TEXT,
    status             TEXT NOT NULL,
    status_reason      TEXT,
    bytes_received     BIGINT NOT NULL DEFAULT 0,
    upload_owner       TEXT,
    upload_lease_until BIGINT,
    generation         BIGINT NOT NULL DEFAULT 1,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    created_by         TEXT,
    UNIQUE (name, version)
);
CREATE INDEX images_status ON images(status);

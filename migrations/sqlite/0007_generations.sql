-- A change counter per resource, bumped in the same transaction as every write to it: readers
-- that cache a rendered page compare one number instead of re-reading the rows. Correct across
-- appliances sharing one database, since the counter is committed with the change.
CREATE TABLE generations (
    name TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO generations (name, seq) VALUES ('assets', 0), ('policies', 0);

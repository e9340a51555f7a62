-- The host ids of containers with a private user namespace: the container's
-- ids 0..65535 are host ids host_id..host_id+65535. One row per container,
-- allocated in the transaction that inserts it and gone with it; no two
-- containers share a range (the allocator never overlaps them, and no two
-- rows may start at the same id). Every range has 65536 ids.
-- BIGINT: the store binds and decodes both as i64, and host_id + size
-- reaches 2^32.
CREATE TABLE userns_ranges (
    container_id TEXT PRIMARY KEY NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    host_id      BIGINT NOT NULL UNIQUE,
    size         BIGINT NOT NULL CHECK (size = 65536),
    CONSTRAINT userns_ranges_host_id_check
        CHECK (host_id > 0 AND host_id + size <= 4294967295)
);

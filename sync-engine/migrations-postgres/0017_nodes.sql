-- Nodes sharing one database (a cluster): each quiltd registers itself and
-- renews a lease; a container row names the node that runs it (NULL: the
-- only node). A `lost` state for the containers of a node whose lease ran
-- out. (SQLite rebuilds the containers table for the new CHECK.)
ALTER TABLE containers
    DROP CONSTRAINT containers_state_check,
    ADD CONSTRAINT containers_state_check
        CHECK (state IN ('created', 'starting', 'running', 'paused', 'exited', 'failed', 'removing', 'lost'));
ALTER TABLE containers ADD COLUMN node TEXT;
CREATE INDEX containers_by_node ON containers (node, state);

CREATE TABLE nodes (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    address     TEXT NOT NULL DEFAULT '',   -- HOST:PORT of its node-to-node listener
    cpus        DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (cpus >= 0),
    memory_mb   BIGINT NOT NULL DEFAULT 0 CHECK (memory_mb >= 0),
    labels      TEXT NOT NULL DEFAULT '{}', -- JSON object
    state       TEXT NOT NULL CHECK (state IN ('up', 'down')),
    started_at  BIGINT NOT NULL,            -- unix nanoseconds (the database's clock)
    renewed_at  BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
);

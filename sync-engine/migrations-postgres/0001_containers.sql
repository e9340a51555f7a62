-- PostgreSQL twin of migrations/0001_containers.sql (same version, same
-- resulting schema). Types follow what the store binds and decodes:
-- i64 -> BIGINT, i32 -> INTEGER, bool -> BOOLEAN, f64 -> DOUBLE PRECISION.
-- Containers: one row per container, the source of truth for every status query.
CREATE TABLE containers (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL UNIQUE,
    image           TEXT NOT NULL,
    command         TEXT NOT NULL,              -- JSON array: the argv, exactly
    env             TEXT NOT NULL,              -- JSON array of "K=V" given by the user
    working_dir     TEXT NOT NULL,
    hostname        TEXT NOT NULL,
    memory_mb       BIGINT NOT NULL DEFAULT 0 CHECK (memory_mb >= 0),
    cpus            DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (cpus >= 0),
    pids_limit      BIGINT NOT NULL DEFAULT 0 CHECK (pids_limit >= 0),
    network         TEXT NOT NULL CHECK (network IN ('none', 'host')),
    auto_remove     BOOLEAN NOT NULL DEFAULT FALSE,
    autostart       BOOLEAN NOT NULL DEFAULT FALSE, -- start requested, not yet attempted
    -- Named: 0010_paused_state replaces it.
    state           TEXT NOT NULL CONSTRAINT containers_state_check
                    CHECK (state IN ('created', 'starting', 'running', 'exited', 'failed', 'removing')),
    pid             INTEGER,                    -- host pid of the container's PID 1
    shim_pid        INTEGER,                    -- the supervisor's pid
    shim_start_time BIGINT,                     -- guards adoption against pid reuse
    exit_code       INTEGER,
    exit_signal     INTEGER,
    oom_killed      BOOLEAN NOT NULL DEFAULT FALSE,
    failure_reason  TEXT,
    created_at      BIGINT NOT NULL,            -- unix nanoseconds
    started_at      BIGINT,
    finished_at     BIGINT
);

CREATE INDEX containers_by_state ON containers (state);

-- Labels, one row each, removed with their container.
CREATE TABLE labels (
    container_id TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (container_id, key)
);

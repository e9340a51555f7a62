-- A `paused` state (cgroup freezer). SQLite cannot change a CHECK constraint
-- in place, so the containers table is rebuilt. The migration runs in a
-- transaction with foreign keys on, where dropping `containers` would
-- cascade into the tables that reference it: those (labels, execs,
-- userns_ranges) are rebuilt too, pointing at the new table, and the old
-- ones are dropped children first. Renaming `containers_new` to
-- `containers` then rewrites their references to the final name.
CREATE TABLE containers_new (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL UNIQUE,
    image           TEXT NOT NULL,
    command         TEXT NOT NULL,              -- JSON array: the argv, exactly
    env             TEXT NOT NULL,              -- JSON array of "K=V" given by the user
    working_dir     TEXT NOT NULL,
    hostname        TEXT NOT NULL,
    memory_mb       INTEGER NOT NULL DEFAULT 0 CHECK (memory_mb >= 0),
    cpus            REAL    NOT NULL DEFAULT 0 CHECK (cpus >= 0),
    pids_limit      INTEGER NOT NULL DEFAULT 0 CHECK (pids_limit >= 0),
    network         TEXT NOT NULL CHECK (network IN ('none', 'host')),
    auto_remove     INTEGER NOT NULL DEFAULT 0,
    autostart       INTEGER NOT NULL DEFAULT 0, -- start requested, not yet attempted
    state           TEXT NOT NULL CHECK (state IN ('created', 'starting', 'running', 'paused', 'exited', 'failed', 'removing')),
    pid             INTEGER,                    -- host pid of the container's PID 1
    shim_pid        INTEGER,                    -- the supervisor's pid
    shim_start_time INTEGER,                    -- guards adoption against pid reuse
    exit_code       INTEGER,
    exit_signal     INTEGER,
    oom_killed      INTEGER NOT NULL DEFAULT 0,
    failure_reason  TEXT,
    created_at      INTEGER NOT NULL,           -- unix nanoseconds
    started_at      INTEGER,
    finished_at     INTEGER,
    init            INTEGER NOT NULL DEFAULT 0,
    mounts          TEXT NOT NULL DEFAULT '[]',
    security        TEXT NOT NULL DEFAULT '{}',
    disk_bytes      INTEGER NOT NULL DEFAULT 0 CHECK (disk_bytes >= 0)
);

INSERT INTO containers_new (id, name, image, command, env, working_dir, hostname,
    memory_mb, cpus, pids_limit, network, auto_remove, autostart, state, pid, shim_pid,
    shim_start_time, exit_code, exit_signal, oom_killed, failure_reason, created_at,
    started_at, finished_at, init, mounts, security, disk_bytes)
SELECT id, name, image, command, env, working_dir, hostname,
    memory_mb, cpus, pids_limit, network, auto_remove, autostart, state, pid, shim_pid,
    shim_start_time, exit_code, exit_signal, oom_killed, failure_reason, created_at,
    started_at, finished_at, init, mounts, security, disk_bytes
FROM containers;

CREATE TABLE labels_new (
    container_id TEXT NOT NULL REFERENCES containers_new (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (container_id, key)
);
INSERT INTO labels_new (container_id, key, value) SELECT container_id, key, value FROM labels;

CREATE TABLE execs_new (
    id                TEXT PRIMARY KEY NOT NULL,
    container_id      TEXT NOT NULL REFERENCES containers_new (id) ON DELETE CASCADE,
    command           TEXT NOT NULL,            -- JSON array: the argv
    tty               INTEGER NOT NULL DEFAULT 0,
    started_at        INTEGER NOT NULL,         -- unix nanoseconds
    helper_pid        INTEGER NOT NULL,
    helper_start_time INTEGER NOT NULL,
    exit_code         INTEGER,
    exit_signal       INTEGER,
    oom_killed        INTEGER NOT NULL DEFAULT 0,
    finished_at       INTEGER
);
INSERT INTO execs_new (id, container_id, command, tty, started_at, helper_pid,
    helper_start_time, exit_code, exit_signal, oom_killed, finished_at)
SELECT id, container_id, command, tty, started_at, helper_pid,
    helper_start_time, exit_code, exit_signal, oom_killed, finished_at
FROM execs;

CREATE TABLE userns_ranges_new (
    container_id TEXT PRIMARY KEY NOT NULL REFERENCES containers_new (id) ON DELETE CASCADE,
    host_id      INTEGER NOT NULL UNIQUE CHECK (host_id > 0 AND host_id + size <= 4294967295),
    size         INTEGER NOT NULL CHECK (size = 65536)
);
INSERT INTO userns_ranges_new (container_id, host_id, size)
SELECT container_id, host_id, size FROM userns_ranges;

-- Children first: nothing references `containers` any more when it goes.
DROP TABLE labels;
DROP TABLE execs;
DROP TABLE userns_ranges;
DROP TABLE containers;

ALTER TABLE containers_new RENAME TO containers;
ALTER TABLE labels_new RENAME TO labels;
ALTER TABLE execs_new RENAME TO execs;
ALTER TABLE userns_ranges_new RENAME TO userns_ranges;

CREATE INDEX containers_by_image ON containers (image);
CREATE INDEX containers_by_created ON containers (created_at, id);
CREATE INDEX containers_by_state_created ON containers (state, created_at, id);
CREATE INDEX labels_by_key_value ON labels (key, value, container_id);
CREATE INDEX execs_by_container ON execs (container_id);

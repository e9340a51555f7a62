-- Nodes sharing one database (a cluster): each quiltd registers itself and
-- renews a lease; a container row names the node that runs it (NULL: the
-- only node, as before clusters). A `lost` state for the containers of a
-- node whose lease ran out.
--
-- SQLite cannot change a CHECK constraint in place, so the containers table
-- is rebuilt as 0010 did: the migration runs in a transaction with foreign
-- keys on, where dropping `containers` would cascade into the tables that
-- reference it, so those (labels, execs, userns_ranges, ip_allocations,
-- port_bindings, netns_slots) are rebuilt too, pointing at the new table,
-- and the old ones are dropped children first. Renaming `containers_new`
-- to `containers` then rewrites their references to the final name.
CREATE TABLE containers_new (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL UNIQUE,
    image           TEXT NOT NULL,
    command         TEXT NOT NULL,
    env             TEXT NOT NULL,
    working_dir     TEXT NOT NULL,
    hostname        TEXT NOT NULL,
    memory_mb       INTEGER NOT NULL DEFAULT 0 CHECK (memory_mb >= 0),
    cpus            REAL    NOT NULL DEFAULT 0 CHECK (cpus >= 0),
    pids_limit      INTEGER NOT NULL DEFAULT 0 CHECK (pids_limit >= 0),
    network         TEXT NOT NULL CHECK (network IN ('none', 'host')),
    auto_remove     INTEGER NOT NULL DEFAULT 0,
    autostart       INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL CHECK (state IN ('created', 'starting', 'running', 'paused', 'exited', 'failed', 'removing', 'lost')),
    pid             INTEGER,
    shim_pid        INTEGER,
    shim_start_time INTEGER,
    exit_code       INTEGER,
    exit_signal     INTEGER,
    oom_killed      INTEGER NOT NULL DEFAULT 0,
    failure_reason  TEXT,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER,
    init            INTEGER NOT NULL DEFAULT 0,
    mounts          TEXT NOT NULL DEFAULT '[]',
    security        TEXT NOT NULL DEFAULT '{}',
    disk_bytes      INTEGER NOT NULL DEFAULT 0 CHECK (disk_bytes >= 0),
    restart_policy  TEXT NOT NULL DEFAULT 'no'
        CHECK (restart_policy IN ('no', 'on-failure', 'always', 'unless-stopped')),
    restart_max     INTEGER NOT NULL DEFAULT 0 CHECK (restart_max >= 0),
    restart_count   INTEGER NOT NULL DEFAULT 0 CHECK (restart_count >= 0),
    manual_stop     INTEGER NOT NULL DEFAULT 0,
    ttl_ns          INTEGER NOT NULL DEFAULT 0 CHECK (ttl_ns >= 0),
    expires_at      INTEGER,
    idle_timeout_ns INTEGER NOT NULL DEFAULT 0 CHECK (idle_timeout_ns >= 0),
    idle_action     TEXT NOT NULL DEFAULT 'stop' CHECK (idle_action IN ('stop', 'pause')),
    last_activity   INTEGER,
    net             TEXT NOT NULL DEFAULT '{}',
    egress          TEXT,
    stdio           TEXT,
    node            TEXT                        -- the node that runs it; NULL: the only one
);
INSERT INTO containers_new (id, name, image, command, env, working_dir, hostname,
    memory_mb, cpus, pids_limit, network, auto_remove, autostart, state, pid, shim_pid,
    shim_start_time, exit_code, exit_signal, oom_killed, failure_reason, created_at,
    started_at, finished_at, init, mounts, security, disk_bytes, restart_policy, restart_max,
    restart_count, manual_stop, ttl_ns, expires_at, idle_timeout_ns, idle_action,
    last_activity, net, egress, stdio)
SELECT id, name, image, command, env, working_dir, hostname,
    memory_mb, cpus, pids_limit, network, auto_remove, autostart, state, pid, shim_pid,
    shim_start_time, exit_code, exit_signal, oom_killed, failure_reason, created_at,
    started_at, finished_at, init, mounts, security, disk_bytes, restart_policy, restart_max,
    restart_count, manual_stop, ttl_ns, expires_at, idle_timeout_ns, idle_action,
    last_activity, net, egress, stdio
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
    command           TEXT NOT NULL,
    tty               INTEGER NOT NULL DEFAULT 0,
    started_at        INTEGER NOT NULL,
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

CREATE TABLE ip_allocations_new (
    network      TEXT NOT NULL REFERENCES networks (name),
    address      INTEGER NOT NULL,
    container_id TEXT NOT NULL UNIQUE REFERENCES containers_new (id) ON DELETE CASCADE,
    PRIMARY KEY (network, address)
);
INSERT INTO ip_allocations_new (network, address, container_id)
SELECT network, address, container_id FROM ip_allocations;

CREATE TABLE port_bindings_new (
    container_id   TEXT NOT NULL REFERENCES containers_new (id) ON DELETE CASCADE,
    host_ip        TEXT NOT NULL,
    host_port      INTEGER NOT NULL CHECK (host_port > 0 AND host_port < 65536),
    proto          TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
    container_port INTEGER NOT NULL CHECK (container_port > 0 AND container_port < 65536),
    PRIMARY KEY (proto, host_port, host_ip)
);
INSERT INTO port_bindings_new (container_id, host_ip, host_port, proto, container_port)
SELECT container_id, host_ip, host_port, proto, container_port FROM port_bindings;

CREATE TABLE netns_slots_new (
    container_id TEXT PRIMARY KEY NOT NULL REFERENCES containers_new (id) ON DELETE CASCADE,
    slot         TEXT NOT NULL UNIQUE,
    tainted      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO netns_slots_new (container_id, slot, tainted)
SELECT container_id, slot, tainted FROM netns_slots;

-- Children first: nothing references `containers` any more when it goes.
DROP TABLE labels;
DROP TABLE execs;
DROP TABLE userns_ranges;
DROP TABLE ip_allocations;
DROP TABLE port_bindings;
DROP TABLE netns_slots;
DROP TABLE containers;

ALTER TABLE containers_new RENAME TO containers;
ALTER TABLE labels_new RENAME TO labels;
ALTER TABLE execs_new RENAME TO execs;
ALTER TABLE userns_ranges_new RENAME TO userns_ranges;
ALTER TABLE ip_allocations_new RENAME TO ip_allocations;
ALTER TABLE port_bindings_new RENAME TO port_bindings;
ALTER TABLE netns_slots_new RENAME TO netns_slots;

CREATE INDEX containers_by_image ON containers (image);
CREATE INDEX containers_by_created ON containers (created_at, id);
CREATE INDEX containers_by_state_created ON containers (state, created_at, id);
CREATE INDEX containers_by_node ON containers (node, state);
CREATE INDEX labels_by_key_value ON labels (key, value, container_id);
CREATE INDEX execs_by_container ON execs (container_id);
CREATE INDEX port_bindings_by_container ON port_bindings (container_id);

CREATE TABLE nodes (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    address     TEXT NOT NULL DEFAULT '',   -- HOST:PORT of its node-to-node listener
    cpus        REAL NOT NULL DEFAULT 0 CHECK (cpus >= 0),
    memory_mb   INTEGER NOT NULL DEFAULT 0 CHECK (memory_mb >= 0),
    labels      TEXT NOT NULL DEFAULT '{}', -- JSON object
    state       TEXT NOT NULL CHECK (state IN ('up', 'down')),
    started_at  INTEGER NOT NULL,           -- unix nanoseconds
    renewed_at  INTEGER NOT NULL,
    lease_until INTEGER NOT NULL
);

-- Detached execs, which outlive the daemon: their helper (pid and start
-- time guard against pid reuse) and, once it ended, how the command exited.
-- Output and exit are also framed in DATA/containers/<cid>/execs/<id>.log.
CREATE TABLE execs (
    id                TEXT PRIMARY KEY NOT NULL,
    container_id      TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
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

CREATE INDEX execs_by_container ON execs (container_id);

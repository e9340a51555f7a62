-- Detached execs, which outlive the daemon: their helper (pid and start
-- time guard against pid reuse) and, once it ended, how the command exited.
-- Output and exit are also framed in DATA/containers/<cid>/execs/<id>.log.
CREATE TABLE execs (
    id                TEXT PRIMARY KEY NOT NULL,
    container_id      TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    command           TEXT NOT NULL,            -- JSON array: the argv
    tty               BOOLEAN NOT NULL DEFAULT FALSE,
    started_at        BIGINT NOT NULL,          -- unix nanoseconds
    helper_pid        INTEGER NOT NULL,
    helper_start_time BIGINT NOT NULL,
    exit_code         INTEGER,
    exit_signal       INTEGER,
    oom_killed        BOOLEAN NOT NULL DEFAULT FALSE,
    finished_at       BIGINT
);

CREATE INDEX execs_by_container ON execs (container_id);

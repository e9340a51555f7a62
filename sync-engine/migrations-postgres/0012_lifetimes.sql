-- Lifetimes: a TTL counted from the start (expires_at: its deadline, unix
-- nanoseconds, set when the container runs and moved by UpdateLifetime)
-- and an idle timeout counted from the last exec, attach, logs follow or
-- copy (last_activity), with what it does: stop or pause.
ALTER TABLE containers ADD COLUMN ttl_ns BIGINT NOT NULL DEFAULT 0 CHECK (ttl_ns >= 0);
ALTER TABLE containers ADD COLUMN expires_at BIGINT;
ALTER TABLE containers ADD COLUMN idle_timeout_ns BIGINT NOT NULL DEFAULT 0 CHECK (idle_timeout_ns >= 0);
ALTER TABLE containers ADD COLUMN idle_action TEXT NOT NULL DEFAULT 'stop'
    CHECK (idle_action IN ('stop', 'pause'));
ALTER TABLE containers ADD COLUMN last_activity BIGINT;

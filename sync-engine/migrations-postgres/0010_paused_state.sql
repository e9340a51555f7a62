-- A `paused` state (cgroup freezer). SQLite rebuilds the containers table
-- (and the tables that reference it) to change the CHECK; PostgreSQL
-- replaces the named constraint in place, leaving rows, references and
-- indexes as they are. The result is the same schema.
ALTER TABLE containers
    DROP CONSTRAINT containers_state_check,
    ADD CONSTRAINT containers_state_check
        CHECK (state IN ('created', 'starting', 'running', 'paused', 'exited', 'failed', 'removing'));

-- Restart policies: the policy and its maximum (on-failure:N), the restarts
-- made since the user last started the container, and whether the user
-- stopped it (a policy never undoes a stop).
ALTER TABLE containers ADD COLUMN restart_policy TEXT NOT NULL DEFAULT 'no'
    CHECK (restart_policy IN ('no', 'on-failure', 'always', 'unless-stopped'));
ALTER TABLE containers ADD COLUMN restart_max BIGINT NOT NULL DEFAULT 0 CHECK (restart_max >= 0);
ALTER TABLE containers ADD COLUMN restart_count BIGINT NOT NULL DEFAULT 0 CHECK (restart_count >= 0);
ALTER TABLE containers ADD COLUMN manual_stop BOOLEAN NOT NULL DEFAULT FALSE;

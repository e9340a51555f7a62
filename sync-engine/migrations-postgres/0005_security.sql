-- Containment options of a container (user, capabilities, ulimits, seccomp,
-- devices, GPUs, user namespace), as JSON, and its disk budget in bytes.
ALTER TABLE containers ADD COLUMN security TEXT NOT NULL DEFAULT '{}';
ALTER TABLE containers ADD COLUMN disk_bytes BIGINT NOT NULL DEFAULT 0 CHECK (disk_bytes >= 0);

-- Containers may run a minimal init as PID 1 (reaps zombies, forwards signals).
ALTER TABLE containers ADD COLUMN init BOOLEAN NOT NULL DEFAULT FALSE;

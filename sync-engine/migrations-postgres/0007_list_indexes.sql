-- ListContainers: newest first (created_at, then id, both descending),
-- walked page by page from the last row of the previous page, optionally
-- by state and by label. (state, created_at, id) also serves every lookup
-- by state that containers_by_state served.
DROP INDEX containers_by_state;
CREATE INDEX containers_by_created ON containers (created_at, id);
CREATE INDEX containers_by_state_created ON containers (state, created_at, id);
CREATE INDEX labels_by_key_value ON labels (key, value, container_id);

-- A container's network namespace slot lives in its row (NULL: none),
-- where it had a table of its own: a warm pool's container records it
-- with its change to `starting`, in the same statement. Unique, as the
-- table's column was; it goes with the row, as the table's did.
ALTER TABLE containers ADD COLUMN netns_slot TEXT;
ALTER TABLE containers ADD COLUMN netns_tainted BOOLEAN NOT NULL DEFAULT FALSE;

UPDATE containers c
SET netns_slot = s.slot, netns_tainted = s.tainted
FROM netns_slots s
WHERE s.container_id = c.id;

CREATE UNIQUE INDEX containers_by_netns_slot ON containers (netns_slot);

DROP TABLE netns_slots;

-- A container's network namespace slot lives in its row (NULL: none),
-- where it had a table of its own: a warm pool's container records it
-- with its change to `starting`, in the same statement. Unique, as the
-- table's column was; it goes with the row, as the table's did.
ALTER TABLE containers ADD COLUMN netns_slot TEXT;
ALTER TABLE containers ADD COLUMN netns_tainted INTEGER NOT NULL DEFAULT 0;

UPDATE containers
SET netns_slot = (SELECT s.slot FROM netns_slots s WHERE s.container_id = containers.id),
    netns_tainted = COALESCE(
        (SELECT s.tainted FROM netns_slots s WHERE s.container_id = containers.id), 0)
WHERE EXISTS (SELECT 1 FROM netns_slots s WHERE s.container_id = containers.id);

CREATE UNIQUE INDEX containers_by_netns_slot ON containers (netns_slot);

DROP TABLE netns_slots;

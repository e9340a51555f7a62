-- The state a container's row was in when its removal was last recorded:
-- the removal's one UPDATE sets it from the old row and returns it, where
-- a transaction with a SELECT before it cost three more round trips to the
-- database on every removal.
ALTER TABLE containers ADD COLUMN removing_from TEXT;

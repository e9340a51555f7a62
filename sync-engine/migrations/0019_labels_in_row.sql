-- A container's labels live in its row, as a JSON object (NULL: none):
-- a row is read, and a labelled create written, without a second table.
-- The labels table stays the index that label filters use; the trigger
-- below fills it in the same statement as the row's INSERT, so a create
-- writes both atomically in one statement. Labels never change after the
-- create. (A migration that rebuilds the containers table must create
-- this trigger again.)
ALTER TABLE containers ADD COLUMN labels TEXT;

UPDATE containers
SET labels = (SELECT json_group_object(l.key, l.value) FROM labels l WHERE l.container_id = containers.id)
WHERE EXISTS (SELECT 1 FROM labels l WHERE l.container_id = containers.id);

CREATE TRIGGER containers_index_labels AFTER INSERT ON containers
WHEN NEW.labels IS NOT NULL
BEGIN
    INSERT INTO labels (container_id, key, value)
    SELECT NEW.id, j.key, j.value FROM json_each(NEW.labels) j;
END;

-- A container's labels live in its row, as a JSON object (NULL: none):
-- a row is read, and a labelled create written, without a second table.
-- The labels table stays the index that label filters use; the trigger
-- below fills it in the same statement as the row's INSERT, so a create
-- writes both atomically in one statement. Labels never change after the
-- create.
ALTER TABLE containers ADD COLUMN labels TEXT;

UPDATE containers c
SET labels = (SELECT json_object_agg(l.key, l.value)::text FROM labels l WHERE l.container_id = c.id)
WHERE EXISTS (SELECT 1 FROM labels l WHERE l.container_id = c.id);

CREATE FUNCTION quilt_index_labels() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO labels (container_id, key, value)
    SELECT NEW.id, j.key, j.value FROM json_each_text(NEW.labels::json) j;
    RETURN NULL;
END
$$;

CREATE TRIGGER containers_index_labels AFTER INSERT ON containers
FOR EACH ROW WHEN (NEW.labels IS NOT NULL)
EXECUTE FUNCTION quilt_index_labels();

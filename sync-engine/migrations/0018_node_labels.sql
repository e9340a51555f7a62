-- The node labels a container asked for (--node-label), as a JSON object;
-- NULL: none. Kept so that a container placed again (its node went down)
-- goes to a node that has them too.
ALTER TABLE containers ADD COLUMN node_labels TEXT;

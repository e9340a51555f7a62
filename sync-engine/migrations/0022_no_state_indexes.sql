-- Every change of a container's state rewrote two index entries besides
-- its row: (state, created_at, id) and (node, state), each often on a
-- page of its own, so a state change wrote about five pages to the WAL.
-- On SQLite neither is read: listings come from the in-memory index
-- (`store/index.rs`), a daemon of its own has no nodes, and the few other
-- queries by state run rarely over the whole table. PostgreSQL, whose
-- listings and cluster queries use them, keeps both.
DROP INDEX containers_by_state_created;
DROP INDEX containers_by_node;

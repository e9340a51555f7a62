-- Named volumes: data at DATA_DIR/volumes/<name>/data, removed only by RemoveVolume.
CREATE TABLE volumes (
    name       TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,           -- unix nanoseconds
    labels     TEXT NOT NULL DEFAULT '{}' -- JSON object
);

-- The mounts of a container (volumes, bind mounts, tmpfs), as a JSON array.
ALTER TABLE containers ADD COLUMN mounts TEXT NOT NULL DEFAULT '[]';

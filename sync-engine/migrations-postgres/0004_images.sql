-- The local image store: one row per image (its files are at
-- DATA_DIR/images/sha256-<hex>/rootfs), and the names that point at images.
CREATE TABLE images (
    id         TEXT PRIMARY KEY NOT NULL,   -- "sha256:<hex>"
    source     TEXT NOT NULL,               -- rootfs-tar, rootfs-dir, docker-save, oci-layout, host-build
    layers     TEXT NOT NULL DEFAULT '[]',  -- JSON array of layer digests, bottom first
    size_bytes BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL              -- unix nanoseconds
);

CREATE TABLE image_names (
    name     TEXT PRIMARY KEY NOT NULL,
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE
);

CREATE INDEX image_names_by_image ON image_names (image_id);
CREATE INDEX containers_by_image ON containers (image);

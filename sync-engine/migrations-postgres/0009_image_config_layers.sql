-- Image configuration (what an image asks its containers to run with) and
-- the content-addressed layer store: one row per layer unpacked under
-- DATA_DIR/images/layers, and which images use which layers (a layer no
-- image uses is removed with the last image that did).
ALTER TABLE images ADD COLUMN config TEXT NOT NULL DEFAULT '{}';

CREATE TABLE layers (
    digest     TEXT PRIMARY KEY NOT NULL,  -- "sha256:<hex>" of the stored blob
    size_bytes BIGINT NOT NULL DEFAULT 0,  -- bytes of its unpacked files
    created_at BIGINT NOT NULL             -- unix nanoseconds
);

CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,              -- 0 = bottom
    digest   TEXT NOT NULL REFERENCES layers (digest),
    PRIMARY KEY (image_id, position)
);

CREATE INDEX image_layers_by_digest ON image_layers (digest);

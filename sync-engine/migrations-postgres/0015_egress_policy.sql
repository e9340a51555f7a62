-- A container's egress policy (bridge networks only) as JSON:
-- {"default_deny": bool, "allow": [...], "deny": [...]}, entries in
-- canonical form. NULL: no policy (the always-on deny set only).
ALTER TABLE containers ADD COLUMN egress TEXT;

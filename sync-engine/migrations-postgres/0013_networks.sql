-- Networks of this daemon (the default one, `bridge`, included): each has
-- a bridge in quiltd's network namespace and an IPv4 subnet, no two of
-- which overlap (checked by the engine).
CREATE TABLE networks (
    name       TEXT PRIMARY KEY NOT NULL,
    id         TEXT NOT NULL UNIQUE,
    bridge     TEXT NOT NULL UNIQUE,
    subnet     TEXT NOT NULL UNIQUE,           -- canonical CIDR, e.g. 10.89.0.0/24
    internal   BOOLEAN NOT NULL DEFAULT FALSE, -- no egress
    created_at BIGINT NOT NULL                 -- unix nanoseconds
);

-- IPAM: one address per container on a bridge network, allocated in the
-- transaction that inserts the container, released with its row.
CREATE TABLE ip_allocations (
    network      TEXT NOT NULL REFERENCES networks (name),
    address      BIGINT NOT NULL,              -- IPv4 as a number
    container_id TEXT NOT NULL UNIQUE REFERENCES containers (id) ON DELETE CASCADE,
    PRIMARY KEY (network, address)
);

-- Published ports: a host port is this daemon's once (checked for
-- overlaps with 0.0.0.0 by the engine), from create to removal.
CREATE TABLE port_bindings (
    container_id   TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    host_ip        TEXT NOT NULL,
    host_port      BIGINT NOT NULL CHECK (host_port > 0 AND host_port < 65536),
    proto          TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
    container_port BIGINT NOT NULL CHECK (container_port > 0 AND container_port < 65536),
    PRIMARY KEY (proto, host_port, host_ip)
);
CREATE INDEX port_bindings_by_container ON port_bindings (container_id);

-- The network namespace (a pool slot, DATA/netns/<slot>) a container
-- holds from its first start to its removal. `tainted`: another container
-- joined it, so it is destroyed rather than reused.
CREATE TABLE netns_slots (
    container_id TEXT PRIMARY KEY NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    slot         TEXT NOT NULL UNIQUE,
    tainted      BOOLEAN NOT NULL DEFAULT FALSE
);

-- A container's network settings (network, address, ports, DNS, extra
-- hosts) as JSON; `network` stays 'none' for every private namespace.
ALTER TABLE containers ADD COLUMN net TEXT NOT NULL DEFAULT '{}';

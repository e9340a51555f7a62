//! Networks, the IPAM (one address per container on a bridge network,
//! allocated in the transaction that inserts the container, released with
//! its row), published ports, and the network namespace each container
//! holds.
use super::{Conn, Db, DbRow, dialect};
use crate::error::{EngineError, Result};
use crate::model::{Container, NetSettings, Network, NetworkInfo};
use crate::store::{SqlStore, json};
use quilt_network::{PortBinding, Subnet};
use sqlx::{Connection, Row};
use std::net::Ipv4Addr;
use std::sync::LazyLock;

/// Gives a container on a bridge network its address and records its
/// published ports (inside the insert's transaction). Returns its network
/// settings as stored.
pub(super) async fn attach_in_tx(conn: &mut Conn, c: &Container) -> Result<NetSettings> {
    let mut net = c.net.clone();
    if c.network != Network::Bridge {
        insert_ports(conn, c, &net.ports).await?;
        return Ok(net);
    }
    let row = sqlx::query("SELECT subnet, internal FROM networks WHERE name = $1")
        .bind(&net.network)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no such network: {}", net.network)))?;
    let subnet = Subnet::parse(&row.try_get::<String, _>("subnet")?)
        .map_err(|e| EngineError::Internal(format!("corrupt network row: {e}")))?;
    if row.try_get::<bool, _>("internal")? && !net.ports.is_empty() {
        return Err(EngineError::InvalidArgument(format!(
            "network {} is internal: its containers cannot publish ports",
            net.network
        )));
    }
    let (lo, hi) = subnet.host_range();
    let free: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(a.address + 1) FROM \
           (SELECT $2 - 1 AS address UNION ALL SELECT address FROM ip_allocations WHERE network = $1) a \
         WHERE a.address + 1 BETWEEN $2 AND $3 \
           AND NOT EXISTS (SELECT 1 FROM ip_allocations b WHERE b.network = $1 AND b.address = a.address + 1)",
    )
    .bind(&net.network)
    .bind(i64::from(lo))
    .bind(i64::from(hi))
    .fetch_one(&mut *conn)
    .await?;
    let Some(addr) = free else {
        return Err(EngineError::ResourceExhausted(format!(
            "network {} has no free address left in {subnet}",
            net.network
        )));
    };
    sqlx::query("INSERT INTO ip_allocations (network, address, container_id) VALUES ($1, $2, $3)")
        .bind(&net.network)
        .bind(addr)
        .bind(&c.id)
        .execute(&mut *conn)
        .await?;
    net.address = Some(Ipv4Addr::from(
        u32::try_from(addr).expect("inside an IPv4 subnet"),
    ));
    net.prefix = subnet.prefix();
    net.gateway = Some(subnet.gateway());
    insert_ports(conn, c, &net.ports).await?;
    sqlx::query("UPDATE containers SET net = $1 WHERE id = $2")
        .bind(json(&net))
        .bind(&c.id)
        .execute(&mut *conn)
        .await?;
    Ok(net)
}

async fn insert_ports(conn: &mut Conn, c: &Container, ports: &[PortBinding]) -> Result<()> {
    for p in ports {
        let ip = p.host_ip.to_string();
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT c.name FROM port_bindings p JOIN containers c ON c.id = p.container_id \
             WHERE p.proto = $1 AND p.host_port = $2 \
               AND (p.host_ip = $3 OR p.host_ip = '0.0.0.0' OR $3 = '0.0.0.0') LIMIT 1",
        )
        .bind(p.proto.as_str())
        .bind(i64::from(p.host_port))
        .bind(&ip)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(owner) = taken {
            return Err(EngineError::FailedPrecondition(format!(
                "port {ip}:{}/{} is already published by container {owner}",
                p.host_port,
                p.proto.as_str()
            )));
        }
        sqlx::query(
            "INSERT INTO port_bindings (container_id, host_ip, host_port, proto, container_port) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&c.id)
        .bind(&ip)
        .bind(i64::from(p.host_port))
        .bind(p.proto.as_str())
        .bind(i64::from(p.container_port))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn network_from(r: &DbRow) -> Result<NetworkInfo> {
    let subnet: String = r.try_get("subnet")?;
    let members: Option<String> = r.try_get("members")?;
    Ok(NetworkInfo {
        name: r.try_get("name")?,
        id: r.try_get("id")?,
        bridge: r.try_get("bridge")?,
        subnet: Subnet::parse(&subnet)
            .map_err(|e| EngineError::Internal(format!("corrupt network row: {e}")))?,
        internal: r.try_get("internal")?,
        created_at_ns: r.try_get("created_at")?,
        containers: match members {
            Some(m) if !m.is_empty() => serde_json::from_str(&m)
                .map_err(|_| EngineError::Internal("corrupt network members".into()))?,
            _ => Vec::new(),
        },
    })
}

static NETWORK_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "n.name, n.id, n.bridge, n.subnet, n.internal, n.created_at, \
         (SELECT {} FROM ip_allocations a WHERE a.network = n.name) AS members",
        dialect::json_array_agg("a.container_id")
    )
});

impl SqlStore<Db> {
    /// Every network, by name.
    pub async fn networks(&self) -> Result<Vec<NetworkInfo>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM networks n ORDER BY n.name",
            *NETWORK_COLUMNS
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(network_from).collect()
    }

    pub async fn network(&self, name: &str) -> Result<Option<NetworkInfo>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM networks n WHERE n.name = $1",
            *NETWORK_COLUMNS
        ))
        .bind(name)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(network_from).transpose()
    }

    /// Stores a network; refused when its name is taken or its subnet
    /// overlaps another network's (checked in the same transaction).
    pub async fn network_insert(&self, n: &NetworkInfo) -> Result<()> {
        db_write!(self, |conn| {
            let mut tx = conn.begin().await?;
            let rows = sqlx::query("SELECT name, subnet FROM networks")
                .fetch_all(&mut *tx)
                .await?;
            for r in rows {
                let name: String = r.try_get("name")?;
                if name == n.name {
                    return Err(EngineError::AlreadyExists(format!(
                        "network {} already exists",
                        n.name
                    )));
                }
                let other = Subnet::parse(&r.try_get::<String, _>("subnet")?)
                    .map_err(|e| EngineError::Internal(format!("corrupt network row: {e}")))?;
                if other.overlaps(&n.subnet) {
                    return Err(EngineError::FailedPrecondition(format!(
                        "subnet {} overlaps {other} of network {name}",
                        n.subnet
                    )));
                }
            }
            sqlx::query(
                "INSERT INTO networks (name, id, bridge, subnet, internal, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&n.name)
            .bind(&n.id)
            .bind(&n.bridge)
            .bind(n.subnet.to_string())
            .bind(n.internal)
            .bind(n.created_at_ns)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a network no container uses (refused otherwise).
    pub async fn network_delete(&self, name: &str) -> Result<()> {
        db_write!(self, |conn| {
            let mut tx = conn.begin().await?;
            let users: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT c.name FROM containers c WHERE {} = $1 ORDER BY c.name LIMIT 5",
                dialect::json_text("c.net", &["network"])
            ))
            .bind(name)
            .fetch_all(&mut *tx)
            .await?;
            if !users.is_empty() {
                return Err(EngineError::FailedPrecondition(format!(
                    "network {name} is in use by {}: remove those containers first",
                    users.join(", ")
                )));
            }
            let done = sqlx::query("DELETE FROM networks WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(EngineError::NotFound(format!("no such network: {name}")));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records the network namespace (pool slot) a container holds.
    /// Replaces a container's egress policy (None: none). False when the
    /// container is gone.
    pub async fn egress_set(
        &self,
        id: &str,
        policy: Option<&quilt_network::EgressPolicy>,
    ) -> Result<bool> {
        let text = policy
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| EngineError::Internal(format!("egress policy: {e}")))?;
        db_write!(self, |conn| {
            let r = sqlx::query("UPDATE containers SET egress = $1 WHERE id = $2")
                .bind(text.clone())
                .bind(id)
                .execute(&mut *conn)
                .await?;
            // The policy is part of the container as listed and got.
            if r.rows_affected() > 0 {
                self.refresh(conn, id).await;
            }
            Ok(r.rows_affected() == 1)
        })
    }

    /// A container's egress policy as stored.
    pub async fn egress_of(&self, id: &str) -> Result<Option<quilt_network::EgressPolicy>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT egress FROM containers WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        match row.and_then(|r| r.0) {
            Some(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|_| EngineError::Internal("corrupt container row: egress".into())),
            None => Ok(None),
        }
    }

    /// Records `slot` as the container's network namespace (not tainted).
    /// NOT_FOUND when the row is gone.
    pub async fn slot_set(&self, id: &str, slot: &str) -> Result<()> {
        let r = db_write!(self, |conn| {
            Ok(sqlx::query(
                "UPDATE containers SET netns_tainted = \
                 CASE WHEN netns_slot = $1 THEN netns_tainted ELSE FALSE END, \
                 netns_slot = $1 WHERE id = $2",
            )
            .bind(slot)
            .bind(id)
            .execute(&mut *conn)
            .await?)
        })?;
        if r.rows_affected() == 0 {
            return Err(EngineError::NotFound(format!("no such container: {id}")));
        }
        Ok(())
    }

    /// Marks a container's namespace as one not to reuse (another
    /// container joined it).
    pub async fn slot_taint(&self, id: &str) -> Result<()> {
        db_write!(self, |conn| {
            sqlx::query(
                "UPDATE containers SET netns_tainted = TRUE \
                 WHERE id = $1 AND netns_slot IS NOT NULL",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }

    /// Forgets a container's namespace (it could not be reopened).
    pub async fn slot_clear(&self, id: &str) -> Result<()> {
        db_write!(self, |conn| {
            sqlx::query(
                "UPDATE containers SET netns_slot = NULL, netns_tainted = FALSE WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }

    /// Every (container id, slot, tainted).
    pub async fn slots(&self, node: Option<&str>) -> Result<Vec<(String, String, bool)>> {
        let rows = sqlx::query(
            "SELECT id, netns_slot, netns_tainted FROM containers \
             WHERE netns_slot IS NOT NULL AND ($1 IS NULL OR node = $1)",
        )
        .bind(node)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("netns_slot")?,
                    r.try_get("netns_tainted")?,
                ))
            })
            .collect()
    }

    /// Whether a container's namespace is tainted.
    pub async fn slot_tainted(&self, id: &str) -> Result<bool> {
        let t: Option<bool> = sqlx::query_scalar(
            "SELECT netns_tainted FROM containers WHERE id = $1 AND netns_slot IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(t.unwrap_or(false))
    }

    /// Names of the containers that join `id`'s network namespace.
    pub async fn joiners(&self, id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT name FROM containers WHERE {} = $1 ORDER BY name",
            dialect::json_text("net", &["peer"])
        ))
        .bind(id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// The containers of network `name` with their names and addresses.
    pub async fn network_members(&self, name: &str) -> Result<Vec<(String, String, Ipv4Addr)>> {
        let rows = sqlx::query(
            "SELECT a.container_id, c.name, a.address FROM ip_allocations a \
             JOIN containers c ON c.id = a.container_id WHERE a.network = $1 ORDER BY a.address",
        )
        .bind(name)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let a: i64 = r.try_get("address")?;
                let a = u32::try_from(a)
                    .map_err(|_| EngineError::Internal("corrupt address row".into()))?;
                Ok((
                    r.try_get("container_id")?,
                    r.try_get("name")?,
                    Ipv4Addr::from(a),
                ))
            })
            .collect()
    }

    /// Every container with an address: (network, id, name, aliases,
    /// address), for the resolvers' names at start-up.
    pub async fn network_records(
        &self,
        node: Option<&str>,
    ) -> Result<Vec<(String, String, String, Vec<String>, Ipv4Addr)>> {
        let rows = sqlx::query(&format!(
            "SELECT a.network, a.container_id, c.name, \
             COALESCE({}, '[]') AS aliases, a.address \
             FROM ip_allocations a JOIN containers c ON c.id = a.container_id \
             WHERE $1 IS NULL OR c.node = $1",
            dialect::json_text("c.net", &["aliases"])
        ))
        .bind(node)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let a: i64 = r.try_get("address")?;
                let a = u32::try_from(a)
                    .map_err(|_| EngineError::Internal("corrupt address row".into()))?;
                let aliases: String = r.try_get("aliases")?;
                let aliases: Vec<String> = serde_json::from_str(&aliases)
                    .map_err(|e| EngineError::Internal(format!("corrupt aliases: {e}")))?;
                Ok((
                    r.try_get("network")?,
                    r.try_get("container_id")?,
                    r.try_get("name")?,
                    aliases,
                    Ipv4Addr::from(a),
                ))
            })
            .collect()
    }

    /// Ids of the containers whose /etc/hosts lists the containers of
    /// network `name` (see `network::hosts`): those with `--dns` servers or a
    /// resolv.conf of their own, on the network or sharing the namespace of
    /// one that is. Usually none: one pass over the rows in the database,
    /// not a query per member.
    pub async fn hosts_followers(&self, name: &str) -> Result<Vec<String>> {
        // `dns` is left out of the JSON when empty (and a key in it is never
        // spelled this way inside a string, whose quotes are escaped).
        Ok(sqlx::query_scalar(&format!(
            "SELECT id FROM containers WHERE (net LIKE '%\"dns\":[%' \
             OR mounts LIKE '%\"target\":\"/etc/resolv.conf\"%') AND \
             (id IN (SELECT container_id FROM ip_allocations WHERE network = $1) \
             OR {} IN (SELECT container_id FROM ip_allocations WHERE network = $1)) \
             ORDER BY id",
            dialect::json_text("net", &["peer"])
        ))
        .bind(name)
        .fetch_all(&self.reader)
        .await?)
    }

    /// How many addresses are allocated, and ports published (for the
    /// leftover checks of tests).
    pub async fn network_usage(&self) -> Result<(i64, i64, i64)> {
        let a: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM ip_allocations")
            .fetch_one(&self.reader)
            .await?;
        let p: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM port_bindings")
            .fetch_one(&self.reader)
            .await?;
        let s: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM containers WHERE netns_slot IS NOT NULL",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok((a, p, s))
    }
}

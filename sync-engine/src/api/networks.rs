//! The network verbs: create, list, inspect, remove; and a container's
//! egress policy (`UpdateNetworkPolicy`). A network is a row
//! (`store/networks.rs`), a bridge in quiltd's network namespace and its
//! part of the ruleset; creation and removal are serialised, and a failed
//! step undoes the earlier ones.
use crate::engine::{Engine, Shared};
use crate::error::{EngineError, Result};
use crate::model::{DEFAULT_NETWORK, NetworkInfo, NetworkSpec, now_ns};
use quilt_network::{Subnet, names::random_hex};

/// Names no network may take: the modes of `--network`.
const RESERVED: [&str; 4] = ["none", "host", "bridge", "default"];

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !ok {
        return Err(EngineError::InvalidArgument(format!(
            "invalid network name {}: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64 characters",
            crate::validate::echo(name)
        )));
    }
    if RESERVED.contains(&name) || name.starts_with("container") {
        return Err(EngineError::InvalidArgument(format!(
            "{name:?} is reserved for a network mode: choose another name"
        )));
    }
    Ok(())
}

async fn defs(shared: &Shared) -> Result<Vec<quilt_network::NetworkDef>> {
    Ok(shared
        .store()
        .networks()
        .await?
        .iter()
        .map(NetworkInfo::def)
        .collect())
}

/// Sets bridge networking up in quiltd's namespace on first use (the
/// default network's bridge, the ruleset).
pub(crate) async fn activate(shared: &Shared) -> Result<()> {
    if shared.net().is_active() {
        return Ok(());
    }
    let _serial = shared.net_lock().lock().await;
    let all = defs(shared).await?;
    let n = shared.net().clone();
    let defs = all.clone();
    tokio::task::spawn_blocking(move || n.sync(&defs)).await??;
    crate::network::dns::start(shared, &all).await
}

impl Engine {
    /// Replaces the egress policy of container `reference` (bridge
    /// networks only), live when it runs. Returns the policy as stored.
    pub async fn update_network_policy(
        &self,
        reference: &str,
        policy: quilt_network::EgressPolicy,
    ) -> Result<quilt_network::EgressPolicy> {
        let c = self.shared.resolve_here(reference).await?;
        crate::network::egress::update(&self.shared, &c, &policy).await
    }

    pub async fn create_network(&self, spec: NetworkSpec) -> Result<NetworkInfo> {
        let shared = &self.shared;
        check_name(&spec.name)?;
        let subnet = spec.subnet.as_deref().map(Subnet::parse).transpose()?;
        let _serial = shared.net_lock().lock().await;
        if shared.store().network(&spec.name).await?.is_some() {
            return Err(EngineError::AlreadyExists(format!(
                "network {} already exists",
                spec.name
            )));
        }
        let taken = defs(shared).await?;
        let net = shared.net().clone();
        let subnet = {
            let (n, t) = (net.clone(), taken.clone());
            tokio::task::spawn_blocking(move || match subnet {
                Some(s) => n.check_subnet(&s, &t).map(|()| s),
                None => n.free_subnet(&t, 0),
            })
            .await??
        };
        let id = random_hex(12);
        let info = NetworkInfo {
            bridge: net.names().network_bridge(&id),
            name: spec.name,
            id,
            subnet,
            internal: spec.internal,
            created_at_ns: now_ns(),
            containers: Vec::new(),
        };
        shared.store().network_insert(&info).await?;
        let all = defs(shared).await?;
        let (n, def, synced) = (net.clone(), info.def(), all.clone());
        let made = tokio::task::spawn_blocking(move || -> Result<()> {
            if let Err(e) = n.sync(&synced) {
                let _ = n.delete_bridge(&def.bridge);
                return Err(e.into());
            }
            Ok(())
        })
        .await?;
        let made = match made {
            // Every network's resolver: this sync may be the first (the
            // default network's bridge made with it).
            Ok(()) => crate::network::dns::start(shared, &all).await,
            Err(e) => Err(e),
        };
        if let Err(e) = made {
            crate::network::dns::drop_network(shared, &info.name).await;
            let _ = shared.store().network_delete(&info.name).await;
            let all = defs(shared).await?;
            let (n, bridge) = (net.clone(), info.bridge.clone());
            let _ = tokio::task::spawn_blocking(move || -> Result<()> {
                n.set_networks(&all)?;
                n.delete_bridge(&bridge)?;
                Ok(())
            })
            .await;
            return Err(e);
        }
        Ok(info)
    }

    pub async fn list_networks(&self) -> Result<Vec<NetworkInfo>> {
        self.shared.store().networks().await
    }

    pub async fn inspect_network(&self, name: &str) -> Result<NetworkInfo> {
        self.shared.store().network(name).await?.ok_or_else(|| {
            EngineError::NotFound(format!("no such network: {}", crate::validate::echo(name)))
        })
    }

    /// Refused for the default network and for one a container uses.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        let shared = &self.shared;
        if name == DEFAULT_NETWORK {
            return Err(EngineError::FailedPrecondition(
                "the default network bridge cannot be removed".into(),
            ));
        }
        let _serial = shared.net_lock().lock().await;
        let info = self.inspect_network(name).await?;
        shared.store().network_delete(name).await?;
        crate::network::dns::drop_network(shared, name).await;
        let all = defs(shared).await?;
        let n = shared.net().clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            n.set_networks(&all)?;
            n.delete_bridge(&info.bridge)?;
            Ok(())
        })
        .await?
    }

    /// Addresses allocated, ports published, namespaces held (tests'
    /// leftover checks).
    pub async fn network_usage(&self) -> Result<(i64, i64, i64)> {
        self.shared.store().network_usage().await
    }
}

//! The seccomp filter of a container: its profile checked at create, then
//! compiled (on the blocking pool) for the capabilities the container really
//! gets, at each start and exec. Compiled filters are cached by profile and
//! capability set; the default profile with docker's default capabilities is
//! compiled once, at start-up. The shim only installs what it is given.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, Seccomp, Security};
use quilt_runtime::capability::Capability;
use quilt_runtime::seccomp::{self, SeccompError};
use quilt_runtime::spec::{SeccompFilter, SecurityConfig};
use rustix::thread::CapabilitySet;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Compiled profiles kept at most; the default profile with docker's
/// capabilities is never evicted.
const CACHE_ENTRIES: usize = 64;

/// A profile, as the cache knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ProfileKey {
    Default,
    /// SHA-256 of the profile's text.
    Custom([u8; 32]),
}

/// (profile, capability set).
type Key = (ProfileKey, u64);

/// Compiled filters by profile and capability set (None: the profile needs
/// no filter).
#[derive(Debug, Default)]
pub(crate) struct SeccompCache {
    compiled: Mutex<HashMap<Key, Option<Arc<SeccompFilter>>>>,
}

/// Docker's default capability set, which a container holds unless told
/// otherwise.
fn default_caps() -> CapabilitySet {
    Capability::set_of(&Capability::DEFAULT)
}

fn engine_error(e: SeccompError) -> EngineError {
    match e {
        SeccompError::Invalid(_) => EngineError::InvalidArgument(e.to_string()),
        SeccompError::UnsupportedArch => EngineError::FailedPrecondition(format!(
            "{e}: run the container with --security-opt seccomp=unconfined"
        )),
        SeccompError::Decode(_) | SeccompError::Install(_) => EngineError::internal("seccomp", e),
    }
}

impl SeccompCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Option<Arc<SeccompFilter>>>> {
        self.compiled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Compiles the default profile for docker's default capabilities.
    /// Blocking: at start-up, on the blocking pool.
    pub fn warm(&self) -> Result<()> {
        let t0 = std::time::Instant::now();
        let f = self.filters(&Seccomp::Default, default_caps())?;
        tracing::debug!(
            elapsed_us = t0.elapsed().as_micros() as u64,
            instructions = f.as_ref().map_or(0, |f| f.bpf.len() / 16),
            "compiled the default seccomp profile"
        );
        Ok(())
    }

    /// The cache's key for `profile` with `caps` (None: unconfined).
    fn key(profile: &Seccomp, caps: CapabilitySet) -> Option<Key> {
        let key = match profile {
            Seccomp::Unconfined => return None,
            Seccomp::Default => ProfileKey::Default,
            Seccomp::Custom(text) => ProfileKey::Custom(Sha256::digest(text.as_bytes()).into()),
        };
        Some((key, caps.bits()))
    }

    /// The filter if it needs no compile: Some(None) unconfined, None when
    /// it is not in the cache.
    fn cached(&self, profile: &Seccomp, caps: CapabilitySet) -> Option<Option<Arc<SeccompFilter>>> {
        match Self::key(profile, caps) {
            None => Some(None),
            Some(key) => self.lock().get(&key).cloned(),
        }
    }

    /// The filters of `profile` for a container holding `caps`: from the
    /// cache, or compiled now (blocking). None: no filter.
    fn filters(
        &self,
        profile: &Seccomp,
        caps: CapabilitySet,
    ) -> Result<Option<Arc<SeccompFilter>>> {
        let Some(key) = Self::key(profile, caps) else {
            return Ok(None);
        };
        if let Some(f) = self.lock().get(&key) {
            return Ok(f.clone());
        }
        let parsed = match profile {
            Seccomp::Custom(text) => seccomp::parse(text).map_err(engine_error)?,
            _ => seccomp::default_profile(),
        };
        let compiled = seccomp::compile(&parsed, caps)
            .map_err(engine_error)?
            .map(Arc::new);
        let mut cache = self.lock();
        if cache.len() >= CACHE_ENTRIES {
            let pinned = (ProfileKey::Default, default_caps().bits());
            if let Some(old) = cache.keys().find(|k| **k != pinned).copied() {
                cache.remove(&old);
            }
        }
        cache.insert(key, compiled.clone());
        Ok(compiled)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Checks that need no work: the size of a custom profile.
pub(super) fn validate(s: &Security) -> Result<()> {
    match &s.seccomp {
        Seccomp::Custom(text) if text.len() > seccomp::MAX_PROFILE_BYTES => {
            Err(EngineError::InvalidArgument(format!(
                "the seccomp profile is {} bytes: at most {} are accepted",
                text.len(),
                seccomp::MAX_PROFILE_BYTES
            )))
        }
        _ => Ok(()),
    }
}

/// At create: a custom profile must parse and compile (for docker's default
/// capabilities; the cache then holds it for the start). On the blocking
/// pool.
pub(super) async fn check(shared: &Arc<Shared>, s: &Security) -> Result<()> {
    if !matches!(s.seccomp, Seccomp::Custom(_)) {
        return Ok(());
    }
    let (shared, profile) = (shared.clone(), s.seccomp.clone());
    tokio::task::spawn_blocking(move || shared.seccomp().filters(&profile, default_caps()))
        .await?
        .map(drop)
}

/// The filters for this start (or exec) of `c`, for the capabilities
/// `users::configure` settled on. Blocking.
pub(super) fn configure(shared: &Shared, c: &Container, cfg: &mut SecurityConfig) -> Result<()> {
    cfg.seccomp = shared
        .seccomp()
        .filters(&c.security.seccomp, caps_of(cfg))?
        .map(|f| (*f).clone());
    Ok(())
}

/// `configure` from the cache alone: false (and `cfg` unchanged) when the
/// filter would have to be compiled first.
pub(super) fn configure_cached(shared: &Shared, c: &Container, cfg: &mut SecurityConfig) -> bool {
    match shared.seccomp().cached(&c.security.seccomp, caps_of(cfg)) {
        Some(f) => {
            cfg.seccomp = f.map(|f| (*f).clone());
            true
        }
        None => false,
    }
}

/// The capabilities the filter is compiled for: those `cfg` keeps.
fn caps_of(cfg: &SecurityConfig) -> CapabilitySet {
    match &cfg.capabilities {
        None => default_caps(),
        Some(numbers) => numbers.iter().fold(CapabilitySet::empty(), |set, n| {
            match 1u64.checked_shl(u32::from(*n)) {
                Some(bit) => set | CapabilitySet::from_bits_retain(bit),
                None => set,
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENY_MKDIR: &str = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#;

    #[test]
    fn compiles_once_per_profile_and_capability_set() {
        let cache = SeccompCache::default();
        cache.warm().unwrap();
        assert_eq!(cache.len(), 1);
        let a = cache
            .filters(&Seccomp::Default, default_caps())
            .unwrap()
            .unwrap();
        let b = cache
            .filters(&Seccomp::Default, default_caps())
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b), "served from the cache");
        assert_eq!(cache.len(), 1);
        let admin = default_caps() | Capability::SysAdmin.as_set();
        let c = cache.filters(&Seccomp::Default, admin).unwrap().unwrap();
        assert_ne!(*a, *c, "CAP_SYS_ADMIN allows more");
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.filters(&Seccomp::Unconfined, admin).unwrap(), None);
        let custom = Seccomp::Custom(DENY_MKDIR.into());
        let d = cache.filters(&custom, default_caps()).unwrap().unwrap();
        assert_ne!(*d, *a);
        assert_eq!(cache.len(), 3);
    }

    /// What a start may take from the cache without compiling: a filter
    /// once compiled, and unconfined always; nothing else.
    #[test]
    fn cached_filters_need_no_compile() {
        let cache = SeccompCache::default();
        assert_eq!(
            cache.cached(&Seccomp::Unconfined, default_caps()),
            Some(None)
        );
        assert_eq!(cache.cached(&Seccomp::Default, default_caps()), None);
        cache.warm().unwrap();
        let warm = cache.cached(&Seccomp::Default, default_caps()).unwrap();
        assert_eq!(
            warm,
            cache.filters(&Seccomp::Default, default_caps()).unwrap()
        );
        assert!(warm.is_some());
        // Another capability set or profile is compiled on first use only.
        let admin = default_caps() | Capability::SysAdmin.as_set();
        assert_eq!(cache.cached(&Seccomp::Default, admin), None);
        let custom = Seccomp::Custom(DENY_MKDIR.into());
        assert_eq!(cache.cached(&custom, default_caps()), None);
        let compiled = cache.filters(&custom, default_caps()).unwrap();
        assert_eq!(cache.cached(&custom, default_caps()), Some(compiled));
        assert_eq!(cache.len(), 2, "looking compiled nothing");
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_the_default() {
        let cache = SeccompCache::default();
        cache.warm().unwrap();
        for i in 0..CACHE_ENTRIES + 10 {
            let text = format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": {}}}]}}"#,
                i + 1
            );
            cache
                .filters(&Seccomp::Custom(text), default_caps())
                .unwrap();
            assert!(cache.len() <= CACHE_ENTRIES);
        }
        let pinned = (ProfileKey::Default, default_caps().bits());
        assert!(cache.lock().contains_key(&pinned));
    }

    #[test]
    fn bad_profiles_are_invalid_arguments() {
        let cache = SeccompCache::default();
        for (text, want) in [
            ("not json", "invalid seccomp profile: not a JSON profile: "),
            (
                r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#,
                "invalid seccomp profile: defaultAction: unknown action \"SCMP_ACT_SOMETIMES\"",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#,
                "invalid seccomp profile: syscalls[0]: args[0]: unknown op \"SCMP_CMP_ABOUT\"",
            ),
        ] {
            match cache.filters(&Seccomp::Custom(text.into()), default_caps()) {
                Err(EngineError::InvalidArgument(m)) => {
                    assert!(m.starts_with(want), "{m:?} should start with {want:?}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(cache.len(), 0, "nothing cached for a refused profile");
        let big = Security {
            seccomp: Seccomp::Custom(" ".repeat(seccomp::MAX_PROFILE_BYTES + 1)),
            ..Default::default()
        };
        match validate(&big) {
            Err(EngineError::InvalidArgument(m)) => {
                assert_eq!(
                    m,
                    "the seccomp profile is 1048577 bytes: at most 1048576 are accepted"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(validate(&Security::default()).is_ok());
    }
}

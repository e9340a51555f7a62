//! Docker's seccomp profile format (`--security-opt seccomp=PROFILE.json`),
//! read into a [`Profile`].
//!
//! - `defaultAction` (required) and `defaultErrnoRet`;
//! - `syscalls[]`: `names` (or the older single `name`), `action`,
//!   `errnoRet`, `args[]` (`index`, `value`, `valueTwo`, `op`), `includes`
//!   and `excludes` (`caps`, `arches`; `minKernel` is accepted and ignored:
//!   such rules always apply);
//! - `architectures` and `archMap`: checked to be libseccomp's names; the
//!   filter covers the native architecture only, whatever they list.
//!
//! Actions: SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL (= _KILL_THREAD),
//! SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_LOG,
//! SCMP_ACT_TRACE. SCMP_ACT_NOTIFY is refused (it needs a seccomp agent).
//! `errnoRet` (default EPERM) is the errno of SCMP_ACT_ERRNO and the message
//! of SCMP_ACT_TRACE, and ignored with other actions, as runc does.
//! Conditions of one rule are all required, even on the same argument.
//! Other fields (`flags`, `comment`, ...) are ignored. Syscall names the
//! native architecture does not have are skipped, as libseccomp does: docker
//! profiles name the syscalls of every architecture.
use super::SeccompError;
use super::arch::is_scmp_arch;
use super::profile::{Action, ArgCheck, CmpOp, Profile, Rule, Scope};
use serde::Deserialize;

/// The largest profile accepted.
pub const MAX_PROFILE_BYTES: usize = 1 << 20;

/// The largest errno a filter may return (the kernel's MAX_ERRNO).
const MAX_ERRNO: u32 = 4095;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonProfile {
    default_action: Option<String>,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<JsonArchMap>>,
    syscalls: Option<Vec<JsonSyscall>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSyscall {
    name: Option<String>,
    names: Option<Vec<String>>,
    action: Option<String>,
    errno_ret: Option<u32>,
    args: Option<Vec<JsonArg>>,
    includes: Option<JsonScope>,
    excludes: Option<JsonScope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonScope {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
}

fn invalid(msg: impl Into<String>) -> SeccompError {
    SeccompError::Invalid(msg.into())
}

/// Reads a profile in docker's JSON format; INVALID errors say what is wrong
/// and where (`syscalls[3].args[0]: ...`).
pub fn parse(text: &str) -> Result<Profile, SeccompError> {
    if text.len() > MAX_PROFILE_BYTES {
        return Err(invalid(format!(
            "the profile is {} bytes, more than the {MAX_PROFILE_BYTES} accepted",
            text.len()
        )));
    }
    let p: JsonProfile =
        serde_json::from_str(text).map_err(|e| invalid(format!("not a JSON profile: {e}")))?;
    let default_action = match p.default_action.as_deref() {
        Some(a) => {
            action(a, p.default_errno_ret).map_err(|e| invalid(format!("defaultAction: {e}")))?
        }
        None => {
            return Err(invalid(
                "defaultAction is missing (e.g. \"SCMP_ACT_ERRNO\")",
            ));
        }
    };
    for a in p.architectures.iter().flatten() {
        check_arch(a).map_err(|e| invalid(format!("architectures: {e}")))?;
    }
    for (i, m) in p.arch_map.iter().flatten().enumerate() {
        std::iter::once(&m.architecture)
            .chain(m.sub_architectures.iter().flatten())
            .try_for_each(|a| check_arch(a))
            .map_err(|e| invalid(format!("archMap[{i}]: {e}")))?;
    }
    let rules = p
        .syscalls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, s)| rule(s).map_err(|e| invalid(format!("syscalls[{i}]: {e}"))))
        .collect::<Result<_, _>>()?;
    Ok(Profile {
        default_action,
        rules,
    })
}

fn check_arch(name: &str) -> Result<(), String> {
    match is_scmp_arch(name) {
        true => Ok(()),
        false => Err(format!(
            "unknown architecture {name:?} (libseccomp's names: \"SCMP_ARCH_X86_64\", ...)"
        )),
    }
}

/// A docker action name, with the errno (or trace message) it may carry.
fn action(name: &str, errno: Option<u32>) -> Result<Action, String> {
    let data = || match errno {
        None => Ok(libc::EPERM as u16),
        Some(e) if e <= MAX_ERRNO => Ok(e as u16),
        Some(e) => Err(format!("errno {e} is out of range (0 to {MAX_ERRNO})")),
    };
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(data()?),
        "SCMP_ACT_TRACE" => Action::Trace(data()?),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_NOTIFY" => {
            return Err(
                "SCMP_ACT_NOTIFY needs a seccomp agent, which quilt does not support".into(),
            );
        }
        other => {
            return Err(format!(
                "unknown action {other:?} (use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, \
                 SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, \
                 SCMP_ACT_TRAP, SCMP_ACT_LOG or SCMP_ACT_TRACE)"
            ));
        }
    })
}

fn op(name: &str) -> Result<CmpOp, String> {
    Ok(match name {
        "SCMP_CMP_EQ" => CmpOp::Eq,
        "SCMP_CMP_NE" => CmpOp::Ne,
        "SCMP_CMP_LT" => CmpOp::Lt,
        "SCMP_CMP_LE" => CmpOp::Le,
        "SCMP_CMP_GT" => CmpOp::Gt,
        "SCMP_CMP_GE" => CmpOp::Ge,
        "SCMP_CMP_MASKED_EQ" => CmpOp::MaskedEq,
        other => {
            return Err(format!(
                "unknown op {other:?} (use SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, \
                 SCMP_CMP_LE, SCMP_CMP_GT, SCMP_CMP_GE or SCMP_CMP_MASKED_EQ)"
            ));
        }
    })
}

fn rule(s: JsonSyscall) -> Result<Rule, String> {
    let names = match (s.name, s.names) {
        (Some(_), Some(_)) => return Err("give either \"name\" or \"names\", not both".into()),
        (Some(n), None) => vec![n],
        (None, Some(n)) => n,
        (None, None) => Vec::new(),
    };
    let action = match s.action.as_deref() {
        Some(a) => action(a, s.errno_ret)?,
        None => return Err("\"action\" is missing".into()),
    };
    let args = s
        .args
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let index = u8::try_from(a.index)
                .ok()
                .filter(|i| *i <= 5)
                .ok_or_else(|| format!("args[{i}]: index {} is not 0 to 5", a.index))?;
            Ok(ArgCheck {
                index,
                op: op(&a.op).map_err(|e| format!("args[{i}]: {e}"))?,
                value: a.value,
                value_two: a.value_two,
            })
        })
        .collect::<Result<_, String>>()?;
    let scope = |s: Option<JsonScope>| {
        let s = s.unwrap_or(JsonScope {
            caps: None,
            arches: None,
        });
        Scope {
            caps: s
                .caps
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.trim().to_ascii_uppercase())
                .collect(),
            arches: s.arches.unwrap_or_default(),
        }
    };
    Ok(Rule {
        names,
        action,
        args,
        includes: scope(s.includes),
        excludes: scope(s.excludes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse(text) {
            Err(SeccompError::Invalid(m)) => m,
            other => panic!("{text}: expected an invalid profile, got {other:?}"),
        }
    }

    #[test]
    fn a_docker_style_profile() {
        let p = parse(
            r#"{
              "defaultAction": "SCMP_ACT_ERRNO",
              "defaultErrnoRet": 1,
              "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
              "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": null}],
              "flags": ["SECCOMP_FILTER_FLAG_LOG"],
              "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [],
                 "comment": "", "includes": {}, "excludes": {}},
                {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390x"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["mount"], "action": "SCMP_ACT_KILL", "includes": {"caps": ["sys_admin"]}},
                {"names": ["uname"], "action": "SCMP_ACT_TRACE"},
                {"names": ["getpid"], "action": "SCMP_ACT_LOG", "args": null}
              ]
            }"#,
        )
        .unwrap();
        assert_eq!(p.default_action, Action::Errno(1));
        assert_eq!(p.rules.len(), 7);
        assert_eq!(p.rules[0].names, ["read", "write"]);
        assert_eq!(p.rules[0].action, Action::Allow);
        assert_eq!(p.rules[1].names, ["mkdir"]);
        assert_eq!(p.rules[1].action, Action::Errno(13));
        assert_eq!(
            p.rules[2].args,
            [ArgCheck {
                index: 0,
                op: CmpOp::MaskedEq,
                value: 0x7E02_0000,
                value_two: 0
            }]
        );
        assert_eq!(p.rules[2].excludes.caps, ["CAP_SYS_ADMIN"]);
        assert_eq!(p.rules[2].excludes.arches, ["s390x"]);
        assert_eq!(p.rules[3].includes, Scope::default());
        assert_eq!(p.rules[4].action, Action::KillThread);
        assert_eq!(p.rules[4].includes.caps, ["SYS_ADMIN"]);
        assert_eq!(p.rules[5].action, Action::Trace(1));
        assert_eq!(p.rules[6].action, Action::Log);
    }

    #[test]
    fn every_action_and_op() {
        for (name, want) in [
            ("SCMP_ACT_ALLOW", Action::Allow),
            ("SCMP_ACT_ERRNO", Action::Errno(1)),
            ("SCMP_ACT_KILL", Action::KillThread),
            ("SCMP_ACT_KILL_THREAD", Action::KillThread),
            ("SCMP_ACT_KILL_PROCESS", Action::KillProcess),
            ("SCMP_ACT_TRAP", Action::Trap),
            ("SCMP_ACT_LOG", Action::Log),
            ("SCMP_ACT_TRACE", Action::Trace(1)),
        ] {
            let p = parse(&format!(r#"{{"defaultAction": "{name}"}}"#)).unwrap();
            assert_eq!(p.default_action, want, "{name}");
        }
        let p = parse(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}"#).unwrap();
        assert_eq!(p.default_action, Action::Errno(38));
        for (name, want) in [
            ("SCMP_CMP_EQ", CmpOp::Eq),
            ("SCMP_CMP_NE", CmpOp::Ne),
            ("SCMP_CMP_LT", CmpOp::Lt),
            ("SCMP_CMP_LE", CmpOp::Le),
            ("SCMP_CMP_GT", CmpOp::Gt),
            ("SCMP_CMP_GE", CmpOp::Ge),
            ("SCMP_CMP_MASKED_EQ", CmpOp::MaskedEq),
        ] {
            let p = parse(&format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                      "args": [{{"index": 5, "value": 7, "op": "{name}"}}]}}]}}"#
            ))
            .unwrap();
            assert_eq!(p.rules[0].args[0].op, want, "{name}");
            assert_eq!(p.rules[0].args[0].index, 5);
        }
    }

    #[test]
    fn invalid_profiles_say_what_is_wrong() {
        assert!(err("").starts_with("not a JSON profile: "), "{}", err(""));
        assert!(err("{").starts_with("not a JSON profile: "));
        assert!(err("[]").starts_with("not a JSON profile: "));
        assert!(
            err(r#"{"defaultAction": 1}"#).starts_with("not a JSON profile: invalid type"),
            "{}",
            err(r#"{"defaultAction": 1}"#)
        );
        assert_eq!(
            err("{}"),
            "defaultAction is missing (e.g. \"SCMP_ACT_ERRNO\")"
        );
        assert!(
            err(r#"{"defaultAction": "SCMP_ACT_NOPE"}"#)
                .starts_with("defaultAction: unknown action \"SCMP_ACT_NOPE\" (use ")
        );
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#),
            "defaultAction: SCMP_ACT_NOTIFY needs a seccomp agent, which quilt does not support"
        );
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}"#),
            "defaultAction: errno 5000 is out of range (0 to 4095)"
        );
        assert!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO"}, {"names": ["b"], "action": "ALLOW"}]}"#)
                .starts_with("syscalls[1]: unknown action \"ALLOW\"")
        );
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"]}]}"#),
            "syscalls[0]: \"action\" is missing"
        );
        assert_eq!(
            err(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_LOG"}]}"#
            ),
            "syscalls[0]: give either \"name\" or \"names\", not both"
        );
        assert!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MASKED"}]}]}"#)
                .starts_with("syscalls[0]: args[0]: unknown op \"SCMP_CMP_MASKED\" (use ")
        );
        assert_eq!(
            err(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#
            ),
            "syscalls[0]: args[1]: index 6 is not 0 to 5"
        );
        assert!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}"#)
                .starts_with("not a JSON profile: invalid value: integer `-1`")
        );
        assert!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}"#)
                .starts_with("architectures: unknown architecture \"x86_64\"")
        );
        assert!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_Z80"]}]}"#)
                .starts_with("archMap[0]: unknown architecture \"SCMP_ARCH_Z80\"")
        );
        let big = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "comment": "{}"}}"#,
            "x".repeat(MAX_PROFILE_BYTES)
        );
        assert!(err(&big).contains("more than the 1048576 accepted"));
    }

    #[test]
    fn errno_goes_with_errno_and_trace_only() {
        let p = parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 5, "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 9},
                {"names": ["b"], "action": "SCMP_ACT_TRACE", "errnoRet": 9},
                {"names": ["c"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0}]}"#,
        )
        .unwrap();
        assert_eq!(p.default_action, Action::Allow);
        assert_eq!(p.rules[0].action, Action::KillProcess);
        assert_eq!(p.rules[1].action, Action::Trace(9));
        assert_eq!(p.rules[2].action, Action::Errno(0));
    }
}

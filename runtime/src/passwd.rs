//! Users and groups as a container names them: the `USER[:GROUP]` syntax of
//! `--user`, and its resolution against the container's own /etc/passwd and
//! /etc/group (docker's rules). Pure parsing: the files' contents come from
//! the caller, which reads them inside the container's root with a size
//! bound (`MAX_FILE_BYTES`). Image files are hostile input: over-long lines,
//! lines with missing or bad fields, and names that are not UTF-8 are
//! skipped, never trusted.
use std::fmt;

/// The most of /etc/passwd or /etc/group that is read.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Longer lines are skipped.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// The kernel's NGROUPS_MAX: more supplementary groups cannot be set.
pub const MAX_GROUPS: usize = 65536;
/// The longest user or group name accepted in `--user`.
pub const MAX_NAME_BYTES: usize = 256;

/// A user or a group as given: a number, or a name to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id<'a> {
    Num(u32),
    Name(&'a str),
}

impl fmt::Display for Id<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Name(s) => f.write_str(s),
        }
    }
}

/// `USER[:GROUP]`, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSpec<'a> {
    pub user: Id<'a>,
    pub group: Option<Id<'a>>,
}

/// Why a `--user` value is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("invalid user {0:?}: expected UID[:GID] or NAME[:GROUP]")]
    Syntax(String),
    #[error("invalid user {0:?}: ids go up to 4294967294")]
    TooLarge(String),
    #[error(
        "invalid user {0:?}: a name is at most {MAX_NAME_BYTES} bytes, without control characters"
    )]
    BadName(String),
}

/// Parses `UID[:GID]` or `NAME[:GROUP]` (also mixed: `NAME:GID`, `UID:GROUP`).
/// All digits is a number, anything else a name.
pub fn parse_spec(s: &str) -> Result<UserSpec<'_>, SpecError> {
    let (user, group) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let user = parse_id(s, user)?;
    let group = group.map(|g| parse_id(s, g)).transpose()?;
    Ok(UserSpec { user, group })
}

fn parse_id<'a>(whole: &str, part: &'a str) -> Result<Id<'a>, SpecError> {
    if part.is_empty() || part.contains(':') {
        return Err(SpecError::Syntax(whole.to_owned()));
    }
    if part.bytes().all(|b| b.is_ascii_digit()) {
        return match part.parse::<u32>() {
            // u32::MAX is (uid_t)-1: "no change" to the kernel, never an id.
            Ok(n) if n != u32::MAX => Ok(Id::Num(n)),
            _ => Err(SpecError::TooLarge(whole.to_owned())),
        };
    }
    if part.len() > MAX_NAME_BYTES || part.chars().any(char::is_control) {
        return Err(SpecError::BadName(whole.to_owned()));
    }
    Ok(Id::Name(part))
}

/// One usable line of /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Empty when the line has none.
    pub home: String,
}

/// One usable line of /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The lines of a file worth parsing: bounded, UTF-8, trimmed, neither
/// empty nor a comment nor a NIS (`+`/`-`) entry.
fn lines(data: &[u8]) -> impl Iterator<Item = &str> {
    data.split(|&b| b == b'\n')
        .filter(|l| l.len() <= MAX_LINE_BYTES)
        .filter_map(|l| std::str::from_utf8(l).ok())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', '+', '-']))
}

fn id_field(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

/// The usable entries of /etc/passwd (`name:password:uid:gid:gecos:home:shell`;
/// at least the first four fields).
pub fn users(data: &[u8]) -> impl Iterator<Item = User> + '_ {
    lines(data).filter_map(|l| {
        let mut f = l.split(':');
        let name = f.next().filter(|n| !n.is_empty())?;
        let _password = f.next()?;
        let uid = id_field(f.next()?)?;
        let gid = id_field(f.next()?)?;
        let _gecos = f.next();
        let home = f.next().unwrap_or("");
        Some(User {
            name: name.to_owned(),
            uid,
            gid,
            home: home.to_owned(),
        })
    })
}

/// The usable entries of /etc/group (`name:password:gid:member,member`; at
/// least the first three fields).
pub fn groups(data: &[u8]) -> impl Iterator<Item = Group> + '_ {
    lines(data).filter_map(|l| {
        let mut f = l.split(':');
        let name = f.next().filter(|n| !n.is_empty())?;
        let _password = f.next()?;
        let gid = id_field(f.next()?)?;
        let members = f
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect();
        Some(Group {
            name: name.to_owned(),
            gid,
            members,
        })
    })
}

/// Who the workload runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (sorted, no duplicates; may hold `gid`).
    pub groups: Vec<u32>,
    /// The home directory of the user's passwd entry, when it has one.
    pub home: Option<String>,
}

/// Why a user could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("user {0} is in more than {MAX_GROUPS} groups")]
    TooManyGroups(String),
}

/// Resolves `spec` as docker does. `passwd` and `group` are the files'
/// contents, None when the container has none.
///
/// - A named user must have a passwd entry; a numeric one needs none (its
///   entry, if any, gives its default group and home).
/// - Without a group, the group is the entry's (0 without an entry) and the
///   supplementary groups are those that list the user by name; with a group
///   (a named one must exist in /etc/group) there are none.
pub fn resolve(
    spec: &UserSpec<'_>,
    passwd: Option<&[u8]>,
    group: Option<&[u8]>,
) -> Result<Resolved, LookupError> {
    let entry = match spec.user {
        Id::Num(uid) => passwd.and_then(|p| users(p).find(|u| u.uid == uid)),
        Id::Name(name) => Some(
            passwd
                .and_then(|p| users(p).find(|u| u.name == name))
                .ok_or_else(|| LookupError::NoUser(name.to_owned()))?,
        ),
    };
    let uid = match spec.user {
        Id::Num(uid) => uid,
        Id::Name(_) => entry.as_ref().map_or(0, |e| e.uid),
    };
    let (gid, mut groups) = match spec.group {
        Some(Id::Num(gid)) => (gid, Vec::new()),
        Some(Id::Name(name)) => {
            let g = group
                .and_then(|g| groups(g).find(|g| g.name == name))
                .ok_or_else(|| LookupError::NoGroup(name.to_owned()))?;
            (g.gid, Vec::new())
        }
        None => {
            let gid = entry.as_ref().map_or(0, |e| e.gid);
            let member_of = match (&entry, group) {
                (Some(e), Some(g)) => groups(g)
                    .filter(|g| g.members.contains(&e.name))
                    .map(|g| g.gid)
                    .collect(),
                _ => Vec::new(),
            };
            (gid, member_of)
        }
    };
    groups.sort_unstable();
    groups.dedup();
    if groups.len() > MAX_GROUPS {
        return Err(LookupError::TooManyGroups(spec.user.to_string()));
    }
    Ok(Resolved {
        uid,
        gid,
        groups,
        home: entry.map(|e| e.home).filter(|h| !h.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &[u8] = b"root:x:0:\n\
        wheel:x:10:root,alice\n\
        alice:x:1000:\n\
        staff:x:50:bob, alice\n\
        nogroup:x:65534:\n";

    fn spec(s: &str) -> UserSpec<'_> {
        parse_spec(s).unwrap()
    }

    #[test]
    fn spec_syntax() {
        assert_eq!(
            spec("1000:1000"),
            UserSpec {
                user: Id::Num(1000),
                group: Some(Id::Num(1000))
            }
        );
        assert_eq!(
            spec("nobody"),
            UserSpec {
                user: Id::Name("nobody"),
                group: None
            }
        );
        assert_eq!(
            spec("alice:50"),
            UserSpec {
                user: Id::Name("alice"),
                group: Some(Id::Num(50))
            }
        );
        assert_eq!(spec("0").user, Id::Num(0));
        assert_eq!(spec("4294967294").user, Id::Num(4294967294));
        // A sign makes it a name, as it cannot be a number.
        assert_eq!(spec("+1").user, Id::Name("+1"));
        for bad in ["", ":", "a:", ":0", "a:b:c", "1:2:3"] {
            assert!(
                matches!(parse_spec(bad), Err(SpecError::Syntax(_))),
                "{bad:?}"
            );
        }
        for big in ["4294967295", "99999999999", "0:4294967295"] {
            assert!(
                matches!(parse_spec(big), Err(SpecError::TooLarge(_))),
                "{big:?}"
            );
        }
        let long = "a".repeat(MAX_NAME_BYTES + 1);
        for bad in [long.as_str(), "a\nb", "a\0b", "x:g\tr"] {
            assert!(
                matches!(parse_spec(bad), Err(SpecError::BadName(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_spec("a:").unwrap_err().to_string(),
            "invalid user \"a:\": expected UID[:GID] or NAME[:GROUP]"
        );
    }

    #[test]
    fn resolves_like_docker() {
        let r = |s: &str| resolve(&spec(s), Some(PASSWD), Some(GROUP));
        // A name: its entry's ids, its groups by membership, its home.
        assert_eq!(
            r("alice").unwrap(),
            Resolved {
                uid: 1000,
                gid: 1000,
                groups: vec![10, 50],
                home: Some("/home/alice".into())
            }
        );
        // A number with an entry: the same.
        assert_eq!(r("1000").unwrap(), r("alice").unwrap());
        // A number without an entry: group 0, no groups, no home.
        assert_eq!(
            r("4242").unwrap(),
            Resolved {
                uid: 4242,
                gid: 0,
                groups: vec![],
                home: None
            }
        );
        // An explicit group: no supplementary groups.
        assert_eq!(
            r("alice:wheel").unwrap(),
            Resolved {
                uid: 1000,
                gid: 10,
                groups: vec![],
                home: Some("/home/alice".into())
            }
        );
        assert_eq!(r("1000:1000").unwrap().groups, Vec::<u32>::new());
        assert_eq!(r("nobody").unwrap().uid, 65534);
        assert_eq!(r("root").unwrap().groups, vec![10]);
        assert_eq!(
            r("mallory").unwrap_err(),
            LookupError::NoUser("mallory".into())
        );
        assert_eq!(
            r("mallory").unwrap_err().to_string(),
            "unable to find user mallory: no matching entries in passwd file"
        );
        assert_eq!(
            r("alice:nope").unwrap_err().to_string(),
            "unable to find group nope: no matching entries in group file"
        );
        // No files at all: numbers work, names do not.
        assert_eq!(resolve(&spec("7:8"), None, None).unwrap().gid, 8);
        assert_eq!(
            resolve(&spec("root"), None, None).unwrap_err(),
            LookupError::NoUser("root".into())
        );
        assert_eq!(
            resolve(&spec("0:wheel"), Some(PASSWD), None).unwrap_err(),
            LookupError::NoGroup("wheel".into())
        );
    }

    #[test]
    fn hostile_files_are_bounded_and_skipped() {
        // Missing fields, bad numbers, empty names, NIS entries, comments,
        // invalid UTF-8: skipped; the first good entry of a name wins.
        let mut passwd = Vec::new();
        passwd.extend_from_slice(b"alice\n");
        passwd.extend_from_slice(b"alice:x\n");
        passwd.extend_from_slice(b"alice:x:12\n");
        passwd.extend_from_slice(b"alice:x:-1:0::/evil:/bin/sh\n");
        passwd.extend_from_slice(b"alice:x:4294967295:0::/evil:/bin/sh\n");
        passwd.extend_from_slice(b"alice:x:99999999999:0::/evil:/bin/sh\n");
        passwd.extend_from_slice(b"alice:x:+5:0::/evil:/bin/sh\n");
        passwd.extend_from_slice(b":x:5:5::/evil:/bin/sh\n");
        passwd.extend_from_slice(b"+alice:x:6:6::/evil:/bin/sh\n");
        passwd.extend_from_slice(b"# alice:x:7:7::/evil:/bin/sh\n");
        passwd.extend_from_slice(b"al\xffice:x:8:8::/evil:/bin/sh\n");
        passwd.extend_from_slice(b"alice:x:1000:1000\r\n");
        passwd.extend_from_slice(b"alice:x:2000:2000::/second:/bin/sh\n");
        let found: Vec<User> = users(&passwd).collect();
        assert_eq!(
            found,
            vec![
                User {
                    name: "alice".into(),
                    uid: 1000,
                    gid: 1000,
                    home: String::new()
                },
                User {
                    name: "alice".into(),
                    uid: 2000,
                    gid: 2000,
                    home: "/second".into()
                },
            ]
        );
        let r = resolve(&spec("alice"), Some(&passwd), None).unwrap();
        assert_eq!((r.uid, r.gid, r.home), (1000, 1000, None));

        // A line longer than the bound is skipped whole, and what follows
        // it still counts.
        let mut long = b"bob:x:1:1:".to_vec();
        long.extend(std::iter::repeat_n(b'g', MAX_LINE_BYTES));
        long.extend_from_slice(b":/home/bob:/bin/sh\nbob:x:3:3::/ok:/bin/sh\n");
        let r = resolve(&spec("bob"), Some(&long), None).unwrap();
        assert_eq!((r.uid, r.home.as_deref()), (3, Some("/ok")));

        // A line of exactly the bound is read.
        let mut exact = b"carol:x:9:9:".to_vec();
        let pad = MAX_LINE_BYTES - exact.len() - b":/h:/bin/sh".len();
        exact.extend(std::iter::repeat_n(b'g', pad));
        exact.extend_from_slice(b":/h:/bin/sh");
        assert_eq!(exact.len(), MAX_LINE_BYTES);
        assert_eq!(users(&exact).next().map(|u| u.uid), Some(9));

        // Group files: bad gids and missing fields are skipped; members are
        // trimmed and empty ones ignored.
        let group = b"g1\ng2:x\ng3:x:abc:alice\ng4:x:40:,, alice ,\ng5:x:50\n";
        let gs: Vec<Group> = groups(group).collect();
        assert_eq!(
            gs,
            vec![
                Group {
                    name: "g4".into(),
                    gid: 40,
                    members: vec!["alice".into()]
                },
                Group {
                    name: "g5".into(),
                    gid: 50,
                    members: vec![]
                },
            ]
        );
    }

    #[test]
    fn many_groups_are_deduplicated_and_capped() {
        let passwd = b"u:x:1:1::/h:/bin/sh\n";
        let mut group = Vec::new();
        for i in 0..3 {
            group.extend_from_slice(format!("dup{i}:x:7:u\n").as_bytes());
        }
        let r = resolve(&spec("u"), Some(passwd), Some(&group)).unwrap();
        assert_eq!(r.groups, vec![7]);
        let mut huge = Vec::new();
        for i in 0..=MAX_GROUPS {
            huge.extend_from_slice(format!("g{i}:x:{i}:u\n").as_bytes());
        }
        assert_eq!(
            resolve(&spec("u"), Some(passwd), Some(&huge)).unwrap_err(),
            LookupError::TooManyGroups("u".into())
        );
    }
}

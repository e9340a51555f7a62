//! Lower-case names of the API's enum values, as the CLI prints and parses
//! them: `ContainerState::Running.name()` is `"running"`, and
//! `ContainerState::from_name` takes `"running"` or
//! `"CONTAINER_STATE_RUNNING"` in any case.
//!
//! The names come from quilt.proto itself (build.rs lists every enum's
//! values), and parsing goes through prost's `from_str_name`: a value added
//! to the .proto needs no edit here.

use crate::v1::{ContainerState, ContainerView, LogStream, NetworkMode, StartPriority};

/// One enum's values, generated from the .proto.
#[derive(Debug)]
struct EnumNames {
    /// What prost strips from the value names: `CONTAINER_STATE_`.
    prefix: &'static str,
    /// (number, lower-case name without the prefix).
    values: &'static [(i32, &'static str)],
}

mod generated {
    use super::EnumNames;
    include!(concat!(env!("OUT_DIR"), "/enum_names.rs"));
}

impl EnumNames {
    fn name(&self, number: i32) -> Option<&'static str> {
        self.values
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, name)| *name)
    }

    /// The proto name of a short or proto name in any case:
    /// `running` -> `CONTAINER_STATE_RUNNING`.
    fn proto_name(&self, name: &str) -> String {
        let upper = name.to_ascii_uppercase();
        match upper.strip_prefix(self.prefix) {
            Some(_) => upper,
            None => format!("{}{upper}", self.prefix),
        }
    }
}

macro_rules! lower_case_names {
    ($($ty:ident => $table:ident),* $(,)?) => {$(
        impl $ty {
            /// The value's lower-case name without the enum prefix, e.g.
            /// `"running"` for `CONTAINER_STATE_RUNNING`.
            pub fn name(self) -> &'static str {
                // Every value is listed: the table and the enum come from
                // the same .proto.
                generated::$table
                    .name(self as i32)
                    .unwrap_or_else(|| self.as_str_name())
            }

            /// Parses [`Self::name`] or the proto name (`as_str_name`),
            /// in any case.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::from_str_name(&generated::$table.proto_name(name))
            }

            /// Every value, in the .proto's order (`UNSPECIFIED` first).
            pub fn values() -> impl Iterator<Item = Self> {
                generated::$table
                    .values
                    .iter()
                    .filter_map(|(n, _)| Self::try_from(*n).ok())
            }
        }
    )*};
}

lower_case_names!(
    ContainerState => CONTAINER_STATE,
    NetworkMode => NETWORK_MODE,
    LogStream => LOG_STREAM,
    ContainerView => CONTAINER_VIEW,
    StartPriority => START_PRIORITY,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_state_names() {
        assert_eq!(ContainerState::Running.name(), "running");
        assert_eq!(ContainerState::Created.name(), "created");
        assert_eq!(ContainerState::Unspecified.name(), "unspecified");
        assert_eq!(
            ContainerState::from_name("running"),
            Some(ContainerState::Running)
        );
        assert_eq!(
            ContainerState::from_name("Exited"),
            Some(ContainerState::Exited)
        );
        assert_eq!(
            ContainerState::from_name("CONTAINER_STATE_RUNNING"),
            Some(ContainerState::Running)
        );
        assert_eq!(
            ContainerState::from_name("container_state_failed"),
            Some(ContainerState::Failed)
        );
        assert_eq!(ContainerState::from_name("Up"), None);
        assert_eq!(ContainerState::from_name(""), None);
        assert_eq!(ContainerState::from_name("CONTAINER_STATE_"), None);
    }

    #[test]
    fn values_in_proto_order() {
        let names: Vec<&str> = ContainerState::values().map(ContainerState::name).collect();
        assert_eq!(
            names,
            [
                "unspecified",
                "created",
                "starting",
                "running",
                "exited",
                "failed",
                "removing",
                "paused",
                "lost"
            ]
        );
        assert_eq!(NetworkMode::values().count(), 5);
    }

    #[test]
    fn other_enum_names() {
        assert_eq!(NetworkMode::Host.name(), "host");
        assert_eq!(NetworkMode::from_name("none"), Some(NetworkMode::None));
        assert_eq!(
            NetworkMode::from_name("NETWORK_MODE_HOST"),
            Some(NetworkMode::Host)
        );
        assert_eq!(LogStream::Stderr.name(), "stderr");
        assert_eq!(LogStream::from_name("STDOUT"), Some(LogStream::Stdout));
    }

    /// Every value of every enum: the short name is the proto name without
    /// its prefix, and both parse back.
    #[test]
    fn names_round_trip() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            table: &EnumNames,
            from: impl Fn(i32) -> Option<T>,
            name: impl Fn(T) -> &'static str,
            proto: impl Fn(T) -> &'static str,
            parse: impl Fn(&str) -> Option<T>,
        ) {
            assert!(!table.values.is_empty());
            for (n, short) in table.values {
                let v = from(*n).expect("listed value is a variant");
                assert_eq!(name(v), *short);
                assert_eq!(
                    proto(v),
                    format!("{}{}", table.prefix, short.to_ascii_uppercase())
                );
                assert_eq!(parse(short), Some(v));
                assert_eq!(parse(proto(v)), Some(v));
            }
        }
        check(
            &generated::CONTAINER_STATE,
            |n| ContainerState::try_from(n).ok(),
            ContainerState::name,
            |v| v.as_str_name(),
            ContainerState::from_name,
        );
        check(
            &generated::NETWORK_MODE,
            |n| NetworkMode::try_from(n).ok(),
            NetworkMode::name,
            |v| v.as_str_name(),
            NetworkMode::from_name,
        );
        check(
            &generated::LOG_STREAM,
            |n| LogStream::try_from(n).ok(),
            LogStream::name,
            |v| v.as_str_name(),
            LogStream::from_name,
        );
    }
}

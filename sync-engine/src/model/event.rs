//! Recorded state changes, as WatchEvents and the engine's waiters see them.
use super::container::ExitInfo;
use super::state::State;
use arrayvec::ArrayString;

/// A recorded state change.
#[derive(Debug, Clone)]
pub struct Event {
    pub container_id: EventText,
    pub name: EventText,
    pub state: State,
    /// "created", "starting", "running", "exited", "failed", "removing", "removed".
    pub action: &'static str,
    pub time_ns: i64,
    pub exit: Option<ExitInfo>,
    pub failure_reason: Option<String>,
    /// Increases by one with each event this quiltd records (history and
    /// live stream are joined on it).
    pub seq: u64,
}

/// What WatchEvents keeps: events of these containers (id, unique id
/// prefix or name; any when empty) with these actions (any when empty).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub containers: Vec<String>,
    pub actions: Vec<String>,
}

impl EventFilter {
    pub fn matches(&self, e: &Event) -> bool {
        let container = self.containers.is_empty()
            || self
                .containers
                .iter()
                .any(|c| e.name == *c || e.container_id.starts_with(c.as_str()));
        let action = self.actions.is_empty() || self.actions.iter().any(|a| a == e.action);
        container && action
    }
}

/// Unix time in nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A container's id or name in an event, held in the event itself. quiltd
/// keeps thousands of events (the history WatchEvents replays, and the
/// live stream's buffer), each made during the burst of work that emitted
/// it: strings of their own, scattered among that burst's short-lived
/// allocations, kept most of the burst's heap pages from going back to the
/// kernel after it (about 9 MiB after 10,000 creates). An id (64
/// characters) and a name (at most 63) fit inline; longer text, which no
/// name or id that quilt checked has, is kept on the heap.
#[derive(Clone, PartialEq, Eq)]
pub enum EventText {
    Inline(ArrayString<64>),
    Heap(Box<str>),
}

impl From<&str> for EventText {
    fn from(s: &str) -> EventText {
        match ArrayString::from(s) {
            Ok(inline) => EventText::Inline(inline),
            Err(_) => EventText::Heap(s.into()),
        }
    }
}

impl std::ops::Deref for EventText {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            EventText::Inline(s) => s.as_str(),
            EventText::Heap(s) => s,
        }
    }
}

impl std::fmt::Debug for EventText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl std::fmt::Display for EventText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self)
    }
}

impl PartialEq<&str> for EventText {
    fn eq(&self, other: &&str) -> bool {
        **self == **other
    }
}

impl PartialEq<String> for EventText {
    fn eq(&self, other: &String) -> bool {
        **self == **other
    }
}

impl PartialEq<EventText> for String {
    fn eq(&self, other: &EventText) -> bool {
        **self == **other
    }
}

impl serde::Serialize for EventText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

#[cfg(test)]
mod text_tests {
    use super::EventText;

    #[test]
    fn ids_and_names_are_inline_and_longer_text_is_kept_whole() {
        let id = "a".repeat(64);
        let t = EventText::from(id.as_str());
        assert!(matches!(t, EventText::Inline(_)));
        assert_eq!(t, id);
        let long = "b".repeat(65);
        let t = EventText::from(long.as_str());
        assert!(matches!(t, EventText::Heap(_)));
        assert_eq!(&*t, long.as_str());
        assert_eq!(t.to_string(), long);
        assert_eq!(EventText::from(""), "");
        // Formatted as a str is (width and alignment kept).
        assert_eq!(format!("[{:<6}]", EventText::from("web")), "[web   ]");
    }
}

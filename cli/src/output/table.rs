//! The `ps` table: column layout and per-container cell text.

use quilt_proto::v1::{Container, ContainerState};

use super::timefmt::{human_duration, seconds_since};

pub const PS_HEADERS: [&str; 7] = [
    "ID", "NAME", "IMAGE", "COMMAND", "STATE", "STATUS", "CREATED",
];

/// Length of a short container id.
pub const SHORT_ID: usize = 12;
/// Maximum width of the COMMAND cell (without its quotes) when truncating.
const COMMAND_WIDTH: usize = 20;

/// `id` cut to `SHORT_ID` characters.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(SHORT_ID) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// `text` cut to `width` characters, ending in "…" when cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `word` as a shell would need it typed: quoted when it is empty or holds
/// anything beyond a conservative set of safe characters.
fn shell_word(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The argv as one shell-like line, in double quotes, e.g. `"sh -c 'exit 7'"`.
pub fn command_text(argv: &[String], trunc: bool) -> String {
    let line = argv
        .iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ");
    let line = if trunc {
        truncate(&line, COMMAND_WIDTH)
    } else {
        line
    };
    format!("\"{line}\"")
}

/// Human status such as "Up 5 seconds" or "Exited (7) 3 minutes ago".
pub fn status_text(c: &Container, now: i64) -> String {
    let since =
        |ts: Option<&prost_types::Timestamp>| ts.map(|t| human_duration(seconds_since(t, now)));
    let finished = c
        .finished_at
        .as_ref()
        .or(c.exit.as_ref().and_then(|e| e.finished_at.as_ref()));
    let code = c.exit.as_ref().map_or(0, |e| e.exit_code);
    match ContainerState::try_from(c.state) {
        Ok(ContainerState::Created) => "Created".to_owned(),
        Ok(ContainerState::Starting) => "Starting".to_owned(),
        Ok(ContainerState::Running) => match since(c.started_at.as_ref()) {
            Some(d) => format!("Up {d}"),
            None => "Up".to_owned(),
        },
        Ok(ContainerState::Paused) => match since(c.started_at.as_ref()) {
            Some(d) => format!("Up {d} (Paused)"),
            None => "Up (Paused)".to_owned(),
        },
        Ok(ContainerState::Exited) => match since(finished) {
            Some(d) => format!("Exited ({code}) {d} ago"),
            None => format!("Exited ({code})"),
        },
        Ok(ContainerState::Failed) => match since(finished) {
            Some(d) => format!("Failed ({code}) {d} ago"),
            None => format!("Failed ({code})"),
        },
        Ok(ContainerState::Removing) => "Removing".to_owned(),
        Ok(ContainerState::Lost) => "Lost (node down)".to_owned(),
        Ok(ContainerState::Unspecified) | Err(_) => "Unknown".to_owned(),
    }
}

/// "3 minutes ago", or "" when the time is unknown.
pub fn created_text(c: &Container, now: i64) -> String {
    c.created_at
        .as_ref()
        .map(|t| format!("{} ago", human_duration(seconds_since(t, now))))
        .unwrap_or_default()
}

/// The cells of one `ps` row, in `PS_HEADERS` order.
pub fn ps_row(c: &Container, now: i64, trunc: bool) -> Vec<String> {
    vec![
        if trunc {
            short_id(&c.id).to_owned()
        } else {
            c.id.clone()
        },
        c.name.clone(),
        c.image.clone(),
        command_text(&c.command, trunc),
        super::json::state_name(c.state).to_owned(),
        status_text(c, now),
        created_text(c, now),
    ]
}

/// Renders rows under headers, columns separated by at least three spaces.
/// The last column is not padded.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;
    use quilt_proto::v1::ExitStatus;

    const NOW: i64 = 1_714_564_800;

    fn at(secs_ago: i64) -> Option<Timestamp> {
        Some(Timestamp {
            seconds: NOW - secs_ago,
            nanos: 0,
        })
    }

    fn container(state: ContainerState) -> Container {
        Container {
            id: "0123456789abcdef0123".into(),
            name: "web".into(),
            image: "default".into(),
            command: vec!["sh".into(), "-c".into(), "exit 7".into()],
            state: state as i32,
            created_at: at(600),
            ..Default::default()
        }
    }

    #[test]
    fn short_ids_and_truncation() {
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello world", 5), "hell…");
    }

    #[test]
    fn commands_are_quoted_like_a_shell() {
        let argv: Vec<String> = ["sh", "-c", "exit 7"].map(String::from).to_vec();
        assert_eq!(command_text(&argv, false), "\"sh -c 'exit 7'\"");
        let argv: Vec<String> = ["echo", "it's", ""].map(String::from).to_vec();
        assert_eq!(command_text(&argv, false), r#""echo 'it'\''s' ''""#);
        let argv: Vec<String> = ["sleep", "1000000000000000000000"]
            .map(String::from)
            .to_vec();
        assert_eq!(command_text(&argv, true), "\"sleep 1000000000000…\"");
    }

    #[test]
    fn status_texts() {
        let mut c = container(ContainerState::Running);
        c.started_at = at(5);
        assert_eq!(status_text(&c, NOW), "Up 5 seconds");

        let mut c = container(ContainerState::Exited);
        c.finished_at = at(180);
        c.exit = Some(Box::new(ExitStatus {
            exit_code: 7,
            ..Default::default()
        }));
        assert_eq!(status_text(&c, NOW), "Exited (7) 3 minutes ago");

        // The exit status' time is used when finished_at is missing.
        let mut c = container(ContainerState::Failed);
        c.exit = Some(Box::new(ExitStatus {
            exit_code: 127,
            finished_at: at(1),
            ..Default::default()
        }));
        assert_eq!(status_text(&c, NOW), "Failed (127) 1 second ago");

        assert_eq!(
            status_text(&container(ContainerState::Created), NOW),
            "Created"
        );
        assert_eq!(
            created_text(&container(ContainerState::Created), NOW),
            "10 minutes ago"
        );
    }

    #[test]
    fn table_layout() {
        let mut c = container(ContainerState::Running);
        c.started_at = at(5);
        let rows = vec![ps_row(&c, NOW, true)];
        let text = render(&PS_HEADERS, &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("ID             NAME   IMAGE     COMMAND"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("0123456789ab   web    default   \"sh -c 'exit 7'\""),
            "{text}"
        );
        assert!(
            lines[1].ends_with("running   Up 5 seconds   10 minutes ago"),
            "{text}"
        );
        // Columns line up.
        let col = lines[0].find("STATUS").unwrap();
        assert_eq!(&lines[1][col..col + 2], "Up");
    }

    #[test]
    fn empty_table_has_headers() {
        assert_eq!(
            render(&PS_HEADERS, &[]),
            "ID   NAME   IMAGE   COMMAND   STATE   STATUS   CREATED\n"
        );
    }
}

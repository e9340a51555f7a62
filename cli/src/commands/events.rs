//! `quilt events`: one line per state change, until interrupted.

use quilt_proto::v1::{Event, WatchEventsRequest};

use crate::args::Format;
use crate::args::events::{EventFilter, EventsArgs};
use crate::client::Client;
use crate::error::CliError;
use crate::output::json::{EventView, compact, state_name};
use crate::output::stream::print_stdout;
use crate::output::timefmt::{Fraction, rfc3339};

/// `<time> <action> <id> (name=<name>[, exit_code=N, signal=N, oom_killed=true, reason=...])`
pub fn event_line(e: &Event) -> String {
    let time = e
        .time
        .as_ref()
        .map_or_else(|| "-".to_owned(), |t| rfc3339(t, Fraction::Nanos));
    let action = if e.action.is_empty() {
        state_name(e.state)
    } else {
        &e.action
    };
    let mut attrs = vec![format!("name={}", e.name)];
    if let Some(exit) = &e.exit {
        attrs.push(format!("exit_code={}", exit.exit_code));
        if exit.signal != 0 {
            attrs.push(format!("signal={}", exit.signal));
        }
        if exit.oom_killed {
            attrs.push("oom_killed=true".to_owned());
        }
        if !exit.failure_reason.is_empty() {
            attrs.push(format!("reason={}", exit.failure_reason));
        }
    }
    let id = if e.container_id.is_empty() {
        "-"
    } else {
        &e.container_id
    };
    format!("{time} {action} {id} ({})", attrs.join(", "))
}

pub async fn events(client: &mut Client, args: EventsArgs) -> Result<u8, CliError> {
    let mut request = WatchEventsRequest {
        id: args.id.unwrap_or_default(),
        since: args.since,
        until: args.until,
        ..Default::default()
    };
    for f in args.filters {
        match f {
            EventFilter::Container(c) => request.containers.push(c),
            EventFilter::Event(a) => request.actions.push(a),
        }
    }
    let mut stream = client.watch_events(request).await?.into_inner();
    while let Some(event) = stream.message().await? {
        let line = match args.format {
            Format::Table => event_line(&event),
            Format::Json => compact(&EventView::from(&event))?,
        };
        print_stdout(&format!("{line}\n"))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;
    use quilt_proto::v1::{ContainerState, ExitStatus};

    #[test]
    fn event_lines() {
        let mut e = Event {
            container_id: "abc123".into(),
            name: "web".into(),
            state: ContainerState::Running as i32,
            time: Some(Timestamp {
                seconds: 0,
                nanos: 5,
            }),
            exit: None,
            action: "running".into(),
        };
        assert_eq!(
            event_line(&e),
            "1970-01-01T00:00:00.000000005Z running abc123 (name=web)"
        );
        e.action = "exited".into();
        e.exit = Some(ExitStatus {
            exit_code: 137,
            signal: 9,
            oom_killed: true,
            ..Default::default()
        });
        assert_eq!(
            event_line(&e),
            "1970-01-01T00:00:00.000000005Z exited abc123 \
             (name=web, exit_code=137, signal=9, oom_killed=true)"
        );
        e.action.clear();
        e.state = ContainerState::Failed as i32;
        e.time = None;
        e.exit = Some(ExitStatus {
            exit_code: 127,
            failure_reason: "not found".into(),
            ..Default::default()
        });
        assert_eq!(
            event_line(&e),
            "- failed abc123 (name=web, exit_code=127, reason=not found)"
        );
    }
}

//! `quilt ps`.

use quilt_proto::v1::{Container, ContainerState, ContainerView as View, ListContainersRequest};

use crate::args::ps::{Filter, PsArgs, PsFormat};
use crate::client::Client;
use crate::error::CliError;
use crate::output::docker::{PS_TITLES, ps_value};
use crate::output::json::{ContainerView, parse_state, pretty, state_names};
use crate::output::stream::print_stdout;
use crate::output::table::{PS_HEADERS, ps_row, render, short_id};
use crate::output::template::Format as Template;
use crate::output::timefmt::now_seconds;

/// States listed without -a.
const ACTIVE: [ContainerState; 4] = [
    ContainerState::Created,
    ContainerState::Starting,
    ContainerState::Running,
    ContainerState::Paused,
];

/// The server-side query, plus the label keys (given without a value) that
/// have to be checked locally.
pub fn list_request(
    all: bool,
    filters: &[Filter],
) -> Result<(ListContainersRequest, Vec<String>), CliError> {
    let mut request = ListContainersRequest::default();
    let mut label_keys = Vec::new();
    for filter in filters {
        match filter {
            Filter::State(name) => {
                let state = parse_state(name).ok_or_else(|| {
                    CliError::engine(format!(
                        "invalid state filter {name:?} (expected {})",
                        state_names()
                    ))
                })?;
                if !request.states.contains(&(state as i32)) {
                    request.states.push(state as i32);
                }
            }
            Filter::Name(name) => request.name.clone_from(name),
            Filter::Label(key, Some(value)) => {
                request.labels.insert(key.clone(), value.clone());
            }
            Filter::Label(key, None) => label_keys.push(key.clone()),
        }
    }
    // An explicit state filter wins over the default of active containers.
    if request.states.is_empty() && !all {
        request.states = ACTIVE.iter().map(|s| *s as i32).collect();
    }
    Ok((request, label_keys))
}

pub async fn ps(client: &mut Client, args: PsArgs) -> Result<u8, CliError> {
    let last = if args.latest { Some(1) } else { args.last };
    let (mut request, label_keys) = list_request(args.all || last.is_some(), &args.filters)?;
    // The table and ids need no env or mounts; JSON shows every field.
    request.view = if args.quiet || args.format == PsFormat::Table {
        View::Summary
    } else {
        View::Full
    } as i32;
    let mut containers: Vec<Container> = list_all(client, request)
        .await?
        .into_iter()
        .filter(|c| label_keys.iter().all(|k| c.labels.contains_key(k)))
        .collect();
    sort_newest_first(&mut containers);
    if let Some(n) = last {
        containers.truncate(n);
    }

    let trunc = !args.no_trunc;
    let text = if args.quiet {
        containers
            .iter()
            .map(|c| {
                let id = if trunc { short_id(&c.id) } else { &c.id };
                format!("{id}\n")
            })
            .collect()
    } else {
        match &args.format {
            PsFormat::Template(text) => {
                let format = Template::parse(text, &PS_TITLES)?;
                let now = now_seconds();
                let mut out = format
                    .header()
                    .map(|h| format!("{h}\n"))
                    .unwrap_or_default();
                for c in &containers {
                    out.push_str(&format.render(&ps_value(c, now, trunc))?);
                }
                out
            }
            PsFormat::Json => {
                let views: Vec<ContainerView> =
                    containers.iter().map(ContainerView::from).collect();
                format!("{}\n", pretty(&views)?)
            }
            PsFormat::Table => {
                let now = now_seconds();
                let rows: Vec<Vec<String>> =
                    containers.iter().map(|c| ps_row(c, now, trunc)).collect();
                render(&PS_HEADERS, &rows)
            }
        }
    };
    print_stdout(&text)?;
    Ok(0)
}

/// Every page of a listing: the server ends a page at its size cap and
/// says where the next one starts.
async fn list_all(
    client: &mut Client,
    mut request: ListContainersRequest,
) -> Result<Vec<Container>, CliError> {
    let mut all = Vec::new();
    loop {
        let page = client.list_containers(request.clone()).await?.into_inner();
        all.extend(page.containers);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        if page.next_page_token == request.page_token {
            return Err(CliError::engine(
                "the daemon returned the same page token twice".to_owned(),
            ));
        }
        request.page_token = page.next_page_token;
    }
}

/// Newest first; ties keep the server's order.
fn sort_newest_first(containers: &mut [Container]) {
    containers
        .sort_by_key(|c| std::cmp::Reverse(c.created_at.as_ref().map(|t| (t.seconds, t.nanos))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;

    fn states(req: &ListContainersRequest) -> Vec<ContainerState> {
        req.states
            .iter()
            .map(|s| ContainerState::try_from(*s).unwrap())
            .collect()
    }

    #[test]
    fn default_lists_active_containers() {
        let (req, keys) = list_request(false, &[]).unwrap();
        assert_eq!(states(&req), ACTIVE);
        assert!(keys.is_empty());
        let (req, _) = list_request(true, &[]).unwrap();
        assert!(req.states.is_empty());
    }

    #[test]
    fn filters_become_the_query() {
        let filters = [
            Filter::State("exited".into()),
            Filter::State("failed".into()),
            Filter::State("exited".into()),
            Filter::Name("web".into()),
            Filter::Label("tier".into(), Some("db".into())),
            Filter::Label("owner".into(), None),
        ];
        let (req, keys) = list_request(false, &filters).unwrap();
        assert_eq!(
            states(&req),
            [ContainerState::Exited, ContainerState::Failed]
        );
        assert_eq!(req.name, "web");
        assert_eq!(req.labels.get("tier").map(String::as_str), Some("db"));
        assert_eq!(keys, ["owner"]);
    }

    #[test]
    fn unknown_state_is_an_error() {
        let err = list_request(false, &[Filter::State("up".into())]).unwrap_err();
        assert_eq!(err.code, 125);
        assert!(err.message.unwrap().contains("\"up\""));
    }

    #[test]
    fn newest_first() {
        let at = |s| Container {
            id: format!("{s}"),
            created_at: Some(Timestamp {
                seconds: s,
                nanos: 0,
            }),
            ..Default::default()
        };
        let mut list = vec![at(1), at(3), at(2)];
        sort_newest_first(&mut list);
        let ids: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["3", "2", "1"]);
    }
}

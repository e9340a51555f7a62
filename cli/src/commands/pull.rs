//! `quilt pull`, and the pull `run`/`create` make of a missing image that
//! looks like a registry reference: credentials from the user's docker
//! config.json go with the request, progress goes to stderr (a line per
//! blob, and a bar on a terminal), the image id to stdout.

use std::io::Write;

use quilt_proto::units::human_size;
use quilt_proto::v1::image_service_client::ImageServiceClient;
use quilt_proto::v1::pull_image_response::Item;
use quilt_proto::v1::{Image, PullImageRequest, RegistryAuth};
use quilt_registry::{DockerConfig, ImageRef};

use super::image_progress::ProgressBar;
use crate::args::registry::PullArgs;
use crate::client;
use crate::error::CliError;
use crate::output::stream::emit;

fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.get(..12).unwrap_or(hex)
}

/// The user's credentials for REFERENCE's registry, if stored.
fn credentials(reference: &str) -> Result<Option<RegistryAuth>, CliError> {
    let Ok(r) = ImageRef::parse(reference) else {
        return Ok(None); // the daemon explains what is wrong with it
    };
    let Some(path) = DockerConfig::default_path() else {
        return Ok(None);
    };
    let found = DockerConfig::load(&path)
        .and_then(|c| c.lookup(r.registry()))
        .map_err(|e| CliError::engine(format!("cannot read credentials: {e}")))?;
    Ok(found.map(|c| RegistryAuth {
        username: c.username,
        password: c.password,
    }))
}

/// A line on stderr (unless quiet), clearing the bar first.
fn say(quiet: bool, bar: &mut ProgressBar, line: &str) {
    if quiet {
        return;
    }
    bar.finish();
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Pulls REFERENCE through quiltd; returns the image.
pub async fn pull_image(
    target: &client::Target,
    reference: &str,
    platform: Option<&str>,
    quiet: bool,
) -> Result<Image, CliError> {
    let mut c = ImageServiceClient::new(client::connect_channel(target).await?);
    let mut stream = c
        .pull_image(PullImageRequest {
            reference: reference.to_owned(),
            platform: platform.unwrap_or_default().to_owned(),
            auth: credentials(reference)?,
        })
        .await?
        .into_inner();
    let mut bar = ProgressBar::new();
    // Bytes per blob, for the bar's total.
    let mut sizes: Vec<(String, u64, u64)> = Vec::new();
    loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(status) => {
                bar.finish();
                return Err(CliError::engine(format!(
                    "cannot pull {reference}: {}",
                    crate::error::status_message(&status)
                )));
            }
        };
        match msg.item {
            Some(Item::Resolved(r)) => {
                let on = if r.platform.is_empty() {
                    String::new()
                } else {
                    format!(" for {}", r.platform)
                };
                say(
                    quiet,
                    &mut bar,
                    &format!("{}: resolved to {}{on}", r.reference, r.digest),
                );
                sizes = r.blobs.into_iter().map(|b| (b.digest, b.size, 0)).collect();
            }
            Some(Item::Blob(b)) => {
                if let Some(s) = sizes.iter_mut().find(|s| s.0 == b.digest) {
                    s.2 = b.done_bytes;
                }
                if b.done {
                    let what = if b.config { "config" } else { "layer" };
                    let resumed = if b.resumed_bytes > 0 {
                        format!(" (resumed at {})", human_size(b.resumed_bytes))
                    } else {
                        String::new()
                    };
                    say(
                        quiet,
                        &mut bar,
                        &format!(
                            "{}: {what} {} verified{resumed}",
                            short(&b.digest),
                            human_size(b.total_bytes)
                        ),
                    );
                } else if !quiet {
                    let (done, total) = sizes
                        .iter()
                        .fold((0, 0), |(d, t), s| (d + s.2.min(s.1), t + s.1));
                    bar.update("downloading", done, total);
                }
            }
            Some(Item::Import(p)) if !quiet => {
                bar.update(&p.phase, p.done_bytes, p.total_bytes);
            }
            Some(Item::Import(_)) => {}
            Some(Item::Image(i)) => {
                let name = i.names.first().cloned().unwrap_or_default();
                say(
                    quiet,
                    &mut bar,
                    &format!("{reference}: pulled as {name} ({})", short(&i.id)),
                );
                return Ok(i);
            }
            None => {}
        }
    }
    bar.finish();
    Err(CliError::engine(format!(
        "cannot pull {reference}: quiltd ended the stream without an image"
    )))
}

pub async fn pull(target: &client::Target, args: PullArgs) -> Result<u8, CliError> {
    let i = pull_image(
        target,
        &args.reference,
        args.platform.as_deref(),
        args.quiet,
    )
    .await?;
    emit(&format!("{}\n", i.id))?;
    Ok(0)
}

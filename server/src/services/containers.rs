//! quilt.v1.ContainerService: containers, logs and events here; exec and
//! copy handlers in `exec.rs` and `copy.rs`.
use super::BoxStream;
use crate::convert;
use crate::status::to_status;
use quilt_proto::v1 as pb;
use quilt_proto::v1::container_service_server::ContainerService;
use quilt_sync_engine::{Engine, LogItem};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream};
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub struct Containers {
    engine: Engine,
    listing: std::sync::Arc<super::listing::Listing>,
    /// The other nodes of the cluster, for calls their containers' hosts serve.
    peers: std::sync::Arc<crate::forward::Peers>,
}

impl Containers {
    pub fn new(
        engine: Engine,
        peers: std::sync::Arc<crate::forward::Peers>,
        listing: std::sync::Arc<super::listing::Listing>,
    ) -> Self {
        Containers {
            engine,
            listing,
            peers,
        }
    }
}

/// A unary call on the container `$reference` names: when another node
/// of the cluster runs it, the request goes there and its answer back. A
/// call another node forwarded (`$hop`) is never forwarded again: served
/// here, it is refused if the container is not this node's.
macro_rules! forward {
    ($self:ident, $hop:expr, $reference:expr, $method:ident, $req:expr) => {
        if !$hop && let Some(node) = $self.peers.owner($reference).await {
            return $self.peers.client(&node).await?.$method($req).await;
        }
    };
}

/// A call naming an exec, answered here (`$here`) unless this node does
/// not know the exec: it may be another node's (it runs in that node's
/// container), so each other live node is asked in turn, and the first
/// answer other than NOT_FOUND or UNAVAILABLE is returned (as `$answer`
/// makes it of `$a`). A forwarded call (`$hop`) is never asked elsewhere.
/// NOT_FOUND when no node has it.
macro_rules! here_or_by_exec_id {
    ($self:ident, $hop:expr, $here:expr, $method:ident, $req:expr, |$a:ident| $answer:expr) => {
        match $here {
            Err(s) if s.code() == tonic::Code::NotFound && !$hop => {
                for node in $self.peers.others().await {
                    let Ok(mut peer) = $self.peers.client(&node).await else {
                        continue;
                    };
                    match peer.$method($req.clone()).await {
                        Ok($a) => return Ok($answer),
                        Err(e)
                            if matches!(
                                e.code(),
                                tonic::Code::NotFound | tonic::Code::Unavailable
                            ) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(s)
            }
            other => other,
        }
    };
}

/// The same for a call that answers with a stream.
macro_rules! forward_stream {
    ($self:ident, $hop:expr, $reference:expr, $method:ident, $req:expr) => {
        if !$hop && let Some(node) = $self.peers.owner($reference).await {
            let answer = $self.peers.client(&node).await?.$method($req).await?;
            return Ok(Response::new(Box::pin(answer.into_inner())));
        }
    };
}

#[tonic::async_trait]
impl ContainerService for Containers {
    async fn create_container(
        &self,
        req: Request<pb::CreateContainerRequest>,
    ) -> Result<Response<pb::CreateContainerResponse>, Status> {
        let who = convert::requester(&req, req.get_ref().priority);
        let spec = convert::create_spec(req.into_inner())?;
        let c = self.engine.create_as(spec, &who).await.map_err(to_status)?;
        Ok(Response::new(pb::CreateContainerResponse {
            id: c.id,
            name: c.name,
        }))
    }

    async fn start_container(
        &self,
        req: Request<pb::StartContainerRequest>,
    ) -> Result<Response<pb::StartContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let who = convert::requester(&req, req.get_ref().priority);
        let r = req.into_inner();
        forward!(self, hop, &r.id, start_container, r.clone());
        let c = self.engine.start_as(&r.id, &who).await.map_err(to_status)?;
        Ok(Response::new(pb::StartContainerResponse {
            container: Some(convert::container(&c)),
        }))
    }

    async fn get_container(
        &self,
        req: Request<pb::GetContainerRequest>,
    ) -> Result<Response<pb::GetContainerResponse>, Status> {
        let c = self
            .engine
            .get(&req.into_inner().id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::GetContainerResponse {
            container: Some(convert::container(&c)),
        }))
    }

    async fn list_containers(
        &self,
        req: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        // quiltd serves this method through `WithListing`; this answer,
        // the same page decoded, is for a server built without it.
        use prost::Message;
        let wire = self.listing.page(req.into_inner()).await?;
        pb::ListContainersResponse::decode(wire.encode_to_vec().as_slice())
            .map(Response::new)
            .map_err(|e| Status::internal(format!("listing: {e}")))
    }

    async fn stop_container(
        &self,
        req: Request<pb::StopContainerRequest>,
    ) -> Result<Response<pb::StopContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, stop_container, r.clone());
        let timeout = convert::stop_timeout(r.timeout_seconds)?;
        let c = self.engine.stop(&r.id, timeout).await.map_err(to_status)?;
        Ok(Response::new(pb::StopContainerResponse {
            container: Some(convert::container(&c)),
        }))
    }

    async fn prune_containers(
        &self,
        req: Request<pb::PruneContainersRequest>,
    ) -> Result<Response<pb::PruneContainersResponse>, Status> {
        let r = req.into_inner();
        let until = r.until.as_ref().map(convert::ts_ns);
        let p = self
            .engine
            .prune(r.labels.into_iter().collect(), until)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::PruneContainersResponse {
            removed: p.ids,
            reclaimed_bytes: p.reclaimed_bytes,
        }))
    }

    async fn update_lifetime(
        &self,
        req: Request<pb::UpdateLifetimeRequest>,
    ) -> Result<Response<pb::UpdateLifetimeResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, update_lifetime, r.clone());
        let c = self
            .engine
            .update_lifetime(
                &r.id,
                r.ttl_ms.map(std::time::Duration::from_millis),
                r.touch,
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::UpdateLifetimeResponse {
            container: Some(convert::container(&c)),
        }))
    }

    async fn restart_container(
        &self,
        req: Request<pb::RestartContainerRequest>,
    ) -> Result<Response<pb::RestartContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, restart_container, r.clone());
        let timeout = convert::stop_timeout(r.timeout_seconds)?;
        let c = self
            .engine
            .restart(&r.id, timeout)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RestartContainerResponse {
            container: Some(convert::container(&c)),
        }))
    }

    async fn kill_container(
        &self,
        req: Request<pb::KillContainerRequest>,
    ) -> Result<Response<pb::KillContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, kill_container, r.clone());
        self.engine
            .kill(&r.id, &r.signal)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::KillContainerResponse {}))
    }

    async fn rename_container(
        &self,
        req: Request<pb::RenameContainerRequest>,
    ) -> Result<Response<pb::RenameContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, rename_container, r.clone());
        let id = self
            .engine
            .rename(&r.id, &r.name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RenameContainerResponse { id }))
    }

    async fn remove_container(
        &self,
        req: Request<pb::RemoveContainerRequest>,
    ) -> Result<Response<pb::RemoveContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, remove_container, r.clone());
        let id = self
            .engine
            .remove(&r.id, r.force)
            .await
            .map_err(to_status)?;
        // Removals come in bursts (a batch's cleanup): what the removed rows
        // held goes back to the kernel too, not only a big listing's pages.
        self.listing.trim_soon();
        Ok(Response::new(pb::RemoveContainerResponse { id }))
    }

    async fn wait_container(
        &self,
        req: Request<pb::WaitContainerRequest>,
    ) -> Result<Response<pb::WaitContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, wait_container, r.clone());
        let w = self.engine.wait(&r.id).await.map_err(to_status)?;
        Ok(Response::new(pb::WaitContainerResponse {
            id: w.id.clone(),
            exit: Some(convert::wait_result(&w)),
        }))
    }

    type GetLogsStream = BoxStream<pb::GetLogsResponse>;

    async fn get_logs(
        &self,
        req: Request<pb::GetLogsRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward_stream!(self, hop, &r.id, get_logs, r.clone());
        let rx = self
            .engine
            .logs(
                &r.id,
                r.follow,
                r.tail,
                r.since.as_ref().map(convert::ts_ns),
            )
            .await
            .map_err(to_status)?;
        let stream = ReceiverStream::new(rx).map(|item| {
            let item = match item.map_err(to_status)? {
                LogItem::Line(l) => pb::get_logs_response::Item::Entry(convert::log_line(l)),
                LogItem::Exit(w) => pb::get_logs_response::Item::Exit(convert::wait_result(&w)),
            };
            Ok(pb::GetLogsResponse { item: Some(item) })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn attach_input(
        &self,
        req: Request<tonic::Streaming<pb::AttachInputRequest>>,
    ) -> Result<Response<pb::AttachInputResponse>, Status> {
        super::attach::attach_input(&self.engine, &self.peers, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn resize_container(
        &self,
        req: Request<pb::ResizeContainerRequest>,
    ) -> Result<Response<pb::ResizeContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, resize_container, r.clone());
        super::attach::resize(&self.engine, r)
            .await
            .map(Response::new)
    }

    type ExecStream = BoxStream<pb::ExecResponse>;

    async fn exec(
        &self,
        req: Request<tonic::Streaming<pb::ExecRequest>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        super::exec::exec(&self.engine, &self.peers, req.into_inner()).await
    }

    async fn list_execs(
        &self,
        req: Request<pb::ListExecsRequest>,
    ) -> Result<Response<pb::ListExecsResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.container_id, list_execs, r.clone());
        super::exec::list_execs(&self.engine, r)
            .await
            .map(Response::new)
    }

    async fn wait_exec(
        &self,
        req: Request<pb::WaitExecRequest>,
    ) -> Result<Response<pb::WaitExecResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        let here = super::exec::wait_exec(&self.engine, r.clone()).await;
        here_or_by_exec_id!(self, hop, here.map(Response::new), wait_exec, r, |a| a)
    }

    async fn kill_exec(
        &self,
        req: Request<pb::KillExecRequest>,
    ) -> Result<Response<pb::KillExecResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        let here = super::exec::kill_exec(&self.engine, r.clone()).await;
        here_or_by_exec_id!(self, hop, here.map(Response::new), kill_exec, r, |a| a)
    }

    type ExecLogsStream = BoxStream<pb::ExecResponse>;

    async fn exec_logs(
        &self,
        req: Request<pb::ExecLogsRequest>,
    ) -> Result<Response<Self::ExecLogsStream>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        let here = super::exec::exec_logs(&self.engine, r.clone()).await;
        here_or_by_exec_id!(self, hop, here, exec_logs, r, |answer| Response::new(
            Box::pin(answer.into_inner())
        ))
    }

    async fn copy_in(
        &self,
        req: Request<tonic::Streaming<pb::CopyInRequest>>,
    ) -> Result<Response<pb::CopyInResponse>, Status> {
        super::copy::copy_in(&self.engine, &self.peers, req.into_inner())
            .await
            .map(Response::new)
    }

    type CopyOutStream = BoxStream<pb::CopyOutResponse>;

    async fn copy_out(
        &self,
        req: Request<pb::CopyOutRequest>,
    ) -> Result<Response<Self::CopyOutStream>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward_stream!(self, hop, &r.container_id, copy_out, r.clone());
        super::copy::copy_out(&self.engine, r).await
    }

    type ExportContainerStream = BoxStream<pb::CopyOutResponse>;

    async fn export_container(
        &self,
        req: Request<pb::ExportContainerRequest>,
    ) -> Result<Response<Self::ExportContainerStream>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward_stream!(self, hop, &r.container_id, export_container, r.clone());
        super::copy::export(&self.engine, r).await
    }

    type WatchEventsStream = BoxStream<pb::Event>;

    async fn watch_events(
        &self,
        req: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let r = req.into_inner();
        let (filter, since, until) = convert::event_query(&r)?;
        let only = if r.id.is_empty() {
            None
        } else {
            Some(self.engine.get(&r.id).await.map_err(to_status)?.id)
        };
        let (past, rx) = self.engine.events_since(since);
        let keep = move |ev: &quilt_sync_engine::Event| {
            only.as_ref().is_none_or(|id| *id == ev.container_id)
                && filter.matches(ev)
                && until.is_none_or(|u| ev.time_ns <= u)
        };
        let keep2 = keep.clone();
        let history = tokio_stream::iter(past)
            .filter(move |ev| keep(ev))
            .map(|ev| Ok(convert::event(&ev)));
        let live = BroadcastStream::new(rx).filter_map(move |ev| match ev {
            Ok(ev) if keep2(&ev) => Some(Ok(convert::event(&ev))),
            Ok(_) => None,
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                Some(Err(Status::data_loss(format!(
                    "event stream lagged: {n} events dropped; resubscribe"
                ))))
            }
        });
        let Some(until) = until else {
            return Ok(Response::new(Box::pin(history.chain(live))));
        };
        // The whole history first; then the live events until `until`,
        // whether or not any come (none when it is already past: a deadline
        // racing the history would cut it short).
        let left = (until - quilt_sync_engine::now_ns()).max(0) as u64;
        let end = tokio::time::sleep(std::time::Duration::from_nanos(left));
        let live = futures::StreamExt::take_until(live, end);
        Ok(Response::new(Box::pin(history.chain(live))))
    }

    async fn get_stats(
        &self,
        req: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::GetStatsResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        if let [one] = r.ids.as_slice() {
            forward!(self, hop, one, get_stats, r.clone());
        }
        let batch = self
            .engine
            .stats(&r.ids, r.all, r.sample_ms)
            .await
            .map_err(to_status)?;
        Ok(Response::new(convert::stats_response(&batch)))
    }

    type StreamStatsStream = BoxStream<pb::GetStatsResponse>;

    async fn stream_stats(
        &self,
        req: Request<pb::StreamStatsRequest>,
    ) -> Result<Response<Self::StreamStatsStream>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        if let [one] = r.ids.as_slice() {
            forward_stream!(self, hop, one, stream_stats, r.clone());
        }
        let rx = self
            .engine
            .stats_stream(&r.ids, r.all, r.interval_ms)
            .await
            .map_err(to_status)?;
        let stream = ReceiverStream::new(rx).map(|batch| match batch {
            Ok(b) => Ok(convert::stats_response(&b)),
            Err(e) => Err(to_status(e)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn top_container(
        &self,
        req: Request<pb::TopContainerRequest>,
    ) -> Result<Response<pb::TopContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, top_container, r.clone());
        let procs = self.engine.top(&r.id).await.map_err(to_status)?;
        Ok(Response::new(pb::TopContainerResponse {
            processes: procs.iter().map(convert::process).collect(),
        }))
    }

    async fn pause_container(
        &self,
        req: Request<pb::PauseContainerRequest>,
    ) -> Result<Response<pb::PauseContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, pause_container, r.clone());
        let c = self.engine.pause(&r.id).await.map_err(to_status)?;
        Ok(Response::new(pb::PauseContainerResponse {
            container: Some(convert::container(&c)),
        }))
    }

    async fn unpause_container(
        &self,
        req: Request<pb::UnpauseContainerRequest>,
    ) -> Result<Response<pb::UnpauseContainerResponse>, Status> {
        let hop = crate::forward::forwarded(&req);
        let r = req.into_inner();
        forward!(self, hop, &r.id, unpause_container, r.clone());
        let c = self.engine.unpause(&r.id).await.map_err(to_status)?;
        Ok(Response::new(pb::UnpauseContainerResponse {
            container: Some(convert::container(&c)),
        }))
    }
}

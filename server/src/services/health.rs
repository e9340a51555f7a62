//! grpc.health.v1.Health: the serving status of quiltd ("") and of each
//! service it serves. Check of a service quiltd does not serve is NOT_FOUND;
//! Watch of one streams SERVICE_UNKNOWN and stays open, reporting the
//! service once it is set. At shutdown every status turns NOT_SERVING,
//! every watcher is told so, and then its stream ends, so the graceful
//! shutdown is not held up by watchers.
use super::BoxStream;
use std::collections::BTreeMap;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The statuses, and whether quiltd is shutting down.
#[derive(Debug, Clone, Default)]
struct Statuses {
    services: BTreeMap<String, ServingStatus>,
    shutting_down: bool,
}

impl Statuses {
    /// What Watch reports for `service`.
    fn watched(&self, service: &str) -> ServingStatus {
        if self.shutting_down {
            return ServingStatus::NotServing;
        }
        self.services
            .get(service)
            .copied()
            .unwrap_or(ServingStatus::ServiceUnknown)
    }
}

/// Sets the statuses the Health service reports.
#[derive(Debug, Clone)]
pub struct HealthReporter {
    tx: watch::Sender<Statuses>,
}

impl HealthReporter {
    pub fn set(&self, service: &str, status: ServingStatus) {
        self.tx.send_modify(|s| {
            s.services.insert(service.to_owned(), status);
        });
    }

    /// Every service NOT_SERVING from now on; watchers are told, then
    /// their streams end.
    pub fn shut_down(&self) {
        self.tx.send_modify(|s| {
            s.shutting_down = true;
            for v in s.services.values_mut() {
                *v = ServingStatus::NotServing;
            }
        });
    }
}

#[derive(Debug)]
pub struct HealthService {
    rx: watch::Receiver<Statuses>,
}

/// The service and the handle that sets what it reports (nothing is known
/// at first, not even "").
pub fn health() -> (HealthReporter, HealthService) {
    let (tx, rx) = watch::channel(Statuses::default());
    (HealthReporter { tx }, HealthService { rx })
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        req: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = req.into_inner().service;
        let status = self.rx.borrow().services.get(&service).copied();
        match status {
            Some(s) => Ok(Response::new(response(s))),
            None => Err(Status::not_found(format!(
                "unknown service {}",
                quilt_sync_engine::echo(&service)
            ))),
        }
    }

    type WatchStream = BoxStream<HealthCheckResponse>;

    async fn watch(
        &self,
        req: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = req.into_inner().service;
        let mut rx = self.rx.clone();
        rx.mark_changed();
        // (receiver, last status sent, the stream is over)
        let stream = futures::stream::unfold(
            (rx, None::<ServingStatus>, false),
            move |(mut rx, last, over)| {
                let service = service.clone();
                async move {
                    if over {
                        return None;
                    }
                    loop {
                        if rx.changed().await.is_err() {
                            return None;
                        }
                        let (status, closing) = {
                            let s = rx.borrow_and_update();
                            (s.watched(&service), s.shutting_down)
                        };
                        if last != Some(status) {
                            return Some((Ok(response(status)), (rx, Some(status), closing)));
                        }
                        if closing {
                            return None;
                        }
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::time::Duration;

    fn req(service: &str) -> Request<HealthCheckRequest> {
        Request::new(HealthCheckRequest {
            service: service.into(),
        })
    }

    async fn next(s: &mut BoxStream<HealthCheckResponse>) -> Option<ServingStatus> {
        tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("a health update in time")
            .map(|r| ServingStatus::try_from(r.unwrap().status).unwrap())
    }

    #[tokio::test]
    async fn check_knows_only_what_was_set() {
        let (reporter, svc) = health();
        reporter.set("", ServingStatus::Serving);
        let ok = svc.check(req("")).await.unwrap().into_inner();
        assert_eq!(ok.status, ServingStatus::Serving as i32);
        let err = svc.check(req("no.Such")).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        assert_eq!(err.message(), "unknown service \"no.Such\"");
    }

    #[tokio::test]
    async fn watch_follows_a_service_and_ends_at_shutdown() {
        let (reporter, svc) = health();
        reporter.set("a", ServingStatus::Serving);
        let mut known = svc.watch(req("a")).await.unwrap().into_inner();
        let mut unknown = svc.watch(req("b")).await.unwrap().into_inner();
        assert_eq!(next(&mut known).await, Some(ServingStatus::Serving));
        assert_eq!(
            next(&mut unknown).await,
            Some(ServingStatus::ServiceUnknown)
        );
        // An unchanged status is not sent again; a new service is.
        reporter.set("a", ServingStatus::Serving);
        reporter.set("b", ServingStatus::Serving);
        assert_eq!(next(&mut unknown).await, Some(ServingStatus::Serving));
        reporter.shut_down();
        for s in [&mut known, &mut unknown] {
            assert_eq!(next(s).await, Some(ServingStatus::NotServing));
            assert_eq!(next(s).await, None);
        }
        // A watch that starts during the shutdown hears it, then ends.
        let mut late = svc.watch(req("c")).await.unwrap().into_inner();
        assert_eq!(next(&mut late).await, Some(ServingStatus::NotServing));
        assert_eq!(next(&mut late).await, None);
    }
}

//! ListContainers, served from each row's cached encoding.
//!
//! The generated ContainerService server would answer with a
//! `ListContainersResponse` it converts and encodes row by row on every
//! call. `WithListing` wraps it and takes that one method: it answers with
//! `ListWire`, the same bytes on the wire, built from the row cache, or
//! with the page it sent for the same request while nothing changed
//! (`convert::PageCache`). Every other method goes to the generated server
//! unchanged, and the layers around the routes (metrics, authentication)
//! see both alike.
use crate::convert::{self, ListBody, PageCache, PageKey, RowCache};
use crate::status::to_status;
use futures::future::BoxFuture;
use prost::Message;
use quilt_proto::v1 as pb;
use quilt_sync_engine::Engine;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;

/// The method's path.
const PATH: &str = "/quilt.v1.ContainerService/ListContainers";

/// A listing of 1,000 containers or more trims the heap afterwards.
const TRIM_AFTER_ROWS: usize = 1000;

/// What answers ListContainers.
#[derive(Debug)]
pub struct Listing {
    engine: Engine,
    rows: Arc<RowCache>,
    pages: PageCache,
    /// Set while a trim is scheduled (see `trim_soon`).
    trim_pending: Arc<AtomicBool>,
}

impl Listing {
    pub fn new(engine: Engine) -> Listing {
        Listing {
            engine,
            rows: Default::default(),
            pages: Default::default(),
            trim_pending: Default::default(),
        }
    }

    /// One page, as it is sent: the one sent before for the same request
    /// if no container changed since (a large page is kept for that).
    pub async fn page(&self, r: pb::ListContainersRequest) -> Result<ListBody, Status> {
        let (query, digest) = convert::list_query(r)?;
        let key = PageKey::of(&query, digest);
        if let Some(version) = self.engine.list_version()
            && let Some(sent) = self.pages.get(&key, version)
        {
            return Ok(ListBody::Sent(sent));
        }
        let page = self.engine.list_page(&query).await.map_err(to_status)?;
        if page.containers.len() >= TRIM_AFTER_ROWS {
            self.trim_soon();
        }
        let version = page.version;
        let wire = convert::list_response(page, query.view, digest, &self.rows);
        match version {
            Some(version) if wire.encoded_len() >= convert::MIN_KEPT => {
                let body = bytes::Bytes::from(wire.encode_to_vec());
                self.pages.put(key, version, body.clone());
                Ok(ListBody::Sent(body))
            }
            _ => Ok(ListBody::Rows(wire)),
        }
    }

    /// Hands back what a big listing or a removal left behind, shortly
    /// after (once the response has been encoded, sent and dropped; at most
    /// one trim every 250 ms in a burst), so that quiltd's RSS goes back to
    /// where it was instead of keeping the peak: the encoded rows of
    /// containers that changed or went (a listing sweeps them only once
    /// the cache has doubled), then the heap's free pages.
    pub fn trim_soon(&self) {
        if self.trim_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let (rows, pending) = (Arc::clone(&self.rows), Arc::clone(&self.trim_pending));
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            pending.store(false, Ordering::Release);
            let _ = tokio::task::spawn_blocking(move || {
                rows.sweep_dead();
                quilt_runtime::release_free_memory();
            })
            .await;
        });
    }
}

/// The container service with ListContainers answered by `Listing`.
#[derive(Debug, Clone)]
pub struct WithListing<S> {
    inner: S,
    listing: Arc<Listing>,
    max_request: usize,
}

impl<S> WithListing<S> {
    pub fn new(inner: S, listing: Arc<Listing>, max_request: usize) -> Self {
        WithListing {
            inner,
            listing,
            max_request,
        }
    }
}

impl<S: NamedService> NamedService for WithListing<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<Body>> for WithListing<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if req.uri().path() != PATH {
            return Box::pin(self.inner.call(req));
        }
        let method = ListMethod(self.listing.clone());
        let max_request = self.max_request;
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<ListBody, pb::ListContainersRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec)
                .apply_max_message_size_config(Some(max_request), None);
            Ok(grpc.unary(method, req).await)
        })
    }
}

struct ListMethod(Arc<Listing>);

impl tonic::server::UnaryService<pb::ListContainersRequest> for ListMethod {
    type Response = ListBody;
    type Future = BoxFuture<'static, Result<tonic::Response<ListBody>, Status>>;

    fn call(&mut self, req: tonic::Request<pb::ListContainersRequest>) -> Self::Future {
        let listing = self.0.clone();
        Box::pin(async move {
            listing
                .page(req.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}

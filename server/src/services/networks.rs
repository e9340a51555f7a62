//! quilt.v1.NetworkService.
use crate::convert;
use crate::status::to_status;
use quilt_proto::v1 as pb;
use quilt_proto::v1::network_service_server::NetworkService;
use quilt_sync_engine::{Engine, NetworkSpec};
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub struct Networks {
    engine: Engine,
}

impl Networks {
    pub fn new(engine: Engine) -> Self {
        Networks { engine }
    }
}

#[tonic::async_trait]
impl NetworkService for Networks {
    async fn update_network_policy(
        &self,
        req: Request<pb::UpdateNetworkPolicyRequest>,
    ) -> Result<Response<pb::UpdateNetworkPolicyResponse>, Status> {
        let r = req.into_inner();
        let policy = convert::egress_from(&r.policy.unwrap_or_default())?;
        let p = self
            .engine
            .update_network_policy(&r.id, policy)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::UpdateNetworkPolicyResponse {
            policy: Some(convert::egress(&p)),
        }))
    }

    async fn create_network(
        &self,
        req: Request<pb::CreateNetworkRequest>,
    ) -> Result<Response<pb::CreateNetworkResponse>, Status> {
        let r = req.into_inner();
        let n = self
            .engine
            .create_network(NetworkSpec {
                name: r.name,
                subnet: convert::non_empty(r.subnet),
                internal: r.internal,
            })
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateNetworkResponse {
            network: Some(convert::network(&n)),
        }))
    }

    async fn list_networks(
        &self,
        _req: Request<pb::ListNetworksRequest>,
    ) -> Result<Response<pb::ListNetworksResponse>, Status> {
        let n = self.engine.list_networks().await.map_err(to_status)?;
        Ok(Response::new(pb::ListNetworksResponse {
            networks: n.iter().map(convert::network).collect(),
        }))
    }

    async fn inspect_network(
        &self,
        req: Request<pb::InspectNetworkRequest>,
    ) -> Result<Response<pb::InspectNetworkResponse>, Status> {
        let n = self
            .engine
            .inspect_network(&req.into_inner().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::InspectNetworkResponse {
            network: Some(convert::network(&n)),
        }))
    }

    async fn remove_network(
        &self,
        req: Request<pb::RemoveNetworkRequest>,
    ) -> Result<Response<pb::RemoveNetworkResponse>, Status> {
        self.engine
            .remove_network(&req.into_inner().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RemoveNetworkResponse {}))
    }
}

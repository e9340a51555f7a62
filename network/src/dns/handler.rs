//! One network's resolver answering a query: a name of the network (a
//! container's name, short id or alias) gets its A records (and an empty
//! NOERROR answer for any other type); any other name is forwarded
//! upstream, if the network has egress and the query filter allows it.
use super::forward::{self, Transport};
use super::{Inner, QueryFilter};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{DNSClass, RData, Record, RecordType, rdata::A};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::net::IpAddr;
use std::sync::Arc;

/// Answers of the network's own names are never cached: a removed
/// container's name must go at once.
const TTL: u32 = 0;

pub(super) struct Handler {
    pub network: String,
    /// No egress: the network's names only, nothing forwarded.
    pub internal: bool,
    pub inner: Arc<Inner>,
}

/// What the resolver does with a query.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// The network's own name: these addresses (none for another type).
    Local(Vec<std::net::Ipv4Addr>),
    Forward,
    Refuse,
    NxDomain,
}

impl Handler {
    fn plan(&self, client: IpAddr, name: &str, qtype: RecordType, class: DNSClass) -> Plan {
        let found = self
            .inner
            .table()
            .lookup(&self.network, name)
            .filter(|_| class == DNSClass::IN);
        match found {
            Some(ips) if qtype == RecordType::A || qtype == RecordType::ANY => Plan::Local(ips),
            Some(_) => Plan::Local(Vec::new()),
            None if self.internal || self.inner.upstreams.is_empty() => Plan::NxDomain,
            None => {
                let filter: Arc<dyn QueryFilter> = self.inner.filter();
                let allowed = match client {
                    IpAddr::V4(c) => filter.allows(c, &super::table::key(name)),
                    IpAddr::V6(_) => false,
                };
                if allowed { Plan::Forward } else { Plan::Refuse }
            }
        }
    }
}

async fn send<R: ResponseHandler>(mut h: R, request: &Request, code: ResponseCode) -> ResponseInfo {
    let resp =
        MessageResponseBuilder::from_message_request(request).error_msg(&request.metadata, code);
    match h.send_response(resp).await {
        Ok(i) => i,
        Err(e) => {
            tracing::debug!(error = %e, "cannot send a DNS answer");
            failed(request)
        }
    }
}

fn failed(request: &Request) -> ResponseInfo {
    let mut m = Metadata::response_from_request(&request.metadata);
    m.response_code = ResponseCode::ServFail;
    hickory_server::proto::op::Header {
        metadata: m,
        counts: Default::default(),
    }
    .into()
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        if request.metadata.op_code != OpCode::Query {
            return send(response_handle, request, ResponseCode::NotImp).await;
        }
        let Ok(info) = request.request_info() else {
            return send(response_handle, request, ResponseCode::FormErr).await;
        };
        let query = info.query.original().clone();
        let name = query.name().to_ascii();
        let resp_edns = request.edns.as_ref().map(|e| {
            let mut r = Edns::new();
            r.set_max_payload(e.max_payload().max(512));
            r
        });
        match self.plan(
            request.src().ip(),
            &name,
            query.query_type(),
            query.query_class(),
        ) {
            Plan::Local(ips) => {
                let records: Vec<Record> = ips
                    .into_iter()
                    .map(|ip| Record::from_rdata(query.name().clone(), TTL, RData::A(A(ip))))
                    .collect();
                let mut md = Metadata::response_from_request(&request.metadata);
                md.authoritative = true;
                md.recursion_available = !self.internal;
                let mut b = MessageResponseBuilder::from_message_request(request);
                if let Some(e) = &resp_edns {
                    b.edns(e);
                }
                let resp = b.build(
                    md,
                    records.iter(),
                    std::iter::empty(),
                    std::iter::empty(),
                    std::iter::empty(),
                );
                response_handle
                    .send_response(resp)
                    .await
                    .unwrap_or_else(|_| failed(request))
            }
            Plan::NxDomain => send(response_handle, request, ResponseCode::NXDomain).await,
            Plan::Refuse => send(response_handle, request, ResponseCode::Refused).await,
            Plan::Forward => {
                let transport = if info.protocol == Protocol::Udp {
                    Transport::Udp
                } else {
                    Transport::Tcp
                };
                let Some(up) =
                    forward::forward(&self.inner.upstreams, request.as_slice(), transport).await
                else {
                    return send(response_handle, request, ResponseCode::ServFail).await;
                };
                let mut b = MessageResponseBuilder::from_message_request(request);
                if let Some(e) = &resp_edns {
                    b.edns(e);
                }
                let resp = b.build(
                    up.metadata,
                    up.answers.iter(),
                    up.authorities.iter(),
                    std::iter::empty(),
                    up.additionals.iter(),
                );
                response_handle
                    .send_response(resp)
                    .await
                    .unwrap_or_else(|_| failed(request))
            }
        }
    }
}

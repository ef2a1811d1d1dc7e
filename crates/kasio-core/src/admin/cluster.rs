//! The cluster: its id, controller and brokers, and the API versions of a broker.

use super::{
    Admin, AdminError, AdminOutput, ApiError, ApiSupport, BrokerInfo, ClusterDescription, OpId,
    call::{Read, Single, Target, unexpected},
};
use kasio_proto::{
    AnyResponse, ApiKey,
    messages::{ApiVersionsRequest, DescribeClusterRequest},
};
use std::time::Instant;

impl Admin {
    /// Describes the cluster: its id, controller and brokers (DescribeCluster).
    pub fn describe_cluster(&mut self, now: Instant) -> OpId {
        let op = Single::new(
            Target::Any,
            |_| DescribeClusterRequest::default().into(),
            |resp| {
                let AnyResponse::DescribeCluster(r) = resp else {
                    return unexpected(&resp);
                };
                if let Err(e) = ApiError::check(r.error_code, r.error_message.as_ref()) {
                    return Read::Fail(AdminError::Api(e));
                }
                let brokers = r
                    .brokers
                    .iter()
                    .map(|b| BrokerInfo {
                        id: b.broker_id,
                        host: b.host.to_string(),
                        port: u16::try_from(b.port).unwrap_or(0),
                        rack: b.rack.as_ref().map(ToString::to_string),
                        fenced: b.is_fenced,
                    })
                    .collect();
                Read::Done(AdminOutput::Cluster(ClusterDescription {
                    cluster_id: r.cluster_id.to_string(),
                    controller: (r.controller_id >= 0).then_some(r.controller_id),
                    brokers,
                }))
            },
        );
        self.start(op, now)
    }

    /// The API versions broker `broker` supports (ApiVersions).
    pub fn api_versions(&mut self, broker: i32, now: Instant) -> OpId {
        let op = Single::new(
            Target::Broker(broker),
            |_| {
                ApiVersionsRequest {
                    client_software_name: "kasio".into(),
                    client_software_version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::ApiVersions(r) = resp else {
                    return unexpected(&resp);
                };
                if let Err(e) = ApiError::check(r.error_code, None) {
                    return Read::Fail(AdminError::Api(e));
                }
                Read::Done(AdminOutput::ApiVersions(
                    r.api_keys
                        .iter()
                        .map(|k| ApiSupport {
                            api_key: k.api_key,
                            name: ApiKey::from_i16(k.api_key).map(ApiKey::name),
                            min_version: k.min_version,
                            max_version: k.max_version,
                        })
                        .collect(),
                ))
            },
        );
        self.start(op, now)
    }
}

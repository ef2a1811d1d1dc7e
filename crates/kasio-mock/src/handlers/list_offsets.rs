//! ListOffsets: earliest, latest, max timestamp, or the first offset at a timestamp.

use crate::{cluster::Cluster, handlers::partition_error};
use kasio_proto::messages::{
    ListOffsetsRequest, ListOffsetsResponse,
    list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub(crate) fn handle(
    cluster: &Cluster,
    broker: i32,
    req: &ListOffsetsRequest,
) -> ListOffsetsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| ListOffsetsTopicResponse {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        timestamp: -1,
                        offset: -1,
                        ..Default::default()
                    };
                    if let Some(code) = partition_error(cluster, &t.name, p.partition_index, broker)
                    {
                        r.error_code = code.code();
                        return r;
                    }
                    let log =
                        &cluster.topics[t.name.as_str()].partitions[p.partition_index as usize].log;
                    let found = match p.timestamp {
                        LATEST => Some((log.end(), -1)),
                        EARLIEST => Some((log.log_start(), -1)),
                        MAX_TIMESTAMP => log.max_timestamp(),
                        ts => log.offset_for_timestamp(ts),
                    };
                    if let Some((offset, timestamp)) = found {
                        r.offset = offset;
                        r.timestamp = timestamp;
                    }
                    r
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}

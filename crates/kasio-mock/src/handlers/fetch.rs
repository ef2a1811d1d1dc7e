//! Fetch: read from partition logs, waiting up to `max_wait_ms` for `min_bytes`, in a
//! fetch session when the client opens one.

use crate::{
    cluster::{Cluster, ConnId, ParkedFetch},
    handlers::{Outcome, fetch_session, partition_error, topic_name},
};
use kasio_proto::{
    AnyResponse, ApiKey, ErrorCode,
    messages::{
        FetchRequest, FetchResponse, RequestHeader,
        fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData},
    },
};
use std::time::{Duration, Instant};

pub(crate) fn handle(
    cluster: &mut Cluster,
    conn: ConnId,
    broker: i32,
    header: RequestHeader,
    mut request: FetchRequest,
    now: Instant,
) -> Outcome {
    let session =
        match fetch_session::resolve(cluster, broker, &mut request, header.request_api_version) {
            Ok(mode) => {
                if matches!(mode, fetch_session::Mode::Incremental(_)) {
                    cluster.incremental_fetches += 1;
                }
                mode
            }
            Err(code) => {
                return Outcome::Respond(Box::new(AnyResponse::Fetch(FetchResponse {
                    error_code: code.code(),
                    ..Default::default()
                })));
            }
        };
    let (mut response, bytes, errors) = read(cluster, broker, &request);
    // As Kafka: answer at once with enough bytes, with no wait allowed, or with an error.
    let min = usize::try_from(request.min_bytes).unwrap_or(0);
    if bytes >= min || request.max_wait_ms <= 0 || errors {
        fetch_session::finish(cluster, session, &mut response);
        return Outcome::Respond(Box::new(AnyResponse::Fetch(response)));
    }
    let deadline = now + Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    cluster.parked.push(ParkedFetch {
        conn,
        header,
        request,
        deadline,
        session,
    });
    Outcome::Parked
}

/// Answers parked fetches that now have enough data, or (when `data_only` is false) whose
/// deadline has passed.
pub(crate) fn wake(cluster: &mut Cluster, now: Instant, data_only: bool) {
    let parked = std::mem::take(&mut cluster.parked);
    for p in parked {
        let broker = cluster.broker_of(p.conn);
        let Some(broker) = broker else { continue };
        let (mut response, bytes, errors) = read(cluster, broker, &p.request);
        let min = usize::try_from(p.request.min_bytes).unwrap_or(0);
        if bytes >= min || errors || (!data_only && now >= p.deadline) {
            fetch_session::finish(cluster, p.session, &mut response);
            cluster.respond(
                p.conn,
                ApiKey::Fetch,
                p.header.request_api_version,
                p.header.correlation_id,
                &AnyResponse::Fetch(response),
            );
            cluster.unblock(p.conn);
        } else {
            cluster.parked.push(p);
        }
    }
}

/// A partition's answer with no records and no offsets known, carrying `error_code`.
pub(crate) fn empty_partition(partition: i32, error_code: i16) -> PartitionData {
    PartitionData {
        partition_index: partition,
        error_code,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        preferred_read_replica: -1,
        records: Some(Default::default()),
        ..Default::default()
    }
}

/// The response to `request` as the logs stand, how many record bytes it carries, and
/// whether it must go at once (a partition has an error or names a preferred replica).
fn read(cluster: &Cluster, broker: i32, request: &FetchRequest) -> (FetchResponse, usize, bool) {
    let mut budget = usize::try_from(request.max_bytes).unwrap_or(0).max(1);
    let mut total = 0;
    let mut errors = false;
    let mut responses = Vec::new();
    for t in &request.topics {
        let name = topic_name(cluster, &t.topic, t.topic_id);
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let mut r = empty_partition(p.partition, 0);
            let err = match &name {
                None if !t.topic_id.is_zero() => Some(ErrorCode::UnknownTopicId),
                None => Some(ErrorCode::UnknownTopicOrPartition),
                // With racks every broker holds a replica: followers serve consumers.
                Some(n) if !cluster.config.racks.is_empty() => {
                    partition_error(cluster, n, p.partition, broker)
                        .filter(|&c| c != ErrorCode::NotLeaderOrFollower)
                }
                Some(n) => partition_error(cluster, n, p.partition, broker),
            };
            if let Some(code) = err {
                errors = true;
                r.error_code = code.code();
                partitions.push(r);
                continue;
            }
            let partition = &cluster.topics[name.as_deref().unwrap_or_default()].partitions
                [p.partition as usize];
            let log = &partition.log;
            if partition.leader == broker
                && let Some(replica) = preferred_replica(cluster, &request.rack_id, broker)
            {
                r.high_watermark = log.end();
                r.last_stable_offset = log.last_stable();
                r.log_start_offset = log.log_start();
                r.preferred_read_replica = replica;
                // Kafka answers a redirect at once rather than wait for data.
                errors = true;
                partitions.push(r);
                continue;
            }
            r.high_watermark = log.end();
            r.last_stable_offset = log.last_stable();
            r.log_start_offset = log.log_start();
            // read_committed: nothing at or past the first open transaction's records, and
            // the aborted transactions so the client can drop their records.
            let committed = request.isolation_level == 1;
            let upper = if committed {
                log.last_stable()
            } else {
                i64::MAX
            };
            if committed {
                r.aborted_transactions = Some(
                    log.aborted_since(p.fetch_offset)
                        .into_iter()
                        .map(|(producer_id, first_offset)| AbortedTransaction {
                            producer_id,
                            first_offset,
                            ..Default::default()
                        })
                        .collect(),
                );
            }
            // KIP-320: the consumer's last fetched epoch ended below its fetch offset here
            // (the log was truncated), or this log never had that epoch: say where it
            // diverged instead of answering with records.
            let diverged = (p.last_fetched_epoch >= 0)
                .then(|| log.end_of_epoch(p.last_fetched_epoch))
                .flatten()
                .filter(|&(e, end)| e < p.last_fetched_epoch || end < p.fetch_offset);
            if let Some((epoch, end_offset)) = diverged {
                errors = true;
                r.diverging_epoch.epoch = epoch;
                r.diverging_epoch.end_offset = end_offset;
            } else if p.fetch_offset < log.log_start() || p.fetch_offset > log.end() {
                errors = true;
                r.error_code = ErrorCode::OffsetOutOfRange.code();
            } else if p.fetch_offset < log.end().min(upper) && budget > 0 {
                let limit = usize::try_from(p.partition_max_bytes)
                    .unwrap_or(0)
                    .min(budget);
                let data = log.read_until(p.fetch_offset, limit, upper);
                budget = budget.saturating_sub(data.len());
                total += data.len();
                r.records = Some(data);
            }
            partitions.push(r);
        }
        responses.push(FetchableTopicResponse {
            topic: t.topic.clone(),
            topic_id: t.topic_id,
            partitions,
            ..Default::default()
        });
    }
    (
        FetchResponse {
            responses,
            ..Default::default()
        },
        total,
        errors,
    )
}

/// The replica a leader names for a consumer on `rack` (KIP-392): a running broker on that
/// rack, when the leader is not on it.
fn preferred_replica(cluster: &Cluster, rack: &str, leader: i32) -> Option<i32> {
    let racks = &cluster.config.racks;
    let rack_of = |b: i32| racks.get(usize::try_from(b - 1).ok()?).map(String::as_str);
    if rack.is_empty() || rack_of(leader) == Some(rack) {
        return None;
    }
    cluster
        .brokers
        .iter()
        .map(|b| b.id)
        .find(|&b| rack_of(b) == Some(rack) && !cluster.stopped.contains(&b))
}

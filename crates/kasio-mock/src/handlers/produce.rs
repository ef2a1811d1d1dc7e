//! Produce: append record batches to partition logs.

use crate::{
    cluster::Cluster,
    handlers::{Outcome, fetch, partition_error, topic_name},
    log::AppendError,
};
use kasio_proto::{
    AnyResponse, ErrorCode,
    messages::{
        ProduceRequest, ProduceResponse,
        produce_response::{PartitionProduceResponse, TopicProduceResponse},
    },
};
use std::time::Instant;

pub(crate) fn handle(
    cluster: &mut Cluster,
    broker: i32,
    req: &ProduceRequest,
    now: Instant,
) -> Outcome {
    let mut responses = Vec::new();
    let mut appended = false;
    let mut implicit = Vec::new();
    let txn_id = req.transactional_id.as_deref().filter(|id| !id.is_empty());
    for t in &req.topic_data {
        let name = topic_name(cluster, &t.name, t.topic_id);
        let mut partition_responses = Vec::new();
        for p in &t.partition_data {
            let mut r = PartitionProduceResponse {
                index: p.index,
                base_offset: -1,
                log_append_time_ms: -1,
                ..Default::default()
            };
            match name
                .as_deref()
                .map_or(Some(ErrorCode::UnknownTopicOrPartition), |n| {
                    partition_error(cluster, n, p.index, broker)
                }) {
                Some(code) => r.error_code = code.code(),
                None => {
                    let records = p.records.clone().unwrap_or_default();
                    let (pid, epoch) = producer_id(&records);
                    let fenced = txn_id
                        .is_some_and(|id| !super::txn::current_epoch(cluster, id, pid, epoch));
                    let part = &mut cluster
                        .topics
                        .get_mut(name.as_deref().unwrap_or_default())
                        .map(|t| &mut t.partitions[p.index as usize]);
                    if fenced {
                        // The coordinator has moved the producer on (KIP-890's check of
                        // a transactional write, which Kafka makes on either protocol).
                        r.error_code = ErrorCode::InvalidProducerEpoch.code();
                    } else if let Some(part) = part {
                        match part.log.append(&records) {
                            Ok(base) => {
                                r.base_offset = base;
                                appended = true;
                                implicit.push((name.clone().unwrap_or_default(), p.index, pid));
                                part.log.trim_to(cluster.config.max_bytes_per_partition);
                            }
                            Err(AppendError::Corrupt(e)) => {
                                r.error_code = ErrorCode::CorruptMessage.code();
                                r.error_message = Some(e.to_string().into());
                            }
                            Err(AppendError::UnsupportedFormat) => {
                                r.error_code = ErrorCode::UnsupportedForMessageFormat.code()
                            }
                            Err(AppendError::OutOfOrderSequence) => {
                                r.error_code = ErrorCode::OutOfOrderSequenceNumber.code()
                            }
                            Err(AppendError::InvalidProducerEpoch) => {
                                r.error_code = ErrorCode::InvalidProducerEpoch.code()
                            }
                        }
                        r.log_start_offset = part.log.log_start();
                    }
                }
            }
            partition_responses.push(r);
        }
        responses.push(TopicProduceResponse {
            name: t.name.clone(),
            topic_id: t.topic_id,
            partition_responses,
            ..Default::default()
        });
    }
    if appended {
        fetch::wake(cluster, now, true);
        super::share::wake(cluster, now, true);
    }
    if let Some(id) = txn_id {
        for (topic, partition, pid) in implicit {
            super::txn::implicit_add(cluster, id, pid, &topic, partition, now);
        }
    }
    if req.acks == 0 {
        return Outcome::Silent;
    }
    let response = ProduceResponse {
        responses,
        ..Default::default()
    };
    Outcome::Respond(Box::new(AnyResponse::Produce(response)))
}

/// The producer id and epoch of the first batch in `records` (-1 when unreadable).
fn producer_id(records: &bytes::Bytes) -> (i64, i16) {
    match kasio_proto::records::Batches::new(records.clone()).next() {
        Some(Ok(kasio_proto::records::Batch::V2(b))) => (b.producer_id, b.producer_epoch),
        _ => (-1, -1),
    }
}

//! The transaction coordinator: transactional producer ids and epochs, the partitions and
//! groups of each open transaction, and EndTxn writing commit or abort markers (and
//! committing the transaction's offsets) — so read_committed consumers see only committed
//! records.

use super::offsets::{Committed, coordinator};
use crate::cluster::Cluster;
use kasio_proto::{
    ErrorCode,
    messages::{
        AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
        AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdResponse,
        TxnOffsetCommitRequest, TxnOffsetCommitResponse,
        add_partitions_to_txn_response::{
            AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult,
            AddPartitionsToTxnTopicResult,
        },
        txn_offset_commit_response::{
            TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
        },
    },
};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

type Tp = (String, i32);

/// One transaction of an AddPartitionsToTxn: id, producer id, epoch, topics' partitions.
type Shape = (String, i64, i16, Vec<(String, Vec<i32>)>);

/// One transactional id's state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Txn {
    producer_id: i64,
    epoch: i16,
    partitions: BTreeSet<Tp>,
    /// Offsets committed in the transaction, by group.
    offsets: BTreeMap<String, BTreeMap<Tp, Committed>>,
    /// `transaction.timeout.ms` from InitProducerId.
    timeout: Duration,
    /// When the open transaction times out; set by its first partition or offsets.
    deadline: Option<Instant>,
    /// How the last transaction ended (true: committed), for the second protocol's
    /// retried EndTxn.
    ended: Option<bool>,
}

impl Txn {
    /// Something joined the transaction: its timeout starts with the first.
    fn started(&mut self, now: Instant) {
        self.deadline.get_or_insert(now + self.timeout);
    }
}

/// Writes the markers of `txn`'s partitions and settles its offsets.
fn finish(cluster: &mut Cluster, txn: &mut Txn, commit: bool) {
    txn.deadline = None;
    txn.ended = Some(commit);
    for (t, p) in std::mem::take(&mut txn.partitions) {
        if let Some(part) = cluster.topics.get_mut(&t).and_then(|topic| {
            usize::try_from(p)
                .ok()
                .and_then(|i| topic.partitions.get_mut(i))
        }) {
            part.log
                .end_transaction(txn.producer_id, txn.epoch, commit, 0);
        }
    }
    let offsets = std::mem::take(&mut txn.offsets);
    if commit {
        for (group, parts) in offsets {
            cluster.offsets.entry(group).or_default().extend(parts);
        }
    }
}

fn check(cluster: &Cluster, broker: i32, id: &str, pid: i64, epoch: i16) -> ErrorCode {
    if coordinator(cluster, id) != broker {
        return ErrorCode::NotCoordinator;
    }
    match cluster.txns.get(id) {
        None => ErrorCode::InvalidProducerIdMapping,
        Some(t) if t.producer_id != pid => ErrorCode::InvalidProducerIdMapping,
        Some(t) if t.epoch != epoch => ErrorCode::ProducerFenced,
        Some(_) => ErrorCode::None,
    }
}

/// InitProducerId with a transactional id: a new producer, or the next epoch of the id's
/// producer, whose open transaction is aborted (fencing the previous instance).
pub(crate) fn init(
    cluster: &mut Cluster,
    broker: i32,
    id: &str,
    timeout_ms: i32,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse {
        producer_id: -1,
        producer_epoch: -1,
        ongoing_txn_producer_id: -1,
        ongoing_txn_producer_epoch: -1,
        ..Default::default()
    };
    if coordinator(cluster, id) != broker {
        resp.error_code = ErrorCode::NotCoordinator.code();
        return resp;
    }
    let mut txn = match cluster.txns.remove(id) {
        Some(mut t) => {
            finish(cluster, &mut t, false);
            t.epoch += 1;
            t
        }
        None => {
            let pid = cluster.next_producer_id;
            cluster.next_producer_id += 1;
            Txn {
                producer_id: pid,
                ..Default::default()
            }
        }
    };
    cluster.producer_epochs.insert(txn.producer_id, txn.epoch);
    resp.producer_id = txn.producer_id;
    resp.producer_epoch = txn.epoch;
    txn.partitions.clear();
    txn.timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    txn.ended = None;
    cluster.txns.insert(id.to_string(), txn);
    resp
}

pub(crate) fn add_partitions(
    cluster: &mut Cluster,
    broker: i32,
    req: &AddPartitionsToTxnRequest,
    now: Instant,
) -> AddPartitionsToTxnResponse {
    // v3 and below carry one transaction at the top level; v4+ (brokers) a list.
    let mut shapes: Vec<Shape> = Vec::new();
    if req.transactions.is_empty() {
        shapes.push((
            req.v3_and_below_transactional_id.to_string(),
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
            req.v3_and_below_topics
                .iter()
                .map(|t| (t.name.to_string(), t.partitions.clone()))
                .collect(),
        ));
    } else {
        for t in &req.transactions {
            shapes.push((
                t.transactional_id.to_string(),
                t.producer_id,
                t.producer_epoch,
                t.topics
                    .iter()
                    .map(|x| (x.name.to_string(), x.partitions.clone()))
                    .collect(),
            ));
        }
    }
    let mut results = Vec::new();
    for (id, pid, epoch, topics) in shapes {
        let code = check(cluster, broker, &id, pid, epoch);
        let topic_results: Vec<AddPartitionsToTxnTopicResult> = topics
            .iter()
            .map(|(name, parts)| AddPartitionsToTxnTopicResult {
                name: name.as_str().into(),
                results_by_partition: parts
                    .iter()
                    .map(|&p| {
                        let exists = cluster.topics.get(name).is_some_and(|t| {
                            usize::try_from(p).is_ok_and(|i| i < t.partitions.len())
                        });
                        let c = if code != ErrorCode::None {
                            code
                        } else if exists {
                            ErrorCode::None
                        } else {
                            ErrorCode::UnknownTopicOrPartition
                        };
                        AddPartitionsToTxnPartitionResult {
                            partition_index: p,
                            partition_error_code: c.code(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        if code == ErrorCode::None
            && let Some(t) = cluster.txns.get_mut(&id)
        {
            t.started(now);
            for (name, parts) in &topics {
                for &p in parts {
                    t.partitions.insert((name.clone(), p));
                }
            }
        }
        results.push((id, topic_results));
    }
    if req.transactions.is_empty() {
        AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: results.pop().map(|(_, r)| r).unwrap_or_default(),
            ..Default::default()
        }
    } else {
        AddPartitionsToTxnResponse {
            results_by_transaction: results
                .into_iter()
                .map(|(id, topic_results)| AddPartitionsToTxnResult {
                    transactional_id: id.as_str().into(),
                    topic_results,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

pub(crate) fn add_offsets(
    cluster: &mut Cluster,
    broker: i32,
    req: &AddOffsetsToTxnRequest,
    now: Instant,
) -> AddOffsetsToTxnResponse {
    let code = check(
        cluster,
        broker,
        &req.transactional_id,
        req.producer_id,
        req.producer_epoch,
    );
    if code == ErrorCode::None
        && let Some(t) = cluster.txns.get_mut(req.transactional_id.as_str())
    {
        t.started(now);
    }
    AddOffsetsToTxnResponse {
        error_code: code.code(),
        ..Default::default()
    }
}

/// TxnOffsetCommit, at the group's coordinator: offsets held until the transaction ends.
pub(crate) fn commit_offsets(
    cluster: &mut Cluster,
    broker: i32,
    req: &TxnOffsetCommitRequest,
    now: Instant,
) -> TxnOffsetCommitResponse {
    let group = req.group_id.to_string();
    let code = if coordinator(cluster, &group) != broker {
        ErrorCode::NotCoordinator
    } else {
        match cluster.txns.get(req.transactional_id.as_str()) {
            Some(t) if t.producer_id == req.producer_id && t.epoch == req.producer_epoch => {
                ErrorCode::None
            }
            Some(t) if t.producer_id == req.producer_id => ErrorCode::ProducerFenced,
            _ => ErrorCode::InvalidProducerIdMapping,
        }
    };
    if code == ErrorCode::None
        && let Some(t) = cluster.txns.get_mut(req.transactional_id.as_str())
    {
        t.started(now);
        let held = t.offsets.entry(group).or_default();
        for topic in &req.topics {
            for p in &topic.partitions {
                held.insert(
                    (topic.name.to_string(), p.partition_index),
                    Committed {
                        offset: p.committed_offset,
                        metadata: p.committed_metadata.as_ref().map(ToString::to_string),
                    },
                );
            }
        }
    }
    TxnOffsetCommitResponse {
        topics: req
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                topic_id: t.topic_id,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| TxnOffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// EndTxn: markers written, offsets settled; in the second protocol (EndTxn v5+ on a
/// cluster with `transaction.version` 2) the epoch moves on and the answer carries it.
pub(crate) fn end(
    cluster: &mut Cluster,
    broker: i32,
    req: &EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let id = req.transactional_id.to_string();
    let v2 = version >= 5 && cluster.config.transaction_version >= 2;
    let code = check(cluster, broker, &id, req.producer_id, req.producer_epoch);
    let mut epoch = req.producer_epoch;
    if v2
        && code == ErrorCode::ProducerFenced
        && let Some(t) = cluster.txns.get(&id)
        && t.deadline.is_none()
        && t.epoch == req.producer_epoch.saturating_add(1)
        && t.ended == Some(req.committed)
    {
        // The second protocol's retry: the transaction already ended this way (the
        // coordinator aborted it on timeout, or an earlier EndTxn's answer was lost), so
        // the producer learns the current epoch and goes on.
        return EndTxnResponse {
            producer_id: req.producer_id,
            producer_epoch: t.epoch,
            ..Default::default()
        };
    }
    if code == ErrorCode::None
        && let Some(mut t) = cluster.txns.remove(&id)
    {
        finish(cluster, &mut t, req.committed);
        if v2 {
            t.epoch += 1;
            epoch = t.epoch;
            cluster.producer_epochs.insert(t.producer_id, t.epoch);
        }
        cluster.txns.insert(id, t);
    }
    EndTxnResponse {
        error_code: code.code(),
        producer_id: req.producer_id,
        producer_epoch: epoch,
        ..Default::default()
    }
}

/// The second protocol's implicit AddPartitionsToTxn: a transactional Produce puts its
/// partition into the producer's open transaction.
pub(crate) fn implicit_add(
    cluster: &mut Cluster,
    id: &str,
    pid: i64,
    topic: &str,
    partition: i32,
    now: Instant,
) {
    if cluster.config.transaction_version < 2 {
        return;
    }
    if let Some(t) = cluster.txns.get_mut(id)
        && t.producer_id == pid
    {
        t.started(now);
        t.partitions.insert((topic.to_string(), partition));
    }
}

/// Whether a transactional batch of `pid` at `epoch` may be written: its transaction's
/// producer has not moved to a newer epoch (fenced, or its transaction timed out).
pub(crate) fn current_epoch(cluster: &Cluster, id: &str, pid: i64, epoch: i16) -> bool {
    cluster
        .txns
        .get(id)
        .is_none_or(|t| t.producer_id != pid || t.epoch <= epoch)
}

/// Aborts the transactions open longer than their `transaction.timeout.ms`, fencing their
/// producers with a new epoch as Kafka's coordinator does: the producer's next request
/// with the old epoch fails.
pub(crate) fn expire(cluster: &mut Cluster, now: Instant) {
    let due: Vec<String> = cluster
        .txns
        .iter()
        .filter(|(_, t)| t.deadline.is_some_and(|d| d <= now))
        .map(|(id, _)| id.clone())
        .collect();
    for id in due {
        if let Some(mut t) = cluster.txns.remove(&id) {
            t.epoch += 1;
            cluster.producer_epochs.insert(t.producer_id, t.epoch);
            finish(cluster, &mut t, false);
            cluster.txns.insert(id, t);
        }
    }
}

/// When the next open transaction times out.
pub(crate) fn next_expiry(cluster: &Cluster) -> Option<Instant> {
    cluster.txns.values().filter_map(|t| t.deadline).min()
}

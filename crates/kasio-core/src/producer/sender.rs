//! The sending half: metadata and producer-id requests, turning ready batches into
//! Produce requests, and acting on every answer.

use super::delivered::Tokens;
use super::{
    Event, Lifecycle, Pending, ProduceError, Producer,
    batch::{Batch, BatchState, PartitionState},
    close_open, pending_size,
    producer_id::IdState,
};
use crate::{
    conn::{ConnId, InFlight, Node, Purpose, Tag},
    metadata::TopicMeta,
};
use bytes::Bytes;
use kasio_proto::{
    ErrorCode, Uuid, frame,
    messages::{
        InitProducerIdRequest, InitProducerIdResponse, MetadataResponse, ProduceRequest,
        ProduceResponse,
        produce_request::{PartitionProduceData, TopicProduceData},
        produce_response::PartitionProduceResponse,
    },
    records::set_producer_state,
};
use std::{collections::BTreeMap, sync::Arc, time::Instant};

/// Records to fail: their tokens and timestamps, their buffered bytes, the error.
type Failed<T> = (Tokens<T>, usize, ProduceError);

/// How a batch's last attempt ended, for putting it back in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// It never left.
    NotSent,
    /// The broker answered with an error: this attempt wrote nothing.
    Refused,
    /// The connection was lost or the answer missing: it may have been written.
    Unknown,
}

/// What to do with a batch after a Produce error.
enum Verdict {
    Retry,
    /// Sequences are out of step with the broker: bump the epoch, then retry.
    RetryAfterBump,
    Fail,
}

fn verdict(code: ErrorCode) -> Verdict {
    match code {
        ErrorCode::OutOfOrderSequenceNumber
        | ErrorCode::UnknownProducerId
        | ErrorCode::InvalidProducerEpoch => Verdict::RetryAfterBump,
        c if c.is_retriable() => Verdict::Retry,
        _ => Verdict::Fail,
    }
}

/// Errors after which the partition's leader must be looked up again.
fn stale_metadata(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::KafkaStorageError
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::UnknownTopicId
    )
}

impl<T> Producer<T> {
    /// Does everything that is due at `now`; every input and command ends here.
    pub(super) fn drain(&mut self, now: Instant) {
        self.now = now;
        self.release_held(now);
        if let Some(e) = self.net.pool.fatal.clone() {
            // TLS or SASL failed: no retry can deliver these records.
            self.fail_everything(&ProduceError::Security(e));
        }
        self.expire(now);
        self.send_metadata(now);
        self.send_producer_id(now);
        self.drive_txn(now);
        let linger = self.config.linger;
        let flushing = self.flushing;
        let delivery_timeout = self.config.delivery_timeout;
        for topic in self.topics.values_mut() {
            for ps in &mut topic.partitions {
                if ps
                    .open
                    .as_ref()
                    .is_some_and(|o| flushing || now >= o.created + linger)
                {
                    close_open(ps, delivery_timeout, &mut self.free_buffers);
                }
            }
        }
        // Each round sends at most one batch per partition; more rounds fill the pipeline.
        // Before an epoch bump, batches that may have been written are resent under the
        // old epoch until the broker says: a new epoch would let it write them twice.
        let resolving = self.producer_id.state == IdState::BumpNeeded;
        for _ in 0..self.config.max_in_flight {
            if !(self.producer_id.can_send() || resolving) || !self.send_batches(now, resolving) {
                break;
            }
        }
        self.close_idle(now);
        if self.flushing && self.outstanding == 0 {
            self.flushing = false;
            self.events.push_back(Event::Flushed);
            if self.lifecycle == Lifecycle::Closing {
                self.lifecycle = Lifecycle::Closed;
                for id in self.net.pool.ids() {
                    let _ = self.net.pool.close(id, now, &mut self.rng);
                }
                self.events.push_back(Event::Closed);
            }
        }
    }

    /// Fails records that waited too long: for metadata (`max.block.ms`) or for delivery
    /// (`delivery.timeout.ms`; never a batch in flight, whose fate is still to come).
    fn expire(&mut self, now: Instant) {
        let max_block = self.config.max_block;
        let mut failed: Vec<Failed<T>> = Vec::new();
        let mut bump = false;
        for topic in self.topics.values_mut() {
            while topic
                .pending
                .front()
                .is_some_and(|p| now >= p.since + max_block)
            {
                if let Some(p) = topic.pending.pop_front() {
                    let size = pending_size(&p);
                    failed.push((
                        Tokens::from([(p.token, p.timestamp)]),
                        size,
                        ProduceError::UnknownTopic,
                    ));
                }
            }
            for ps in &mut topic.partitions {
                if ps
                    .open
                    .as_ref()
                    .is_some_and(|o| now >= o.created + self.config.delivery_timeout)
                    && let Some(o) = ps.open.take()
                {
                    failed.push((o.tokens, o.size, ProduceError::Timeout));
                }
                let mut i = 0;
                while i < ps.queue.len() {
                    let b = &ps.queue[i];
                    if b.state == BatchState::Queued && now >= b.deadline {
                        if let Some(b) = ps.queue.remove(i) {
                            bump |= b.sequence.is_some();
                            failed.push((b.tokens, b.size, ProduceError::Timeout));
                        }
                    } else {
                        i += 1;
                    }
                }
            }
        }
        if bump {
            self.producer_id.bump();
        }
        for (tokens, size, error) in failed {
            self.fail_tokens(tokens, size, &error);
        }
    }

    pub(super) fn fail_tokens(&mut self, tokens: Tokens<T>, size: usize, error: &ProduceError) {
        if !tokens.is_empty() {
            self.txn_record_failed(error);
        }
        self.buffered = self.buffered.saturating_sub(size);
        for (token, _) in tokens {
            self.outstanding -= 1;
            self.events.push_back(Event::Delivery {
                token,
                result: Err(error.clone()),
            });
        }
    }

    fn send_metadata(&mut self, now: Instant) {
        let waiting = self.topics.values().any(|t| t.meta.is_none());
        if waiting {
            self.net.metadata.request_refresh();
        }
        if self.lifecycle == Lifecycle::Closed {
            return;
        }
        self.net.refresh_metadata(
            Some(self.topics.keys().map(AsRef::as_ref)),
            self.config.allow_auto_create_topics,
            &mut self.rng,
            now,
        );
    }

    fn send_producer_id(&mut self, now: Instant) {
        if self.txn.is_some() {
            // The transaction coordinator hands out (and renews) a transactional id's.
            return;
        }
        let bumping = match self.producer_id.state {
            IdState::Needed => false,
            IdState::BumpNeeded if self.requests.is_empty() && !self.any_unknown() => true,
            _ => return,
        };
        if self.producer_id.retry_at.is_some_and(|t| t > now) {
            return;
        }
        let Some(id) = self
            .net
            .metadata
            .control_conn(&mut self.net.pool, &mut self.rng, now)
        else {
            return;
        };
        let Some(c) = self.net.pool.get_mut(id) else {
            return;
        };
        let can_bump = c
            .version(kasio_proto::ApiKey::InitProducerId)
            .is_some_and(|v| v >= 3);
        let (pid, epoch) = if bumping && can_bump {
            (self.producer_id.id, self.producer_id.epoch)
        } else {
            (-1, -1)
        };
        let req = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: pid,
            producer_epoch: epoch,
            ..Default::default()
        };
        let deadline = now + self.config.network.request_timeout;
        if c.send(&req, Tag::InitProducerId, deadline, &mut self.net.transmits)
            .is_some()
        {
            self.producer_id.state = if bumping {
                IdState::Bumping
            } else {
                IdState::Requesting
            };
            self.producer_id.retry_at = None;
        }
    }

    /// Packs sendable batches into one Produce request per leader.
    fn any_unknown(&self) -> bool {
        self.topics
            .values()
            .flat_map(|t| &t.partitions)
            .flat_map(|ps| &ps.queue)
            .any(|b| b.unknown)
    }

    fn send_batches(&mut self, now: Instant, only_unknown: bool) -> bool {
        let idempotent = self.producer_id.enabled();
        let txn = self.txn.as_ref();
        if txn.is_some_and(|t| !t.may_produce()) {
            return false;
        }
        let mut per_leader: BTreeMap<i32, Vec<(Arc<str>, i32, usize)>> = BTreeMap::new();
        let mut refresh = false;
        for topic in self.topics.values_mut() {
            let Some(meta) = &topic.meta else {
                continue;
            };
            for (p, ps) in topic.partitions.iter_mut().enumerate() {
                let next = if only_unknown {
                    // Resolving before a bump: the oldest batch that may have been written
                    // goes alone, even past refused ones, which wait for the new epoch.
                    if ps.in_flight() > 0 {
                        continue;
                    }
                    ps.queue.iter().position(|b| b.unknown)
                } else {
                    ps.queue.iter().position(|b| b.state == BatchState::Queued)
                };
                let Some(idx) = next else {
                    continue;
                };
                if ps.retry_after.is_some_and(|t| t > now) {
                    continue;
                }
                if let Some(t) = txn
                    && !t.v2
                    && let Ok(pi) = i32::try_from(p)
                    && !t.added.contains(&(topic.name.clone(), pi))
                {
                    continue;
                }
                let Some(leader) = meta.partitions.get(p).and_then(|m| m.leader) else {
                    refresh = true;
                    continue;
                };
                let in_flight = ps.in_flight();
                // Order: a retry waits until nothing of its partition is in flight, and new
                // batches follow earlier ones only on the same connection.
                if in_flight > 0
                    && (ps.queue[idx].attempts > 0 || ps.in_flight_leader != Some(leader))
                {
                    continue;
                }
                // A broker accepts any first sequence from a producer it has no state for, so
                // until one batch is acknowledged a second in flight could overtake a retry.
                if idempotent && (in_flight >= 5 || (in_flight > 0 && !ps.acked)) {
                    continue;
                }
                if let Ok(p) = i32::try_from(p) {
                    per_leader
                        .entry(leader)
                        .or_default()
                        .push((topic.name.clone(), p, idx));
                }
            }
        }
        if refresh {
            self.net.metadata.request_refresh();
        }
        let mut sent = false;
        for (leader, parts) in per_leader {
            sent |= self.send_to_leader(leader, parts, now);
        }
        sent
    }

    fn send_to_leader(
        &mut self,
        leader: i32,
        parts: Vec<(Arc<str>, i32, usize)>,
        now: Instant,
    ) -> bool {
        let Some(addr) = self.net.metadata.address(Node::Broker(leader)).cloned() else {
            self.net.metadata.request_refresh();
            return false;
        };
        let max_in_flight = self.config.max_in_flight;
        let Some(conn) = self
            .net
            .pool
            .ensure(Node::Broker(leader), Purpose::Produce, &addr, now)
        else {
            return false;
        };
        if conn.in_flight.len() >= max_in_flight {
            return false;
        }
        let cap = super::transact::produce_cap(self.txn.as_ref());
        let Some(version) = conn
            .version(kasio_proto::ApiKey::Produce)
            .map(|v| v.min(cap))
        else {
            return false;
        };
        let conn_id = conn.id;
        let rid = self.next_request;
        self.next_request += 1;
        let (pid, epoch) = (self.producer_id.id, self.producer_id.epoch);
        let idempotent = self.producer_id.enabled();
        let mut size = 0usize;
        let mut included: Vec<(Arc<str>, i32)> = Vec::new();
        let mut topic_data: Vec<TopicProduceData> = Vec::new();
        for (name, p, idx) in parts {
            let Some(topic) = self.topics.get_mut(&name) else {
                continue;
            };
            let topic_id = topic.meta.as_ref().map_or(Uuid::default(), |m| m.id);
            let Some(ps) = usize::try_from(p)
                .ok()
                .and_then(|i| topic.partitions.get_mut(i))
            else {
                continue;
            };
            if ps
                .queue
                .get(idx)
                .is_none_or(|b| b.state != BatchState::Queued)
            {
                continue;
            }
            let len = ps.queue[idx].data.len();
            if !included.is_empty() && size + len > self.config.max_request_size {
                break;
            }
            size += len + 16;
            if idempotent {
                sequence(ps, idx, pid, epoch);
            }
            let b = &mut ps.queue[idx];
            b.state = BatchState::InFlight(rid);
            ps.in_flight_leader = Some(leader);
            let data = PartitionProduceData {
                index: p,
                records: Some(b.data.clone()),
                ..Default::default()
            };
            add_partition(&mut topic_data, &name, topic_id, data, version);
            included.push((name, p));
        }
        if included.is_empty() {
            return false;
        }
        let req = ProduceRequest {
            transactional_id: self.txn.as_ref().map(|t| t.id.as_str().into()),
            acks: self.config.acks.wire(),
            timeout_ms: i32::try_from(self.config.network.request_timeout.as_millis())
                .unwrap_or(i32::MAX),
            topic_data,
            ..Default::default()
        };
        let Some(conn) = self.net.pool.get_mut(conn_id) else {
            return false;
        };
        if self.config.acks == crate::config::Acks::None {
            let _ = conn.send_oneway(&req, &mut self.net.transmits);
            drop(req);
            for (name, p) in included {
                self.complete(&name, p, rid, -1, -1);
            }
            return true;
        }
        let deadline = now + self.config.network.request_timeout;
        let sent = conn.send_capped(
            &req,
            cap,
            Tag::Produce(rid),
            deadline,
            &mut self.net.transmits,
            size + 1024,
        );
        drop(req);
        if sent.is_some() {
            if let Some(t) = self.txn.as_mut().filter(|t| t.v2) {
                // The broker adds these partitions to the transaction on its own; an abort
                // must still end it.
                t.added.extend(included.iter().cloned());
            }
            self.requests.insert(rid, included);
            true
        } else {
            for (name, p) in included {
                self.requeue(&name, p, rid, now, Attempt::NotSent);
            }
            false
        }
    }

    /// Routes a response to its handler.
    pub(super) fn on_response(&mut self, conn: ConnId, req: InFlight, frame: Bytes, now: Instant) {
        match req.tag {
            Tag::ApiVersions
            | Tag::Fetch(_)
            | Tag::ListOffsets(_)
            | Tag::FindCoordinator
            | Tag::OffsetFetch(_)
            | Tag::OffsetCommit(_)
            | Tag::Heartbeat
            | Tag::Admin(_)
            | Tag::SaslHandshake
            | Tag::SaslAuthenticate
            | Tag::Classic
            | Tag::ShareFetch(_)
            | Tag::ShareAck(_)
            | Tag::ShareHeartbeat
            | Tag::GroupConfigs => {}
            Tag::Txn(code) => {
                if let Some(call) = super::TxnCall::from_tag(code) {
                    self.on_txn_response(conn, call, req, frame, now);
                }
            }
            Tag::Metadata => {
                match frame::decode_response_as::<MetadataResponse>(req.version, frame) {
                    Ok((_, resp)) => self.on_metadata(&resp, now),
                    Err(_) => {
                        self.net.metadata.failed(now);
                        self.lose(conn, now, true);
                    }
                }
            }
            Tag::InitProducerId => {
                match frame::decode_response_as::<InitProducerIdResponse>(req.version, frame) {
                    Ok((_, resp)) => {
                        if resp.error_code == ErrorCode::UnsupportedVersion.code()
                            && self.refuse_version(conn, req)
                        {
                            self.producer_id.failed(now);
                        } else {
                            self.on_producer_id(&resp, now);
                        }
                    }
                    Err(_) => {
                        self.producer_id
                            .failed(now + self.config.network.retry_backoff);
                        self.lose(conn, now, true);
                    }
                }
            }
            Tag::Produce(rid) => {
                match frame::decode_response_as::<ProduceResponse>(req.version, frame) {
                    Ok((_, resp)) => {
                        let refused = resp.responses.iter().any(|t| {
                            t.partition_responses
                                .iter()
                                .any(|p| p.error_code == ErrorCode::UnsupportedVersion.code())
                        });
                        if refused {
                            self.refuse_version(conn, req);
                        }
                        self.on_produce(rid, &resp, now);
                    }
                    Err(_) => {
                        self.produce_lost(rid, now);
                        self.lose(conn, now, true);
                    }
                }
            }
        }
    }

    /// A broker refused a version it advertised: use a lower one on this connection from
    /// now on. Whether one is left.
    fn refuse_version(&mut self, conn: ConnId, req: InFlight) -> bool {
        self.net
            .pool
            .get_mut(conn)
            .is_some_and(|c| c.refuse_version(req.api, req.version))
    }

    fn on_metadata(&mut self, resp: &MetadataResponse, now: Instant) {
        self.net.metadata.update(resp, now);
        let mut urgent = false;
        let mut newly_known: Vec<Arc<str>> = Vec::new();
        let mut failed: Vec<(Arc<str>, ErrorCode)> = Vec::new();
        for t in &resp.topics {
            let Some(name) = t.name.as_deref() else {
                continue;
            };
            let Some(topic) = self.topics.get_mut(name) else {
                continue;
            };
            let code = ErrorCode::from_code(t.error_code);
            if !code.is_ok() {
                if code.is_retriable() || code == ErrorCode::UnknownTopicOrPartition {
                    urgent = true;
                } else {
                    failed.push((topic.name.clone(), code));
                }
                continue;
            }
            let meta = TopicMeta::from_response(t);
            urgent |= meta.leaderless();
            // Partitions can be added, never removed.
            while topic.partitions.len() < meta.partitions.len() {
                topic.partitions.push(PartitionState::default());
            }
            if topic.meta.is_none() {
                newly_known.push(topic.name.clone());
            }
            topic.meta = Some(meta);
        }
        if urgent {
            self.net.metadata.request_refresh();
        }
        for (name, code) in failed {
            let Some(topic) = self.topics.get_mut(&name) else {
                continue;
            };
            let pending: Vec<Pending<T>> = topic.pending.drain(..).collect();
            let error = ProduceError::Broker {
                code,
                message: None,
            };
            for p in pending {
                let size = pending_size(&p);
                self.fail_tokens(Tokens::from([(p.token, p.timestamp)]), size, &error);
            }
        }
        for name in newly_known {
            self.release_pending(&name, now);
        }
    }

    /// Appends the records that waited for a topic's metadata, in the order they came.
    pub(super) fn release_pending(&mut self, name: &str, now: Instant) {
        let Some(topic) = self.topics.get_mut(name) else {
            return;
        };
        let pending: Vec<Pending<T>> = topic.pending.drain(..).collect();
        for p in pending {
            let size = pending_size(&p);
            self.buffered = self.buffered.saturating_sub(size);
            self.outstanding -= 1;
            let headers: Vec<(&str, &[u8])> = p
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), &v[..]))
                .collect();
            let record = super::Record {
                topic: name,
                partition: p.partition,
                key: p.key.as_deref(),
                value: p.value.as_deref(),
                headers: &headers,
                timestamp: Some(p.timestamp),
            };
            if let Err((e, token)) = self.append(&record, p.timestamp, size, p.token, now) {
                let error = match e {
                    Some(super::SendError::Invalid(e)) => e,
                    _ => ProduceError::Closed,
                };
                self.events.push_back(Event::Delivery {
                    token,
                    result: Err(error),
                });
            }
        }
    }

    fn on_producer_id(&mut self, resp: &InitProducerIdResponse, now: Instant) {
        let code = ErrorCode::from_code(resp.error_code);
        if code.is_ok() {
            let changed = resp.producer_id != self.producer_id.id
                || resp.producer_epoch != self.producer_id.epoch;
            self.producer_id.id = resp.producer_id;
            self.producer_id.epoch = resp.producer_epoch;
            self.producer_id.state = IdState::Ready;
            if changed {
                // A new epoch or id restarts every partition's sequence at 0.
                for topic in self.topics.values_mut() {
                    for ps in &mut topic.partitions {
                        ps.next_sequence = 0;
                        ps.acked = false;
                        for b in &mut ps.queue {
                            b.sequence = None;
                        }
                    }
                }
            }
            return;
        }
        if code.is_retriable() || code == ErrorCode::CoordinatorLoadInProgress {
            self.producer_id
                .failed(now + self.config.network.retry_backoff);
            return;
        }
        if self.producer_id.state == IdState::Bumping {
            // The broker cannot bump this id (too old, or it expired): start afresh.
            self.producer_id.id = -1;
            self.producer_id.epoch = -1;
            self.producer_id.state = IdState::Needed;
            return;
        }
        let error = ProduceError::Broker {
            code,
            message: None,
        };
        self.fatal = Some(error.clone());
        self.fail_everything(&error);
    }

    fn on_produce(&mut self, rid: u64, resp: &ProduceResponse, now: Instant) {
        let Some(parts) = self.requests.remove(&rid) else {
            return;
        };
        for (name, p) in parts {
            let topic_id = self
                .topics
                .get(&name)
                .and_then(|t| t.meta.as_ref())
                .map(|m| m.id);
            let answer = resp
                .responses
                .iter()
                .filter(|t| *t.name == *name || (t.name.is_empty() && Some(t.topic_id) == topic_id))
                .flat_map(|t| t.partition_responses.iter())
                .find(|r| r.index == p);
            let Some(answer) = answer else {
                self.requeue(&name, p, rid, now, Attempt::Unknown);
                continue;
            };
            let code = ErrorCode::from_code(answer.error_code);
            if code.is_ok() || code == ErrorCode::DuplicateSequenceNumber {
                self.complete(&name, p, rid, answer.base_offset, answer.log_append_time_ms);
                continue;
            }
            if stale_metadata(code) {
                self.net.metadata.request_refresh();
            }
            match verdict(code) {
                Verdict::Retry => self.retry_or_fail(&name, p, rid, code, answer, now),
                // A transaction cannot renew its epoch mid-way: the batch fails, the
                // transaction becomes abortable, and the abort renews the epoch (KIP-360).
                Verdict::RetryAfterBump if self.producer_id.enabled() && self.txn.is_none() => {
                    // Only the oldest unresolved batch proves the broker lost our state; a
                    // later one was refused because an earlier one is being retried.
                    if self.is_oldest(&name, p, rid) {
                        self.producer_id.bump();
                    }
                    if self.was_unknown(&name, p, rid) {
                        // An earlier attempt may have been written and the broker no longer
                        // knows: resending under a new epoch could write it twice, so it
                        // fails, as in the Java client.
                        let message = Some(
                            "the broker lost this producer's state after an attempt whose \
                             outcome is unknown; the batch may or may not have been written"
                                .to_string(),
                        );
                        self.fail_batch(&name, p, rid, ProduceError::Broker { code, message });
                    } else {
                        self.retry_or_fail(&name, p, rid, code, answer, now);
                    }
                }
                Verdict::RetryAfterBump | Verdict::Fail => {
                    let message = answer.error_message.as_deref().map(str::to_string);
                    self.fail_batch(&name, p, rid, ProduceError::Broker { code, message });
                }
            }
        }
    }

    fn was_unknown(&self, name: &str, p: i32, rid: u64) -> bool {
        self.partition(name, p)
            .and_then(|ps| {
                ps.queue
                    .iter()
                    .find(|b| b.state == BatchState::InFlight(rid))
            })
            .is_some_and(|b| b.unknown)
    }

    fn is_oldest(&self, name: &str, p: i32, rid: u64) -> bool {
        self.partition(name, p)
            .and_then(|ps| ps.queue.front())
            .is_some_and(|b| b.state == BatchState::InFlight(rid))
    }

    fn partition(&self, name: &str, p: i32) -> Option<&PartitionState<T>> {
        self.topics
            .get(name)?
            .partitions
            .get(usize::try_from(p).ok()?)
    }

    fn take_batch(&mut self, name: &str, p: i32, rid: u64) -> Option<Batch<T>> {
        let ps = self
            .topics
            .get_mut(name)?
            .partitions
            .get_mut(usize::try_from(p).ok()?)?;
        let idx = ps
            .queue
            .iter()
            .position(|b| b.state == BatchState::InFlight(rid))?;
        ps.queue.remove(idx)
    }

    fn complete(&mut self, name: &str, p: i32, rid: u64, base_offset: i64, append_time: i64) {
        let Some(b) = self.take_batch(name, p, rid) else {
            return;
        };
        let Some(topic) = self.topics.get_mut(name) else {
            return;
        };
        if let Some(ps) = usize::try_from(p)
            .ok()
            .and_then(|i| topic.partitions.get_mut(i))
        {
            ps.acked = true;
        }
        let topic = topic.name.clone();
        self.buffered = self.buffered.saturating_sub(b.size);
        self.outstanding -= b.tokens.len();
        if let Ok(buf) = b.data.try_into_mut() {
            self.free_buffers.keep(buf);
        }
        self.events
            .push_delivered(topic, p, base_offset, append_time, b.tokens);
    }

    fn fail_batch(&mut self, name: &str, p: i32, rid: u64, error: ProduceError) {
        let Some(b) = self.take_batch(name, p, rid) else {
            return;
        };
        if b.sequence.is_some() {
            // A gap in the sequence: the broker would refuse every later batch.
            self.producer_id.bump();
        }
        self.fail_tokens(b.tokens, b.size, &error);
    }

    fn retry_or_fail(
        &mut self,
        name: &str,
        p: i32,
        rid: u64,
        code: ErrorCode,
        answer: &PartitionProduceResponse,
        now: Instant,
    ) {
        let exhausted = self
            .partition(name, p)
            .and_then(|ps| {
                ps.queue
                    .iter()
                    .find(|b| b.state == BatchState::InFlight(rid))
            })
            .is_some_and(|b| b.attempts >= self.config.retries || now >= b.deadline);
        if exhausted {
            let message = answer.error_message.as_deref().map(str::to_string);
            self.fail_batch(name, p, rid, ProduceError::Broker { code, message });
        } else {
            self.requeue(name, p, rid, now, Attempt::Refused);
        }
    }

    /// Puts a batch back in the queue, to be sent again after the retry backoff.
    fn requeue(&mut self, name: &str, p: i32, rid: u64, now: Instant, attempt: Attempt) {
        let base = self.config.network.retry_backoff;
        let max = self.config.retry_backoff_max;
        let jitter = self.rng.between(0.8, 1.2);
        let Some(ps) = self
            .topics
            .get_mut(name)
            .and_then(|t| t.partitions.get_mut(usize::try_from(p).ok()?))
        else {
            return;
        };
        let Some(b) = ps
            .queue
            .iter_mut()
            .find(|b| b.state == BatchState::InFlight(rid))
        else {
            return;
        };
        b.state = BatchState::Queued;
        if attempt != Attempt::NotSent {
            b.attempts += 1;
        }
        // A refusal says nothing about an earlier attempt, so only an acknowledgement
        // (which removes the batch) clears an unknown outcome.
        b.unknown |= attempt == Attempt::Unknown;
        let exp = base
            .saturating_mul(1u32 << b.attempts.saturating_sub(1).min(16))
            .min(max);
        ps.retry_after = Some(now + exp.mul_f64(jitter));
    }

    /// A Produce request's connection was lost or its response unreadable: whether its
    /// batches landed is unknown, so they are retried with the same sequence numbers.
    pub(super) fn produce_lost(&mut self, rid: u64, now: Instant) {
        let Some(parts) = self.requests.remove(&rid) else {
            return;
        };
        for (name, p) in parts {
            self.requeue(&name, p, rid, now, Attempt::Unknown);
        }
    }

    fn close_idle(&mut self, now: Instant) {
        let idle = self.config.connections_max_idle;
        for id in self.net.pool.ids() {
            let expired = self
                .net
                .pool
                .get_mut(id)
                .is_some_and(|c| c.in_flight.is_empty() && now >= c.last_used + idle);
            if expired {
                let _ = self.net.pool.close(id, now, &mut self.rng);
            }
        }
    }
}

/// Gives batch `idx` of a partition its first sequence (once: a retry keeps it) and
/// stamps the producer id, epoch and sequence into its bytes if they changed.
fn sequence<T>(ps: &mut PartitionState<T>, idx: usize, pid: i64, epoch: i16) {
    let next = &mut ps.next_sequence;
    let b = &mut ps.queue[idx];
    let seq = *b.sequence.get_or_insert_with(|| {
        let s = *next;
        *next = next.wrapping_add(b.tokens.len() as i32) & i32::MAX;
        s
    });
    if b.stamped != Some((pid, epoch, seq)) {
        stamp(b, pid, epoch, seq);
    }
}

/// Adds a partition's data to its topic's entry in a Produce request (topics by id from
/// v13 on, their names left empty).
fn add_partition(
    topic_data: &mut Vec<TopicProduceData>,
    name: &Arc<str>,
    topic_id: Uuid,
    data: PartitionProduceData,
    version: i16,
) {
    match topic_data.iter_mut().find(|t| *t.name == **name) {
        Some(t) => t.partition_data.push(data),
        None => topic_data.push(TopicProduceData {
            name: if version >= 13 {
                "".into()
            } else {
                name.as_ref().into()
            },
            topic_id,
            partition_data: vec![data],
            ..Default::default()
        }),
    }
}

fn stamp<T>(b: &mut Batch<T>, pid: i64, epoch: i16, seq: i32) {
    let data = std::mem::take(&mut b.data);
    let mut buf = match data.try_into_mut() {
        Ok(buf) => buf,
        Err(shared) => bytes::BytesMut::from(&shared[..]),
    };
    // The data is a batch this producer encoded, so it is always a whole v2 batch.
    let _ = set_producer_state(&mut buf, pid, epoch, seq);
    b.data = buf.freeze();
    b.stamped = Some((pid, epoch, seq));
}

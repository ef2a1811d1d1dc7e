//! The transactional producer's commands and its coordinator requests (the state they
//! move, and the two protocols, are in `txn.rs`).

use super::{
    Event, ProduceError, Producer,
    batch::BatchState,
    producer_id::IdState,
    txn::{
        Call, GroupMetadata, PendingOffsets, TxnError, TxnEvent, TxnOp, TxnState, Verdict, verdict,
    },
};
use crate::{
    ErrorCode,
    config::BrokerAddress,
    conn::{ConnId, InFlight, Node, Purpose},
};
use bytes::Bytes;
use kasio_proto::{
    ApiKey, frame,
    messages::{
        AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
        AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, FindCoordinatorResponse,
        InitProducerIdRequest, InitProducerIdResponse, TxnOffsetCommitRequest,
        TxnOffsetCommitResponse,
        add_partitions_to_txn_request::AddPartitionsToTxnTopic,
        txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic},
    },
};
use std::{sync::Arc, time::Instant};

/// The highest versions of the first transaction protocol (see `txn.rs`).
const PRODUCE_MAX: i16 = 11;
const END_TXN_MAX: i16 = 4;
const ADD_PARTITIONS_MAX: i16 = 3;
/// TxnOffsetCommit v5 would add the offsets implicitly (the second protocol).
const TXN_OFFSET_COMMIT_MAX: i16 = 4;

/// How long to wait before asking a busy coordinator again (the Java client's 20 ms for
/// CONCURRENT_TRANSACTIONS would hammer a loading one; this is between).
const BUSY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

impl<T> Producer<T> {
    fn txn_mut(&mut self) -> Result<&mut super::txn::Txn, TxnError> {
        if self.lifecycle != super::Lifecycle::Open {
            return Err(TxnError::Closed);
        }
        self.txn.as_mut().ok_or(TxnError::NotTransactional)
    }

    /// Which transaction protocol the producer speaks, once initialized: 2 for KIP-890's
    /// (the cluster's `transaction.version` is 2 or more), else 1; `None` before, or
    /// without a `transactional.id`.
    #[must_use]
    pub fn transaction_protocol(&self) -> Option<u8> {
        self.txn
            .as_ref()
            .filter(|t| !matches!(t.state, TxnState::Uninitialized | TxnState::Initializing))
            .map(|t| if t.v2 { 2 } else { 1 })
    }

    /// Where the transactional producer stands; `None` without a `transactional.id`.
    #[must_use]
    pub fn transaction_state(&self) -> Option<TxnState> {
        self.txn.as_ref().map(|t| t.state)
    }

    /// Gets the producer id and epoch for `transactional.id` from its coordinator, which
    /// fences older producers with the same id and settles their open transaction.
    /// [`Event::Transaction`] with [`TxnEvent::Initialized`] (or `Failed`) follows.
    ///
    /// # Errors
    /// [`TxnError::NotTransactional`] without a `transactional.id`;
    /// [`TxnError::InvalidState`] unless uninitialized.
    pub fn init_transactions(&mut self, now: Instant) -> Result<(), TxnError> {
        let txn = self.txn_mut()?;
        txn.check("init_transactions", &[TxnState::Uninitialized])?;
        txn.state = TxnState::Initializing;
        txn.op = Some(TxnOp::Init);
        self.new_deadline = true;
        self.drain(now);
        Ok(())
    }

    /// Opens a transaction: records sent from now until commit or abort belong to it.
    ///
    /// # Errors
    /// [`TxnError::InvalidState`] unless ready (initialized, no transaction open).
    pub fn begin_transaction(&mut self) -> Result<(), TxnError> {
        let txn = self.txn_mut()?;
        txn.check("begin_transaction", &[TxnState::Ready])?;
        txn.state = TxnState::InTransaction;
        txn.error = None;
        Ok(())
    }

    /// Adds a consumer's offsets (the next offset to read, per partition) to the open
    /// transaction, so they commit with its records or not at all.
    /// [`TxnEvent::OffsetsSent`] (or `Failed`) follows.
    ///
    /// # Errors
    /// [`TxnError::InvalidState`] outside a transaction, or while offsets are still on
    /// their way.
    pub fn send_offsets_to_transaction(
        &mut self,
        offsets: &[(&str, i32, i64)],
        group: GroupMetadata,
        now: Instant,
    ) -> Result<(), TxnError> {
        let txn = self.txn_mut()?;
        txn.check("send_offsets_to_transaction", &[TxnState::InTransaction])?;
        if txn.offsets.is_some() {
            return Err(TxnError::InvalidState {
                operation: "send_offsets_to_transaction while offsets are on their way",
                state: txn.state,
            });
        }
        txn.offsets = Some(PendingOffsets {
            group,
            offsets: offsets
                .iter()
                .map(|&(t, p, o)| (t.to_string(), p, o))
                .collect(),
            added: false,
        });
        txn.op = Some(TxnOp::SendOffsets);
        self.new_deadline = true;
        self.drain(now);
        Ok(())
    }

    /// Sends what is buffered and commits the transaction once every record and offset is
    /// in. [`TxnEvent::Committed`] follows, or `Failed` with an abortable error (abort,
    /// then begin again) or a fatal one.
    ///
    /// # Errors
    /// [`TxnError::InvalidState`] outside a transaction; the abortable error that already
    /// doomed it.
    pub fn commit_transaction(&mut self, now: Instant) -> Result<(), TxnError> {
        let txn = self.txn_mut()?;
        if txn.state == TxnState::AbortableError {
            return Err(txn.error.clone().unwrap_or(TxnError::InvalidState {
                operation: "commit_transaction",
                state: txn.state,
            }));
        }
        txn.check("commit_transaction", &[TxnState::InTransaction])?;
        txn.state = TxnState::Committing;
        txn.op = Some(TxnOp::Commit);
        self.flush(now);
        Ok(())
    }

    /// Aborts the transaction: records not yet sent fail with
    /// [`ProduceError::TransactionAborted`], those in flight are awaited, then the
    /// coordinator writes abort markers. [`TxnEvent::Aborted`] (or `Failed`) follows.
    ///
    /// # Errors
    /// [`TxnError::InvalidState`] outside a transaction.
    pub fn abort_transaction(&mut self, now: Instant) -> Result<(), TxnError> {
        let txn = self.txn_mut()?;
        txn.check(
            "abort_transaction",
            &[TxnState::InTransaction, TxnState::AbortableError],
        )?;
        txn.state = TxnState::Aborting;
        txn.op = Some(TxnOp::Abort);
        txn.offsets = None;
        self.drop_unsent(&ProduceError::TransactionAborted);
        self.new_deadline = true;
        self.drain(now);
        Ok(())
    }

    /// Fails every record not in a request in flight.
    fn drop_unsent(&mut self, error: &ProduceError) {
        let mut failed = Vec::new();
        for topic in self.topics.values_mut() {
            for p in topic.pending.drain(..) {
                let size = super::pending_size(&p);
                failed.push((super::delivered::Tokens::from([(p.token, 0)]), size));
            }
            for ps in &mut topic.partitions {
                if let Some(open) = ps.open.take() {
                    failed.push((open.tokens, open.size));
                }
                let mut kept = std::collections::VecDeque::new();
                for b in ps.queue.drain(..) {
                    if matches!(b.state, BatchState::InFlight(_)) {
                        kept.push_back(b);
                    } else {
                        if b.sequence.is_some() {
                            // A sequence the broker may expect next is given up.
                            self.producer_id.bump();
                        }
                        failed.push((b.tokens, b.size));
                    }
                }
                ps.queue = kept;
            }
        }
        for (tokens, size) in failed {
            self.fail_tokens(tokens, size, error);
        }
    }

    /// A record of the transaction failed: it cannot commit.
    pub(super) fn txn_record_failed(&mut self, error: &ProduceError) {
        let Some(txn) = &mut self.txn else {
            return;
        };
        if *error == ProduceError::TransactionAborted {
            return;
        }
        let failed = match error {
            ProduceError::Broker {
                code:
                    code @ (ErrorCode::ProducerFenced | ErrorCode::TransactionalIdAuthorizationFailed),
                message,
            } => txn.fatal(
                *code,
                message.clone().unwrap_or_else(|| code.message().into()),
            ),
            ProduceError::Broker { code, message } => {
                if *code == ErrorCode::InvalidProducerEpoch {
                    txn.renew_epoch = true;
                }
                txn.abortable(
                    Some(*code),
                    message.clone().unwrap_or_else(|| code.message().into()),
                )
            }
            other => txn.abortable(None, format!("a record failed: {other}")),
        };
        if let Some((op, error)) = failed {
            self.events
                .push_back(Event::Transaction(TxnEvent::Failed { op, error }));
        }
    }

    fn txn_failed(&mut self, code: ErrorCode, what: &str) {
        let Some(txn) = &mut self.txn else {
            return;
        };
        let mut message = format!("{what}: {}", code.message());
        if code == ErrorCode::ProducerFenced
            && matches!(
                txn.error,
                Some(TxnError::Abortable {
                    code: Some(ErrorCode::InvalidProducerEpoch),
                    ..
                })
            )
        {
            // The coordinator moves a producer to a new epoch for a newer instance and for
            // a timed-out transaction alike; only the user knows which.
            message.push_str(
                " If no other producer uses this transactional.id, the transaction stayed \
                 open longer than transaction.timeout.ms and the coordinator aborted it.",
            );
        }
        let failed = match verdict(code) {
            Verdict::Fatal => txn.fatal(code, message),
            _ if txn.state == TxnState::Initializing => txn.fatal(code, message),
            _ => {
                if code == ErrorCode::InvalidProducerEpoch {
                    txn.renew_epoch = true;
                }
                txn.abortable(Some(code), message)
            }
        };
        if let Some((op, error)) = failed {
            self.events
                .push_back(Event::Transaction(TxnEvent::Failed { op, error }));
        }
    }

    fn txn_done(&mut self, event: TxnEvent) {
        if let Some(txn) = &mut self.txn {
            txn.op = None;
        }
        self.events.push_back(Event::Transaction(event));
    }

    /// Sends the next coordinator request the transaction needs, if any.
    pub(super) fn drive_txn(&mut self, now: Instant) {
        let Some(txn) = &self.txn else {
            return;
        };
        if txn.call.is_some() || txn.retry_at.is_some_and(|t| t > now) {
            return;
        }
        match txn.state {
            TxnState::Uninitialized
            | TxnState::Ready
            | TxnState::AbortableError
            | TxnState::FatalError => {}
            TxnState::Initializing => self.txn_request(Call::InitProducerId, now),
            TxnState::InTransaction | TxnState::Committing => {
                let partitions = self.partitions_to_add();
                let txn = self.txn.as_ref().expect("checked above");
                if !partitions.is_empty() {
                    self.send_add_partitions(partitions, now);
                } else if let Some(o) = &txn.offsets {
                    let call = if o.added || txn.v2 {
                        Call::OffsetCommit
                    } else {
                        Call::AddOffsets
                    };
                    self.txn_request(call, now);
                } else if txn.state == TxnState::Committing && self.outstanding == 0 {
                    self.txn_request(Call::EndTxn, now);
                }
            }
            TxnState::Aborting => {
                if !self.requests.is_empty() {
                    return;
                }
                if txn.added.is_empty() && !txn.has_offsets {
                    self.finish_abort();
                } else {
                    self.txn_request(Call::EndTxn, now);
                }
            }
        }
    }

    /// The transaction is over on the coordinator (or never reached it): ready for the
    /// next, once the epoch is renewed if it must be.
    fn finish_abort(&mut self) {
        let renew = self.producer_id.state == IdState::BumpNeeded;
        let Some(txn) = &mut self.txn else {
            return;
        };
        txn.added.clear();
        txn.has_offsets = false;
        if renew || txn.renew_epoch {
            txn.renew_epoch = true;
            txn.state = TxnState::Initializing;
            return;
        }
        txn.state = TxnState::Ready;
        self.txn_done(TxnEvent::Aborted);
    }

    /// Partitions holding records of the open transaction that the coordinator does not
    /// know yet (none in the second protocol, where Produce adds them).
    fn partitions_to_add(&self) -> Vec<(Arc<str>, i32)> {
        let Some(txn) = self.txn.as_ref().filter(|t| !t.v2) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for topic in self.topics.values() {
            for (p, ps) in topic.partitions.iter().enumerate() {
                if ps.open.is_none() && ps.queue.is_empty() {
                    continue;
                }
                let Ok(p) = i32::try_from(p) else {
                    continue;
                };
                let key = (topic.name.clone(), p);
                if !txn.added.contains(&key) {
                    out.push(key);
                }
            }
        }
        out
    }

    /// A ready connection to the transaction coordinator, or the group coordinator for
    /// `group`; looks it up first when unknown.
    fn coordinator_conn(&mut self, group: bool, now: Instant) -> Option<ConnId> {
        let txn = self.txn.as_ref()?;
        let node = if group {
            txn.group_coordinator
        } else {
            txn.coordinator
        };
        let Some(node) = node else {
            self.find_coordinator(group, now);
            return None;
        };
        let Some(addr) = self.net.metadata.address(Node::Broker(node)).cloned() else {
            self.net.metadata.request_refresh();
            return None;
        };
        self.net
            .pool
            .ensure(Node::Broker(node), Purpose::Control, &addr, now)
            .map(|c| c.id)
    }

    fn find_coordinator(&mut self, group: bool, now: Instant) {
        let Some(txn) = &self.txn else {
            return;
        };
        let (key, key_type, call) = if group {
            let Some(o) = &txn.offsets else {
                return;
            };
            (
                o.group.group_id.clone(),
                crate::coordinator::GROUP,
                Call::FindGroupCoordinator,
            )
        } else {
            (
                txn.id.clone(),
                crate::coordinator::TRANSACTION,
                Call::FindCoordinator,
            )
        };
        let Some(id) = self
            .net
            .metadata
            .control_conn(&mut self.net.pool, &mut self.rng, now)
        else {
            return;
        };
        let Some(conn) = self.net.pool.get_mut(id) else {
            return;
        };
        let Some(version) = conn.version(ApiKey::FindCoordinator) else {
            return;
        };
        let req = crate::coordinator::request(&key, key_type, version);
        let deadline = now + self.config.network.request_timeout;
        if conn
            .send(&req, call.tag(), deadline, &mut self.net.transmits)
            .is_some()
            && let Some(txn) = &mut self.txn
        {
            txn.call = Some(call);
        }
    }

    fn send_add_partitions(&mut self, partitions: Vec<(Arc<str>, i32)>, now: Instant) {
        let Some(conn_id) = self.coordinator_conn(false, now) else {
            return;
        };
        let Some(txn) = &mut self.txn else {
            return;
        };
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for (name, p) in &partitions {
            match topics.iter_mut().find(|t| *t.name == **name) {
                Some(t) => t.partitions.push(*p),
                None => topics.push(AddPartitionsToTxnTopic {
                    name: name.as_ref().into(),
                    partitions: vec![*p],
                    ..Default::default()
                }),
            }
        }
        let req = AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: txn.id.as_str().into(),
            v3_and_below_producer_id: self.producer_id.id,
            v3_and_below_producer_epoch: self.producer_id.epoch,
            v3_and_below_topics: topics,
            ..Default::default()
        };
        let deadline = now + self.config.network.request_timeout;
        let Some(conn) = self.net.pool.get_mut(conn_id) else {
            return;
        };
        if conn
            .send_capped(
                &req,
                ADD_PARTITIONS_MAX,
                Call::AddPartitions.tag(),
                deadline,
                &mut self.net.transmits,
                256,
            )
            .is_some()
        {
            txn.call = Some(Call::AddPartitions);
            txn.adding = partitions;
        }
    }

    /// Sends InitProducerId, AddOffsetsToTxn, TxnOffsetCommit or EndTxn.
    fn txn_request(&mut self, call: Call, now: Instant) {
        let group = call == Call::OffsetCommit;
        let Some(conn_id) = self.coordinator_conn(group, now) else {
            return;
        };
        let Some(txn) = &self.txn else {
            return;
        };
        let id = txn.id.as_str();
        let (pid, epoch) = (self.producer_id.id, self.producer_id.epoch);
        let deadline = now + self.config.network.request_timeout;
        let Some(conn) = self.net.pool.get_mut(conn_id) else {
            return;
        };
        let tag = call.tag();
        let out = &mut self.net.transmits;
        let sent = match call {
            Call::InitProducerId => {
                // Renewing keeps the id and asks for the next epoch (KIP-360, KIP-588).
                let (pid, epoch) = if txn.renew_epoch
                    && conn.version(ApiKey::InitProducerId).is_some_and(|v| v >= 3)
                {
                    (pid, epoch)
                } else {
                    (-1, -1)
                };
                let req = InitProducerIdRequest {
                    transactional_id: Some(id.into()),
                    transaction_timeout_ms: i32::try_from(txn.timeout.as_millis())
                        .unwrap_or(i32::MAX),
                    producer_id: pid,
                    producer_epoch: epoch,
                    ..Default::default()
                };
                conn.send(&req, tag, deadline, out)
            }
            Call::AddOffsets => {
                let Some(o) = &txn.offsets else {
                    return;
                };
                let req = AddOffsetsToTxnRequest {
                    transactional_id: id.into(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    group_id: o.group.group_id.as_str().into(),
                    ..Default::default()
                };
                conn.send(&req, tag, deadline, out)
            }
            Call::OffsetCommit => {
                let Some(o) = &txn.offsets else {
                    return;
                };
                let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
                for (t, p, offset) in &o.offsets {
                    let part = TxnOffsetCommitRequestPartition {
                        partition_index: *p,
                        committed_offset: *offset,
                        committed_leader_epoch: -1,
                        committed_metadata: Some("".into()),
                        ..Default::default()
                    };
                    match topics.iter_mut().find(|x| *x.name == **t) {
                        Some(x) => x.partitions.push(part),
                        None => topics.push(TxnOffsetCommitRequestTopic {
                            name: t.as_str().into(),
                            partitions: vec![part],
                            ..Default::default()
                        }),
                    }
                }
                let g = &o.group;
                let req = TxnOffsetCommitRequest {
                    transactional_id: id.into(),
                    group_id: g.group_id.as_str().into(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    generation_id_or_member_epoch: g.generation_id,
                    member_id: g.member_id.as_str().into(),
                    group_instance_id: g.group_instance_id.as_deref().map(Into::into),
                    topics,
                    ..Default::default()
                };
                // v6 names topics by id only, which these offsets do not carry.
                let cap = if txn.v2 { 5 } else { TXN_OFFSET_COMMIT_MAX };
                conn.send_capped(&req, cap, tag, deadline, out, 256)
            }
            Call::EndTxn => {
                let req = EndTxnRequest {
                    transactional_id: id.into(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    committed: txn.state == TxnState::Committing,
                    ..Default::default()
                };
                let cap = if txn.v2 { i16::MAX } else { END_TXN_MAX };
                conn.send_capped(&req, cap, tag, deadline, out, 128)
            }
            Call::FindCoordinator | Call::FindGroupCoordinator | Call::AddPartitions => return,
        };
        if sent.is_some()
            && let Some(txn) = &mut self.txn
        {
            txn.call = Some(call);
        }
    }

    /// A coordinator request's connection was lost: ask again, after finding the
    /// coordinator again.
    pub(super) fn txn_lost(&mut self, call: Call, now: Instant) {
        let backoff = self.config.network.retry_backoff;
        let Some(txn) = &mut self.txn else {
            return;
        };
        txn.call = None;
        txn.adding.clear();
        if call == Call::OffsetCommit || call == Call::FindGroupCoordinator {
            txn.group_coordinator = None;
        } else {
            txn.coordinator = None;
        }
        txn.retry_at = Some(now + backoff);
    }

    fn retry(&mut self, call: Call, v: Verdict, now: Instant) {
        let backoff = self.config.network.retry_backoff;
        let Some(txn) = &mut self.txn else {
            return;
        };
        if v == Verdict::Rediscover {
            if call == Call::OffsetCommit {
                txn.group_coordinator = None;
            } else {
                txn.coordinator = None;
            }
            txn.retry_at = Some(now + backoff);
        } else {
            txn.retry_at = Some(now + BUSY_BACKOFF);
        }
    }

    pub(super) fn on_txn_response(
        &mut self,
        conn: ConnId,
        call: Call,
        req: InFlight,
        frame: Bytes,
        now: Instant,
    ) {
        if let Some(txn) = &mut self.txn {
            txn.call = None;
            txn.retry_at = None;
        }
        let result = match call {
            Call::FindCoordinator | Call::FindGroupCoordinator => {
                frame::decode_response_as::<FindCoordinatorResponse>(req.version, frame)
                    .map(|(_, r)| self.on_txn_coordinator(call, &r, req.version, now))
            }
            Call::InitProducerId => {
                frame::decode_response_as::<InitProducerIdResponse>(req.version, frame)
                    .map(|(_, r)| self.on_txn_producer_id(conn, &r, now))
            }
            Call::AddPartitions => {
                frame::decode_response_as::<AddPartitionsToTxnResponse>(req.version, frame)
                    .map(|(_, r)| self.on_add_partitions(&r, now))
            }
            Call::AddOffsets => {
                frame::decode_response_as::<AddOffsetsToTxnResponse>(req.version, frame).map(
                    |(_, r)| {
                        let code = ErrorCode::from_code(r.error_code);
                        match verdict(code) {
                            Verdict::Ok => {
                                if let Some(txn) = &mut self.txn {
                                    txn.has_offsets = true;
                                    if let Some(o) = &mut txn.offsets {
                                        o.added = true;
                                    }
                                }
                            }
                            v @ (Verdict::Retry | Verdict::Rediscover) => self.retry(call, v, now),
                            _ => self.txn_failed(code, "AddOffsetsToTxn"),
                        }
                    },
                )
            }
            Call::OffsetCommit => {
                frame::decode_response_as::<TxnOffsetCommitResponse>(req.version, frame).map(
                    |(_, r)| {
                        let code = r
                            .topics
                            .iter()
                            .flat_map(|t| &t.partitions)
                            .map(|p| ErrorCode::from_code(p.error_code))
                            .find(|c| *c != ErrorCode::None)
                            .unwrap_or(ErrorCode::None);
                        match verdict(code) {
                            Verdict::Ok => {
                                if let Some(txn) = &mut self.txn {
                                    txn.offsets = None;
                                    txn.has_offsets = true;
                                }
                                self.txn_done(TxnEvent::OffsetsSent);
                            }
                            v @ (Verdict::Retry | Verdict::Rediscover) => self.retry(call, v, now),
                            _ => self.txn_failed(code, "TxnOffsetCommit"),
                        }
                    },
                )
            }
            Call::EndTxn => frame::decode_response_as::<EndTxnResponse>(req.version, frame)
                .map(|(_, r)| self.on_end_txn(&r, now)),
        };
        if result.is_err() {
            self.txn_lost(call, now);
        }
    }

    fn on_txn_coordinator(
        &mut self,
        call: Call,
        r: &FindCoordinatorResponse,
        version: i16,
        now: Instant,
    ) {
        let (code, node, host, port) = crate::coordinator::answer(r, version);
        if code != ErrorCode::None || node < 0 {
            match verdict(code) {
                Verdict::Fatal => self.txn_failed(code, "FindCoordinator"),
                _ => self.retry(call, Verdict::Retry, now),
            }
            return;
        }
        if let Ok(port) = u16::try_from(port) {
            self.net
                .metadata
                .brokers
                .entry(node)
                .or_insert_with(|| BrokerAddress {
                    host: host.to_string(),
                    port,
                });
        }
        if let Some(txn) = &mut self.txn {
            if call == Call::FindGroupCoordinator {
                txn.group_coordinator = Some(node);
            } else {
                txn.coordinator = Some(node);
            }
        }
    }

    /// A new producer id or epoch: sequences start again.
    fn new_epoch(&mut self, id: i64, epoch: i16) {
        self.producer_id.id = id;
        self.producer_id.epoch = epoch;
        self.producer_id.state = IdState::Ready;
        for topic in self.topics.values_mut() {
            for ps in &mut topic.partitions {
                ps.next_sequence = 0;
                ps.acked = false;
            }
        }
    }

    fn on_txn_producer_id(&mut self, conn: ConnId, r: &InitProducerIdResponse, now: Instant) {
        let code = ErrorCode::from_code(r.error_code);
        match verdict(code) {
            Verdict::Ok => {
                self.new_epoch(r.producer_id, r.producer_epoch);
                // The second protocol when the cluster has it and speaks its versions.
                let v2 = self.net.pool.get_mut(conn).is_some_and(|c| {
                    c.transaction_version >= 2
                        && c.version(ApiKey::EndTxn).is_some_and(|v| v >= 5)
                        && c.version(ApiKey::Produce).is_some_and(|v| v >= 12)
                });
                let Some(txn) = &mut self.txn else {
                    return;
                };
                txn.v2 = v2;
                let renewed = std::mem::take(&mut txn.renew_epoch);
                txn.state = TxnState::Ready;
                if renewed && txn.op == Some(TxnOp::Abort) {
                    self.txn_done(TxnEvent::Aborted);
                } else {
                    self.txn_done(TxnEvent::Initialized);
                }
            }
            v @ (Verdict::Retry | Verdict::Rediscover) => self.retry(Call::InitProducerId, v, now),
            _ => self.txn_failed(code, "InitProducerId"),
        }
    }

    fn on_add_partitions(&mut self, r: &AddPartitionsToTxnResponse, now: Instant) {
        let Some(txn) = &mut self.txn else {
            return;
        };
        let adding = std::mem::take(&mut txn.adding);
        let mut worst = ErrorCode::from_code(r.error_code);
        for t in &r.results_by_topic_v3_and_below {
            for p in &t.results_by_partition {
                let code = ErrorCode::from_code(p.partition_error_code);
                if code == ErrorCode::None {
                    if let Some(key) = adding
                        .iter()
                        .find(|(n, i)| **n == *t.name && *i == p.partition_index)
                    {
                        txn.added.insert(key.clone());
                    }
                } else if worst == ErrorCode::None || worst == ErrorCode::OperationNotAttempted {
                    worst = code;
                }
            }
        }
        match verdict(worst) {
            Verdict::Ok => {}
            v @ (Verdict::Retry | Verdict::Rediscover) => self.retry(Call::AddPartitions, v, now),
            _ => self.txn_failed(worst, "AddPartitionsToTxn"),
        }
    }

    fn on_end_txn(&mut self, r: &EndTxnResponse, now: Instant) {
        let code = ErrorCode::from_code(r.error_code);
        match verdict(code) {
            Verdict::Ok => {
                if self.txn.as_ref().is_some_and(|t| t.v2) && r.producer_epoch >= 0 {
                    // The second protocol ends every transaction with a new epoch, which
                    // also renews one that needed it.
                    self.new_epoch(r.producer_id, r.producer_epoch);
                    if let Some(txn) = &mut self.txn {
                        txn.renew_epoch = false;
                    }
                }
                let Some(txn) = &mut self.txn else {
                    return;
                };
                if txn.state == TxnState::Committing {
                    txn.added.clear();
                    txn.has_offsets = false;
                    txn.state = TxnState::Ready;
                    self.txn_done(TxnEvent::Committed);
                } else {
                    self.finish_abort();
                }
            }
            v @ (Verdict::Retry | Verdict::Rediscover) => self.retry(Call::EndTxn, v, now),
            Verdict::Abortable
                if self
                    .txn
                    .as_ref()
                    .is_some_and(|t| t.state == TxnState::Aborting) =>
            {
                // The coordinator already ended it (a timeout abort, say): done, with a new
                // epoch when it says ours is stale.
                if code == ErrorCode::InvalidProducerEpoch
                    && let Some(txn) = &mut self.txn
                {
                    txn.renew_epoch = true;
                }
                self.finish_abort();
            }
            _ => self.txn_failed(code, "EndTxn"),
        }
    }
}

/// The highest Produce version for a producer with `txn`: the first transaction protocol
/// stays below v12.
pub(crate) fn produce_cap(txn: Option<&super::txn::Txn>) -> i16 {
    match txn {
        Some(t) if !t.v2 => PRODUCE_MAX,
        _ => i16::MAX,
    }
}

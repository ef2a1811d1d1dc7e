//! Membership of a consumer group with the KIP-848 protocol (`group.protocol=consumer`):
//! one heartbeat carries the subscription and brings back the assignment the coordinator
//! computed; the member reconciles, committing what it gives up before it lets go.

use super::{ConsumeError, Consumer, ConsumerEvent, Position, Tp};
use crate::conn::{ConnId, InFlight, Node, Purpose, Tag};
use bytes::Bytes;
use kasio_proto::{
    ApiKey, ErrorCode, Uuid, frame,
    messages::{
        ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
        consumer_group_heartbeat_request::TopicPartitions,
    },
};
use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Duration, Instant},
};

/// Where the member is. Transitions: `Joining` → `Stable` on the first heartbeat answer;
/// `Stable` ⇄ `Reconciling` when the assignment changes (revocations are committed first);
/// any state → `Joining` when the coordinator fences the member; → `Leaving` →
/// `Unsubscribed` on `unsubscribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Not in a group.
    Unsubscribed,
    /// Sent (or about to send) the first heartbeat, epoch 0.
    Joining,
    /// Owns its assignment and heartbeats on the interval.
    Stable,
    /// Giving up partitions: their offsets are being committed.
    Reconciling,
    /// Sent the leave heartbeat (epoch -1).
    Leaving,
}

#[derive(Debug)]
pub(super) struct Membership {
    pub(super) state: MemberState,
    member_id: String,
    epoch: i32,
    topics: Vec<Arc<str>>,
    /// A subscription the coordinator matches (KIP-848's `SubscribedTopicRegex`).
    pub(super) regex: Option<Arc<str>>,
    /// Whether the coordinator was sent a regex: going back to names clears it.
    sent_regex: bool,
    interval: Duration,
    next: Option<Instant>,
    in_flight: bool,
    /// The coordinator's assignment not yet taken up (topic ids to resolve).
    target: Option<Vec<(Uuid, Vec<i32>)>>,
    /// Partitions being given up, waiting for their commit.
    revoking: Vec<Tp>,
    /// The next heartbeat reports the subscription and the owned partitions.
    full: bool,
    rebalance_timeout: Duration,
}

impl Membership {
    fn new(member_id: String, topics: Vec<Arc<str>>) -> Self {
        Self {
            state: MemberState::Joining,
            member_id,
            epoch: 0,
            topics,
            regex: None,
            sent_regex: false,
            interval: Duration::from_secs(5),
            next: None,
            in_flight: false,
            target: None,
            revoking: Vec::new(),
            full: true,
            rebalance_timeout: Duration::from_secs(300),
        }
    }

    pub(super) fn wants_coordinator(&self) -> bool {
        self.state != MemberState::Unsubscribed
    }

    pub(super) fn commit_epoch(&self) -> i32 {
        if self.epoch > 0 { self.epoch } else { -1 }
    }

    pub(super) fn commit_member_id(&self) -> &str {
        if self.epoch > 0 { &self.member_id } else { "" }
    }

    pub(super) fn next_heartbeat(&self) -> Option<Instant> {
        if self.in_flight { None } else { self.next }
    }
}

impl Consumer {
    /// Joins the group (`group.id`) subscribed to `topics`, with the protocol
    /// `group.protocol` names (classic by default, as the Java client; `consumer` for
    /// KIP-848); assignments are reported as [`ConsumerEvent::Assigned`] and
    /// [`ConsumerEvent::Revoked`]. Replaces any manual assignment.
    ///
    /// # Errors
    /// [`ConsumeError::NoGroup`] without a `group.id`.
    pub fn subscribe(&mut self, topics: &[&str], now: Instant) -> Result<(), ConsumeError> {
        self.pattern = None;
        self.subscribe_names(topics, None, now)
    }

    /// Joins the group subscribed to every topic whose whole name matches `pattern` (a
    /// regular expression, as the Java client's `subscribe(Pattern)`): matched against
    /// the cluster's topics (internal ones aside) on every metadata refresh
    /// (`metadata.max.age.ms`), so topics created or deleted later join or leave the
    /// subscription.
    ///
    /// ```
    /// use kasio_core::{Consumer, ConsumerConfig};
    /// use std::time::Instant;
    /// let mut config = ConsumerConfig::new("localhost:9092")?;
    /// config.set("group.id", "audit")?;
    /// let mut consumer = Consumer::new(config, Instant::now(), 1)?;
    /// consumer.subscribe_pattern("orders-.*", Instant::now())?;
    /// assert!(consumer.subscribe_pattern("orders-(", Instant::now()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConsumeError::NoGroup`] without a `group.id`; [`ConsumeError::InvalidPattern`].
    pub fn subscribe_pattern(&mut self, pattern: &str, now: Instant) -> Result<(), ConsumeError> {
        if self.group.is_none() {
            return Err(ConsumeError::NoGroup);
        }
        let regex = regex_lite::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| ConsumeError::InvalidPattern(e.to_string()))?;
        self.pattern = Some((regex, None));
        self.net.metadata.request_refresh();
        self.new_deadline = true;
        self.drain(now);
        Ok(())
    }

    /// Joins the group subscribed to the topics the group coordinator matches with
    /// `pattern` (KIP-848's broker-side regex, Java's `subscribe(SubscriptionPattern)`):
    /// RE2J syntax, matched against whole topic names, checked by the broker (a bad one
    /// ends in [`ConsumerEvent::GroupError`]). The coordinator follows topics created and
    /// deleted; the assignment names topics by id, resolved through metadata.
    ///
    /// ```
    /// use kasio_core::{Consumer, ConsumerConfig};
    /// use std::time::Instant;
    /// let mut config = ConsumerConfig::new("localhost:9092")?;
    /// config.set("group.id", "audit")?.set("group.protocol", "consumer")?;
    /// let mut consumer = Consumer::new(config, Instant::now(), 1)?;
    /// consumer.subscribe_broker_pattern("orders-.*", Instant::now())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConsumeError::NoGroup`] without a `group.id`; [`ConsumeError::InvalidPattern`]
    /// with `group.protocol=classic`, whose coordinator does not match topics.
    pub fn subscribe_broker_pattern(
        &mut self,
        pattern: &str,
        now: Instant,
    ) -> Result<(), ConsumeError> {
        if self.config.group_protocol != super::GroupProtocol::Consumer {
            return Err(ConsumeError::InvalidPattern(
                "a broker-side pattern needs group.protocol=consumer".into(),
            ));
        }
        self.pattern = None;
        self.subscribe_names(&[], Some(pattern.into()), now)
    }

    /// A metadata answer under a pattern subscription: subscribes to what it matches
    /// when that changed.
    pub(super) fn match_pattern(
        &mut self,
        resp: &kasio_proto::messages::MetadataResponse,
        now: Instant,
    ) {
        let Some((regex, applied)) = &self.pattern else {
            return;
        };
        let mut matched: Vec<Arc<str>> = resp
            .topics
            .iter()
            .filter(|t| !t.is_internal && t.error_code == 0)
            .filter_map(|t| t.name.as_deref())
            .filter(|n| regex.is_match(n))
            .map(Arc::from)
            .collect();
        matched.sort();
        if applied.as_ref() == Some(&matched) {
            return;
        }
        let names: Vec<&str> = matched.iter().map(|n| &**n).collect();
        // A group error here was checked when the pattern was set.
        let _ = self.subscribe_names(&names, None, now);
        if let Some((_, applied)) = &mut self.pattern {
            *applied = Some(matched);
        }
    }

    /// Under a broker-side pattern, the assignment names topics this member never named:
    /// learns their names from a metadata answer (which then lists every topic).
    pub(super) fn learn_assigned_topics(&mut self, resp: &kasio_proto::messages::MetadataResponse) {
        let Some(target) = self
            .member
            .as_ref()
            .filter(|m| m.regex.is_some())
            .and_then(|m| m.target.as_ref())
        else {
            return;
        };
        for t in &resp.topics {
            if let Some(name) = t.name.as_deref()
                && target.iter().any(|(id, _)| *id == t.topic_id)
                && !self.topics.contains_key(name)
            {
                self.topics.insert(name.into(), None);
            }
        }
    }

    /// Whether the coordinator matches the subscription (a broker-side pattern).
    pub(super) fn broker_pattern(&self) -> bool {
        self.member.as_ref().is_some_and(|m| m.regex.is_some())
    }

    fn subscribe_names(
        &mut self,
        topics: &[&str],
        regex: Option<Arc<str>>,
        now: Instant,
    ) -> Result<(), ConsumeError> {
        if self.group.is_none() {
            return Err(ConsumeError::NoGroup);
        }
        let names: Vec<Arc<str>> = topics
            .iter()
            .map(|t| match self.topics.get_key_value(*t) {
                Some((k, _)) => k.clone(),
                None => {
                    let k: Arc<str> = (*t).into();
                    self.topics.insert(k.clone(), None);
                    k
                }
            })
            .collect();
        self.net.metadata.request_refresh();
        if self.config.group_protocol == super::GroupProtocol::Classic {
            match &mut self.classic {
                Some(c) if c.wants_coordinator() => c.resubscribe(names, now),
                _ => {
                    self.give_up_all();
                    self.classic = Some(super::classic::Classic::new(names, now));
                }
            }
            self.new_deadline = true;
            self.drain(now);
            return Ok(());
        }
        match &mut self.member {
            Some(m) if m.state != MemberState::Unsubscribed => {
                m.topics = names;
                m.regex = regex;
                m.full = true;
                m.next = Some(now);
            }
            _ => {
                let id = format!(
                    "kasio-{:016x}{:016x}",
                    self.rng.next_u64(),
                    self.rng.next_u64()
                );
                self.give_up_all();
                let mut m = Membership::new(id, names);
                m.regex = regex;
                m.next = Some(now);
                self.member = Some(m);
            }
        }
        self.new_deadline = true;
        self.drain(now);
        Ok(())
    }

    /// Leaves the group: the next heartbeat says so, and the partitions are released.
    pub fn unsubscribe(&mut self, now: Instant) {
        self.pattern = None;
        // The application leaves by itself: it commits before, if it wants to.
        self.drop_hold();
        if self.in_group() {
            self.commit_before_leaving();
        }
        if let Some(c) = &mut self.classic {
            c.leave(now);
        }
        if let Some(m) = &mut self.member
            && matches!(
                m.state,
                MemberState::Stable | MemberState::Reconciling | MemberState::Joining
            )
        {
            m.state = MemberState::Leaving;
            m.next = Some(now);
        }
        self.new_deadline = true;
        self.drain(now);
    }

    /// Whether the member is in its group, or joining or leaving it.
    ///
    /// ```
    /// use kasio_core::{Consumer, ConsumerConfig};
    /// use std::time::Instant;
    /// let consumer = Consumer::new(ConsumerConfig::new("localhost:9092")?, Instant::now(), 1)?;
    /// assert!(!consumer.in_group());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn in_group(&self) -> bool {
        self.member_state()
            .is_some_and(|s| s != MemberState::Unsubscribed)
    }

    /// The member's state, when subscribed.
    pub fn member_state(&self) -> Option<MemberState> {
        match (&self.member, &self.classic) {
            (Some(m), _) => Some(m.state),
            (None, Some(c)) => Some(c.state()),
            (None, None) => None,
        }
    }

    /// Takes up a target assignment, committing what is given up first.
    pub(super) fn reconcile(&mut self, now: Instant) {
        let pending = self.commits_pending();
        let holding = self.holding(now);
        let Some(m) = &mut self.member else {
            return;
        };
        if !m.revoking.is_empty() {
            // Waiting for the application, then for the revoked partitions' commit.
            if holding || pending {
                return;
            }
            self.hold = None;
            let revoked = std::mem::take(&mut m.revoking);
            for tp in &revoked {
                self.partitions.remove(tp);
            }
            self.events.push_back(ConsumerEvent::Revoked {
                partitions: super::named(revoked),
            });
            if let Some(m) = &mut self.member {
                m.full = true;
                m.next = Some(now);
                if m.target.is_none() {
                    m.state = MemberState::Stable;
                }
            }
        }
        let Some(m) = &self.member else {
            return;
        };
        let Some(target) = &m.target else {
            return;
        };
        let mut wanted: BTreeSet<Tp> = BTreeSet::new();
        for (id, parts) in target {
            let Some(name) = self
                .topics
                .iter()
                .find(|(_, meta)| meta.as_ref().is_some_and(|meta| meta.id == *id))
                .map(|(k, _)| k.clone())
            else {
                // A topic this member does not know by id yet.
                self.net.metadata.request_refresh();
                return;
            };
            for p in parts {
                wanted.insert((name.clone(), *p));
            }
        }
        let owned: BTreeSet<Tp> = self.partitions.keys().cloned().collect();
        let revoked: Vec<Tp> = owned.difference(&wanted).cloned().collect();
        let added: Vec<Tp> = wanted.difference(&owned).cloned().collect();
        if !revoked.is_empty() {
            self.begin_hold(&revoked, now);
            // Commit where the caller got to, and stop fetching, before letting go.
            let mut offsets = Vec::new();
            for tp in &revoked {
                if let Some(o) = self.handed_to(tp) {
                    offsets.push((tp.clone(), o));
                }
                if let Some(s) = self.partitions.get_mut(tp) {
                    s.paused = true;
                }
            }
            self.drop_batches_of(&revoked);
            // Without auto commit the application commits (in a transaction, say).
            if !offsets.is_empty() && self.config.enable_auto_commit {
                self.queue_commit(offsets);
            }
            if let Some(m) = &mut self.member {
                m.revoking = revoked;
                m.state = MemberState::Reconciling;
            }
            // The added partitions wait until the revocation is done.
            return;
        }
        for tp in &added {
            self.partitions
                .insert(tp.clone(), super::PartitionState::new(Position::Committed));
        }
        let changed = !added.is_empty();
        if changed {
            self.events.push_back(ConsumerEvent::Assigned {
                partitions: super::named(added),
            });
        }
        if let Some(m) = &mut self.member {
            m.target = None;
            m.state = MemberState::Stable;
            if changed {
                // Tell the coordinator at once what the member now owns; an unchanged
                // assignment waits for the next interval.
                m.full = true;
                m.next = Some(now);
            }
        }
    }

    pub(super) fn send_heartbeat(&mut self, now: Instant) {
        let pending = self.commits_pending();
        let Some(m) = &self.member else {
            return;
        };
        if m.state == MemberState::Unsubscribed || m.in_flight || m.next.is_none_or(|t| t > now) {
            return;
        }
        let Some(node) = self.group.as_ref().and_then(|g| g.coordinator) else {
            return;
        };
        let Some(addr) = self.net.metadata.address(Node::Broker(node)).cloned() else {
            return;
        };
        let group_id = self
            .group
            .as_ref()
            .map(|g| g.id.clone())
            .unwrap_or_default();
        let owned: Vec<TopicPartitions> = {
            let mut by_topic: Vec<TopicPartitions> = Vec::new();
            for (t, p) in self.partitions.keys() {
                let Some(id) = self.topics.get(t).and_then(|m| m.as_ref()).map(|m| m.id) else {
                    continue;
                };
                match by_topic.iter_mut().find(|x| x.topic_id == id) {
                    Some(x) => x.partitions.push(*p),
                    None => by_topic.push(TopicPartitions {
                        topic_id: id,
                        partitions: vec![*p],
                        ..Default::default()
                    }),
                }
            }
            by_topic
        };
        let Some(conn) = self
            .net
            .pool
            .ensure(Node::Broker(node), Purpose::Control, &addr, now)
        else {
            return;
        };
        if conn.version(ApiKey::ConsumerGroupHeartbeat).is_none() {
            self.events.push_back(ConsumerEvent::GroupError {
                error: ConsumeError::Broker(ErrorCode::UnsupportedVersion),
            });
            if let Some(m) = &mut self.member {
                m.state = MemberState::Unsubscribed;
            }
            return;
        }
        let Some(m) = &mut self.member else {
            return;
        };
        let leaving = m.state == MemberState::Leaving;
        if leaving && pending {
            // The member's last commit goes while its epoch still counts.
            return;
        }
        let full = m.full || m.epoch == 0;
        let regex_field = conn
            .version(ApiKey::ConsumerGroupHeartbeat)
            .is_some_and(|v| v >= 1);
        if m.regex.is_some() && !regex_field {
            // A broker before Kafka 4.0 cannot match topics for the member.
            m.state = MemberState::Unsubscribed;
            self.events.push_back(ConsumerEvent::GroupError {
                error: ConsumeError::Broker(ErrorCode::UnsupportedVersion),
            });
            return;
        }
        // Names, or a regex with no names; an empty regex withdraws one sent before.
        let regex = match (&m.regex, full && !leaving) {
            (Some(r), true) => Some(r.as_ref().into()),
            (None, true) if m.sent_regex => Some("".into()),
            _ => None,
        };
        let req = ConsumerGroupHeartbeatRequest {
            group_id: group_id.as_str().into(),
            member_id: m.member_id.as_str().into(),
            member_epoch: if leaving { -1 } else { m.epoch },
            rebalance_timeout_ms: i32::try_from(m.rebalance_timeout.as_millis())
                .unwrap_or(i32::MAX),
            subscribed_topic_names: (full && !leaving).then(|| {
                if m.regex.is_some() {
                    Vec::new()
                } else {
                    m.topics.iter().map(|t| t.as_ref().into()).collect()
                }
            }),
            subscribed_topic_regex: regex,
            topic_partitions: (full && !leaving && m.revoking.is_empty()).then_some(owned),
            ..Default::default()
        };
        let deadline = now + self.config.network.request_timeout;
        if conn
            .send(&req, Tag::Heartbeat, deadline, &mut self.net.transmits)
            .is_some()
        {
            m.in_flight = true;
            m.full = false;
            if full && !leaving {
                m.sent_regex = m.regex.is_some();
            }
        }
    }

    pub(super) fn heartbeat_lost(&mut self, now: Instant) {
        if let Some(m) = &mut self.member {
            m.in_flight = false;
            m.full = true;
            m.next = Some(now + self.config.network.retry_backoff);
        }
    }

    pub(super) fn on_heartbeat(&mut self, conn: ConnId, req: InFlight, frame: Bytes, now: Instant) {
        let resp =
            match frame::decode_response_as::<ConsumerGroupHeartbeatResponse>(req.version, frame) {
                Ok((_, r)) => r,
                Err(_) => {
                    self.heartbeat_lost(now);
                    self.lose(conn, now, true);
                    return;
                }
            };
        let backoff = now + self.config.network.retry_backoff;
        let code = ErrorCode::from_code(resp.error_code);
        let Some(m) = &mut self.member else {
            return;
        };
        m.in_flight = false;
        match code {
            ErrorCode::None => {}
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                if let Some(g) = &mut self.group {
                    g.coordinator = None;
                    g.retry_at = Some(backoff);
                }
                m.full = true;
                m.next = Some(backoff);
                return;
            }
            ErrorCode::CoordinatorLoadInProgress => {
                m.full = true;
                m.next = Some(backoff);
                return;
            }
            ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch => {
                // Fenced: the partitions are gone without a commit; join again.
                m.epoch = 0;
                m.state = MemberState::Joining;
                m.target = None;
                m.revoking.clear();
                m.full = true;
                m.next = Some(now);
                self.hold = None;
                let lost = self.give_up_all();
                if !lost.is_empty() {
                    self.events.push_back(ConsumerEvent::Lost {
                        partitions: super::named(lost),
                    });
                }
                return;
            }
            c => {
                m.state = MemberState::Unsubscribed;
                self.events.push_back(ConsumerEvent::GroupError {
                    error: ConsumeError::Broker(c),
                });
                return;
            }
        }
        if m.state == MemberState::Leaving {
            m.state = MemberState::Unsubscribed;
            m.epoch = -1;
            m.next = None;
            let left = self.give_up_all();
            if !left.is_empty() {
                self.events.push_back(ConsumerEvent::Revoked {
                    partitions: super::named(left),
                });
            }
            return;
        }
        if let Some(id) = resp.member_id.as_deref()
            && !id.is_empty()
        {
            m.member_id = id.to_string();
        }
        m.epoch = resp.member_epoch;
        if resp.heartbeat_interval_ms > 0 {
            m.interval =
                Duration::from_millis(u64::try_from(resp.heartbeat_interval_ms).unwrap_or(5000));
        }
        m.next = Some(now + m.interval);
        if m.state == MemberState::Joining {
            m.state = MemberState::Stable;
        }
        if let Some(a) = resp.assignment {
            m.target = Some(
                a.topic_partitions
                    .into_iter()
                    .map(|t| (t.topic_id, t.partitions))
                    .collect(),
            );
        }
        self.reconcile(now);
    }
}

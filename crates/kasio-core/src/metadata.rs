//! What the client knows of the cluster: brokers and their addresses, when to refresh,
//! and which node to ask.

use crate::{
    config::BrokerAddress,
    conn::{Node, Pool, Purpose},
    rng::Rng,
};
use kasio_proto::{
    Uuid,
    messages::{MetadataResponse, metadata_response::MetadataResponseTopic},
};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

/// A partition's leader as metadata last told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionMeta {
    pub(crate) leader: Option<i32>,
    pub(crate) leader_epoch: i32,
}

/// A topic's id and partitions.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicMeta {
    pub(crate) id: Uuid,
    pub(crate) partitions: Vec<PartitionMeta>,
}

impl TopicMeta {
    /// The topic as a Metadata response describes it (partitions indexed by number, a
    /// missing or negative leader as `None`).
    pub(crate) fn from_response(t: &MetadataResponseTopic) -> Self {
        let count = t
            .partitions
            .iter()
            .map(|p| p.partition_index + 1)
            .max()
            .unwrap_or(0);
        let mut partitions = vec![
            PartitionMeta {
                leader: None,
                leader_epoch: -1
            };
            usize::try_from(count).unwrap_or(0)
        ];
        for p in &t.partitions {
            if let Some(slot) = usize::try_from(p.partition_index)
                .ok()
                .and_then(|i| partitions.get_mut(i))
            {
                *slot = PartitionMeta {
                    leader: (p.leader_id >= 0).then_some(p.leader_id),
                    leader_epoch: p.leader_epoch,
                };
            }
        }
        Self {
            id: t.topic_id,
            partitions,
        }
    }

    /// Whether some partition has no leader (metadata should be refreshed).
    pub(crate) fn leaderless(&self) -> bool {
        self.partitions.iter().any(|p| p.leader.is_none())
    }
}

#[derive(Debug)]
pub(crate) struct Metadata {
    bootstrap: Vec<BrokerAddress>,
    pub(crate) brokers: BTreeMap<i32, BrokerAddress>,
    /// A Metadata request is in flight on this connection.
    pub(crate) in_flight: bool,
    /// When the cache is next refreshed, urgently or by age.
    pub(crate) refresh_at: Instant,
    max_age: Duration,
    backoff: Duration,
    last_request: Option<Instant>,
}

impl Metadata {
    pub(crate) fn new(
        bootstrap: Vec<BrokerAddress>,
        max_age: Duration,
        backoff: Duration,
        now: Instant,
    ) -> Self {
        Self {
            bootstrap,
            brokers: BTreeMap::new(),
            in_flight: false,
            refresh_at: now,
            max_age,
            backoff,
            last_request: None,
        }
    }

    /// Asks for a refresh as soon as the retry backoff since the last request allows.
    pub(crate) fn request_refresh(&mut self) {
        let soonest = self
            .last_request
            .map_or(self.refresh_at, |t| t + self.backoff);
        self.refresh_at = self.refresh_at.min(soonest);
    }

    pub(crate) fn due(&self, now: Instant) -> bool {
        !self.in_flight && now >= self.refresh_at
    }

    pub(crate) fn sent(&mut self, now: Instant) {
        self.in_flight = true;
        self.last_request = Some(now);
    }

    /// The request failed (connection lost or timed out): try again after the backoff.
    pub(crate) fn failed(&mut self, now: Instant) {
        self.in_flight = false;
        self.refresh_at = now + self.backoff;
    }

    /// Stores the brokers of a response; the caller reads the topics.
    pub(crate) fn update(&mut self, resp: &MetadataResponse, now: Instant) {
        self.in_flight = false;
        self.refresh_at = now + self.max_age;
        if resp.brokers.is_empty() {
            return;
        }
        self.brokers = resp
            .brokers
            .iter()
            .filter_map(|b| {
                Some((
                    b.node_id,
                    BrokerAddress {
                        host: b.host.to_string(),
                        port: u16::try_from(b.port).ok()?,
                    },
                ))
            })
            .collect();
    }

    pub(crate) fn address(&self, node: Node) -> Option<&BrokerAddress> {
        match node {
            Node::Bootstrap(i) => self.bootstrap.get(i),
            Node::Broker(id) => self.brokers.get(&id),
        }
    }

    /// A ready control connection for metadata, or starts dialling one: known brokers
    /// first, the bootstrap servers when none is known or every one is failing (KIP-1102).
    pub(crate) fn control_conn(
        &self,
        pool: &mut Pool,
        rng: &mut Rng,
        now: Instant,
    ) -> Option<crate::conn::ConnId> {
        let mut candidates: Vec<Node> = self.brokers.keys().map(|&id| Node::Broker(id)).collect();
        if candidates.iter().all(|&n| pool.is_backing_off(n, now)) {
            candidates = (0..self.bootstrap.len()).map(Node::Bootstrap).collect();
        }
        // Prefer a connection that is already up or on its way.
        for &node in &candidates {
            if let Some(id) = pool.find(node, Purpose::Control) {
                if pool.get_mut(id).is_some_and(|c| c.is_ready()) {
                    return Some(id);
                }
                return None;
            }
        }
        let healthy: Vec<Node> = candidates
            .into_iter()
            .filter(|&n| !pool.is_backing_off(n, now))
            .collect();
        if healthy.is_empty() {
            return None;
        }
        let len = u64::try_from(healthy.len()).unwrap_or(1);
        let node = healthy[usize::try_from(rng.below(len)).unwrap_or(0)];
        let addr = self.address(node)?.clone();
        pool.ensure(node, Purpose::Control, &addr, now)
            .map(|c| c.id)
    }

    /// When a failing node may be dialled again, if metadata is waiting for one.
    pub(crate) fn next_dial(&self, pool: &Pool, now: Instant) -> Option<Instant> {
        let nodes = self
            .brokers
            .keys()
            .map(|&id| Node::Broker(id))
            .chain((0..self.bootstrap.len()).map(Node::Bootstrap));
        nodes
            .filter_map(|n| pool.backoff_until(n))
            .filter(|&t| t > now)
            .min()
    }
}

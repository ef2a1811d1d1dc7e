//! Consumer groups with the KIP-848 protocol: members heartbeat with their subscription and
//! the partitions they own; the mock computes the assignment on the server side and hands
//! a member a partition only once its previous owner has let go.

use crate::cluster::Cluster;
use kasio_proto::{
    ErrorCode, Uuid,
    messages::{
        ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
        consumer_group_heartbeat_response::{Assignment, TopicPartitions},
    },
};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

type Tp = (String, i32);

/// How often members heartbeat, and how long one may stay silent before it is removed
/// (Kafka's defaults: 5 s and 45 s).
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Debug, Clone, Default)]
pub(crate) struct Member {
    pub(crate) epoch: i32,
    pub(crate) subscribed: Vec<String>,
    /// A subscription regex (KIP-848's `SubscribedTopicRegex`), matched by the coordinator
    /// against whole topic names.
    pub(crate) regex: Option<regex_lite::Regex>,
    pub(crate) owned: BTreeSet<Tp>,
    /// What the member was last told it may own.
    pub(crate) given: Option<BTreeSet<Tp>>,
    pub(crate) last_seen: Option<Instant>,
}

/// One consumer group's members.
#[derive(Debug, Clone, Default)]
pub(crate) struct Group {
    pub(crate) members: BTreeMap<String, Member>,
}

impl Member {
    /// Whether the member subscribes to `topic`, by name or by its regex.
    fn wants(&self, topic: &str) -> bool {
        self.subscribed.iter().any(|t| t == topic)
            || self.regex.as_ref().is_some_and(|r| r.is_match(topic))
    }
}

impl Group {
    /// Each subscribed topic's partitions dealt round robin over the members subscribed to
    /// it, members in id order: deterministic, so a seed replays the same assignment.
    fn targets(&self, cluster: &Cluster) -> BTreeMap<String, BTreeSet<Tp>> {
        let mut out: BTreeMap<String, BTreeSet<Tp>> = self
            .members
            .keys()
            .map(|m| (m.clone(), BTreeSet::new()))
            .collect();
        for (topic, t) in &cluster.topics {
            let members: Vec<&String> = self
                .members
                .iter()
                .filter(|(_, m)| m.wants(topic))
                .map(|(id, _)| id)
                .collect();
            if members.is_empty() {
                continue;
            }
            for p in 0..t.partitions.len() {
                let owner = members[p % members.len()];
                if let (Some(set), Ok(p)) = (out.get_mut(owner), i32::try_from(p)) {
                    set.insert((topic.clone(), p));
                }
            }
        }
        out
    }
}

fn names(
    cluster: &Cluster,
    parts: &[kasio_proto::messages::consumer_group_heartbeat_request::TopicPartitions],
) -> BTreeSet<Tp> {
    parts
        .iter()
        .filter_map(|t| {
            let name = cluster
                .topics
                .iter()
                .find(|(_, x)| x.id == t.topic_id)
                .map(|(n, _)| n.clone())?;
            Some(t.partitions.iter().map(move |p| (name.clone(), *p)))
        })
        .flatten()
        .collect()
}

fn error(code: ErrorCode) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        error_code: code.code(),
        member_epoch: -1,
        ..Default::default()
    }
}

pub(crate) fn heartbeat(
    cluster: &mut Cluster,
    broker: i32,
    req: &ConsumerGroupHeartbeatRequest,
    now: Instant,
) -> ConsumerGroupHeartbeatResponse {
    if super::offsets::coordinator(cluster, &req.group_id) != broker {
        return error(ErrorCode::NotCoordinator);
    }
    let group_id = req.group_id.to_string();
    let member_id = req.member_id.to_string();
    if member_id.is_empty() {
        return error(ErrorCode::InvalidRequest);
    }
    let owned = req.topic_partitions.as_ref().map(|t| names(cluster, t));
    let group = cluster.groups.entry(group_id.clone()).or_default();
    match req.member_epoch {
        -1 => {
            group.members.remove(&member_id);
            return ConsumerGroupHeartbeatResponse {
                member_id: Some(member_id.as_str().into()),
                member_epoch: -1,
                ..Default::default()
            };
        }
        0 => {
            group.members.insert(member_id.clone(), Member::default());
        }
        epoch => match group.members.get(&member_id) {
            None => return error(ErrorCode::UnknownMemberId),
            Some(m) if epoch != m.epoch => return error(ErrorCode::FencedMemberEpoch),
            Some(_) => {}
        },
    }
    let Some(m) = group.members.get_mut(&member_id) else {
        return error(ErrorCode::UnknownMemberId);
    };
    m.last_seen = Some(now);
    if let Some(subscribed) = &req.subscribed_topic_names {
        m.subscribed = subscribed.iter().map(ToString::to_string).collect();
    }
    // An empty regex clears it.
    match req.subscribed_topic_regex.as_deref() {
        None => {}
        Some("") => m.regex = None,
        Some(r) => match regex_lite::Regex::new(&format!("^(?:{r})$")) {
            Ok(r) => m.regex = Some(r),
            Err(_) => return error(ErrorCode::InvalidRegularExpression),
        },
    }
    if let Some(owned) = owned {
        m.owned = owned;
    }
    let group = cluster.groups.get(&group_id).cloned().unwrap_or_default();
    let targets = group.targets(cluster);
    let target = targets.get(&member_id).cloned().unwrap_or_default();
    let held_by_others: BTreeSet<Tp> = group
        .members
        .iter()
        .filter(|(id, _)| **id != member_id)
        .flat_map(|(_, m)| m.owned.iter().cloned())
        .collect();
    let give: BTreeSet<Tp> = target.difference(&held_by_others).cloned().collect();
    let Some(m) = cluster
        .groups
        .get_mut(&group_id)
        .and_then(|g| g.members.get_mut(&member_id))
    else {
        return error(ErrorCode::UnknownMemberId);
    };
    let changed = m.given.as_ref() != Some(&give);
    if changed {
        m.epoch += 1;
        m.given = Some(give.clone());
    }
    // Like Kafka, the assignment comes back when it changed or when the member reported
    // what it owns (a full heartbeat).
    let full = req.topic_partitions.is_some();
    let assignment = (changed || full).then(|| {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in &give {
            by_topic.entry(t.clone()).or_default().push(*p);
        }
        Assignment {
            topic_partitions: by_topic
                .into_iter()
                .map(|(t, partitions)| TopicPartitions {
                    topic_id: cluster.topics.get(&t).map_or(Uuid::default(), |x| x.id),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    });
    ConsumerGroupHeartbeatResponse {
        member_id: Some(member_id.as_str().into()),
        member_epoch: m.epoch,
        heartbeat_interval_ms: i32::try_from(HEARTBEAT_INTERVAL.as_millis()).unwrap_or(5000),
        assignment,
        ..Default::default()
    }
}

/// Removes members silent for longer than the session timeout.
pub(crate) fn expire(cluster: &mut Cluster, now: Instant) {
    for g in cluster.groups.values_mut() {
        g.members
            .retain(|_, m| m.last_seen.is_none_or(|t| now < t + SESSION_TIMEOUT));
    }
}

/// When the next member would expire.
pub(crate) fn next_expiry(cluster: &Cluster) -> Option<Instant> {
    cluster
        .groups
        .values()
        .flat_map(|g| g.members.values())
        .filter_map(|m| m.last_seen.map(|t| t + SESSION_TIMEOUT))
        .min()
}

/// Whether a commit from this member at this epoch is accepted.
pub(crate) fn commit_allowed(
    cluster: &Cluster,
    group: &str,
    member: &str,
    epoch: i32,
) -> ErrorCode {
    match cluster
        .groups
        .get(group)
        .and_then(|g| g.members.get(member))
    {
        None => ErrorCode::UnknownMemberId,
        Some(m) if epoch > m.epoch => ErrorCode::StaleMemberEpoch,
        Some(_) => ErrorCode::None,
    }
}

//! Fetch sessions (KIP-227): a client that opens one (session id 0, epoch 0) then sends
//! only the partitions that changed, and gets back only the partitions with something new.

use crate::cluster::Cluster;
use kasio_proto::{
    ErrorCode, Uuid,
    messages::{
        FetchRequest, FetchResponse,
        fetch_request::{FetchPartition, FetchTopic},
    },
};
use std::collections::BTreeMap;

type Key = (String, Uuid, i32);

/// Sessions kept at once (Kafka's `max.incremental.fetch.session.cache.slots`).
const MAX_SESSIONS: usize = 1000;

/// One session: every partition it fetches, and the high watermark last sent for each.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    broker: i32,
    next_epoch: i32,
    parts: BTreeMap<Key, (FetchPartition, Option<i64>)>,
}

/// How a fetch relates to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No session: a full response, session id 0.
    None,
    /// A full response that opens (or refreshes) this session.
    Full(i32),
    /// Only what changed, for this session.
    Incremental(i32),
}

/// Works out the session of `request` and, for an incremental fetch, turns it into the
/// full request the session stands for.
pub(crate) fn resolve(
    cluster: &mut Cluster,
    broker: i32,
    request: &mut FetchRequest,
    version: i16,
) -> Result<Mode, ErrorCode> {
    if version < 7 || (request.session_id == 0 && request.session_epoch == -1) {
        return Ok(Mode::None);
    }
    if request.session_epoch == -1 {
        cluster.fetch_sessions.remove(&request.session_id);
        return Ok(Mode::None);
    }
    let mut parts: BTreeMap<Key, (FetchPartition, Option<i64>)> = BTreeMap::new();
    let id = if request.session_epoch == 0 {
        let id = cluster.next_session;
        cluster.next_session = cluster.next_session.wrapping_add(1).max(1);
        // As Kafka's session cache, a bounded one: the oldest session goes first.
        if cluster.fetch_sessions.len() >= MAX_SESSIONS
            && let Some(&oldest) = cluster.fetch_sessions.keys().next()
        {
            cluster.fetch_sessions.remove(&oldest);
        }
        id
    } else {
        let Some(s) = cluster.fetch_sessions.get(&request.session_id) else {
            return Err(ErrorCode::FetchSessionIdNotFound);
        };
        if s.broker != broker || s.next_epoch != request.session_epoch {
            return Err(ErrorCode::InvalidFetchSessionEpoch);
        }
        parts = s.parts.clone();
        request.session_id
    };
    for f in &request.forgotten_topics_data {
        for p in &f.partitions {
            parts.remove(&(f.topic.to_string(), f.topic_id, *p));
        }
    }
    for t in &request.topics {
        for p in &t.partitions {
            let key = (t.topic.to_string(), t.topic_id, p.partition);
            let last = parts.get(&key).and_then(|(_, hwm)| *hwm);
            parts.insert(key, (p.clone(), last));
        }
    }
    let incremental = request.session_epoch > 0;
    // The full request the session stands for, in key order.
    let mut topics: Vec<FetchTopic> = Vec::new();
    for ((topic, topic_id, _), (p, _)) in &parts {
        match topics.last_mut() {
            Some(t) if t.topic == topic.as_str() && t.topic_id == *topic_id => {
                t.partitions.push(p.clone())
            }
            _ => topics.push(FetchTopic {
                topic: topic.as_str().into(),
                topic_id: *topic_id,
                partitions: vec![p.clone()],
                ..Default::default()
            }),
        }
    }
    request.topics = topics;
    request.forgotten_topics_data.clear();
    cluster.fetch_sessions.insert(
        id,
        Session {
            broker,
            next_epoch: request.session_epoch.saturating_add(1).max(1),
            parts,
        },
    );
    Ok(if incremental {
        Mode::Incremental(id)
    } else {
        Mode::Full(id)
    })
}

/// Stamps the session on a response and, for an incremental fetch, keeps only the
/// partitions with records, an error, or a new high watermark.
pub(crate) fn finish(cluster: &mut Cluster, mode: Mode, response: &mut FetchResponse) {
    let id = match mode {
        Mode::None => return,
        Mode::Full(id) | Mode::Incremental(id) => id,
    };
    response.session_id = id;
    let Some(s) = cluster.fetch_sessions.get_mut(&id) else {
        return;
    };
    for t in &mut response.responses {
        let name = t.topic.to_string();
        let topic_id = t.topic_id;
        t.partitions.retain(|p| {
            let key = (name.clone(), topic_id, p.partition_index);
            let Some((_, last)) = s.parts.get_mut(&key) else {
                return true;
            };
            let changed = last.is_none_or(|h| h != p.high_watermark);
            *last = Some(p.high_watermark);
            let has_data = p.records.as_ref().is_some_and(|r| !r.is_empty());
            !matches!(mode, Mode::Incremental(_)) || has_data || p.error_code != 0 || changed
        });
    }
    response.responses.retain(|t| !t.partitions.is_empty());
}

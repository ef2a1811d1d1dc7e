//! Client-side assignors of the classic group protocol, as the Java client computes them:
//! the group leader runs one over every member's subscription.

use std::{collections::BTreeMap, sync::Arc};

/// An assignor the application supplies, run when this member leads its classic group.
///
/// ```
/// use kasio_core::{Assignor, ConsumerConfig, GroupSubscription, PartitionAssignor};
/// use std::{collections::BTreeMap, sync::Arc};
///
/// /// Every partition to the member with the smallest id.
/// #[derive(Debug)]
/// struct AllToFirst;
///
/// impl PartitionAssignor for AllToFirst {
///     fn name(&self) -> &str {
///         "all-to-first"
///     }
///     fn assign(
///         &self,
///         members: &BTreeMap<String, GroupSubscription>,
///         partitions: &BTreeMap<String, i32>,
///     ) -> BTreeMap<String, Vec<(String, i32)>> {
///         let mut out: BTreeMap<String, Vec<(String, i32)>> =
///             members.keys().map(|m| (m.clone(), Vec::new())).collect();
///         if let Some(first) = out.values_mut().next() {
///             for (topic, &count) in partitions {
///                 first.extend((0..count).map(|p| (topic.clone(), p)));
///             }
///         }
///         out
///     }
/// }
///
/// let mut config = ConsumerConfig::new("localhost:9092")?;
/// config.set("group.id", "g")?.set("group.protocol", "classic")?;
/// config.assignors = vec![Assignor::Custom(Arc::new(AllToFirst))];
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait PartitionAssignor: std::fmt::Debug + Send + Sync {
    /// The protocol name members join with; the group uses one every member names.
    fn name(&self) -> &str;

    /// Assigns `partitions` (topic → partition count, for every topic some member
    /// subscribes to) to `members` (member id → subscription): member id → its
    /// partitions. A partition left out is assigned to nobody.
    fn assign(
        &self,
        members: &BTreeMap<String, GroupSubscription>,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<(String, i32)>>;
}

/// `partition.assignment.strategy`: the assignors kasio can run as leader.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Assignor {
    /// `range`: per topic, contiguous ranges, the first members one partition more.
    Range,
    /// `roundrobin`: every partition of every topic dealt in turn to the members that
    /// subscribe to it.
    RoundRobin,
    /// `cooperative-sticky`: balanced, moving as few partitions as it can, and
    /// incremental (KIP-429): a member keeps its partitions through a rebalance, and a
    /// partition moving between members is first given up, then assigned in a second
    /// rebalance, so no partition ever has two owners.
    CooperativeSticky,
    /// The application's own (eager: members give everything up at each rebalance).
    Custom(Arc<dyn PartitionAssignor>),
}

impl PartialEq for Assignor {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Assignor {}

impl Assignor {
    /// The protocol name in JoinGroup.
    pub fn name(&self) -> &str {
        match self {
            Self::Range => "range",
            Self::RoundRobin => "roundrobin",
            Self::CooperativeSticky => "cooperative-sticky",
            Self::Custom(a) => a.name(),
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "range" | "org.apache.kafka.clients.consumer.RangeAssignor" => Some(Self::Range),
            "roundrobin" | "org.apache.kafka.clients.consumer.RoundRobinAssignor" => {
                Some(Self::RoundRobin)
            }
            "cooperative-sticky"
            | "org.apache.kafka.clients.consumer.CooperativeStickyAssignor" => {
                Some(Self::CooperativeSticky)
            }
            _ => None,
        }
    }
}

/// Member id → (topic → partitions), every member present even with nothing.
pub(crate) type Assignment = BTreeMap<String, BTreeMap<String, Vec<i32>>>;

/// A member's subscription as the group leader reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupSubscription {
    /// The topics it subscribes to.
    pub topics: Vec<String>,
    /// The partitions it owns now (subscription v1+).
    pub owned: Vec<(String, i32)>,
    /// The generation its `owned` is from (v2+; -1 when unknown).
    pub generation: i32,
}

pub(crate) type Member = GroupSubscription;

impl Member {
    fn subscribes(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| t == topic)
    }
}

/// Assigns `partitions` (topic → count) to `members`.
pub(crate) fn assign(
    assignor: &Assignor,
    members: &BTreeMap<String, Member>,
    partitions: &BTreeMap<String, i32>,
) -> Assignment {
    match assignor {
        Assignor::CooperativeSticky => return cooperative_sticky(members, partitions),
        Assignor::Custom(custom) => return custom_assign(custom.as_ref(), members, partitions),
        _ => {}
    }
    let mut out = nothing_yet(members);
    let subscribers = |topic: &str| -> Vec<&String> {
        members
            .iter()
            .filter(|(_, m)| m.subscribes(topic))
            .map(|(m, _)| m)
            .collect()
    };
    match assignor {
        Assignor::Range => {
            for (topic, &count) in partitions {
                let subs = subscribers(topic);
                if subs.is_empty() {
                    continue;
                }
                let n = subs.len() as i32;
                let (each, extra) = (count / n, count % n);
                let mut next = 0;
                for (i, m) in subs.iter().enumerate() {
                    let take = each + i32::from((i as i32) < extra);
                    if take > 0
                        && let Some(a) = out.get_mut(*m)
                    {
                        a.insert(topic.clone(), (next..next + take).collect());
                    }
                    next += take;
                }
            }
        }
        Assignor::RoundRobin => {
            let ids: Vec<&String> = members.keys().collect();
            let mut turn = 0usize;
            for (topic, &count) in partitions {
                for p in 0..count {
                    // The next member in the ring that subscribes to this topic.
                    for _ in 0..ids.len() {
                        let m = ids[turn % ids.len()];
                        turn += 1;
                        if members[m].subscribes(topic) {
                            if let Some(a) = out.get_mut(m) {
                                a.entry(topic.clone()).or_default().push(p);
                            }
                            break;
                        }
                    }
                }
            }
        }
        Assignor::CooperativeSticky | Assignor::Custom(_) => {}
    }
    out
}

/// Every member, with no partitions yet.
fn nothing_yet(members: &BTreeMap<String, Member>) -> Assignment {
    members
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect()
}

/// An application's assignment, kept to members of the group, topics someone subscribes
/// to and partitions that exist, each partition once.
fn custom_assign(
    custom: &dyn PartitionAssignor,
    members: &BTreeMap<String, Member>,
    partitions: &BTreeMap<String, i32>,
) -> Assignment {
    let mut out = nothing_yet(members);
    let mut given = std::collections::BTreeSet::new();
    for (member, parts) in custom.assign(members, partitions) {
        let Some(a) = out.get_mut(&member) else {
            continue;
        };
        for (t, p) in parts {
            let exists = partitions.get(&t).is_some_and(|&n| (0..n).contains(&p));
            if exists && given.insert((t.clone(), p)) {
                a.entry(t).or_default().push(p);
            }
        }
    }
    out
}

/// Who owns what now: each valid claim (the member subscribes to the topic, the partition
/// exists), a partition claimed twice going to the newer generation and, on a tie, to
/// nobody.
fn owners(
    members: &BTreeMap<String, Member>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<(String, i32), String> {
    let mut claims: BTreeMap<(String, i32), Vec<(i32, &String)>> = BTreeMap::new();
    for (id, m) in members {
        for (t, p) in &m.owned {
            let exists = partitions.get(t).is_some_and(|&n| (0..n).contains(p));
            if exists && m.subscribes(t) {
                claims
                    .entry((t.clone(), *p))
                    .or_default()
                    .push((m.generation, id));
            }
        }
    }
    claims
        .into_iter()
        .filter_map(|(tp, mut c)| {
            c.sort_by_key(|a| std::cmp::Reverse(a.0));
            let tie = c.len() > 1 && c[0].0 == c[1].0;
            (!tie).then(|| (tp, c[0].1.clone()))
        })
        .collect()
}

/// Balanced and sticky: every member keeps what it owns up to its share, the rest goes to
/// the members with the fewest partitions; then the cooperative rule (KIP-429) holds back
/// any partition still owned by another member, which gives it up and rejoins, and the next
/// rebalance assigns it.
fn cooperative_sticky(
    members: &BTreeMap<String, Member>,
    partitions: &BTreeMap<String, i32>,
) -> Assignment {
    let mut out = nothing_yet(members);
    if members.is_empty() {
        return out;
    }
    let all: Vec<(String, i32)> = partitions
        .iter()
        .filter(|(t, _)| members.values().any(|m| m.subscribes(t)))
        .flat_map(|(t, &n)| (0..n).map(move |p| (t.clone(), p)))
        .collect();
    let owners = owners(members, partitions);
    let n = members.len();
    let (floor, extra) = (all.len() / n, all.len() % n);
    let mut held: BTreeMap<&String, Vec<(String, i32)>> =
        members.keys().map(|m| (m, Vec::new())).collect();
    // Keep up to the floor share of what each member owns, then one more for as many
    // members as the partitions do not divide evenly among.
    for (tp, owner) in &owners {
        if let Some(h) = held.get_mut(owner)
            && h.len() < floor
        {
            h.push(tp.clone());
        }
    }
    let mut extras = extra;
    for (tp, owner) in &owners {
        if extras == 0 {
            break;
        }
        if let Some(h) = held.get_mut(owner)
            && h.len() == floor
            && !h.contains(tp)
        {
            h.push(tp.clone());
            extras -= 1;
        }
    }
    let taken: std::collections::BTreeSet<&(String, i32)> = held.values().flatten().collect();
    let free: Vec<(String, i32)> = all
        .iter()
        .filter(|tp| !taken.contains(tp))
        .cloned()
        .collect();
    for tp in free {
        // The subscriber with the fewest partitions (then the lowest id) takes it.
        let Some(m) = members
            .iter()
            .filter(|(_, m)| m.subscribes(&tp.0))
            .map(|(id, _)| id)
            .min_by_key(|id| held.get(id).map_or(0, Vec::len))
        else {
            continue;
        };
        if let Some(h) = held.get_mut(m) {
            h.push(tp);
        }
    }
    for (m, parts) in held {
        for tp in parts {
            // Still owned by another member: it gives it up first; the next rebalance
            // hands it over.
            if owners.get(&tp).is_some_and(|o| o != m) {
                continue;
            }
            if let Some(a) = out.get_mut(m) {
                a.entry(tp.0).or_default().push(tp.1);
            }
        }
    }
    for a in out.values_mut() {
        for ps in a.values_mut() {
            ps.sort_unstable();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &[&str])]) -> BTreeMap<String, Member> {
        list.iter()
            .map(|(m, ts)| {
                (
                    m.to_string(),
                    Member {
                        topics: ts.iter().map(|t| t.to_string()).collect(),
                        owned: Vec::new(),
                        generation: -1,
                    },
                )
            })
            .collect()
    }

    fn parts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn range_as_the_java_client_documents_it() {
        // RangeAssignor's javadoc: t0 and t1 of 3 partitions, consumers C0 and C1.
        let a = assign(
            &Assignor::Range,
            &members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]),
            &parts(&[("t0", 3), ("t1", 3)]),
        );
        assert_eq!(a["C0"]["t0"], [0, 1]);
        assert_eq!(a["C0"]["t1"], [0, 1]);
        assert_eq!(a["C1"]["t0"], [2]);
        assert_eq!(a["C1"]["t1"], [2]);
    }

    #[test]
    fn roundrobin_as_the_java_client_documents_it() {
        // RoundRobinAssignor's javadoc, first example.
        let a = assign(
            &Assignor::RoundRobin,
            &members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]),
            &parts(&[("t0", 3), ("t1", 3)]),
        );
        assert_eq!(a["C0"]["t0"], [0, 2]);
        assert_eq!(a["C0"]["t1"], [1]);
        assert_eq!(a["C1"]["t0"], [1]);
        assert_eq!(a["C1"]["t1"], [0, 2]);
        // Second example: C0 on t0, C1 on t0 and t1, C2 on t0, t1, t2.
        let a = assign(
            &Assignor::RoundRobin,
            &members(&[
                ("C0", &["t0"]),
                ("C1", &["t0", "t1"]),
                ("C2", &["t0", "t1", "t2"]),
            ]),
            &parts(&[("t0", 1), ("t1", 2), ("t2", 3)]),
        );
        assert_eq!(a["C0"].get("t0"), Some(&vec![0]));
        assert_eq!(a["C1"].get("t1"), Some(&vec![0]));
        assert_eq!(a["C2"].get("t1"), Some(&vec![1]));
        assert_eq!(a["C2"].get("t2"), Some(&vec![0, 1, 2]));
    }

    #[test]
    fn every_partition_goes_to_exactly_one_subscriber() {
        for assignor in [
            Assignor::Range,
            Assignor::RoundRobin,
            Assignor::CooperativeSticky,
        ] {
            let m = members(&[("a", &["x", "y"]), ("b", &["y"]), ("c", &["x", "y", "z"])]);
            let p = parts(&[("x", 7), ("y", 5), ("z", 2), ("w", 4)]);
            let a = assign(&assignor, &m, &p);
            for (topic, &count) in &p {
                let mut got: Vec<i32> = a
                    .iter()
                    .filter_map(|(member, ts)| {
                        let ps = ts.get(topic)?;
                        assert!(
                            m[member].subscribes(topic),
                            "{member} got unsubscribed {topic}"
                        );
                        Some(ps.clone())
                    })
                    .flatten()
                    .collect();
                got.sort_unstable();
                let want: Vec<i32> = if topic == "w" {
                    Vec::new()
                } else {
                    (0..count).collect()
                };
                assert_eq!(got, want, "{assignor:?} {topic}");
            }
        }
    }

    /// `members` with what each owns (generation 1).
    fn owning(list: &[(&str, &[(&str, i32)])], topics: &[&str]) -> BTreeMap<String, Member> {
        list.iter()
            .map(|(m, owned)| {
                (
                    m.to_string(),
                    Member {
                        topics: topics.iter().map(|t| t.to_string()).collect(),
                        owned: owned.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
                        generation: 1,
                    },
                )
            })
            .collect()
    }

    fn count(a: &Assignment, m: &str) -> usize {
        a[m].values().map(Vec::len).sum()
    }

    #[test]
    fn cooperative_sticky_keeps_what_members_own_and_balances() {
        let p = parts(&[("t", 12)]);
        // A fresh group: balanced.
        let fresh = owning(&[("a", &[]), ("b", &[]), ("c", &[])], &["t"]);
        let a = assign(&Assignor::CooperativeSticky, &fresh, &p);
        for m in ["a", "b", "c"] {
            assert_eq!(count(&a, m), 4);
        }
        // b leaves: a and c keep all they own and split b's.
        let owned = |m: &str| -> Vec<(&str, i32)> { a[m]["t"].iter().map(|&p| ("t", p)).collect() };
        let (oa, oc) = (owned("a"), owned("c"));
        let two = owning(&[("a", &oa), ("c", &oc)], &["t"]);
        let b = assign(&Assignor::CooperativeSticky, &two, &p);
        assert_eq!(count(&b, "a"), 6);
        assert_eq!(count(&b, "c"), 6);
        for (t, p) in &oa {
            assert!(b["a"][*t].contains(p), "a keeps {p}");
        }
        for (t, p) in &oc {
            assert!(b["c"][*t].contains(p), "c keeps {p}");
        }
    }

    /// A new member joins: the owners give up their surplus in one rebalance (the new
    /// member gets nothing still owned), and the next assigns it to the newcomer, so no
    /// partition is ever assigned to two members.
    #[test]
    fn cooperative_sticky_moves_partitions_in_two_rebalances() {
        let p = parts(&[("t", 9)]);
        let all: Vec<(&str, i32)> = (0..9).map(|i| ("t", i)).collect();
        let first = owning(&[("a", &all[..5]), ("b", &all[5..]), ("c", &[])], &["t"]);
        let one = assign(&Assignor::CooperativeSticky, &first, &p);
        assert_eq!(count(&one, "c"), 0, "nothing owned elsewhere goes to c yet");
        assert_eq!(count(&one, "a"), 3);
        assert_eq!(count(&one, "b"), 3);
        let owned = |a: &Assignment, m: &str| -> Vec<(String, i32)> {
            a[m].iter()
                .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.clone(), p)))
                .collect()
        };
        let second: BTreeMap<String, Member> = ["a", "b", "c"]
            .iter()
            .map(|m| {
                (
                    m.to_string(),
                    Member {
                        topics: vec!["t".into()],
                        owned: owned(&one, m),
                        generation: 2,
                    },
                )
            })
            .collect();
        let two = assign(&Assignor::CooperativeSticky, &second, &p);
        for m in ["a", "b", "c"] {
            assert_eq!(count(&two, m), 3, "{m}");
        }
        for m in ["a", "b"] {
            assert_eq!(owned(&two, m), owned(&one, m), "{m} kept its share");
        }
    }

    #[test]
    fn cooperative_sticky_settles_double_claims_by_generation() {
        let p = parts(&[("t", 2)]);
        let mut m = owning(&[("a", &[("t", 0)]), ("b", &[("t", 0), ("t", 1)])], &["t"]);
        m.get_mut("a").unwrap().generation = 3;
        let a = assign(&Assignor::CooperativeSticky, &m, &p);
        // a's newer claim wins; b (stale) cannot be given t-0, and keeps t-1.
        assert_eq!(a["a"]["t"], [0]);
        assert_eq!(a["b"]["t"], [1]);
    }
}

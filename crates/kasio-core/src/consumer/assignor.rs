//! Client-side assignors of the classic group protocol, as the Java client computes them:
//! the group leader runs one over every member's subscription.

use std::collections::BTreeMap;

/// `partition.assignment.strategy`: the assignors kasio can run as leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// `range`: per topic, contiguous ranges, the first members one partition more.
    Range,
    /// `roundrobin`: every partition of every topic dealt in turn to the members that
    /// subscribe to it.
    RoundRobin,
}

impl Assignor {
    /// The protocol name in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            Self::Range => "range",
            Self::RoundRobin => "roundrobin",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "range" | "org.apache.kafka.clients.consumer.RangeAssignor" => Some(Self::Range),
            "roundrobin" | "org.apache.kafka.clients.consumer.RoundRobinAssignor" => {
                Some(Self::RoundRobin)
            }
            _ => None,
        }
    }
}

/// Member id → (topic → partitions), every member present even with nothing.
pub(crate) type Assignment = BTreeMap<String, BTreeMap<String, Vec<i32>>>;

/// Assigns `partitions` (topic → count) to `members` (id → subscribed topics).
pub(crate) fn assign(
    assignor: Assignor,
    members: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, i32>,
) -> Assignment {
    let mut out: Assignment = members
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    let subscribers = |topic: &str| -> Vec<&String> {
        members
            .iter()
            .filter(|(_, ts)| ts.iter().any(|t| t == topic))
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
                        if members[m].iter().any(|t| t == topic) {
                            if let Some(a) = out.get_mut(m) {
                                a.entry(topic.clone()).or_default().push(p);
                            }
                            break;
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn parts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn range_as_the_java_client_documents_it() {
        // RangeAssignor's javadoc: t0 and t1 of 3 partitions, consumers C0 and C1.
        let a = assign(
            Assignor::Range,
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
            Assignor::RoundRobin,
            &members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]),
            &parts(&[("t0", 3), ("t1", 3)]),
        );
        assert_eq!(a["C0"]["t0"], [0, 2]);
        assert_eq!(a["C0"]["t1"], [1]);
        assert_eq!(a["C1"]["t0"], [1]);
        assert_eq!(a["C1"]["t1"], [0, 2]);
        // Second example: C0 on t0, C1 on t0 and t1, C2 on t0, t1, t2.
        let a = assign(
            Assignor::RoundRobin,
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
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            let m = members(&[("a", &["x", "y"]), ("b", &["y"]), ("c", &["x", "y", "z"])]);
            let p = parts(&[("x", 7), ("y", 5), ("z", 2), ("w", 4)]);
            let a = assign(assignor, &m, &p);
            for (topic, &count) in &p {
                let mut got: Vec<i32> = a
                    .iter()
                    .filter_map(|(member, ts)| {
                        let ps = ts.get(topic)?;
                        assert!(
                            m[member].contains(topic),
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
}

//! Acknowledgements: how a share consumer settles each record it was handed, the offsets
//! still waiting to be settled, and the batches a request carries.

use kasio_proto::messages::share_fetch_request::AcknowledgementBatch;

/// How a record handed out by a share group is settled (KIP-932; `Renew` is KIP-1222's).
///
/// ```
/// use kasio_core::AcknowledgeType;
/// assert_eq!(AcknowledgeType::parse("reject"), Some(AcknowledgeType::Reject));
/// assert_eq!(AcknowledgeType::Accept.code(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcknowledgeType {
    /// Processed: the record is done with.
    Accept,
    /// Not processed: it is delivered again (to any member), its delivery count one
    /// higher, until `group.share.delivery.count.limit` archives it.
    Release,
    /// Unprocessable: it is never delivered again.
    Reject,
    /// Still being processed: its acquisition lock starts over and it stays this
    /// member's, to be acknowledged again later (the broker refuses it unless the group
    /// sets `share.renew.acknowledge.enable`).
    Renew,
}

impl AcknowledgeType {
    /// The type's code on the wire.
    #[must_use]
    pub fn code(self) -> i8 {
        match self {
            Self::Accept => 1,
            Self::Release => 2,
            Self::Reject => 3,
            Self::Renew => 4,
        }
    }

    /// The type named `name` (`accept`, `release`, `reject`, `renew`, any case).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "accept" => Some(Self::Accept),
            "release" => Some(Self::Release),
            "reject" => Some(Self::Reject),
            "renew" => Some(Self::Renew),
            _ => None,
        }
    }

    /// The type a wire code stands for (not the gap, 0).
    pub(crate) fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(Self::Accept),
            2 => Some(Self::Release),
            3 => Some(Self::Reject),
            4 => Some(Self::Renew),
            _ => None,
        }
    }
}

/// The code of an offset that was acquired but holds no record the consumer can hand out
/// (a transaction marker, a record compacted away): settled at once.
pub(crate) const GAP: i8 = 0;

/// Offsets as sorted, disjoint, inclusive ranges: a partition's records handed out or
/// buffered and not yet settled. Records come and are settled mostly in order, so ranges
/// stay few.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Ranges(Vec<(i64, i64)>);

impl Ranges {
    /// Adds `first..=last`, joining what it overlaps or touches (an offset redelivered
    /// to this member while an old delivery of it was never settled).
    pub(crate) fn insert(&mut self, first: i64, last: i64) {
        if first > last {
            return;
        }
        // The ranges that overlap or touch `first..=last` are contiguous in the list.
        let start = self
            .0
            .partition_point(|&(_, l)| l.saturating_add(1) < first);
        let end = self
            .0
            .partition_point(|&(f, _)| f <= last.saturating_add(1));
        if start >= end {
            self.0.insert(start, (first, last));
            return;
        }
        let merged = (first.min(self.0[start].0), last.max(self.0[end - 1].1));
        self.0.splice(start..end, [merged]);
    }

    /// Removes `offset`; whether it was held.
    pub(crate) fn remove(&mut self, offset: i64) -> bool {
        let at = self.0.partition_point(|&(f, _)| f <= offset);
        if at == 0 {
            return false;
        }
        let (first, last) = self.0[at - 1];
        if offset > last {
            return false;
        }
        match (offset == first, offset == last) {
            (true, true) => {
                self.0.remove(at - 1);
            }
            (true, false) => self.0[at - 1].0 = offset + 1,
            (false, true) => self.0[at - 1].1 = offset - 1,
            (false, false) => {
                self.0[at - 1].1 = offset - 1;
                self.0.insert(at, (offset + 1, last));
            }
        }
        true
    }

    /// Removes `first..=last`, what of it is held.
    pub(crate) fn remove_range(&mut self, first: i64, last: i64) {
        if first > last {
            return;
        }
        let mut out = Vec::with_capacity(self.0.len() + 1);
        for &(f, l) in &self.0 {
            if l < first || f > last {
                out.push((f, l));
                continue;
            }
            if f < first {
                out.push((f, first - 1));
            }
            if l > last {
                out.push((last + 1, l));
            }
        }
        self.0 = out;
    }

    /// Whether `offset` is held.
    pub(crate) fn contains(&self, offset: i64) -> bool {
        let at = self.0.partition_point(|&(f, _)| f <= offset);
        at > 0 && offset <= self.0[at - 1].1
    }

    /// Every range, leaving none.
    pub(crate) fn take(&mut self) -> Vec<(i64, i64)> {
        std::mem::take(&mut self.0)
    }

    /// How many offsets are held.
    pub(crate) fn count(&self) -> u64 {
        self.0
            .iter()
            .map(|&(f, l)| u64::try_from(l - f + 1).unwrap_or(0))
            .sum()
    }
}

/// A partition's acknowledgements waiting to go, as ranges of one type each.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// `(first, last, code)`, in the order given.
    acks: Vec<(i64, i64, i8)>,
    /// Offsets to renew: sent apart, in a request that fetches nothing.
    renews: Vec<i64>,
}

impl Pending {
    pub(crate) fn push(&mut self, first: i64, last: i64, code: i8) {
        if first > last {
            return;
        }
        if code == AcknowledgeType::Renew.code() {
            self.renews.extend(first..=last);
            return;
        }
        // A run of the same type, offset after offset, stays one range.
        if let Some(prev) = self.acks.last_mut()
            && prev.2 == code
            && prev.1.checked_add(1) == Some(first)
        {
            prev.1 = last;
            return;
        }
        self.acks.push((first, last, code));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.acks.is_empty() && self.renews.is_empty()
    }

    pub(crate) fn has_acks(&self) -> bool {
        !self.acks.is_empty()
    }

    pub(crate) fn has_renews(&self) -> bool {
        !self.renews.is_empty()
    }

    /// The settling acknowledgements, as batches in offset order (taken).
    pub(crate) fn take_acks(&mut self) -> Sent {
        let mut acks = std::mem::take(&mut self.acks);
        // A renewal not yet sent is moot once the record is settled.
        if !self.renews.is_empty() {
            self.renews
                .retain(|&o| !acks.iter().any(|&(f, l, _)| f <= o && o <= l));
        }
        acks.sort_unstable_by_key(|&(f, _, _)| f);
        Sent(acks)
    }

    /// The renewals, as batches in offset order (taken).
    pub(crate) fn take_renews(&mut self) -> Sent {
        let mut renews = std::mem::take(&mut self.renews);
        renews.sort_unstable();
        renews.dedup();
        let mut out: Vec<(i64, i64, i8)> = Vec::new();
        let renew = AcknowledgeType::Renew.code();
        for o in renews {
            match out.last_mut() {
                Some(prev) if prev.1.checked_add(1) == Some(o) => prev.1 = o,
                _ => out.push((o, o, renew)),
            }
        }
        Sent(out)
    }

    /// Takes out the acknowledgements and renewals not yet sent for offsets in `first..=last`:
    /// those records were delivered to this member again (their earlier locks gone), so
    /// what was decided for the earlier delivery no longer applies. The acknowledgements
    /// taken out are returned, to be reported failed.
    pub(crate) fn supersede(&mut self, first: i64, last: i64) -> Sent {
        if !self.acks.iter().any(|&(f, l, _)| f <= last && l >= first) {
            self.renews.retain(|&o| o < first || o > last);
            return Sent::default();
        }
        let mut out = Vec::new();
        let mut kept = Vec::with_capacity(self.acks.len());
        for &(f, l, c) in &self.acks {
            if l < first || f > last {
                kept.push((f, l, c));
                continue;
            }
            if f < first {
                kept.push((f, first - 1, c));
            }
            out.push((f.max(first), l.min(last), c));
            if l > last {
                kept.push((last + 1, l, c));
            }
        }
        self.acks = kept;
        self.renews.retain(|&o| o < first || o > last);
        Sent(out)
    }

    /// Drops the renewals not yet sent (the records are being settled).
    pub(crate) fn drop_renews(&mut self) {
        self.renews.clear();
    }

    /// Puts acknowledgements back (their request never went).
    pub(crate) fn restore(&mut self, sent: Sent) {
        for (f, l, c) in sent.0 {
            self.push(f, l, c);
        }
    }
}

/// Acknowledgements carried by one request, for one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Sent(pub(crate) Vec<(i64, i64, i8)>);

impl Sent {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The batches on the wire: each range with its one type.
    pub(crate) fn batches(&self) -> Vec<AcknowledgementBatch> {
        self.0
            .iter()
            .map(|&(first, last, code)| AcknowledgementBatch {
                first_offset: first,
                last_offset: last,
                acknowledge_types: vec![code],
                ..Default::default()
            })
            .collect()
    }

    /// The offsets settled (gaps left out), as `(first, last, type)`.
    pub(crate) fn settled(&self) -> Vec<(i64, i64, AcknowledgeType)> {
        self.0
            .iter()
            .filter_map(|&(f, l, c)| Some((f, l, AcknowledgeType::from_code(c)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_join_split_and_count() {
        let mut r = Ranges::default();
        r.insert(10, 14);
        r.insert(20, 24);
        r.insert(15, 19);
        assert_eq!(r.0, [(10, 24)]);
        assert!(r.remove(10) && r.remove(24) && r.remove(17));
        assert!(!r.remove(17) && !r.remove(9) && !r.remove(30));
        assert_eq!(r.0, [(11, 16), (18, 23)]);
        assert!(r.contains(11) && r.contains(18) && !r.contains(17));
        assert_eq!(r.count(), 12);
        r.insert(5, 5);
        r.insert(25, 26);
        assert_eq!(r.0, [(5, 5), (11, 16), (18, 23), (25, 26)]);
        r.insert(14, 19);
        assert_eq!(r.0, [(5, 5), (11, 23), (25, 26)]);
        r.remove_range(4, 12);
        assert_eq!(r.0, [(13, 23), (25, 26)]);
        r.remove_range(20, 25);
        assert_eq!(r.0, [(13, 19), (26, 26)]);
        assert_eq!(r.take().len(), 2);
        assert_eq!(r.count(), 0);
    }

    #[test]
    fn pending_runs_batch_and_renewals_go_apart() {
        let mut p = Pending::default();
        for o in 0..100 {
            p.push(o, o, AcknowledgeType::Accept.code());
        }
        p.push(100, 100, AcknowledgeType::Release.code());
        p.push(101, 101, AcknowledgeType::Renew.code());
        p.push(102, 102, AcknowledgeType::Renew.code());
        p.push(102, 102, AcknowledgeType::Reject.code());
        p.push(103, 103, GAP);
        assert!(p.has_acks() && p.has_renews());
        let sent = p.take_acks();
        assert_eq!(
            sent.0,
            [(0, 99, 1), (100, 100, 2), (102, 102, 3), (103, 103, 0)]
        );
        let batches = sent.batches();
        assert_eq!((batches[0].first_offset, batches[0].last_offset), (0, 99));
        assert_eq!(batches[0].acknowledge_types, [1]);
        assert_eq!(
            sent.settled(),
            [
                (0, 99, AcknowledgeType::Accept),
                (100, 100, AcknowledgeType::Release),
                (102, 102, AcknowledgeType::Reject)
            ]
        );
        assert_eq!(
            p.take_renews().0,
            [(101, 101, 4)],
            "102 was settled after its renewal"
        );
        assert!(p.is_empty());
    }

    #[test]
    fn a_new_delivery_supersedes_what_waits_for_the_old_one() {
        let mut p = Pending::default();
        p.push(0, 9, AcknowledgeType::Accept.code());
        p.push(10, 10, AcknowledgeType::Reject.code());
        p.push(11, 11, AcknowledgeType::Renew.code());
        p.push(4, 4, AcknowledgeType::Renew.code());
        assert_eq!(p.supersede(3, 5).0, [(3, 5, 1)]);
        assert_eq!(p.supersede(10, 12).0, [(10, 10, 3)]);
        assert_eq!(p.take_acks().0, [(0, 2, 1), (6, 9, 1)]);
        assert!(
            p.take_renews().is_empty(),
            "both renewals were for old deliveries"
        );
    }
}

//! What a share fetch hands out: record batches with the offsets this member acquired in
//! them and each one's delivery count. A batch may hold records acquired by other members
//! (the broker sends whole batches); only this member's are handed out.

use crate::ConsumerRecord;
use bytes::Bytes;
use kasio_proto::{
    DecodeError,
    messages::share_fetch_response::AcquiredRecords,
    records::{Batch, Batches, RecordBatch, Records},
};
use std::{sync::Arc, time::Instant};

/// One record handed out by a share group: the record, and how many times it has been
/// delivered (1 the first time; a release or an expired lock delivers it again).
#[derive(Debug, Clone)]
pub struct ShareRecord {
    /// The record (its key, value and headers share the fetched bytes).
    pub record: ConsumerRecord,
    /// How many times the group has delivered it, this delivery included.
    pub delivery_count: i16,
}

/// One record batch of a partition with the offsets this member acquired in it, each
/// with its delivery count, and until when their acquisition lock holds.
#[derive(Debug, Clone)]
pub struct ShareBatch {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    batch: RecordBatch,
    /// `(first, last, delivery count)`, in offset order, inside the batch.
    acquired: Vec<(i64, i64, i16)>,
    lock_until: Instant,
}

impl ShareBatch {
    /// The acquired records, owned, decoded as they are iterated.
    ///
    /// # Errors
    /// [`DecodeError`] for a batch that cannot be decompressed; each item, for a record
    /// that does not decode.
    pub fn iter(&self) -> Result<ShareRecords, DecodeError> {
        Ok(ShareRecords {
            topic: self.topic.clone(),
            partition: self.partition,
            records: self.batch.records()?,
            acquired: self.acquired.clone(),
            next: 0,
        })
    }

    /// The acquired offsets: `(first, last, delivery count)`, in offset order.
    pub fn acquired(&self) -> &[(i64, i64, i16)] {
        &self.acquired
    }

    /// How many records are handed out, at most (a compacted batch may hold fewer).
    pub fn len_hint(&self) -> usize {
        self.acquired
            .iter()
            .map(|&(f, l, _)| usize::try_from(l - f + 1).unwrap_or(0))
            .sum()
    }

    /// When the acquisition lock of these records runs out (as this member's clock saw
    /// the fetch answered): an acknowledgement after it fails, and the records go to
    /// another delivery.
    pub fn lock_until(&self) -> Instant {
        self.lock_until
    }

    /// The batch as it came off the wire.
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }
}

/// The acquired records of a [`ShareBatch`]; see [`ShareBatch::iter`].
#[derive(Debug)]
pub struct ShareRecords {
    topic: Arc<str>,
    partition: i32,
    records: Records,
    acquired: Vec<(i64, i64, i16)>,
    next: usize,
}

impl Iterator for ShareRecords {
    type Item = Result<ShareRecord, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let &(_, last, count) = self.acquired.get(self.next)?;
            let record = match self.records.next()? {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            let mut count = count;
            if record.offset > last {
                // Past this range: the next one may hold it.
                while let Some(&(_, l, _)) = self.acquired.get(self.next)
                    && l < record.offset
                {
                    self.next += 1;
                }
                let &(first, _, c) = self.acquired.get(self.next)?;
                if record.offset < first {
                    continue;
                }
                count = c;
            } else if record.offset < self.acquired[self.next].0 {
                continue;
            }
            return Some(Ok(ShareRecord {
                record: ConsumerRecord::new(self.topic.clone(), self.partition, record),
                delivery_count: count,
            }));
        }
    }
}

/// What one partition's share-fetch answer holds for this member.
#[derive(Debug, Default)]
pub(crate) struct Split {
    pub(crate) batches: Vec<ShareBatch>,
    /// Acquired offsets with no record to hand out, to settle as gaps at once.
    pub(crate) gaps: Vec<(i64, i64)>,
    /// Acquired offsets in bytes that did not decode: released, so the group delivers
    /// them again (and archives them once the delivery limit is reached).
    pub(crate) undecodable: Vec<(i64, i64)>,
    /// What did not decode.
    pub(crate) error: Option<String>,
}

/// Cuts a partition's records into batches of the offsets `acquired` names.
pub(crate) fn split(
    topic: &Arc<str>,
    partition: i32,
    records: Bytes,
    acquired: &[AcquiredRecords],
    lock_until: Instant,
) -> Split {
    let mut ranges: Vec<(i64, i64, i16)> = acquired
        .iter()
        .filter(|a| a.first_offset <= a.last_offset && a.first_offset >= 0)
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect();
    ranges.sort_unstable_by_key(|r| r.0);
    let mut out = Split::default();
    // Offsets below `covered` are accounted for.
    let mut covered = ranges.first().map_or(i64::MAX, |r| r.0);
    let mut batches = Batches::new(records);
    for batch in &mut batches {
        let b = match batch {
            Ok(Batch::V2(b)) => b,
            Ok(_) => {
                out.error =
                    Some("a legacy (v0/v1) message set; Kafka 4 brokers never send one".into());
                break;
            }
            Err(e) => {
                out.error = Some(e.to_string());
                break;
            }
        };
        let (base, last) = (b.base_offset, b.last_offset());
        // Acquired offsets between the batch before and this one: no batch holds them.
        push_uncovered(&ranges, covered, base, &mut out.gaps);
        covered = covered.max(last.saturating_add(1));
        let inside = intersect(&ranges, base, last);
        if inside.is_empty() {
            continue;
        }
        if b.attributes.is_control() {
            out.gaps.extend(inside.iter().map(|&(f, l, _)| (f, l)));
            continue;
        }
        let full = i64::from(b.record_count) == last - base + 1;
        if !full {
            // A compacted batch: its missing offsets are gaps.
            match present_offsets(&b) {
                Ok(present) => {
                    for &(f, l, _) in &inside {
                        let mut o = f;
                        while o <= l {
                            if present.binary_search(&o).is_err() {
                                let start = o;
                                while o < l && present.binary_search(&(o + 1)).is_err() {
                                    o += 1;
                                }
                                out.gaps.push((start, o));
                            }
                            o += 1;
                        }
                    }
                }
                Err(e) => {
                    out.undecodable
                        .extend(inside.iter().map(|&(f, l, _)| (f, l)));
                    out.error = Some(e.to_string());
                    continue;
                }
            }
        }
        out.batches.push(ShareBatch {
            topic: topic.clone(),
            partition,
            batch: b,
            acquired: inside,
            lock_until,
        });
    }
    // What no batch held: after a decode error or a batch cut short (the response's
    // size limit), released for another delivery; otherwise gaps (compacted away).
    let mut rest = Vec::new();
    push_uncovered(&ranges, covered, i64::MAX, &mut rest);
    if out.error.is_some() || batches.partial_tail() > 0 {
        out.undecodable.extend(rest);
    } else {
        out.gaps.extend(rest);
    }
    out
}

/// The parts of `ranges` within `base..=last`.
fn intersect(ranges: &[(i64, i64, i16)], base: i64, last: i64) -> Vec<(i64, i64, i16)> {
    ranges
        .iter()
        .filter(|&&(f, l, _)| f <= last && l >= base)
        .map(|&(f, l, c)| (f.max(base), l.min(last), c))
        .collect()
}

/// The parts of `ranges` in `from..until`.
fn push_uncovered(ranges: &[(i64, i64, i16)], from: i64, until: i64, out: &mut Vec<(i64, i64)>) {
    if from >= until {
        return;
    }
    for &(f, l, _) in ranges {
        let (f, l) = (f.max(from), l.min(until.saturating_sub(1)));
        if f <= l {
            out.push((f, l));
        }
    }
}

/// The offsets a batch's records hold, in order.
fn present_offsets(b: &RecordBatch) -> Result<Vec<i64>, DecodeError> {
    let records = b.records()?;
    let mut out = Vec::with_capacity(usize::try_from(b.record_count).unwrap_or(0).min(1 << 16));
    for view in records.views() {
        out.push(view?.offset);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::BytesMut;
    use kasio_proto::records::{BatchBuilder, BatchOptions, ControlRecord, ControlRecordType};

    fn batch(base: i64, n: usize, out: &mut BytesMut) {
        let mut b = BatchBuilder::new(BatchOptions {
            base_offset: base,
            ..Default::default()
        });
        for i in 0..n {
            b.append(
                0,
                None,
                Some(format!("v{}", base + i as i64).as_bytes()),
                &[] as &[(&str, &[u8])],
            )
            .unwrap();
        }
        out.extend_from_slice(&b.finish().unwrap());
    }

    fn acquired(f: i64, l: i64, c: i16) -> AcquiredRecords {
        AcquiredRecords {
            first_offset: f,
            last_offset: l,
            delivery_count: c,
            ..Default::default()
        }
    }

    fn values(b: &ShareBatch) -> Vec<(i64, i16)> {
        b.iter()
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (r.record.offset, r.delivery_count)
            })
            .collect()
    }

    #[test]
    fn only_acquired_offsets_are_handed_out_with_their_counts() {
        let mut bytes = BytesMut::new();
        batch(0, 5, &mut bytes);
        batch(5, 5, &mut bytes);
        let topic: Arc<str> = "t".into();
        let now = Instant::now();
        // 1..=2 first delivery, 3..=6 second; 7..=9 another member's; 12 past the data.
        let split = split(
            &topic,
            0,
            bytes.freeze(),
            &[acquired(3, 6, 2), acquired(1, 2, 1), acquired(12, 12, 1)],
            now,
        );
        assert_eq!(split.batches.len(), 2);
        assert_eq!(values(&split.batches[0]), [(1, 1), (2, 1), (3, 2), (4, 2)]);
        assert_eq!(values(&split.batches[1]), [(5, 2), (6, 2)]);
        assert_eq!(split.batches[0].len_hint(), 4);
        assert_eq!(split.gaps, [(12, 12)]);
        assert!(split.error.is_none() && split.undecodable.is_empty());
    }

    #[test]
    fn control_batches_are_gaps_and_bad_bytes_are_released() {
        let mut bytes = BytesMut::new();
        batch(0, 2, &mut bytes);
        let marker = ControlRecord::marker_batch(ControlRecordType::Commit, 0, 7, 0, 2, 0).unwrap();
        bytes.extend_from_slice(&marker);
        batch(3, 2, &mut bytes);
        let topic: Arc<str> = "t".into();
        let split_all = split(
            &topic,
            1,
            bytes.clone().freeze(),
            &[acquired(0, 4, 1)],
            Instant::now(),
        );
        assert_eq!(split_all.batches.len(), 2);
        assert_eq!(split_all.gaps, [(2, 2)]);
        // The last batch cut short: what it held is released, not lost.
        let cut = bytes.len() - 3;
        let split_cut = split(
            &topic,
            1,
            bytes.freeze().slice(..cut),
            &[acquired(0, 4, 1)],
            Instant::now(),
        );
        assert_eq!(split_cut.batches.len(), 1);
        assert_eq!(split_cut.gaps, [(2, 2)]);
        assert_eq!(split_cut.undecodable, [(3, 4)]);
    }
}

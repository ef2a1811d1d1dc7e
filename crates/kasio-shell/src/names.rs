//! The handles speak [`TopicPartition`] and [`TopicPartitionOffset`]; the cores take
//! borrowed tuples. These convert at that boundary.

use kasio_core::{TopicPartition, TopicPartitionOffset};

pub(crate) fn partitions<P: Into<TopicPartition>>(
    partitions: impl IntoIterator<Item = P>,
) -> Vec<TopicPartition> {
    partitions.into_iter().map(Into::into).collect()
}

pub(crate) fn offsets<O: Into<TopicPartitionOffset>>(
    offsets: impl IntoIterator<Item = O>,
) -> Vec<TopicPartitionOffset> {
    offsets.into_iter().map(Into::into).collect()
}

pub(crate) fn pairs(partitions: &[TopicPartition]) -> Vec<(&str, i32)> {
    partitions
        .iter()
        .map(|tp| (&*tp.topic, tp.partition))
        .collect()
}

pub(crate) fn triples(offsets: &[TopicPartitionOffset]) -> Vec<(&str, i32, i64)> {
    offsets
        .iter()
        .map(|o| (&*o.topic, o.partition, o.offset))
        .collect()
}

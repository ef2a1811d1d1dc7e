//! The producer's output queue: events, with each acknowledged batch held as one entry
//! whose records become delivery events only when they are taken.
//!
//! A batch of thousands of records is acknowledged by one answer; queueing an event per
//! record (each holding its own copy of the topic) cost more than encoding the records.

use super::{Event, RecordMetadata};
use std::{collections::VecDeque, sync::Arc};

/// Each record's token and create timestamp, in order.
pub(crate) type Tokens<T> = VecDeque<(T, i64)>;

/// Token lists kept for new batches, as many as batch buffers are: with fewer, batches
/// in flight outnumber them and new ones land on fresh pages again.
const FREE_TOKENS: usize = 64;

/// A batch's worth of delivered records, taken whole with
/// [`Producer::poll_delivered`](super::Producer::poll_delivered).
///
/// ```
/// # use kasio_core::{Producer, ProducerConfig};
/// # use std::time::Instant;
/// # let mut producer: Producer<u32> =
/// #     Producer::new(ProducerConfig::new("localhost:9092")?, Instant::now(), 0, 1)?;
/// while let Some(mut batch) = producer.poll_delivered() {
///     while let Some((token, offset, timestamp)) = batch.pop() {
///         println!("{token} at {}-{}@{offset} ({timestamp})", batch.topic(), batch.partition());
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Delivered<T> {
    topic: Arc<str>,
    partition: i32,
    /// The first record's offset, or -1 with `acks=0`.
    base_offset: i64,
    /// The broker's log append time, or -1 when records keep their create time.
    append_time: i64,
    /// The offset of the front token.
    next: i64,
    tokens: Tokens<T>,
}

impl<T> Delivered<T> {
    /// The records' topic.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// The records' partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// How many records are left.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether every record has been taken.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The next record: its token, its offset (-1 with `acks=0`) and its timestamp.
    pub fn pop(&mut self) -> Option<(T, i64, i64)> {
        let (token, created) = self.tokens.pop_front()?;
        let offset = if self.base_offset < 0 { -1 } else { self.next };
        self.next += 1;
        let timestamp = if self.append_time >= 0 {
            self.append_time
        } else {
            created
        };
        Some((token, offset, timestamp))
    }

    pub(crate) fn into_tokens(self) -> Tokens<T> {
        self.tokens
    }

    /// The full metadata of a record [`pop`](Self::pop) returned.
    pub fn metadata(&self, offset: i64, timestamp: i64) -> RecordMetadata {
        RecordMetadata {
            topic: self.topic.clone(),
            partition: self.partition,
            offset,
            timestamp,
        }
    }
}

#[derive(Debug)]
enum Queued<T> {
    Event(Event<T>),
    Batch(Delivered<T>),
}

/// Events in the order they happened, acknowledged batches kept whole.
#[derive(Debug)]
pub(crate) struct EventQueue<T> {
    items: VecDeque<Queued<T>>,
    free: Vec<Tokens<T>>,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            free: Vec::new(),
        }
    }
}

impl<T> EventQueue<T> {
    pub(crate) fn push_back(&mut self, event: Event<T>) {
        self.items.push_back(Queued::Event(event));
    }

    /// Queues an acknowledged batch's records.
    pub(crate) fn push_delivered(
        &mut self,
        topic: Arc<str>,
        partition: i32,
        base_offset: i64,
        append_time: i64,
        tokens: Tokens<T>,
    ) {
        if tokens.is_empty() {
            self.recycle(tokens);
            return;
        }
        self.items.push_back(Queued::Batch(Delivered {
            topic,
            partition,
            base_offset,
            append_time,
            next: base_offset,
            tokens,
        }));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The next event, a delivered batch's next record as its own event.
    pub(crate) fn pop_front(&mut self) -> Option<Event<T>> {
        match self.items.front_mut()? {
            Queued::Batch(batch) => {
                let (token, offset, timestamp) = batch.pop()?;
                let event = Event::Delivery {
                    token,
                    result: Ok(batch.metadata(offset, timestamp)),
                };
                if batch.is_empty() {
                    self.pop_batch();
                }
                Some(event)
            }
            Queued::Event(_) => match self.items.pop_front() {
                Some(Queued::Event(event)) => Some(event),
                _ => None,
            },
        }
    }

    /// The batch at the front, if the front is one.
    pub(crate) fn pop_delivered(&mut self) -> Option<Delivered<T>> {
        match self.items.front() {
            Some(Queued::Batch(_)) => match self.items.pop_front() {
                Some(Queued::Batch(batch)) => Some(batch),
                _ => None,
            },
            _ => None,
        }
    }

    fn pop_batch(&mut self) {
        if let Some(Queued::Batch(batch)) = self.items.pop_front() {
            self.recycle(batch.tokens);
        }
    }

    /// Keeps an emptied token list for a new batch.
    pub(crate) fn recycle(&mut self, mut tokens: Tokens<T>) {
        if self.free.len() < FREE_TOKENS {
            tokens.clear();
            self.free.push(tokens);
        }
    }

    /// A token list for a new batch expecting about `records` records.
    pub(crate) fn tokens(&mut self, records: usize) -> Tokens<T> {
        match self.free.pop() {
            Some(t) => t,
            None => VecDeque::with_capacity(records),
        }
    }
}

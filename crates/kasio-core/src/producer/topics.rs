//! The producer's topics by name, the last one looked up kept at hand: records mostly come
//! in runs of one topic, and hashing its name for each of them showed in profiles.

use super::TopicState;
use crate::hash::FxBuild;
use std::{collections::HashMap, sync::Arc};

#[derive(Debug)]
pub(crate) struct Topics<T> {
    list: Vec<TopicState<T>>,
    index: HashMap<Arc<str>, usize, FxBuild>,
    /// Where the last lookup found its topic.
    last: usize,
}

impl<T> Default for Topics<T> {
    fn default() -> Self {
        Self {
            list: Vec::new(),
            index: HashMap::default(),
            last: 0,
        }
    }
}

impl<T> Topics<T> {
    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub(crate) fn insert(&mut self, name: Arc<str>, topic: TopicState<T>) {
        if let Some(&i) = self.index.get(&name) {
            self.list[i] = topic;
            return;
        }
        self.index.insert(name, self.list.len());
        self.list.push(topic);
    }

    fn find(&mut self, name: &str) -> Option<usize> {
        if self.list.get(self.last).is_some_and(|t| *t.name == *name) {
            return Some(self.last);
        }
        let i = *self.index.get(name)?;
        self.last = i;
        Some(i)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&TopicState<T>> {
        if let Some(t) = self.list.get(self.last).filter(|t| *t.name == *name) {
            return Some(t);
        }
        self.list.get(*self.index.get(name)?)
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut TopicState<T>> {
        let i = self.find(name)?;
        self.list.get_mut(i)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.list.iter().map(|t| &t.name)
    }

    pub(crate) fn values(&self) -> std::slice::Iter<'_, TopicState<T>> {
        self.list.iter()
    }

    pub(crate) fn values_mut(&mut self) -> std::slice::IterMut<'_, TopicState<T>> {
        self.list.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn topic(name: &str) -> TopicState<()> {
        TopicState {
            name: name.into(),
            meta: None,
            partitions: Vec::new(),
            pending: VecDeque::new(),
            sticky: None,
            round_robin: 7,
        }
    }

    #[test]
    fn lookups_alternating_between_topics_find_each_one() {
        let mut topics = Topics::default();
        for name in ["a", "b", "c"] {
            topics.insert(name.into(), topic(name));
        }
        for name in ["a", "a", "c", "b", "c", "a", "b", "b"] {
            assert_eq!(topics.get_mut(name).map(|t| &*t.name), Some(name));
            assert_eq!(topics.get(name).map(|t| &*t.name), Some(name));
        }
        assert!(topics.get_mut("d").is_none());
        assert!(topics.get("d").is_none() && !topics.contains_key("d"));
        // A name inserted again replaces its topic in place.
        let mut again = topic("b");
        again.round_robin = 1;
        topics.insert("b".into(), again);
        assert_eq!(topics.get("b").map(|t| t.round_robin), Some(1));
        assert_eq!(topics.keys().count(), 3);
    }
}

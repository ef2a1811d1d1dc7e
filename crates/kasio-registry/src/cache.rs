//! Bounded caches: the oldest entry goes when a new one would pass the capacity.

use std::{
    borrow::Borrow,
    collections::{HashMap, VecDeque},
    hash::Hash,
};

#[derive(Debug)]
pub(crate) struct Cache<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Cache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    pub(crate) fn remove_where(&mut self, mut gone: impl FnMut(&K) -> bool) {
        self.map.retain(|k, _| !gone(k));
        self.order.retain(|k| !gone(k));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Cache;

    #[test]
    fn the_oldest_goes_first() {
        let mut c = Cache::new(2);
        c.insert(1, 'a');
        c.insert(2, 'b');
        c.insert(1, 'A');
        c.insert(3, 'c');
        assert_eq!(
            (c.get(&1), c.get(&2), c.get(&3), c.len()),
            (None, Some(&'b'), Some(&'c'), 2)
        );
        c.remove_where(|k| *k == 2);
        assert_eq!(c.len(), 1);
    }
}

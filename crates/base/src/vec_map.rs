//! [`VecMap`]: a map kept as a vector sorted by key, for the session-wide
//! tables that hold one entry per torrent (thousands in a daemon) and whose
//! keys are handed out in increasing order (torrent ids, registration ids).
//!
//! Why not `BTreeMap` or `HashMap`: inserting increasing keys leaves a
//! B-tree's leaves half full, and a hash table is a quarter to a half empty
//! by design, so both hold an entry in about twice its size; the vector
//! holds it in its size. An insert of the largest key so far appends; one
//! elsewhere, or a removal, moves the entries after it (a memmove of a few
//! hundred kilobytes for 10,000 entries: rare operations, user actions).
//!
//! Invariants: keys are strictly increasing along the vector; the capacity
//! is at most four times the length plus a small floor (removals give
//! memory back).
use std::borrow::Borrow;

/// The capacity under which removals never shrink the vector.
const FLOOR: usize = 64;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let at = match self.entries.last() {
            Some((last, _)) if *last < key => Err(self.entries.len()),
            None => Err(0),
            _ => self.find(&key),
        };
        match at {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// The value under `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// The value under `key`, to change.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// Whether `key` is in the map.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Removes and returns the value under `key`.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = self.find(key).ok()?;
        let (_, v) = self.entries.remove(i);
        self.give_back();
        Some(v)
    }

    /// Keeps the entries for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
        self.give_back();
    }

    /// The value under `key`, inserted with `make` if missing.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (key, make()));
                i
            }
        };
        &mut self.entries[i].1
    }

    fn give_back(&mut self) {
        let cap = self.entries.capacity();
        if cap > FLOOR && self.entries.len() < cap / 4 {
            let keep = (self.entries.len() * 2).max(FLOOR);
            self.entries.shrink_to(keep);
        }
    }
}

impl<K, V> VecMap<K, V> {
    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The entries in key order, to change the values.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The memory reserved, in entries.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_as_a_btree_map_under_random_operations() {
        let mut m = VecMap::new();
        let mut model = BTreeMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 500;
            match x % 5 {
                0 | 1 => assert_eq!(m.insert(key, step), model.insert(key, step)),
                2 => assert_eq!(m.remove(&key), model.remove(&key)),
                3 => assert_eq!(m.get(&key), model.get(&key)),
                _ => {
                    *m.get_or_insert_with(key, || 0) += 1;
                    *model.entry(key).or_insert(0) += 1;
                }
            }
            if step % 1000 == 0 {
                m.retain(|k, _| k % 7 != 0);
                model.retain(|k, _| k % 7 != 0);
            }
        }
        assert_eq!(m.len(), model.len());
        assert!(m.iter().map(|(k, v)| (*k, *v)).eq(model.into_iter()));
    }

    #[test]
    fn appends_in_order_and_gives_memory_back() {
        let mut m = VecMap::new();
        for k in 0..10_000u32 {
            m.insert(k, ());
        }
        assert!(m.keys().copied().eq(0..10_000));
        for k in 0..9_990u32 {
            m.remove(&k);
        }
        assert!(m.keys().copied().eq(9_990..10_000));
        assert!(m.capacity() <= FLOOR, "{}", m.capacity());
        assert!(m.contains_key(&9_995) && !m.contains_key(&5));
        assert!(!m.is_empty());
    }
}

//! Tables the element only looks up by key: transactions by their RFC 3261 §17.2.3 key,
//! bindings by address of record.
//!
//! Why not a `BTreeMap`: these keys are long strings sharing long prefixes (every branch
//! starts `z9hG4bK`, every AOR `sip:`), so each of a B-tree's ~17 steps at 100,000 entries is
//! a `memcmp`; a hash table does one hash and, usually, one comparison.
//!
//! Why a wrapper and not `HashMap` itself: a hash table's iteration order depends on its
//! seed and history, and nothing may reach the wire or a trace in such an order. `KeyMap`
//! offers lookups, inserts and removals only; whatever must be visited in order (timers,
//! expiries) has its own ordered index.
//!
//! The hasher is seeded from the element's seed, as every other random choice is: the
//! simulator replays the same, and a `serve` seeded from the OS does not let a peer choose
//! keys that collide (hash flooding).

// The one place a hash table is allowed (clippy.toml bans it elsewhere): the wrapper below
// offers no iteration, which is what the ban protects.
#![allow(clippy::disallowed_types)]

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use foldhash::fast::FixedState;

/// A hash table without iteration (see the module's doc).
#[derive(Clone, Debug)]
pub struct KeyMap<K, V> {
    map: HashMap<K, V, FixedState>,
}

impl<K: Hash + Eq, V> KeyMap<K, V> {
    /// An empty table whose hasher is keyed by `seed`.
    pub fn with_seed(seed: u64) -> Self {
        KeyMap {
            map: HashMap::with_hasher(FixedState::with_seed(seed)),
        }
    }

    /// The value under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }

    /// The value under `key`, to change it.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_mut(key)
    }

    /// The stored key and its value under `key`: the key kept in the table, when a borrowed
    /// form was enough to find it.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_key_value(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(key)
    }

    /// Stores `value` under `key`; returns the value it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.map.insert(key, value)
    }

    /// Takes the value under `key` out.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(key)
    }

    /// Takes the key and value under `key` out.
    pub fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove_entry(key)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<K: Hash + Eq, V> Default for KeyMap<K, V> {
    /// A table keyed by seed 0 (tests and tables built before the element's seed is known).
    fn default() -> Self {
        Self::with_seed(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_inserts_and_removes_by_borrowed_key() {
        let mut m: KeyMap<String, u32> = KeyMap::with_seed(7);
        assert!(m.is_empty());
        assert_eq!(m.insert("sip:bob@biloxi.example.com".into(), 1), None);
        assert_eq!(m.insert("sip:bob@biloxi.example.com".into(), 2), Some(1));
        assert_eq!(m.get("sip:bob@biloxi.example.com"), Some(&2));
        *m.get_mut("sip:bob@biloxi.example.com").unwrap() += 1;
        assert!(m.contains_key("sip:bob@biloxi.example.com"));
        assert!(!m.contains_key("sip:alice@atlanta.example.com"));
        assert_eq!(m.len(), 1);
        assert_eq!(
            m.remove_entry("sip:bob@biloxi.example.com"),
            Some(("sip:bob@biloxi.example.com".to_owned(), 3))
        );
        assert_eq!(m.remove("sip:bob@biloxi.example.com"), None);
        assert!(m.is_empty());
    }
}

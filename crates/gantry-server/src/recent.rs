//! A map that keeps what was used recently within a memory budget: the caches of open runs'
//! states and loaded workflows.
//!
//! Entries carry a weight (roughly how many jobs they hold, which is what their memory grows
//! with) and live in two generations. New and used entries go to the young one; when it would
//! outgrow half the budget, the old generation (everything not used since the last turnover) is
//! dropped and the young one becomes old. So the map never holds much more than its budget, an
//! entry used since the last turnover is always kept, and a full map sheds its coldest half
//! rather than everything: clearing the whole cache when it filled up made every claim after
//! that reload and parse its run's state and workflow, which is what a node with many open
//! runs did on every claim.
//!
//! Unlike the exact LRU of `git_cache.rs` (a count of small, cloned entries), entries here are
//! weighed, taken out and changed in place, and a use costs no ordering index: two maps are
//! all it takes.

use std::hash::Hash;

use foldhash::{HashMap, HashMapExt};

/// A map of recently used entries within a weight budget (see the module docs).
pub(crate) struct RecentMap<K, V> {
    young: HashMap<K, (V, usize)>,
    old: HashMap<K, (V, usize)>,
    young_weight: usize,
    /// The young generation's limit: half the budget.
    half: usize,
}

impl<K: Hash + Eq + Copy, V> RecentMap<K, V> {
    /// An empty map that holds entries of about `budget` total weight.
    pub(crate) fn new(budget: usize) -> RecentMap<K, V> {
        RecentMap {
            young: HashMap::new(),
            old: HashMap::new(),
            young_weight: 0,
            half: (budget / 2).max(1),
        }
    }

    /// Keeps `value` under `key` (replacing what was there) as the most recent entry.
    pub(crate) fn insert(&mut self, key: K, value: V, weight: usize) {
        self.remove(&key);
        if self.young_weight.saturating_add(weight) > self.half && !self.young.is_empty() {
            self.old = std::mem::take(&mut self.young);
            self.young_weight = 0;
        }
        self.young_weight = self.young_weight.saturating_add(weight);
        self.young.insert(key, (value, weight));
    }

    /// Takes the entry of `key` out.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        if let Some((value, weight)) = self.young.remove(key) {
            self.young_weight -= weight;
            return Some(value);
        }
        self.old.remove(key).map(|(value, _)| value)
    }

    /// The entry of `key`, which counts as used (it moves to the young generation).
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        if let Some((value, weight)) = self.old.remove(key) {
            self.insert(*key, value, weight);
        }
        self.young.get_mut(key).map(|(value, _)| value)
    }

    /// How many entries it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// The total weight of its entries.
    #[cfg(test)]
    fn weight(&self) -> usize {
        self.young_weight + self.old.values().map(|(_, weight)| weight).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::RecentMap;

    /// Visiting entries in turn (as claims visit runs through the fair queue), taking each
    /// out and putting it back: a round that fits in one generation (half the budget) always
    /// finds its entries; a larger one loses some every round. The caches' budgets are sized
    /// by this.
    #[test]
    fn entries_visited_in_turn_stay_while_a_round_fits_in_half_the_budget() {
        let misses = |entries: u32| {
            let mut map = RecentMap::new(100);
            let mut missed = 0;
            for round in 0..5 {
                for key in 0..entries {
                    if map.remove(&key).is_none() && round > 0 {
                        missed += 1;
                    }
                    map.insert(key, (), 1);
                }
            }
            missed
        };
        assert_eq!(misses(50), 0);
        assert!(misses(80) > 0);
    }

    #[test]
    fn entries_in_use_survive_filling_the_map_and_unused_ones_go() {
        let mut map = RecentMap::new(100);
        map.insert(0, "hot", 10);
        for key in 1..1_000 {
            map.insert(key, "cold", 10);
            // The hot entry is used between every two insertions, as a run being claimed is.
            assert_eq!(map.get_mut(&0).copied(), Some("hot"), "after {key}");
            assert!(map.weight() <= 100 + 10, "weight {}", map.weight());
        }
        assert!(map.len() <= 11, "{}", map.len());
        assert_eq!(map.get_mut(&1), None);
        // The newest entries are still there: only the coldest half was shed.
        assert_eq!(map.get_mut(&999).copied(), Some("cold"));
        assert_eq!(map.get_mut(&998).copied(), Some("cold"));
    }

    #[test]
    fn heavy_entries_count_for_their_weight() {
        let mut map = RecentMap::new(1_000);
        for key in 0..100 {
            map.insert(key, (), 100);
        }
        assert!(map.weight() <= 1_000 + 100, "weight {}", map.weight());
        assert!(map.len() <= 11);
    }

    #[test]
    fn removing_and_replacing_keep_the_weight_right() {
        let mut map = RecentMap::new(100);
        map.insert(1, "a", 30);
        map.insert(1, "b", 20);
        assert_eq!((map.len(), map.weight()), (1, 20));
        // 1 turns old when 2 comes; removing works from either generation.
        map.insert(2, "c", 40);
        assert_eq!(map.remove(&1), Some("b"));
        assert_eq!(map.remove(&2), Some("c"));
        assert_eq!(map.remove(&2), None);
        assert_eq!((map.len(), map.weight()), (0, 0));
    }
}

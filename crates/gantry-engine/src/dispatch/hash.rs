//! A small, fast hasher for the queue's integer-keyed maps.
//!
//! The queue's maps are keyed by ids the server chose (never by attacker-chosen strings in
//! bulk), and `pick` does a handful of lookups, so SipHash's flood resistance costs more than
//! it buys. This hasher folds each written word into the state with a multiply by an odd
//! constant (Knuth's multiplicative hashing) and a rotate, which spreads small sequential ids
//! across the buckets.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`WordHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// Multiplicative word hasher; see the module docs for why it is enough here.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WordHasher(u64);

/// 2^64 divided by the golden ratio, rounded to odd.
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        // The high bits of a product are the well-mixed ones; hashbrown reads both ends.
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_i64(&mut self, value: i64) {
        self.add(value as u64);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }
}

//! GitHub's memory budget for one evaluation, which stops expressions such as nested
//! `format('{0}{0}', ...)` from doubling a string fifty times.
//!
//! The accounting follows GitHub's: every node's result is charged to its depth in the tree;
//! when a node finishes with a primitive result, the charges of the nodes below it are released
//! (their results are no longer needed), so the total approximates what is alive at once.
//! Strings cost 26 bytes plus 2 per UTF-16 code unit, anything else 24 bytes. Functions that
//! build strings also check the budget while building, so nothing large is ever allocated.

use crate::text::utf16_len;

/// GitHub's default budget: 1 MiB.
pub const DEFAULT_MAX_MEMORY: usize = 1024 * 1024;

const STRING_OVERHEAD: usize = 26;
const OBJECT_SIZE: usize = 24;

/// The size GitHub charges for a string of `units` UTF-16 code units.
pub(crate) fn string_size(units: usize) -> usize {
    STRING_OVERHEAD.saturating_add(units.saturating_mul(2))
}

/// The size GitHub charges for a result: strings by length, anything else a fixed amount.
pub(crate) fn result_size(text: Option<&str>) -> usize {
    match text {
        Some(text) => string_size(utf16_len(text)),
        None => OBJECT_SIZE,
    }
}

/// The budget exceeded.
#[derive(Debug)]
pub(crate) struct OutOfMemory;

pub(crate) struct Memory {
    max: usize,
    total: usize,
    /// Bytes charged per depth; only the first `active` entries are live.
    by_depth: Vec<usize>,
    active: usize,
}

impl Memory {
    pub(crate) fn new(max: usize) -> Memory {
        Memory {
            max,
            total: 0,
            by_depth: Vec::new(),
            active: 0,
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Charges `bytes` to `depth`, first releasing everything deeper when `release_deeper`.
    pub(crate) fn charge(
        &mut self,
        depth: usize,
        bytes: usize,
        release_deeper: bool,
    ) -> Result<(), OutOfMemory> {
        if release_deeper {
            while self.active > depth + 1 {
                self.active -= 1;
                self.total -= self.by_depth[self.active];
                self.by_depth[self.active] = 0;
            }
        }
        if self.by_depth.len() <= depth {
            self.by_depth.resize(depth + 1, 0);
        }
        self.active = self.active.max(depth + 1);
        self.by_depth[depth] = self.by_depth[depth].saturating_add(bytes);
        self.total = self.total.saturating_add(bytes);
        if self.total > self.max {
            return Err(OutOfMemory);
        }
        Ok(())
    }
}

/// Tracks the size of a string a function is building, against the evaluation's budget.
pub(crate) struct StringBudget {
    units: usize,
    max: usize,
}

impl StringBudget {
    pub(crate) fn new(max: usize) -> StringBudget {
        StringBudget { units: 0, max }
    }

    /// Accounts for appending `text`; fails once the string would outgrow the budget.
    pub(crate) fn add(&mut self, text: &str) -> Result<(), OutOfMemory> {
        self.units = self.units.saturating_add(utf16_len(text));
        if string_size(self.units) > self.max {
            return Err(OutOfMemory);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_deeper_charges_for_primitive_results() {
        let mut memory = Memory::new(100);
        memory.charge(2, 60, true).unwrap();
        // The parent's result replaces its children's.
        memory.charge(1, 30, true).unwrap();
        memory.charge(2, 60, true).unwrap();
        assert!(memory.charge(1, 30, true).is_ok());
        // Siblings at the same depth stay charged.
        assert!(memory.charge(1, 50, true).is_err());
    }
}

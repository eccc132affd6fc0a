//! The data connections under way, found by conntrack id in constant
//! time: every event of a proxy connection looks its transfer up, so a
//! walk over all of them (two per session slot) would make each event
//! cost more as `-m` grows. Sized once at start; nothing grows later.

/// A slot of the index: the entry's place plus one; 0 is empty.
type Slot = u32;

pub struct Transfers<T> {
    entries: Vec<Option<(u32, T)>>,
    /// Places in `entries` that are free, taken from the end.
    free: Vec<u32>,
    /// Open addressing by id, linear probing, at most half full.
    index: Vec<Slot>,
    mask: usize,
}

impl<T: Copy> Transfers<T> {
    /// Room for `n` transfers (at least one).
    pub fn with_capacity(n: usize) -> Transfers<T> {
        let n = n.max(1);
        let size = (2 * n).next_power_of_two();
        Transfers {
            entries: vec![None; n],
            free: (0..n as u32).rev().collect(),
            index: vec![0; size],
            mask: size - 1,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    fn home(&self, id: u32) -> usize {
        // Fibonacci hashing: the kernel's ids are hashes already, but a
        // multiply keeps this right whatever they are.
        (id.wrapping_mul(0x9E37_79B1) as usize) & self.mask
    }

    /// The index slot holding `id`, if any.
    fn find(&self, id: u32) -> Option<usize> {
        let mut k = self.home(id);
        loop {
            let at = self.index[k];
            if at == 0 {
                return None;
            }
            if self.entries[at as usize - 1].is_some_and(|(i, _)| i == id) {
                return Some(k);
            }
            k = (k + 1) & self.mask;
        }
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        let k = self.find(id)?;
        let at = self.index[k] as usize - 1;
        self.entries[at].as_mut().map(|(_, t)| t)
    }

    /// Stores `t` under `id`, replacing what was there under that id.
    /// False when full (the caller makes room first).
    pub fn insert(&mut self, id: u32, t: T) -> bool {
        if let Some(old) = self.get_mut(id) {
            *old = t;
            return true;
        }
        let Some(at) = self.free.pop() else {
            return false;
        };
        self.entries[at as usize] = Some((id, t));
        let mut k = self.home(id);
        while self.index[k] != 0 {
            k = (k + 1) & self.mask;
        }
        self.index[k] = at + 1;
        true
    }

    pub fn remove(&mut self, id: u32) -> Option<T> {
        let mut hole = self.find(id)?;
        let at = self.index[hole] as usize - 1;
        let (_, t) = self.entries[at].take()?;
        // Capacity is never exceeded, so this push does not allocate.
        self.free.push(at as u32);
        // Backward shift: entries after the hole whose home is not
        // between the hole and themselves move into it, so every probe
        // still reaches its entry without tombstones.
        self.index[hole] = 0;
        let mut k = (hole + 1) & self.mask;
        while self.index[k] != 0 {
            let moved = self.index[k];
            let id = match self.entries[moved as usize - 1] {
                Some((id, _)) => id,
                None => break,
            };
            let home = self.home(id);
            // Distance from home to k and from home to the hole, around
            // the ring: it may fill the hole when the hole comes first.
            if (k.wrapping_sub(home) & self.mask) >= (k.wrapping_sub(hole) & self.mask) {
                self.index[hole] = moved;
                self.index[k] = 0;
                hole = k;
            }
            k = (k + 1) & self.mask;
        }
        Some(t)
    }

    /// Every transfer with its id, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.entries
            .iter()
            .filter_map(|e| e.as_ref().map(|(id, t)| (*id, t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn full_refuses_and_removal_frees() {
        let mut t = Transfers::with_capacity(2);
        assert!(t.insert(1, 'a') && t.insert(2, 'b'));
        assert!(t.is_full());
        assert!(!t.insert(3, 'c'));
        assert!(t.insert(2, 'B'), "an id already there is replaced");
        assert_eq!(t.remove(1), Some('a'));
        assert_eq!(t.remove(1), None);
        assert!(t.insert(3, 'c'));
        assert_eq!(t.get_mut(2).copied(), Some('B'));
        assert_eq!(t.get_mut(3).copied(), Some('c'));
        assert_eq!(t.len(), 2);
    }

    /// Random inserts and removals against a HashMap, with ids chosen to
    /// collide in the index (same home slot) as well as spread out.
    #[test]
    fn agrees_with_a_map() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for cap in [1, 3, 8, 50] {
            let mut t = Transfers::with_capacity(cap);
            let mut m = HashMap::new();
            for step in 0..20_000u32 {
                let r = rnd();
                // A small id space makes collisions and reuse common.
                let id = match r % 3 {
                    0 => (r >> 8) as u32 % 16,
                    1 => ((r >> 8) as u32 % 8).wrapping_mul(1 << 20),
                    _ => (r >> 8) as u32,
                };
                if r & 0x10 == 0 {
                    let ok = t.insert(id, step);
                    if m.contains_key(&id) || m.len() < cap {
                        assert!(ok);
                        m.insert(id, step);
                    } else {
                        assert!(!ok, "full at {cap}");
                    }
                } else {
                    assert_eq!(t.remove(id), m.remove(&id));
                }
                assert_eq!(t.len(), m.len());
                for (id, v) in &m {
                    assert_eq!(t.get_mut(*id).copied(), Some(*v));
                }
            }
            let mut all: Vec<_> = t.iter().map(|(id, v)| (id, *v)).collect();
            let mut want: Vec<_> = m.into_iter().collect();
            all.sort();
            want.sort();
            assert_eq!(all, want);
        }
    }
}

//! Fixed-capacity table of sessions, sized once at start (1..=500).

pub struct Slab<T> {
    slots: Vec<Option<T>>,
    /// Which slots hold a value, apart from the values: a walk over the
    /// sessions reads these bytes, not one cache line per (large) slot,
    /// so it costs next to nothing at `-m 500` with few sessions.
    live: Vec<bool>,
    free: Vec<usize>,
}

impl<T> Slab<T> {
    /// Allocates every slot now; nothing grows later.
    pub fn with_capacity(n: usize) -> Slab<T> {
        let mut slots = Vec::with_capacity(n);
        slots.resize_with(n, || None);
        Slab {
            slots,
            live: vec![false; n],
            free: (0..n).rev().collect(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// The index the next `insert_with` will use; `None` if full.
    pub fn vacant(&self) -> Option<usize> {
        self.free.last().copied()
    }

    /// Stores `make(index)`; `None` if full.
    pub fn insert_with(&mut self, make: impl FnOnce(usize) -> T) -> Option<usize> {
        let i = self.free.pop()?;
        self.slots[i] = Some(make(i));
        self.live[i] = true;
        Some(i)
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    pub fn remove(&mut self, i: usize) -> Option<T> {
        let t = self.slots.get_mut(i)?.take()?;
        self.live[i] = false;
        // Capacity is never exceeded, so this push does not allocate.
        self.free.push(i);
        Some(t)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.slots
            .iter_mut()
            .zip(&self.live)
            .enumerate()
            .filter(|(_, (_, &live))| live)
            .filter_map(|(i, (s, _))| s.as_mut().map(|t| (i, t)))
    }

    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.live
            .iter()
            .enumerate()
            .filter(|(_, &live)| live)
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_refuses_and_reuses() {
        let mut s = Slab::with_capacity(2);
        let a = s.insert_with(|i| i * 10).unwrap();
        let b = s.insert_with(|i| i * 10).unwrap();
        assert_ne!(a, b);
        assert!(s.is_full());
        assert!(s.insert_with(|_| 0).is_none());
        assert_eq!(s.remove(a), Some(a * 10));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.vacant(), Some(a));
        assert_eq!(s.indices().collect::<Vec<_>>(), vec![b]);
        assert_eq!(s.insert_with(|i| i + 1), Some(a));
        assert_eq!(s.vacant(), None);
        assert_eq!(s.len(), 2);
        let mut both: Vec<_> = s.iter_mut().map(|(i, t)| (i, *t)).collect();
        both.sort();
        assert_eq!(both.len(), 2);
        assert_eq!(s.indices().count(), 2);
    }
}

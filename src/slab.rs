//! Fixed-capacity table of sessions, sized once at start (1..=500).

pub struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Slab<T> {
    /// Allocates every slot now; nothing grows later.
    pub fn with_capacity(n: usize) -> Slab<T> {
        let mut slots = Vec::with_capacity(n);
        slots.resize_with(n, || None);
        Slab {
            slots,
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

    /// Stores `make(index)`; `None` if full.
    pub fn insert_with(&mut self, make: impl FnOnce(usize) -> T) -> Option<usize> {
        let i = self.free.pop()?;
        self.slots[i] = Some(make(i));
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
        // Capacity is never exceeded, so this push does not allocate.
        self.free.push(i);
        Some(t)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.as_mut().map(|t| (i, t)))
    }

    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
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
        assert_eq!(s.insert_with(|i| i + 1), Some(a));
        assert_eq!(s.len(), 2);
    }
}

//! The kernel backend as sessions use it, whichever backend was built:
//! the keys of the mappings sessions hold, so no two sessions get one key
//! (the same for nftables and pf), and the requests the kernel refused,
//! for the status.

use super::{Backend, DataMap, DataPath, FilterError, Installed};

/// Room for one mapping per session at the session maximum (500).
const HELD_CAP: usize = 512;

/// What the kernel matches a data connection's first packet by: its
/// source, its destination and its port (the nftables element key; pf's
/// rdr rule matches the same three).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Key {
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    dport: u16,
}

impl Key {
    fn of(d: &DataMap) -> Key {
        Key {
            src: d.src,
            dst: d.dst,
            dport: d.dport,
        }
    }
}

pub struct Mappings<B = Backend> {
    pub backend: B,
    /// Requests the kernel refused (or that failed on the way) since start.
    pub errors: u64,
    /// Keys of the mappings sessions hold, used up in the kernel or not.
    /// The kernel drops a mapping when its connection opens, but the
    /// session learns that only at its next PORT/PASV, when it removes
    /// that key: another session must not have been given the key in
    /// between (in active mode the key has no client in it), or that
    /// removal would take its pending mapping. Two sessions with one key
    /// would also race for one connection. Each key names its holder's
    /// session slot: a new data connection's conntrack event finds its
    /// session here, without a walk over the sessions.
    held: Box<heapless::FnvIndexMap<Key, usize, HELD_CAP>>,
}

impl<B: DataPath> Mappings<B> {
    pub fn new(backend: B) -> Self {
        Mappings {
            backend,
            errors: 0,
            held: Box::default(),
        }
    }

    fn count<T>(&mut self, r: Result<T, FilterError>) -> Result<T, FilterError> {
        if r.is_err() {
            self.errors += 1;
        }
        r
    }

    /// Whether another session holds `new`'s key (`old`, the mapping it
    /// replaces, is the session's own). Cheap: asked for each port tried.
    pub fn taken(&self, old: Option<&DataMap>, new: &DataMap) -> bool {
        let key = Key::of(new);
        self.held.contains_key(&key) && old.map(Key::of) != Some(key)
    }

    /// Installs `new` in place of `old` (one kernel transaction) for the
    /// session in slot `holder`, unless another session holds its key.
    pub fn install(
        &mut self,
        old: Option<&DataMap>,
        new: &DataMap,
        holder: usize,
    ) -> Result<Installed, FilterError> {
        if self.taken(old, new) {
            return Ok(Installed::PortInUse);
        }
        let r = self.backend.install(old, new);
        if let Ok(Installed::Done) = r {
            if let Some(o) = old {
                self.held.remove(&Key::of(o));
            }
            // Cannot be full: each session holds one mapping at most.
            let _ = self.held.insert(Key::of(new), holder);
        }
        self.count(r)
    }

    /// Removes a mapping (one used up already is not an error).
    pub fn remove(&mut self, d: &DataMap) -> Result<(), FilterError> {
        self.held.remove(&Key::of(d));
        let r = self.backend.remove(d);
        self.count(r)
    }

    /// Keeps a pending mapping; false once it is used up, and its key is
    /// free again (the session forgets it).
    pub fn refresh(&mut self, d: &DataMap) -> Result<bool, FilterError> {
        let r = self.backend.refresh(d);
        if let Ok(false) = r {
            self.held.remove(&Key::of(d));
        }
        self.count(r)
    }

    pub fn ensure(&mut self) -> Result<bool, FilterError> {
        let r = self.backend.ensure();
        self.count(r)
    }

    pub fn close(&mut self) -> Result<(), FilterError> {
        let r = self.backend.close();
        self.count(r)
    }

    /// The session in slot `holder`, handed over, holds `d` (its mapping
    /// is in the kernel).
    pub fn hold(&mut self, d: &DataMap, holder: usize) {
        let _ = self.held.insert(Key::of(d), holder);
    }

    /// The slot of the session that holds the mapping keyed by a first
    /// packet from `src` to `dst` port `dport`.
    pub fn holder(
        &self,
        src: std::net::IpAddr,
        dst: std::net::IpAddr,
        dport: u16,
    ) -> Option<usize> {
        self.held.get(&Key { src, dst, dport }).copied()
    }

    /// Mappings sessions hold now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::OneShot;
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;

    /// A kernel that takes every request.
    struct Takes;

    impl DataPath for Takes {
        fn install(&mut self, _: Option<&DataMap>, _: &DataMap) -> Result<Installed, FilterError> {
            Ok(Installed::Done)
        }
        fn remove(&mut self, _: &DataMap) -> Result<(), FilterError> {
            Ok(())
        }
        fn refresh_every(&self) -> Option<Duration> {
            None
        }
        fn refresh(&mut self, _: &DataMap) -> Result<bool, FilterError> {
            Ok(true)
        }
        fn ensure(&mut self) -> Result<bool, FilterError> {
            Ok(false)
        }
        fn close(&mut self) -> Result<(), FilterError> {
            Ok(())
        }
        fn table(&self) -> &str {
            "test"
        }
        fn owned(&self) -> bool {
            true
        }
        fn one_shot(&self) -> OneShot {
            OneShot::Kernel
        }
        fn original_dst(&mut self, _: SocketAddr, _: SocketAddr) -> Option<SocketAddr> {
            None
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn passive(port: u16) -> DataMap {
        let (c, s, p) = (ip("198.18.1.2"), ip("198.19.2.2"), ip("198.19.2.1"));
        DataMap::passive(c, s, port, s, 30000, p, 1)
    }

    #[test]
    fn each_key_names_its_holder_until_replaced_or_removed() {
        let mut m = Mappings::new(Takes);
        let (a, b) = (passive(50000), passive(50001));
        assert!(matches!(m.install(None, &a, 7), Ok(Installed::Done)));
        assert!(
            matches!(m.install(None, &a, 8), Ok(Installed::PortInUse)),
            "held by slot 7"
        );
        assert_eq!(m.holder(a.src, a.dst, a.dport), Some(7));
        assert_eq!(m.holder(a.src, a.dst, 50001), None);
        assert_eq!(
            m.holder(a.dst, a.src, a.dport),
            None,
            "the key has a direction"
        );
        // Replaced in one transaction: the old key is free, the new held.
        assert!(matches!(m.install(Some(&a), &b, 7), Ok(Installed::Done)));
        assert_eq!(m.holder(a.src, a.dst, a.dport), None);
        assert_eq!(m.holder(b.src, b.dst, b.dport), Some(7));
        assert!(matches!(m.install(None, &a, 9), Ok(Installed::Done)));
        assert_eq!(m.holder(a.src, a.dst, a.dport), Some(9));
        assert_eq!(m.held(), 2);
        m.remove(&b).unwrap();
        assert_eq!(m.holder(b.src, b.dst, b.dport), None);
        m.hold(&b, 3);
        assert_eq!(m.holder(b.src, b.dst, b.dport), Some(3));
    }
}

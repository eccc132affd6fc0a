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
    /// would also race for one connection.
    held: Box<heapless::FnvIndexSet<Key, HELD_CAP>>,
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
        self.held.contains(&key) && old.map(Key::of) != Some(key)
    }

    /// Installs `new` in place of `old` (one kernel transaction), unless
    /// another session holds its key.
    pub fn install(
        &mut self,
        old: Option<&DataMap>,
        new: &DataMap,
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
            let _ = self.held.insert(Key::of(new));
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

    /// A session handed over holds `d` (its mapping is in the kernel).
    pub fn hold(&mut self, d: &DataMap) {
        let _ = self.held.insert(Key::of(d));
    }

    /// Mappings sessions hold now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

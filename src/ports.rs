//! Proxy ports, each drawn from the kernel's CSPRNG: no number of earlier
//! ports tells anything about the next (a seeded generator would give its
//! state away after a handful). Without randomness there is no port.

use std::fmt;

/// The IANA dynamic range (ftp-proxy(8)): 49152..=65535.
pub const PORT_MIN: u16 = 49152;
pub const PORT_MAX: u16 = 65535;
/// `-E`: the smallest range taken. Each session holds one proxy port for
/// a pair of hosts at a time; fewer than this and a client that opens a
/// few sessions to one server is refused at once.
pub const RANGE_MIN_PORTS: u32 = 8;
/// Random draws before the range is walked for a free port: with the
/// range less than half taken, 8 draws all miss once in 256 picks.
const DRAWS: usize = 8;

/// The proxy ports to choose from, both ends inclusive (`-E`); never
/// empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    low: u16,
    high: u16,
}

impl Default for Range {
    fn default() -> Self {
        Range {
            low: PORT_MIN,
            high: PORT_MAX,
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

/// What a pick found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Port(u16),
    /// Every port of the range is taken for this pair of hosts.
    Exhausted,
    /// The kernel gave no random numbers.
    NoRandomness,
}

impl Range {
    /// `low..=high`; None when that holds no port.
    pub fn new(low: u16, high: u16) -> Option<Range> {
        (low <= high).then_some(Range { low, high })
    }

    pub fn low(&self) -> u16 {
        self.low
    }

    pub fn high(&self) -> u16 {
        self.high
    }

    /// How many ports: at least one.
    pub fn ports(&self) -> u32 {
        u32::from(self.high) - u32::from(self.low) + 1
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }

    /// A port of the range, each with the same chance: a random number
    /// below the largest multiple of the range's size is taken modulo it
    /// (the rest are drawn again, so no port is likelier).
    pub fn random(&self) -> Option<u16> {
        let n = self.ports();
        let limit = u32::MAX - u32::MAX % n;
        for _ in 0..4 {
            let mut b = [0u8; 4];
            if !fill(&mut b) {
                return None;
            }
            let r = u32::from_ne_bytes(b);
            if r < limit {
                return Some(self.low + (r % n) as u16);
            }
        }
        // Four draws above the limit: about 2^-56 for the smallest range.
        None
    }

    /// A port for which `free` holds: a few random draws, then a walk
    /// over the whole range from a random place, so a nearly full range
    /// still finds its last free port and a full one says so. `free`
    /// must be cheap (it is asked up to `len` times).
    pub fn pick(&self, mut free: impl FnMut(u16) -> bool) -> Pick {
        for _ in 0..DRAWS {
            match self.random() {
                None => return Pick::NoRandomness,
                Some(p) if free(p) => return Pick::Port(p),
                Some(_) => {}
            }
        }
        let Some(start) = self.random() else {
            return Pick::NoRandomness;
        };
        let n = self.ports();
        let at = u32::from(start - self.low);
        for i in 0..n {
            let p = self.low + ((at + i) % n) as u16;
            if free(p) {
                return Pick::Port(p);
            }
        }
        Pick::Exhausted
    }
}

#[cfg(not(target_os = "openbsd"))]
fn fill(b: &mut [u8]) -> bool {
    // SAFETY: b is writable for its length; getrandom never blocks for a
    // few bytes once the pool is initialised (and GRND_NONBLOCK says so).
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    n == b.len() as isize
}

#[cfg(target_os = "openbsd")]
fn fill(b: &mut [u8]) -> bool {
    // SAFETY: b is writable for its length; arc4random_buf cannot fail.
    unsafe { libc::arc4random_buf(b.as_mut_ptr().cast(), b.len()) };
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ports_cover_the_dynamic_range_without_a_pattern() {
        let r = Range::default();
        let mut seen = HashSet::new();
        for _ in 0..4000 {
            let p = r.random().expect("kernel randomness");
            assert!(p >= PORT_MIN);
            seen.insert(p);
        }
        // 4000 draws from 16384: about 3550 distinct expected; a stuck or
        // short-cycled generator gives far fewer.
        assert!(seen.len() > 3300, "{} distinct", seen.len());
        assert!(seen.iter().any(|&p| p < PORT_MIN + 1000));
        assert!(seen.iter().any(|&p| p > 65535 - 1000));
    }

    #[test]
    fn a_small_range_is_covered_evenly_and_never_left() {
        let r = Range::new(50000, 50009).unwrap();
        let mut count = [0u32; 10];
        for _ in 0..10_000 {
            let p = r.random().expect("kernel randomness");
            assert!(r.contains(p), "{p}");
            count[usize::from(p - 50000)] += 1;
        }
        // 1000 expected each; a modulo bias or a lost end shows far off.
        for (i, c) in count.iter().enumerate() {
            assert!((800..1200).contains(c), "port {}: {c}", 50000 + i);
        }
    }

    #[test]
    fn the_last_free_port_is_found_and_a_full_range_is_told() {
        let r = Range::new(60000, 60015).unwrap();
        for last in [60000, 60007, 60015] {
            let mut asked = HashSet::new();
            let got = r.pick(|p| {
                asked.insert(p);
                p == last
            });
            assert_eq!(got, Pick::Port(last));
        }
        let mut asked = HashSet::new();
        assert_eq!(
            r.pick(|p| {
                asked.insert(p);
                false
            }),
            Pick::Exhausted
        );
        assert_eq!(asked.len(), 16, "every port was asked about");
        let one = Range::new(65535, 65535).unwrap();
        assert_eq!(one.pick(|_| true), Pick::Port(65535));
        assert_eq!(Range::new(2, 1), None);
    }
}

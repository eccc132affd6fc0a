//! Proxy ports, each drawn from the kernel's CSPRNG: no number of earlier
//! ports tells anything about the next (a seeded generator would give its
//! state away after a handful). Without randomness there is no port.

/// The IANA dynamic range (ftp-proxy(8)): 49152..=65535, 2^14 ports, so
/// 14 random bits give each one with the same chance.
pub const PORT_MIN: u16 = 49152;
const PORT_BITS: u16 = 0x3fff;

/// A fresh random proxy port, or `None` if the kernel gave no randomness.
pub fn random_port() -> Option<u16> {
    let mut b = [0u8; 2];
    fill(&mut b).then(|| PORT_MIN + (u16::from_ne_bytes(b) & PORT_BITS))
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

    #[test]
    fn ports_cover_the_dynamic_range_without_a_pattern() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4000 {
            let p = random_port().expect("kernel randomness");
            assert!(p >= PORT_MIN);
            seen.insert(p);
        }
        // 4000 draws from 16384: about 3550 distinct expected; a stuck or
        // short-cycled generator gives far fewer.
        assert!(seen.len() > 3300, "{} distinct", seen.len());
        assert!(seen.iter().any(|&p| p < PORT_MIN + 1000));
        assert!(seen.iter().any(|&p| p > 65535 - 1000));
    }
}

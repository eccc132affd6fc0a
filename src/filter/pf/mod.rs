//! BSD backend: pf through ioctls on /dev/pf, as OpenBSD's ftp-proxy(8)
//! does it. Each session owns the anchor `ftp-proxy/<pid>.<session>` under
//! the `anchor "ftp-proxy/*"` of the admin's pf.conf; a mapping replaces
//! the anchor's ruleset with its rdr and nat rules in one transaction, and
//! an empty transaction flushes it.
//!
//! The ioctl ABIs (`openbsd`, `freebsd`) and the rules as plain data
//! (`rules`, `rules_freebsd`) build and are tested on every target; the
//! device code (`dev*`) only on its BSD.

/// `Default` as all zeros, for ABI structures of plain integers and
/// arrays (too large for derived defaults).
macro_rules! zeroed_default {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                // SAFETY: plain integers and arrays: all zeros is valid.
                unsafe { std::mem::zeroed() }
            }
        }
    )*};
}

pub mod freebsd;
pub mod openbsd;
pub mod rules;
pub mod rules_freebsd;

// In unit tests on Linux too, for the contract built on `dev::Anchors`.
#[cfg(any(target_os = "openbsd", target_os = "freebsd", test))]
#[cfg_attr(test, allow(dead_code))]
mod dev;
#[cfg(target_os = "freebsd")]
mod dev_freebsd;
#[cfg(target_os = "freebsd")]
pub use dev_freebsd::Pf;
#[cfg(target_os = "openbsd")]
mod dev_openbsd;
#[cfg(target_os = "openbsd")]
pub use dev_openbsd::Pf;

/// Byte offset of `field` inside `base` (layout tests; `offset_of!` needs
/// Rust 1.77).
#[cfg(test)]
pub fn offset<T, F>(base: &T, field: &F) -> usize {
    field as *const F as usize - base as *const T as usize
}

/// Entries for `check_layout`, named as pf-layout.txt names them:
/// `layout!(sizes: PfRule = "pf_rule", …)`, `layout!(ioctls: DIOCADDRULE,
/// …)` and `layout!(r = "pf_rule": dst, kind = "type", …)` for the fields
/// of value `r` (`= "name"` where the C field is named otherwise).
#[cfg(all(test, target_pointer_width = "64"))]
macro_rules! layout {
    (sizes: $($t:ty = $c:literal),* $(,)?) => {
        [$((concat!("size__", $c), std::mem::size_of::<$t>() as u64)),*]
    };
    (ioctls: $($i:ident),* $(,)?) => {
        [$((concat!("ioc__", stringify!($i)), $i)),*]
    };
    (@c $f:ident) => { stringify!($f) };
    (@c $f:ident $c:literal) => { $c };
    ($v:ident = $s:literal: $($f:ident $(= $c:literal)?),* $(,)?) => {
        [$((
            concat!("off__", $s, "__", $crate::filter::pf::layout!(@c $f $($c)?)),
            $crate::filter::pf::offset(&$v, &$v.$f) as u64,
        )),*]
    };
}
#[cfg(all(test, target_pointer_width = "64"))]
pub(crate) use layout;

/// The layout tests: every value bsd/abi/probe.sh printed for `os` from the
/// real headers (bsd/abi/pf-layout.txt) must be in `ours`, and equal.
#[cfg(all(test, target_pointer_width = "64"))]
pub fn check_layout(os: &str, ours: &[(&str, u64)]) {
    let file = include_str!("../../../bsd/abi/pf-layout.txt");
    let mut checked = 0;
    for line in file.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [o, name, want] = f[..] else {
            panic!("pf-layout.txt: bad line {line:?}");
        };
        if o != os {
            continue;
        }
        let want: u64 = want.parse().expect("pf-layout.txt: a number");
        let got = ours
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{os}: {name} is in the headers but not checked here"))
            .1;
        assert_eq!(got, want, "{os} {name}: ours {got}, the headers {want}");
        checked += 1;
    }
    assert_eq!(
        checked,
        ours.len(),
        "{os}: a value here has no line in pf-layout.txt"
    );
}

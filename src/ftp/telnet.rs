//! Telnet in the control channel (RFC 959 4.1.3, RFC 854): clients put
//! `IAC IP IAC DM` before ABOR, and servers strip such sequences before
//! they read the verb. The proxy must read the same verb the server will,
//! or `IAC IP PORT …` would slip past it untranslated.

/// Interpret As Command.
pub const IAC: u8 = 255;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// Copies `line` into `out` without its Telnet sequences: `IAC IAC` is one
/// data byte 255, `IAC WILL|WONT|DO|DONT x` and `IAC x` are dropped. Returns
/// the cleaned length. `out` must be at least as long as `line`.
pub fn strip(line: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b != IAC {
            out[n] = b;
            n += 1;
            i += 1;
            continue;
        }
        match line.get(i + 1) {
            Some(&IAC) => {
                out[n] = IAC;
                n += 1;
                i += 2;
            }
            Some(&(WILL..=DONT)) => i += 3,
            Some(_) => i += 2,
            None => i += 1,
        }
    }
    n
}

/// True when a line may carry Telnet sequences and needs `strip`.
pub fn has_iac(line: &[u8]) -> bool {
    line.contains(&IAC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(line: &[u8]) -> Vec<u8> {
        let mut out = vec![0; line.len()];
        let n = strip(line, &mut out);
        out.truncate(n);
        out
    }

    #[test]
    fn strips_abort_sequence_and_options() {
        assert_eq!(clean(b"\xff\xf4\xff\xf2ABOR\r\n"), b"ABOR\r\n");
        assert_eq!(
            clean(b"\xff\xf4PORT 1,2,3,4,5,6\r\n"),
            b"PORT 1,2,3,4,5,6\r\n"
        );
        assert_eq!(clean(b"\xff\xfb\x01NOOP"), b"NOOP");
        assert_eq!(clean(b"RETR a\xff\xffb"), b"RETR a\xffb");
        assert_eq!(clean(b"NOOP\xff"), b"NOOP");
        assert_eq!(clean(b"\xff\xfd"), b"");
        assert_eq!(clean(b"plain"), b"plain");
        assert!(has_iac(b"\xff\xf4ABOR") && !has_iac(b"ABOR"));
    }
}

//! Telnet in the control channel (RFC 959 4.1.3, RFC 854): clients put
//! `IAC IP IAC DM` before ABOR, and servers strip such sequences before
//! they read the verb. The proxy must read the same verb the server will,
//! or `IAC IP PORT …` would slip past it untranslated.
//!
//! Only well-formed sequences are accepted: a server that does not speak
//! Telnet reads the raw bytes, so `IAC CR` or `IAC NUL` would end or split
//! a line there and hide a second command from the proxy.

/// Interpret As Command.
pub const IAC: u8 = 255;
/// First and last Telnet command byte that stands alone (NOP … GA).
const NOP: u8 = 241;
const GA: u8 = 249;
/// Commands followed by one option byte.
const WILL: u8 = 251;
const DONT: u8 = 254;

/// Copies `line` into `out` without its Telnet sequences: `IAC IAC` is one
/// data byte 255, `IAC NOP..GA` and `IAC WILL|WONT|DO|DONT opt` are
/// dropped. Returns the cleaned length, or `None` when a sequence is
/// malformed: `IAC` followed by anything else (SB, SE, a control byte, the
/// end of the line), or an option byte that is a control byte. `out` must
/// be at least as long as `line`.
pub fn strip(line: &[u8], out: &mut [u8]) -> Option<usize> {
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
            Some(&(NOP..=GA)) => i += 2,
            Some(&(WILL..=DONT)) => match line.get(i + 2) {
                Some(&opt) if !is_control(opt) => i += 3,
                _ => return None,
            },
            _ => return None,
        }
    }
    Some(n)
}

/// Bytes no command may carry except its final CR LF.
pub fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// True when a line may carry Telnet sequences and needs `strip`.
pub fn has_iac(line: &[u8]) -> bool {
    line.contains(&IAC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(line: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0; line.len()];
        let n = strip(line, &mut out)?;
        out.truncate(n);
        Some(out)
    }

    #[test]
    fn strips_abort_sequence_and_options() {
        assert_eq!(clean(b"\xff\xf4\xff\xf2ABOR\r\n").unwrap(), b"ABOR\r\n");
        assert_eq!(
            clean(b"\xff\xf4PORT 1,2,3,4,5,6\r\n").unwrap(),
            b"PORT 1,2,3,4,5,6\r\n"
        );
        assert_eq!(clean(b"\xff\xfb\x01NOOP"), None, "option byte 1");
        assert_eq!(clean(b"\xff\xfb\x22NOOP").unwrap(), b"NOOP");
        assert_eq!(clean(b"RETR a\xff\xffb").unwrap(), b"RETR a\xffb");
        assert_eq!(clean(b"plain").unwrap(), b"plain");
        assert!(has_iac(b"\xff\xf4ABOR") && !has_iac(b"ABOR"));
    }

    #[test]
    fn malformed_sequences_are_refused() {
        // Each would let a server that ignores Telnet see a control byte.
        for bad in [
            &b"NOOP\xff\rPORT 1,2,3,4,5,6\r\n"[..],
            b"NOOP\xff\x00X\r\n",
            b"NOOP\xff\r\n",
            b"NOOP\xff",
            b"\xff\xfd",
            b"\xff\xfa\x18\xff\xf0NOOP\r\n", // SB … SE
            b"\xff\x41NOOP\r\n",
        ] {
            assert_eq!(clean(bad), None, "{bad:?}");
        }
    }
}

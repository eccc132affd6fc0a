//! Server replies: multi-line framing and the passive-mode replies 227/229.

use super::command::{parse_hostport, parse_u32};
use super::line::trim_eol;
use crate::handover::wire::{Reader, Writer};

/// Where a reply line stands in a (possibly multi-line) reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The last line of a reply, with its code.
    Final(u16),
    /// The first line of a multi-line reply (`ddd-`), with its code.
    Opens(u16),
    /// A line inside a multi-line reply: never rewritten.
    Inner,
}

/// Tracks multi-line replies (RFC 959 4.2): `ddd-` opens one, `ddd ` with
/// the same code closes it.
#[derive(Default)]
pub struct ReplyFramer {
    open: Option<u16>,
}

fn code(line: &[u8]) -> Option<(u16, u8)> {
    match line {
        [a @ b'1'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9', rest @ ..] => {
            let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            Some((code, rest.first().copied().unwrap_or(b' ')))
        }
        _ => None,
    }
}

impl ReplyFramer {
    /// Classifies one line. `None`: the line is not a reply at all.
    pub fn classify(&mut self, line: &[u8]) -> Option<Kind> {
        let parsed = code(trim_eol(line));
        match (self.open, parsed) {
            (Some(open), Some((c, b' '))) if c == open => {
                self.open = None;
                Some(Kind::Final(c))
            }
            (Some(_), _) => Some(Kind::Inner),
            (None, Some((c, b'-'))) => {
                self.open = Some(c);
                Some(Kind::Opens(c))
            }
            (None, Some((c, _))) => Some(Kind::Final(c)),
            (None, None) => None,
        }
    }

    pub fn save(&self, w: &mut Writer) {
        w.u16(self.open.unwrap_or(0));
    }

    pub fn load(r: &mut Reader) -> Option<ReplyFramer> {
        let open = match r.u16()? {
            0 => None,
            c @ 100..=599 => Some(c),
            _ => return None,
        };
        Some(ReplyFramer { open })
    }

    pub fn in_multiline(&self) -> bool {
        self.open.is_some()
    }

    /// The code of the multi-line reply under way.
    pub fn open_code(&self) -> Option<u16> {
        self.open
    }
}

/// The port of a 227 reply. The numbers follow the first digit after the
/// code, with or without parentheses (RFC 1123 4.1.2.6). The address is
/// returned for logging only: data always goes to the server's control
/// address.
pub fn parse_227(line: &[u8]) -> Option<([u8; 4], u16)> {
    let text = trim_eol(line).get(4..)?;
    let start = text.iter().position(u8::is_ascii_digit)?;
    let rest = &text[start..];
    let end = rest
        .iter()
        .position(|&b| !(b.is_ascii_digit() || b == b',' || b == b' '))
        .unwrap_or(rest.len());
    parse_hostport(&rest[..end])
}

/// The port of a 229 reply: `(<d><d><d>port<d>)` with any delimiter
/// (RFC 2428).
pub fn parse_229(line: &[u8]) -> Option<u16> {
    let text = trim_eol(line).get(4..)?;
    let open = text.iter().position(|&b| b == b'(')?;
    let inner = &text[open + 1..];
    let close = inner.iter().position(|&b| b == b')')?;
    let inner = &inner[..close];
    let (&d, rest) = inner.split_first()?;
    if !(33..=126).contains(&d) || d.is_ascii_digit() {
        return None;
    }
    let rest = rest.strip_prefix(&[d, d])?;
    let port = parse_u32(rest.strip_suffix(&[d])?)?;
    (1..=65535).contains(&port).then_some(port as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_only_final_line_counts() {
        let mut f = ReplyFramer::default();
        assert_eq!(f.classify(b"227-first\r\n"), Some(Kind::Opens(227)));
        assert_eq!(f.classify(b"(1,2,3,4,5,6) inner\r\n"), Some(Kind::Inner));
        assert_eq!(f.classify(b" 227 looks like one\r\n"), Some(Kind::Inner));
        assert_eq!(f.classify(b"228 other code\r\n"), Some(Kind::Inner));
        assert_eq!(f.classify(b"227 done\r\n"), Some(Kind::Final(227)));
        assert!(!f.in_multiline());
        assert_eq!(f.classify(b"211-FEAT\r\n"), Some(Kind::Opens(211)));
        assert_eq!(f.classify(b" EPSV\r\n"), Some(Kind::Inner));
        assert_eq!(f.classify(b"211 End\r\n"), Some(Kind::Final(211)));
        assert_eq!(f.classify(b"200\r\n"), Some(Kind::Final(200)));
        assert_eq!(f.classify(b"garbage\r\n"), None);
    }

    #[test]
    fn pasv_reply_variants() {
        let want = Some(([198, 18, 0, 1], 50000));
        assert_eq!(
            parse_227(b"227 Entering Passive Mode (198,18,0,1,195,80).\r\n"),
            want
        );
        assert_eq!(
            parse_227(b"227 Entering Passive Mode 198,18,0,1,195,80\r\n"),
            want
        );
        assert_eq!(parse_227(b"227 =198,18,0,1,195,80\r\n"), want);
        assert_eq!(parse_227(b"227 ok (198, 18, 0, 1, 195, 80)\n"), want);
        assert_eq!(parse_227(b"227 (1,2,3,4,256,1)\r\n"), None);
        assert_eq!(parse_227(b"227 (1,2,3,4,5)\r\n"), None);
        assert_eq!(parse_227(b"227 no numbers\r\n"), None);
        assert_eq!(parse_227(b"227"), None);
    }

    #[test]
    fn epsv_reply_variants() {
        assert_eq!(
            parse_229(b"229 Entering Extended Passive Mode (|||6446|)\r\n"),
            Some(6446)
        );
        assert_eq!(parse_229(b"229 ok (!!!65535!)\r\n"), Some(65535));
        assert_eq!(parse_229(b"229 (|||0|)\r\n"), None);
        assert_eq!(parse_229(b"229 (|||65536|)\r\n"), None);
        assert_eq!(parse_229(b"229 (||6446|)\r\n"), None);
        assert_eq!(parse_229(b"229 (|||6446)\r\n"), None);
        assert_eq!(parse_229(b"229 no parens\r\n"), None);
    }
}

//! Client commands the proxy must look at. Everything else passes unchanged.

use super::line::trim_eol;

/// Address family named in EPRT/EPSV (RFC 2428).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Af {
    Inet,
    Inet6,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// PORT with the port it names; the address is ignored (anti-bounce).
    Port(u16),
    /// EPRT with its family and port; the address is ignored.
    Eprt(Af, u16),
    Pasv,
    /// EPSV with no argument, or a family.
    Epsv(Option<Af>),
    EpsvAll,
    /// FEAT: its reply lists the features, TLS among them.
    Feat,
    User(&'a [u8]),
    /// AUTH, CCC, CONF, ENC, MIC, PROT…: would hide the control channel.
    Security,
    /// LPRT, LPSV: long address forms the proxy cannot translate.
    Long,
    /// A command the proxy looks at whose argument is malformed.
    Malformed(&'static str),
    Other,
}

/// The verb, upper-cased into `out`, and the argument after one space.
fn split(line: &[u8]) -> ([u8; 4], usize, &[u8]) {
    let line = trim_eol(line);
    let line = trim_start(line);
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let mut verb = [0u8; 4];
    let vlen = if end <= 4 { end } else { 5 };
    for (d, s) in verb.iter_mut().zip(&line[..end.min(4)]) {
        *d = s.to_ascii_uppercase();
    }
    let arg = trim_start(&line[end..]);
    let arg = trim_end(arg);
    (verb, vlen, arg)
}

fn trim_start(s: &[u8]) -> &[u8] {
    let i = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    &s[i..]
}

fn trim_end(s: &[u8]) -> &[u8] {
    let i = s.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &s[..i]
}

/// Decimal number of at most 5 digits, no sign.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')))
}

/// `h1,h2,h3,h4,p1,p2` (RFC 959) → the port; each field 0..=255.
pub fn parse_hostport(s: &[u8]) -> Option<([u8; 4], u16)> {
    let mut f = [0u8; 6];
    let mut n = 0;
    for part in s.split(|&b| b == b',') {
        let v = parse_u32(trim_end(trim_start(part)))?;
        if n == 6 || v > 255 {
            return None;
        }
        f[n] = v as u8;
        n += 1;
    }
    (n == 6).then(|| ([f[0], f[1], f[2], f[3]], u16::from_be_bytes([f[4], f[5]])))
}

fn parse_af(s: &[u8]) -> Option<Af> {
    match s {
        b"1" => Some(Af::Inet),
        b"2" => Some(Af::Inet6),
        _ => None,
    }
}

/// `<d>af<d>addr<d>port<d>` (RFC 2428), delimiter in 33..=126.
fn parse_eprt(s: &[u8]) -> Option<(Af, u16)> {
    let (&d, rest) = s.split_first()?;
    if !(33..=126).contains(&d) || rest.last() != Some(&d) {
        return None;
    }
    let mut it = rest[..rest.len() - 1].split(|&b| b == d);
    let af = parse_af(it.next()?)?;
    let addr = it.next()?;
    let port = parse_u32(it.next()?)?;
    if it.next().is_some() || addr.is_empty() || port == 0 || port > 65535 {
        return None;
    }
    Some((af, port as u16))
}

impl<'a> Command<'a> {
    pub fn parse(line: &'a [u8]) -> Command<'a> {
        let (verb, vlen, arg) = split(line);
        if vlen > 4 {
            return Command::Other;
        }
        match &verb[..vlen] {
            b"PORT" => match parse_hostport(arg) {
                Some((_, port)) => Command::Port(port),
                None => Command::Malformed("PORT"),
            },
            b"EPRT" => match parse_eprt(arg) {
                Some((af, port)) => Command::Eprt(af, port),
                None => Command::Malformed("EPRT"),
            },
            b"PASV" => Command::Pasv,
            b"EPSV" => {
                if arg.is_empty() {
                    Command::Epsv(None)
                } else if arg.eq_ignore_ascii_case(b"ALL") {
                    Command::EpsvAll
                } else {
                    match parse_af(arg) {
                        Some(af) => Command::Epsv(Some(af)),
                        None => Command::Malformed("EPSV"),
                    }
                }
            }
            b"USER" => Command::User(arg),
            b"FEAT" => Command::Feat,
            v if is_security(v) => Command::Security,
            b"LPRT" | b"LPSV" => Command::Long,
            _ => Command::Other,
        }
    }
}

/// RFC 2228's commands (and CCC, RFC 4217): each would hide the control
/// channel from the proxy, or needs a TLS session it cannot have.
fn is_security(verb: &[u8]) -> bool {
    matches!(
        verb,
        b"AUTH" | b"CCC" | b"CONF" | b"ENC" | b"MIC" | b"PBSZ" | b"PROT" | b"ADAT"
    )
}

/// A line of a FEAT reply (RFC 2389: ` AUTH TLS`) that offers one of
/// those: the proxy refuses them, so clients are not told of them.
pub fn is_security_feature(line: &[u8]) -> bool {
    let from = line.iter().position(|&b| b != b' ' && b != b'\t');
    let (verb, vlen, _) = split(&line[from.unwrap_or(line.len())..]);
    vlen <= 4 && is_security(&verb[..vlen])
}

/// `-A`: the user names an anonymous login accepts (ftp-proxy(8)).
pub fn is_anonymous(user: &[u8]) -> bool {
    user.eq_ignore_ascii_case(b"ftp") || user.eq_ignore_ascii_case(b"anonymous")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_features_are_told_from_others() {
        for l in [
            &b" AUTH TLS\r\n"[..],
            b" AUTH TLS;SSL;\r\n",
            b" auth ssl\n",
            b" PBSZ\r\n",
            b" PROT\r\n",
            b"\tCCC\r\n",
            b"AUTH TLS\r\n",
        ] {
            assert!(is_security_feature(l), "{l:?}");
        }
        for l in [
            &b" MDTM\r\n"[..],
            b" AUTHX\r\n",
            b" REST STREAM\r\n",
            b" UTF8\r\n",
            b" EPSV\r\n",
            b" PROTECT\r\n",
            b"\r\n",
        ] {
            assert!(!is_security_feature(l), "{l:?}");
        }
    }

    #[test]
    fn port_ignores_the_address_and_reads_the_port() {
        assert_eq!(
            Command::parse(b"PORT 1,2,3,4,195,80\r\n"),
            Command::Port(50000)
        );
        assert_eq!(Command::parse(b"port 1,2,3,4,0,21\n"), Command::Port(21));
        for bad in [
            &b"PORT 1,2,3,4,256,1"[..],
            b"PORT 1,2,3,4,5",
            b"PORT 1,2,3,4,5,6,7",
            b"PORT",
            b"PORT 1,2,3,4,-1,5",
            b"PORT a,b,c,d,e,f",
        ] {
            assert_eq!(Command::parse(bad), Command::Malformed("PORT"), "{bad:?}");
        }
    }

    #[test]
    fn eprt_both_families_any_delimiter() {
        assert_eq!(
            Command::parse(b"EPRT |1|198.18.0.1|50000|\r\n"),
            Command::Eprt(Af::Inet, 50000)
        );
        assert_eq!(
            Command::parse(b"eprt !2!2001:db8::1!6000!"),
            Command::Eprt(Af::Inet6, 6000)
        );
        for bad in [
            &b"EPRT |3|x|5|"[..],
            b"EPRT |1|x|0|",
            b"EPRT |1|x|70000|",
            b"EPRT |1||5|",
            b"EPRT |1|x|5",
            b"EPRT",
        ] {
            assert_eq!(Command::parse(bad), Command::Malformed("EPRT"), "{bad:?}");
        }
    }

    #[test]
    fn epsv_forms() {
        assert_eq!(Command::parse(b"EPSV\r\n"), Command::Epsv(None));
        assert_eq!(
            Command::parse(b"EPSV 2\r\n"),
            Command::Epsv(Some(Af::Inet6))
        );
        assert_eq!(Command::parse(b"epsv all\r\n"), Command::EpsvAll);
        assert_eq!(Command::parse(b"EPSV 7\r\n"), Command::Malformed("EPSV"));
        assert_eq!(Command::parse(b"PASV  \r\n"), Command::Pasv);
    }

    #[test]
    fn other_verbs() {
        assert_eq!(
            Command::parse(b"USER anonymous\r\n"),
            Command::User(b"anonymous")
        );
        assert_eq!(Command::parse(b"AUTH TLS\r\n"), Command::Security);
        assert_eq!(Command::parse(b"feat\r\n"), Command::Feat);
        assert_eq!(Command::parse(b"LPRT 4,4,1,2,3,4,2,1,1\r\n"), Command::Long);
        assert_eq!(Command::parse(b"RETR PORT\r\n"), Command::Other);
        assert_eq!(Command::parse(b"PORTX 1\r\n"), Command::Other);
        assert_eq!(Command::parse(b"\r\n"), Command::Other);
        assert!(is_anonymous(b"FTP") && is_anonymous(b"Anonymous") && !is_anonymous(b"root"));
    }
}

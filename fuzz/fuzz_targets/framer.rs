//! The line framer and the output buffer: every byte the peer sent comes
//! out once, in order, cut into lines that fit; the urgent byte keeps its
//! place and is flagged exactly once.
#![no_main]

use ftp_proxy::ftp::line::{Frame, LineBuf, OutBuf};
use ftp_proxy::ftp::MAX_LINE;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    // Reads of 1..=64 bytes (or whole 512-byte buffers), the urgent byte
    // somewhere in the stream, output taken 1..=16 bytes at a time.
    let chunk = match ctl & 0x3f {
        0 => MAX_LINE,
        c => usize::from(c),
    };
    let urgent_at = usize::from(ctl) * 7 % (input.len() + 1);
    let take = usize::from(ctl >> 4) + 1;

    let mut lb = LineBuf::<MAX_LINE>::default();
    let mut out = OutBuf::<{ 2 * MAX_LINE }>::default();
    let mut relayed = Vec::with_capacity(input.len());
    let mut flagged = Vec::new();
    let mut fed = 0;
    let mut in_long = false;
    let mut urgent_seen = None;
    let mut handed = 0;
    let mut drain = |out: &mut OutBuf<{ 2 * MAX_LINE }>, relayed: &mut Vec<u8>| {
        out.send_with(|b, urgent| {
            let n = if urgent { 1 } else { b.len().min(take) };
            assert!(!urgent || b.len() == 1, "urgent byte sent with others");
            if urgent {
                flagged.push(relayed.len());
            }
            relayed.extend_from_slice(&b[..n]);
            Ok(n)
        })
        .unwrap();
    };
    while fed < input.len() || lb.has_frame() {
        if fed < input.len() && !lb.is_full() {
            let end = (fed + chunk).min(input.len());
            // Reads stop at the urgent mark, as the kernel's do.
            let end = if fed < urgent_at && urgent_at < end {
                urgent_at
            } else {
                end
            };
            if fed == urgent_at {
                lb.mark_urgent();
            }
            fed += lb.extend(&input[fed..end]);
        }
        loop {
            let f = lb.frame();
            let n = match f {
                Frame::Partial => break,
                Frame::Line(n) => {
                    assert!(!in_long, "a line inside a long line");
                    n
                }
                Frame::LongStart(n) => {
                    assert!(!in_long && n == MAX_LINE);
                    in_long = true;
                    n
                }
                Frame::LongMore(n) => {
                    assert!(in_long);
                    n
                }
                Frame::LongEnd(n) => {
                    assert!(in_long);
                    in_long = false;
                    n
                }
            };
            let bytes = lb.head(n);
            assert!(n >= 1 && n <= MAX_LINE && bytes.len() == n);
            let lfs = bytes.iter().filter(|&&b| b == b'\n').count();
            match f {
                Frame::Line(_) | Frame::LongEnd(_) => {
                    assert!(lfs == 1 && bytes[n - 1] == b'\n')
                }
                _ => assert_eq!(lfs, 0),
            }
            if let Some(u) = lb.urgent_in(n) {
                assert_eq!(handed + u, urgent_at, "urgent byte moved");
                assert!(urgent_seen.replace(handed + u).is_none());
                assert!(out.push_urgent(bytes, u) || out.free() < n);
            } else {
                assert!(out.push(bytes) || out.free() < n);
            }
            if out.free() < n {
                // Backpressure: relay what is queued, then queue again.
                drain(&mut out, &mut relayed);
                match lb.urgent_in(n) {
                    Some(u) => assert!(out.push_urgent(lb.head(n), u)),
                    None => assert!(out.push(lb.head(n))),
                }
            }
            handed += n;
            lb.advance(f);
        }
        drain(&mut out, &mut relayed);
    }
    // What is left is an unfinished line; everything else went out as is.
    assert_eq!(handed + lb.pending().len(), input.len());
    assert_eq!(&relayed[..], &input[..handed]);
    if urgent_at < handed {
        assert_eq!(urgent_seen, Some(urgent_at));
        assert_eq!(flagged, [urgent_at]);
    }
});

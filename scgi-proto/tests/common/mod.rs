//! Test driver shared by the decoder tests: feeds an input to a [`Decoder`]
//! in pieces, as a connection would deliver it, and records what came out.
#![allow(dead_code, unreachable_pub)]

use scgi_proto::{Closed, Config, Decoder, Error, Step};

/// What one decode of one input produced. Adjacent body chunks are merged,
/// so results from different splits compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The headers, if the head was decoded.
    pub headers: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    /// The body bytes, merged.
    pub body: Vec<u8>,
    /// Bytes after the request, handed back by the decoder.
    pub trailing: Vec<u8>,
    /// How the input ended: `Ok(None)` when `End` was reached, `Ok(Some(c))`
    /// from `finish` at end of input, or the error.
    pub end: Result<Option<Closed>, Error>,
}

/// Decodes `input` delivered as the given pieces.
pub fn drive<'p>(config: Config, pieces: impl IntoIterator<Item = &'p [u8]>) -> Outcome {
    let mut decoder = Decoder::with_config(config);
    let mut pieces = pieces.into_iter();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Outcome {
        headers: None,
        body: Vec::new(),
        trailing: Vec::new(),
        end: Ok(None),
    };
    loop {
        match decoder.decode(&buf) {
            Ok(Step::Partial { needed }) => {
                assert!(needed >= 1, "Partial must ask for at least one byte");
                match pieces.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None => {
                        out.end = decoder.finish().map(Some);
                        break;
                    }
                }
            }
            Ok(Step::Head(head)) => {
                assert!(out.headers.is_none(), "two heads");
                let view = head.headers(&buf);
                assert_eq!(view.len(), head.header_count());
                assert_eq!(view.iter().count(), head.header_count());
                out.headers = Some(
                    view.iter()
                        .map(|h| (h.name().to_vec(), h.value().to_vec()))
                        .collect(),
                );
                buf.drain(..head.wire_len());
            }
            Ok(Step::Body(n)) => {
                assert!(n > 0 && n <= buf.len(), "body step out of range");
                out.body.extend_from_slice(&buf[..n]);
                buf.drain(..n);
            }
            Ok(Step::End) => {
                assert!(decoder.is_complete());
                // End is stable and consumes nothing.
                assert_eq!(decoder.decode(&buf), Ok(Step::End));
                out.trailing = buf;
                for p in pieces {
                    out.trailing.extend_from_slice(p);
                }
                assert_eq!(decoder.finish(), Ok(Closed::Complete));
                break;
            }
            Err(e) => {
                // Sticky: the same error again, whatever comes next.
                assert_eq!(decoder.decode(b"more"), Err(e));
                assert_eq!(decoder.finish(), Err(e));
                assert_eq!(decoder.error(), Some(e));
                out.end = Err(e);
                break;
            }
        }
    }
    out
}

/// Decodes `input` whole, one byte at a time, and split in two at every
/// point (for inputs over 16 KiB, which are large bodies: every point in the
/// first 2 KiB and 512 spread over the rest), asserting every way gives the
/// same outcome, which it returns.
pub fn decode_all_ways(config: Config, input: &[u8]) -> Outcome {
    let whole = drive(config, [input]);
    let bytewise = drive(config, input.chunks(1));
    assert_eq!(bytewise, whole, "one byte at a time differs from whole");
    let dense = if input.len() <= 16 * 1024 {
        input.len()
    } else {
        2048
    };
    let sparse_step = (input.len() / 512).max(1);
    let points = (0..=dense).chain((dense..=input.len()).step_by(sparse_step));
    for at in points {
        let (a, b) = input.split_at(at);
        let split = drive(config, [a, b]);
        assert_eq!(split, whole, "split at {at} differs from whole");
    }
    whole
}

/// `(name, value)` pairs from string literals, for expected header lists.
pub fn pairs(list: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    list.iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// Builds a netstring around `block`.
pub fn netstring(block: &[u8]) -> Vec<u8> {
    let mut v = format!("{}:", block.len()).into_bytes();
    v.extend_from_slice(block);
    v.push(b',');
    v
}

#![cfg(feature = "alloc")]
//! Property tests: encode-then-decode round trips, and an obviously-correct
//! oracle (the spec read literally, with owned data) that must agree with
//! the decoder on arbitrary bytes fed in arbitrary pieces.

mod common;

use common::{Outcome, drive};
use proptest::collection::vec;
use proptest::prelude::*;
use scgi_proto::{Closed, Config, encode_request_to_vec};

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What a connection's bytes mean: `Ok(None)` for an empty connection,
/// `Ok(Some((headers, body, trailing)))` for a complete request, `Err(())`
/// for anything malformed or cut short.
type Meaning = Result<Option<(Pairs, Vec<u8>, Vec<u8>)>, ()>;

/// The reference reading, under the default configuration. Written for
/// obviousness, not speed: split everything, then check every rule.
fn oracle(input: &[u8]) -> Meaning {
    if input.is_empty() {
        return Ok(None);
    }
    let colon = input.iter().position(|&b| b == b':').ok_or(())?;
    let digits = &input[..colon];
    let strict_digits = !digits.is_empty()
        && digits.len() <= 6
        && digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 1 || digits[0] != b'0');
    if !strict_digits {
        return Err(());
    }
    let len: usize = std::str::from_utf8(digits).unwrap().parse().unwrap();
    if len == 0 || len > 64 * 1024 {
        return Err(());
    }
    let rest = &input[colon + 1..];
    if rest.len() < len + 1 || rest[len] != b',' {
        return Err(());
    }
    let mut strings: Vec<&[u8]> = rest[..len].split(|&b| b == 0).collect();
    if strings.pop() != Some(&[][..]) || !strings.len().is_multiple_of(2) {
        return Err(());
    }
    let headers: Pairs = strings
        .chunks(2)
        .map(|p| (p[0].to_vec(), p[1].to_vec()))
        .collect();
    if headers.len() > 1024 || headers.iter().any(|(n, _)| n.is_empty()) {
        return Err(());
    }
    if headers[0].0 != b"CONTENT_LENGTH"
        || headers
            .iter()
            .filter(|(n, _)| n == b"CONTENT_LENGTH")
            .count()
            != 1
    {
        return Err(());
    }
    let cl = &headers[0].1;
    if cl.is_empty() || !cl.iter().all(u8::is_ascii_digit) {
        return Err(());
    }
    let cl: u64 = std::str::from_utf8(cl).unwrap().parse().map_err(|_| ())?;
    let scgi: Vec<&Vec<u8>> = headers
        .iter()
        .filter(|(n, _)| n == b"SCGI")
        .map(|(_, v)| v)
        .collect();
    if scgi.is_empty() || scgi.iter().any(|v| v.as_slice() != b"1") {
        return Err(());
    }
    let after = &rest[len + 1..];
    let cl = usize::try_from(cl).map_err(|_| ())?;
    if after.len() < cl {
        return Err(());
    }
    Ok(Some((headers, after[..cl].to_vec(), after[cl..].to_vec())))
}

fn meaning(o: Outcome) -> Meaning {
    match o.end {
        Ok(Some(Closed::Idle)) => Ok(None),
        Ok(None) => Ok(Some((
            o.headers.expect("head before end"),
            o.body,
            o.trailing,
        ))),
        Ok(Some(Closed::Complete)) => unreachable!("drive stops at End"),
        Err(_) => Err(()),
    }
}

/// Cuts `input` at the given fractions of its length.
fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for a in at {
        out.push(&input[prev..a]);
        prev = a;
    }
    out.push(&input[prev..]);
    out
}

fn header_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[A-Z_]{1,16}".prop_map(String::into_bytes),
        vec(1u8..=255, 1..24),
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,40}".prop_map(String::into_bytes),
        vec(1u8..=255, 0..64),
    ]
}

/// Valid user headers: unique, non-reserved names.
fn user_headers() -> impl Strategy<Value = Pairs> {
    vec((header_name(), header_value()), 0..24).prop_map(|mut hs| {
        let mut seen = std::collections::HashSet::new();
        hs.retain(|(n, _)| {
            n.as_slice() != b"CONTENT_LENGTH" && n.as_slice() != b"SCGI" && seen.insert(n.clone())
        });
        hs
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Delete(usize),
    Insert(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0u8),
        Just(b':'),
        Just(b','),
        (b'0'..=b'9'),
        any::<u8>()
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        vec(interesting_byte(), 1..8).prop_map(Mutation::Append),
    ]
}

fn apply(input: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match m {
        Mutation::Set(i, b) if !input.is_empty() => {
            let i = at(*i, input.len());
            input[i] = *b;
        }
        Mutation::Delete(i) if !input.is_empty() => {
            input.remove(at(*i, input.len()));
        }
        Mutation::Insert(i, b) => input.insert(at(*i, input.len() + 1), *b),
        Mutation::Truncate(i) => input.truncate(at(*i, input.len() + 1)),
        Mutation::Append(bytes) => input.extend_from_slice(bytes),
        _ => {}
    }
}

/// Inputs near the valid ones (most random bytes fail at the first byte).
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    (
        user_headers(),
        vec(any::<u8>(), 0..64),
        vec(mutation(), 0..4),
    )
        .prop_map(|(hs, body, muts)| {
            let mut wire = encode_request_to_vec(&hs, &body).expect("valid headers");
            for m in &muts {
                apply(&mut wire, m);
            }
            wire
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_round_trips(
        hs in user_headers(),
        body in vec(any::<u8>(), 0..4096),
        trailing in vec(any::<u8>(), 0..32),
        cuts in vec(any::<usize>(), 0..6),
    ) {
        let mut wire = encode_request_to_vec(&hs, &body).expect("valid headers");
        wire.extend_from_slice(&trailing);
        let got = drive(Config::DEFAULT, pieces(&wire, &cuts));
        let mut expected: Pairs = vec![
            (b"CONTENT_LENGTH".to_vec(), body.len().to_string().into_bytes()),
            (b"SCGI".to_vec(), b"1".to_vec()),
        ];
        expected.extend(hs);
        prop_assert_eq!(got.end, Ok(None));
        prop_assert_eq!(got.headers, Some(expected));
        prop_assert_eq!(got.body, body);
        prop_assert_eq!(got.trailing, trailing);
    }

    #[test]
    fn oracle_agrees_on_near_valid_input(
        input in near_valid(),
        cuts in vec(any::<usize>(), 0..6),
    ) {
        let whole = drive(Config::DEFAULT, [&input[..]]);
        let split = drive(Config::DEFAULT, pieces(&input, &cuts));
        prop_assert_eq!(&split, &whole);
        prop_assert_eq!(meaning(whole), oracle(&input));
    }

    #[test]
    fn oracle_agrees_on_arbitrary_bytes(
        input in vec(any::<u8>(), 0..256),
        cuts in vec(any::<usize>(), 0..6),
    ) {
        let whole = drive(Config::DEFAULT, [&input[..]]);
        let split = drive(Config::DEFAULT, pieces(&input, &cuts));
        prop_assert_eq!(&split, &whole);
        prop_assert_eq!(meaning(whole), oracle(&input));
    }
}

#[test]
fn oracle_accepts_the_spec_example() {
    let spec = b"70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,What is the answer to life?";
    let (headers, body, trailing) = oracle(spec).unwrap().unwrap();
    assert_eq!(headers.len(), 4);
    assert_eq!(body, b"What is the answer to life?");
    assert!(trailing.is_empty());
    assert_eq!(oracle(&spec[..50]), Err(()));
}

/// The near-valid generator must exercise both sides of the oracle, or the
/// agreement test above would prove little.
#[test]
fn near_valid_inputs_are_a_mix() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut ok, mut err) = (0, 0);
    for _ in 0..1000 {
        let input = near_valid().new_tree(&mut runner).unwrap().current();
        match oracle(&input) {
            Ok(_) => ok += 1,
            Err(()) => err += 1,
        }
    }
    assert!(ok >= 100 && err >= 100, "ok={ok} err={err}");
}

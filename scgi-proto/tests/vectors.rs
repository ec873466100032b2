//! One named test per byte vector: the spec's worked example, edge cases the
//! decoder must accept, and malformed input it must refuse with an exact
//! error. Each vector is decoded whole, one byte at a time and split at every
//! point (see `common::decode_all_ways`), and every way must agree.

mod common;

use common::{Outcome, decode_all_ways, netstring, pairs};
use scgi_proto::{
    Closed, Config, ContentLengthPosition, Duplicates, Error, Limits, Policy, ScgiHeader,
};

const D: Config = Config::DEFAULT;

/// The spec's worked example (protocol.txt, 2008).
const SPEC: &[u8] = b"70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,What is the answer to life?";
const SPEC_HEADERS: &[(&str, &str)] = &[
    ("CONTENT_LENGTH", "27"),
    ("SCGI", "1"),
    ("REQUEST_METHOD", "POST"),
    ("REQUEST_URI", "/deepthought"),
];

/// A NUL-separated header block from raw byte pairs.
fn block(list: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in list {
        b.extend_from_slice(n);
        b.push(0);
        b.extend_from_slice(v);
        b.push(0);
    }
    b
}

/// A request (netstring plus `body` and `after`) from string pairs.
fn req(list: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let raw: Vec<(&[u8], &[u8])> = list
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    let mut v = netstring(&block(&raw));
    v.extend_from_slice(body);
    v
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

fn ok(headers: &[(&str, &str)], body: &[u8], trailing: &[u8]) -> Outcome {
    Outcome {
        headers: Some(pairs(headers)),
        body: body.to_vec(),
        trailing: trailing.to_vec(),
        end: Ok(None),
    }
}

fn err(e: Error) -> Outcome {
    Outcome {
        headers: None,
        body: Vec::new(),
        trailing: Vec::new(),
        end: Err(e),
    }
}

/// An error after the head was decoded (and `body` bytes of body seen).
fn err_in_body(headers: &[(&str, &str)], body: &[u8], e: Error) -> Outcome {
    Outcome {
        end: Err(e),
        ..ok(headers, body, b"")
    }
}

fn idle() -> Outcome {
    Outcome {
        headers: None,
        body: Vec::new(),
        trailing: Vec::new(),
        end: Ok(Some(Closed::Idle)),
    }
}

fn policy(p: Policy) -> Config {
    Config::DEFAULT.with_policy(p)
}

fn limits(l: Limits) -> Config {
    Config::DEFAULT.with_limits(l)
}

const MIN: &[(&str, &str)] = &[("CONTENT_LENGTH", "0"), ("SCGI", "1")];

macro_rules! vectors {
    ($($name:ident: $config:expr, $input:expr => $expect:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let input: Vec<u8> = $input.to_vec();
                assert_eq!(decode_all_ways($config, &input), $expect);
            }
        )*
    };
}

vectors! {
    // ---- accepted ----
    spec_example: D, SPEC => ok(SPEC_HEADERS, b"What is the answer to life?", b"");
    spec_example_with_tunnel_bytes: D, cat(SPEC, b"\x81\x05hello")
        => ok(SPEC_HEADERS, b"What is the answer to life?", b"\x81\x05hello");
    minimal_request: D, req(MIN, b"") => ok(MIN, b"", b"");
    zero_length_body_then_trailing: D, req(MIN, b"extra")
        => ok(MIN, b"", b"extra");
    nginx_short_content_length_leaves_the_rest: D,
        req(&[("CONTENT_LENGTH", "3"), ("SCGI", "1")], b"abcdefgh")
        => ok(&[("CONTENT_LENGTH", "3"), ("SCGI", "1")], b"abc", b"defgh");
    scgi_header_last_like_lighttpd: D,
        req(&[("CONTENT_LENGTH", "2"), ("REQUEST_METHOD", "PUT"), ("SCGI", "1")], b"hi")
        => ok(&[("CONTENT_LENGTH", "2"), ("REQUEST_METHOD", "PUT"), ("SCGI", "1")], b"hi", b"");
    empty_values_are_legal: D,
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("QUERY_STRING", ""), ("CONTENT_TYPE", "")], b"")
        => ok(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("QUERY_STRING", ""), ("CONTENT_TYPE", "")], b"", b"");
    duplicate_names_kept_in_order: D,
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("HTTP_COOKIE", "a=1"), ("HTTP_COOKIE", "b=2")], b"")
        => ok(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("HTTP_COOKIE", "a=1"), ("HTTP_COOKIE", "b=2")], b"", b"");
    content_length_leading_zeros: D,
        req(&[("CONTENT_LENGTH", "007"), ("SCGI", "1")], b"1234567")
        => ok(&[("CONTENT_LENGTH", "007"), ("SCGI", "1")], b"1234567", b"");
    non_utf8_values_decode: D,
        netstring(&block(&[(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1"), (b"REQUEST_URI", b"/caf\xe9\xff")]))
        => Outcome { headers: Some(vec![
            (b"CONTENT_LENGTH".to_vec(), b"0".to_vec()),
            (b"SCGI".to_vec(), b"1".to_vec()),
            (b"REQUEST_URI".to_vec(), b"/caf\xe9\xff".to_vec()),
        ]), ..ok(&[], b"", b"") };
    value_with_every_non_nul_byte: D,
        netstring(&block(&[(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1"), (b"X", &(1..=255u8).collect::<Vec<_>>())]))
        => Outcome { headers: Some(vec![
            (b"CONTENT_LENGTH".to_vec(), b"0".to_vec()),
            (b"SCGI".to_vec(), b"1".to_vec()),
            (b"X".to_vec(), (1..=255u8).collect()),
        ]), ..ok(&[], b"", b"") };
    body_with_nul_and_commas: D,
        req(&[("CONTENT_LENGTH", "5"), ("SCGI", "1")], b"\x00,:\x00,")
        => ok(&[("CONTENT_LENGTH", "5"), ("SCGI", "1")], b"\x00,:\x00,", b"");
    max_content_length_is_accepted: D,
        req(&[("CONTENT_LENGTH", "18446744073709551615"), ("SCGI", "1")], b"ab")
        => err_in_body(&[("CONTENT_LENGTH", "18446744073709551615"), ("SCGI", "1")], b"ab",
            Error::IncompleteBody { missing: u64::MAX - 2 });
    content_length_anywhere_when_lenient:
        policy(Policy::DEFAULT.with_content_length(ContentLengthPosition::Anywhere)),
        req(&[("SCGI", "1"), ("CONTENT_LENGTH", "1")], b"x")
        => ok(&[("SCGI", "1"), ("CONTENT_LENGTH", "1")], b"x", b"");
    scgi_missing_accepted_when_optional:
        policy(Policy::DEFAULT.with_scgi(ScgiHeader::Optional)),
        req(&[("CONTENT_LENGTH", "0"), ("REQUEST_METHOD", "GET")], b"")
        => ok(&[("CONTENT_LENGTH", "0"), ("REQUEST_METHOD", "GET")], b"", b"");
    scgi_other_value_accepted_when_optional:
        policy(Policy::DEFAULT.with_scgi(ScgiHeader::Optional)),
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "2")], b"")
        => ok(&[("CONTENT_LENGTH", "0"), ("SCGI", "2")], b"", b"");
    head_exactly_at_the_limit: limits(Limits::DEFAULT.with_max_head(24)),
        req(MIN, b"") => ok(MIN, b"", b"");
    headers_exactly_at_the_limit: limits(Limits::DEFAULT.with_max_headers(2)),
        req(MIN, b"") => ok(MIN, b"", b"");
    body_exactly_at_the_limit: limits(Limits::DEFAULT.with_max_body(Some(3))),
        req(&[("CONTENT_LENGTH", "3"), ("SCGI", "1")], b"abc")
        => ok(&[("CONTENT_LENGTH", "3"), ("SCGI", "1")], b"abc", b"");
    empty_connection_is_idle: D, b"" => idle();

    // ---- refused: the netstring ----
    http_request_on_the_scgi_port: D, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        => err(Error::NotNetstring { byte: b'G' });
    http2_preface: D, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" => err(Error::NotNetstring { byte: b'P' });
    tls_client_hello: D, b"\x16\x03\x01\x02\x00\x01" => err(Error::NotNetstring { byte: 0x16 });
    colon_without_length: D, b":CONTENT_LENGTH\x000\x00," => err(Error::NotNetstring { byte: b':' });
    negative_length: D, b"-5:abcde," => err(Error::NotNetstring { byte: b'-' });
    space_before_length: D, b" 24:" => err(Error::NotNetstring { byte: b' ' });
    space_after_length: D, b"24 :" => err(Error::InvalidLength { byte: b' ' });
    letter_in_length: D, b"2a:" => err(Error::InvalidLength { byte: b'a' });
    plus_in_length: D, b"2+4:" => err(Error::InvalidLength { byte: b'+' });
    leading_zero_length: D, cat(b"0", &req(MIN, b"")) => err(Error::LeadingZero);
    double_zero_length: D, b"00:," => err(Error::LeadingZero);
    empty_netstring: D, b"0:," => err(Error::EmptyHead);
    length_over_default_limit: D, b"65537:" => err(Error::HeadTooLarge { limit: 65536, claimed: 65537 });
    huge_length_fails_at_fifth_digit: D, b"999999999999999999999999999999:"
        => err(Error::HeadTooLarge { limit: 65536, claimed: 99_999 });
    length_over_custom_limit: limits(Limits::DEFAULT.with_max_head(23)), req(MIN, b"")
        => err(Error::HeadTooLarge { limit: 23, claimed: 24 });
    length_one_too_long_eats_body: D,
        cat(b"71", &SPEC[2..]) => err(Error::MissingComma { found: b'W' });
    length_one_too_short: D,
        cat(b"69", &SPEC[2..]) => err(Error::MissingComma { found: 0 });
    semicolon_instead_of_comma: D,
        b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00;" => err(Error::MissingComma { found: b';' });
    block_not_nul_terminated: D,
        b"23:CONTENT_LENGTH\x000\x00SCGI\x001," => err(Error::UnterminatedHead);
    // Every header complete and an even count of NULs, then a name that
    // never ends (found by the fuzzer in a lean validation pass).
    block_ends_inside_a_name: D,
        b"28:CONTENT_LENGTH\x000\x00SCGI\x001\x00CONT," => err(Error::UnterminatedHead);
    eof_inside_length: D, b"7" => err(Error::IncompleteHead);
    eof_inside_block: D, b"70:CONTENT_LENGTH\x0027\x00SC" => err(Error::IncompleteHead);
    eof_before_comma: D, &SPEC[..73] => err(Error::IncompleteHead);

    // ---- refused: the headers ----
    single_nul_block: D, netstring(b"\x00") => err(Error::EmptyName { index: 0 });
    empty_name_second: D,
        netstring(&block(&[(b"CONTENT_LENGTH", b"0"), (b"", b"x"), (b"SCGI", b"1")]))
        => err(Error::EmptyName { index: 1 });
    name_without_value: D,
        netstring(b"CONTENT_LENGTH\x000\x00SCGI\x001\x00ODD\x00")
        => err(Error::MissingValue { index: 2 });
    content_length_not_first: D,
        req(&[("SCGI", "1"), ("CONTENT_LENGTH", "0")], b"") => err(Error::ContentLengthNotFirst);
    content_length_absent_strict: D,
        req(&[("SCGI", "1"), ("REQUEST_METHOD", "GET")], b"") => err(Error::ContentLengthNotFirst);
    content_length_absent_lenient:
        policy(Policy::DEFAULT.with_content_length(ContentLengthPosition::Anywhere)),
        req(&[("SCGI", "1"), ("REQUEST_METHOD", "GET")], b"") => err(Error::MissingContentLength);
    content_length_lowercase_name: D,
        req(&[("content_length", "0"), ("SCGI", "1")], b"") => err(Error::ContentLengthNotFirst);
    content_length_empty: D,
        req(&[("CONTENT_LENGTH", ""), ("SCGI", "1")], b"") => err(Error::InvalidContentLength);
    content_length_plus_sign: D,
        req(&[("CONTENT_LENGTH", "+5"), ("SCGI", "1")], b"") => err(Error::InvalidContentLength);
    content_length_negative: D,
        req(&[("CONTENT_LENGTH", "-1"), ("SCGI", "1")], b"") => err(Error::InvalidContentLength);
    content_length_leading_space: D,
        req(&[("CONTENT_LENGTH", " 5"), ("SCGI", "1")], b"") => err(Error::InvalidContentLength);
    content_length_trailing_space: D,
        req(&[("CONTENT_LENGTH", "5 "), ("SCGI", "1")], b"") => err(Error::InvalidContentLength);
    content_length_hex: D,
        req(&[("CONTENT_LENGTH", "0x10"), ("SCGI", "1")], b"") => err(Error::InvalidContentLength);
    content_length_exponent: D,
        req(&[("CONTENT_LENGTH", "1e3"), ("SCGI", "1")], b"") => err(Error::InvalidContentLength);
    content_length_u64_overflow: D,
        req(&[("CONTENT_LENGTH", "18446744073709551616"), ("SCGI", "1")], b"")
        => err(Error::InvalidContentLength);
    content_length_twice: D,
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("CONTENT_LENGTH", "5")], b"")
        => err(Error::DuplicateContentLength);
    content_length_twice_even_lenient:
        policy(Policy::DEFAULT.with_content_length(ContentLengthPosition::Anywhere)),
        req(&[("SCGI", "1"), ("CONTENT_LENGTH", "0"), ("CONTENT_LENGTH", "0")], b"")
        => err(Error::DuplicateContentLength);
    content_length_twice_when_duplicates_last_wins:
        policy(Policy::DEFAULT.with_duplicates(Duplicates::Last)),
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("CONTENT_LENGTH", "9")], b"")
        => err(Error::DuplicateContentLength);
    scgi_missing_like_nginx_without_scgi_params: D,
        req(&[("CONTENT_LENGTH", "0"), ("REQUEST_METHOD", "GET")], b"") => err(Error::MissingScgi);
    scgi_version_two: D,
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "2")], b"") => err(Error::InvalidScgi);
    scgi_empty_value: D,
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "")], b"") => err(Error::InvalidScgi);
    scgi_zero_padded: D,
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "01")], b"") => err(Error::InvalidScgi);
    scgi_lowercase_name_does_not_count: D,
        req(&[("CONTENT_LENGTH", "0"), ("scgi", "1")], b"") => err(Error::MissingScgi);
    duplicate_rejected_when_asked:
        policy(Policy::DEFAULT.with_duplicates(Duplicates::Reject)),
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("HTTP_ACCEPT", "a"), ("HTTP_HOST", "h"), ("HTTP_ACCEPT", "b")], b"")
        => err(Error::DuplicateHeader { index: 4 });
    duplicate_scgi_rejected_when_asked:
        policy(Policy::DEFAULT.with_duplicates(Duplicates::Reject)),
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("SCGI", "1")], b"")
        => err(Error::DuplicateHeader { index: 2 });
    too_many_headers: limits(Limits::DEFAULT.with_max_headers(3)),
        req(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("A", "1"), ("B", "2")], b"")
        => err(Error::TooManyHeaders { limit: 3 });
    body_over_limit: limits(Limits::DEFAULT.with_max_body(Some(10))),
        req(&[("CONTENT_LENGTH", "11"), ("SCGI", "1")], b"01234567890")
        => err(Error::BodyTooLarge { limit: 10, content_length: 11 });

    // ---- refused: the body ----
    eof_inside_body: D, &SPEC[..SPEC.len() - 17]
        => err_in_body(SPEC_HEADERS, b"What is th", Error::IncompleteBody { missing: 17 });
    eof_right_after_head: D, &SPEC[..SPEC.len() - 27]
        => err_in_body(SPEC_HEADERS, b"", Error::IncompleteBody { missing: 27 });
}

#[test]
fn status_hints() {
    assert_eq!(Error::NotNetstring { byte: b'G' }.status_hint(), 400);
    assert_eq!(Error::MissingScgi.status_hint(), 400);
    assert_eq!(Error::IncompleteBody { missing: 1 }.status_hint(), 400);
    assert_eq!(
        Error::HeadTooLarge {
            limit: 1,
            claimed: 2
        }
        .status_hint(),
        431
    );
    assert_eq!(Error::TooManyHeaders { limit: 1 }.status_hint(), 431);
    assert_eq!(
        Error::BodyTooLarge {
            limit: 1,
            content_length: 2
        }
        .status_hint(),
        413
    );
}

#[test]
fn missing_scgi_message_names_scgi_params() {
    assert!(
        Error::MissingScgi
            .to_string()
            .contains("include scgi_params;")
    );
}

#[test]
fn error_messages_carry_the_numbers() {
    let msg = Error::HeadTooLarge {
        limit: 65536,
        claimed: 70000,
    }
    .to_string();
    assert!(msg.contains("65536") && msg.contains("70000"), "{msg}");
    let msg = Error::BodyTooLarge {
        limit: 10,
        content_length: 11,
    }
    .to_string();
    assert!(msg.contains("10") && msg.contains("11"), "{msg}");
}

#[test]
fn oversized_claim_fails_before_the_block_arrives() {
    // Only the prefix has arrived: the decoder must not wait for 70 000 bytes.
    let mut d = scgi_proto::Decoder::new();
    assert_eq!(
        d.decode(b"70000"),
        Err(Error::HeadTooLarge {
            limit: 65536,
            claimed: 70000
        })
    );
}

#[test]
fn partial_reports_bytes_still_needed() {
    let mut d = scgi_proto::Decoder::new();
    assert_eq!(
        d.decode(&SPEC[..10]),
        Ok(scgi_proto::Step::Partial { needed: 74 - 10 })
    );
}

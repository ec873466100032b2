//! The `response` target: the response head writer against the response
//! parser, and the parser against arbitrary bytes.

use arbitrary::{Arbitrary, Unstructured};
use scgi_proto::{
    EncodeError, HeadWriter, ParsedResponse, ResponseError, ResponseHead, ResponseParser,
    ResponseStep, encode_error_response, error_response, reason_phrase,
};

use crate::pieces::{inside, pieces, plan};

/// `data[0]` picks the mode. Even: the parser reads the rest, laid out as in
/// `decode_split` (`[k] [k size bytes] [response bytes]` after the mode
/// byte), whole and in pieces, under the default limit and a limit of half
/// the input. Odd: the rest is a writer case built by `arbitrary`; the head
/// it writes must parse back to the same status, reason and headers.
pub fn response(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        parse_bytes(rest);
    } else if let Ok(case) = WriteCase::arbitrary_take_rest(Unstructured::new(rest)) {
        write_case(&case);
    }
}

/// An HTTP token's characters (RFC 9110 `tchar`).
const TCHARS: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn is_tchar(b: u8) -> bool {
    TCHARS.contains(&b)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    trim_end_ows(v)
}

fn trim_end_ows(mut v: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Feeds `pieces` to `parser`, appending each to a buffer, until the parser
/// says something other than `Partial`. Returns the buffer and the result.
fn parse_pieces<'a>(
    parser: &mut ResponseParser,
    pieces: impl Iterator<Item = &'a [u8]>,
) -> (Vec<u8>, Result<ResponseStep, ResponseError>) {
    let mut buf = Vec::new();
    let mut result = parser.parse(&buf);
    for piece in pieces {
        if result != Ok(ResponseStep::Partial) {
            break;
        }
        buf.extend_from_slice(piece);
        result = parser.parse(&buf);
    }
    (buf, result)
}

fn parse_bytes(data: &[u8]) {
    let (sizes, input) = plan(data);
    for max_head in [ResponseParser::DEFAULT_MAX_HEAD, input.len() / 2] {
        let mut whole = ResponseParser::with_max_head(max_head);
        let (buf, result) = parse_pieces(&mut whole, core::iter::once(input));
        let mut split = ResponseParser::with_max_head(max_head);
        let (_, split_result) = parse_pieces(&mut split, pieces(sizes, input));
        assert_eq!(result, split_result, "split parse differs from one-shot");
        match &result {
            Ok(ResponseStep::Complete(p)) => {
                check_parsed(p, &buf, max_head);
            }
            Ok(ResponseStep::Partial) => assert!(input.len() < max_head),
            Err(e) => {
                assert_eq!(whole.parse(&buf).as_ref(), Err(e), "error not sticky");
                assert_eq!(
                    whole.parse(b"Status: 200 OK\r\n\r\n").as_ref(),
                    Err(e),
                    "error not sticky"
                );
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

/// Checks a complete head against the bytes it was parsed from.
fn check_parsed(p: &ParsedResponse, input: &[u8], max_head: usize) {
    let len = p.head_len();
    assert!(len <= input.len() && len <= max_head);
    assert_eq!(input[len - 1], b'\n');
    let view = p.view(input);
    assert!(inside(input, view.as_bytes()) && view.as_bytes() == &input[..len]);
    assert_eq!(view.status(), p.status());
    assert_eq!(view.explicit_status(), p.explicit_status());
    assert!((100..=999).contains(&p.status()));
    let reason = view.reason();
    assert!(inside(input, reason) || reason.is_empty());
    assert!(
        !reason
            .iter()
            .any(|&b| (b < b' ' && b != b'\t') || b == 0x7f)
    );
    let headers: Vec<_> = view.headers().collect();
    assert_eq!(headers.len(), view.len(), "header count");
    assert_eq!(view.is_empty(), headers.is_empty());
    for (name, value) in &headers {
        assert!(inside(input, name.as_bytes()) && inside(input, value));
        assert!(!name.is_empty() && name.bytes().all(is_tchar));
        assert!(!name.eq_ignore_ascii_case("status"));
        assert!(!value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)));
        assert_eq!(trim_ows(value), *value);
    }
    if !p.explicit_status() {
        let location = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("location"));
        assert_eq!(p.status(), if location { 302 } else { 200 });
    }
    for (name, _) in headers.iter().take(8) {
        let first = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v);
        assert_eq!(view.get(name), first);
    }
    let _ = view.content_length();
}

#[derive(Arbitrary, Debug)]
struct WriteCase {
    status: StatusGen,
    reason: Option<String>,
    headers: Vec<(NameGen, Vec<u8>)>,
    /// Piece size (plus one) for the split parse.
    piece: u8,
    /// Body bytes after the head.
    body: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
enum StatusGen {
    Any(u16),
    Common(u8),
}

impl StatusGen {
    fn code(&self) -> u16 {
        const COMMON: [u16; 12] = [101, 200, 204, 302, 404, 500, 599, 100, 199, 600, 0, 299];
        match *self {
            StatusGen::Any(c) => c,
            StatusGen::Common(i) => COMMON[usize::from(i) % COMMON.len()],
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum NameGen {
    /// Bytes mapped onto token characters: always a valid name (unless
    /// empty).
    Token(Vec<u8>),
    Raw(String),
    Known(KnownName),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum KnownName {
    Status,
    StatusUpper,
    ContentType,
    ContentLength,
    Location,
    SetCookie,
    HttpVersion,
}

impl NameGen {
    fn name(&self) -> String {
        match self {
            NameGen::Token(b) => b
                .iter()
                .map(|&c| char::from(TCHARS[usize::from(c) % TCHARS.len()]))
                .collect(),
            NameGen::Raw(s) => s.clone(),
            NameGen::Known(k) => match k {
                KnownName::Status => "Status",
                KnownName::StatusUpper => "STATUS",
                KnownName::ContentType => "Content-Type",
                KnownName::ContentLength => "Content-Length",
                KnownName::Location => "Location",
                KnownName::SetCookie => "Set-Cookie",
                KnownName::HttpVersion => "HTTP/1.1 200 OK",
            }
            .to_owned(),
        }
    }
}

/// Where the writer stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stage {
    Start,
    Header(usize),
    Finish,
}

fn write_head(
    buf: &mut [u8],
    code: u16,
    reason: Option<&str>,
    headers: &[(String, &[u8])],
) -> Result<usize, (Stage, EncodeError)> {
    let mut w = match reason {
        None => HeadWriter::new(buf, code),
        Some(r) => HeadWriter::with_reason(buf, code, r),
    }
    .map_err(|e| (Stage::Start, e))?;
    for (i, (name, value)) in headers.iter().enumerate() {
        w.header(name, value).map_err(|e| (Stage::Header(i), e))?;
    }
    w.finish().map_err(|e| (Stage::Finish, e))
}

fn write_case(case: &WriteCase) {
    let code = case.status.code();
    let reason = case.reason.as_deref();
    let headers: Vec<(String, &[u8])> = case
        .headers
        .iter()
        .map(|(n, v)| (n.name(), v.as_slice()))
        .collect();

    // What the writer must refuse, and where.
    let status_ok = code == 101 || (200..=599).contains(&code);
    let reason_ok =
        reason.is_none_or(|r| r.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f)));
    let expected_error = if !status_ok {
        Some((Stage::Start, vec![EncodeError::InvalidStatus { code }]))
    } else if !reason_ok {
        Some((Stage::Start, vec![EncodeError::InvalidReason]))
    } else {
        headers
            .iter()
            .enumerate()
            .find_map(|(index, (name, value))| {
                let mut why = Vec::new();
                if name.is_empty() || !name.bytes().all(is_tchar) {
                    why.push(EncodeError::InvalidName { index });
                }
                if name.eq_ignore_ascii_case("status") {
                    why.push(EncodeError::ReservedName { index });
                }
                // RFC 9110 field-value bytes only, as http::HeaderValue.
                if !value
                    .iter()
                    .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f))
                {
                    why.push(EncodeError::InvalidValue { index });
                }
                (!why.is_empty()).then_some((Stage::Header(index), why))
            })
    };

    // The reason doubles as the detail of a plain-text error answer.
    check_error_response(code, reason.unwrap_or(""));

    // A first pass into an empty buffer counts the size needed.
    let len = match (write_head(&mut [], code, reason, &headers), expected_error) {
        (Err((stage, e)), Some((want_stage, why))) => {
            assert!(
                stage == want_stage && why.contains(&e),
                "refused at {stage:?} with {e:?}, expected {want_stage:?} with one of {why:?}"
            );
            check_value_type(code, reason, &headers, Some(e));
            return;
        }
        (Err((Stage::Finish, EncodeError::BufferTooSmall { required })), None) => required,
        (result, None) => panic!("writing into an empty buffer gave {result:?}"),
        (Ok(_), Some((stage, why))) => {
            panic!("writer accepted what it must refuse at {stage:?} ({why:?})")
        }
    };
    let mut head = vec![0; len];
    assert_eq!(write_head(&mut head, code, reason, &headers), Ok(len));
    let mut short = vec![0; len - 1];
    assert_eq!(
        write_head(&mut short, code, reason, &headers),
        Err((Stage::Finish, EncodeError::BufferTooSmall { required: len }))
    );
    if let Some(bytes) = check_value_type(code, reason, &headers, None) {
        assert_eq!(bytes, head, "ResponseHead and HeadWriter differ");
    }

    // The parser must read back exactly what was written.
    let mut wire = head.clone();
    wire.extend_from_slice(&case.body);
    let size = [case.piece];
    for split in [false, true] {
        let mut parser = ResponseParser::new();
        let (buf, result) = if split {
            parse_pieces(&mut parser, pieces(&size, &wire))
        } else {
            parse_pieces(&mut parser, core::iter::once(&wire[..]))
        };
        let Ok(ResponseStep::Complete(p)) = result else {
            panic!(
                "written head {:?} parses as {result:?}",
                head.escape_ascii().to_string()
            );
        };
        check_parsed(&p, &buf, ResponseParser::DEFAULT_MAX_HEAD);
        assert_eq!(
            p.head_len(),
            len,
            "parser and writer disagree on the head's end"
        );
        let view = p.view(&buf);
        assert_eq!(view.status(), code);
        assert!(view.explicit_status());
        match reason {
            Some(r) => assert_eq!(view.reason(), trim_end_ows(r.as_bytes())),
            None => {
                if let Some(canonical) = reason_phrase(code) {
                    assert_eq!(view.reason(), canonical.as_bytes());
                }
                assert!(!view.reason().is_empty());
            }
        }
        let got: Vec<(&str, &[u8])> = view.headers().collect();
        let want: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), trim_ows(v)))
            .collect();
        assert_eq!(got, want, "headers read back differ");
    }
}

/// [`ResponseHead`] (the value form, `&str` values only) must write the same
/// bytes as [`HeadWriter`], or refuse with the same error. Returns its
/// bytes, or `None` when a value is not UTF-8 or it refused.
fn check_value_type(
    code: u16,
    reason: Option<&str>,
    headers: &[(String, &[u8])],
    refused: Option<EncodeError>,
) -> Option<Vec<u8>> {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| Some((n.as_str(), std::str::from_utf8(v).ok()?)))
        .collect::<Option<_>>()?;
    let mut head = ResponseHead::new(code).headers(&pairs);
    if let Some(r) = reason {
        head = head.reason(r);
    }
    if let Some(e) = refused {
        assert_eq!(head.encoded_len(), Err(e));
        assert_eq!(head.to_vec(), Err(e));
        let mut sink = Vec::new();
        assert!(head.write_to(&mut sink).is_err() && sink.is_empty());
        return None;
    }
    let bytes = head.to_vec().expect("valid head");
    assert_eq!(head.encoded_len(), Ok(bytes.len()));
    let mut sink = Vec::new();
    head.write_to(&mut sink).expect("write to a Vec");
    assert_eq!(sink, bytes);
    Some(bytes)
}

/// `error_response(code, detail)`: refused exactly for a status the writer
/// refuses; otherwise a head the parser reads as `code` with a
/// `Content-Length` that frames the body `"<code> <reason>\n<detail>\n"`
/// exactly, whatever `detail` holds (CR and LF included: it is body).
pub(crate) fn check_error_response(code: u16, detail: &str) {
    let status_ok = code == 101 || (200..=599).contains(&code);
    let bytes = match error_response(code, &detail) {
        Ok(bytes) => bytes,
        Err(e) => {
            assert!(!status_ok, "error_response refused status {code}: {e:?}");
            assert_eq!(e, EncodeError::InvalidStatus { code });
            assert_eq!(encode_error_response(&mut [], code, &detail), Err(e));
            return;
        }
    };
    assert!(status_ok, "error_response accepted status {code}");
    let len = bytes.len();
    let mut exact = vec![0; len];
    assert_eq!(encode_error_response(&mut exact, code, &detail), Ok(len));
    assert_eq!(exact, bytes);
    let mut short = vec![0; len - 1];
    assert_eq!(
        encode_error_response(&mut short, code, &detail),
        Err(EncodeError::BufferTooSmall { required: len })
    );

    let mut parser = ResponseParser::new();
    let Ok(ResponseStep::Complete(p)) = parser.parse(&bytes) else {
        panic!(
            "error response head does not parse: {:?}",
            bytes.escape_ascii().to_string()
        );
    };
    check_parsed(&p, &bytes, ResponseParser::DEFAULT_MAX_HEAD);
    let view = p.view(&bytes);
    assert_eq!(view.status(), code);
    let reason = std::str::from_utf8(view.reason()).expect("reason is UTF-8");
    let headers: Vec<_> = view.headers().collect();
    let body = &bytes[p.head_len()..];
    let content_length = body.len().to_string();
    assert_eq!(
        headers,
        [
            ("Content-Type", &b"text/plain; charset=utf-8"[..]),
            ("Content-Length", content_length.as_bytes()),
        ]
    );
    assert_eq!(body, format!("{code} {reason}\n{detail}\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(status: u16, reason: Option<&str>, headers: &[(NameGen, &[u8])]) -> WriteCase {
        WriteCase {
            status: StatusGen::Any(status),
            reason: reason.map(str::to_owned),
            headers: headers
                .iter()
                .map(|(n, v)| (n.clone(), v.to_vec()))
                .collect(),
            piece: 2,
            body: b"Status: 500 Injected\r\n\r\n".to_vec(),
        }
    }

    #[test]
    fn written_heads_read_back() {
        let location = NameGen::Known(KnownName::Location);
        let token = NameGen::Token(vec![0, 40, 77]);
        write_case(&case(302, Some("Found \t "), &[(location, b" /next\t")]));
        write_case(&case(200, None, &[(token, b"\xff raw \x0b bytes")]));
        write_case(&case(101, Some(""), &[]));
        write_case(&case(299, None, &[]));
    }

    #[test]
    fn refusals_are_named() {
        let status = NameGen::Known(KnownName::StatusUpper);
        let raw = NameGen::Raw("X Bad".to_owned());
        let ok = NameGen::Known(KnownName::ContentType);
        write_case(&case(199, None, &[]));
        write_case(&case(200, Some("bad\r\nreason"), &[]));
        write_case(&case(200, None, &[(status, b"404")]));
        write_case(&case(200, None, &[(raw, b"v")]));
        write_case(&case(200, None, &[(ok, b"a\r\nSet-Cookie: x")]));
    }
}

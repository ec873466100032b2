//! The `roundtrip` target: structured requests through the encoder and
//! back through the decoder.

use arbitrary::{Arbitrary, Unstructured};
use scgi_proto::{
    Config, Duplicates, EncodeError, Limits, Policy, encode_request, encode_request_to_vec,
    encoded_request_len,
};

use crate::pieces::pieces;
use crate::request::{Outcome, check_against_oracle, run_split, run_whole};

/// A request as a client would build it: headers (names drawn to hit the
/// encoder's refusals often: empty, NUL, reserved, repeated), a body, and
/// bytes that follow the request on the connection.
#[derive(Arbitrary, Debug)]
pub struct RoundtripInput {
    headers: Vec<(NameGen, Vec<u8>)>,
    /// Piece size (plus one) for the split decode.
    piece: u8,
    /// Bytes after the body (a `101` tunnel, nginx's surplus).
    after: Vec<u8>,
    body: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
enum NameGen {
    Raw(Vec<u8>),
    Cgi(CgiName),
    /// The name of an earlier header (by index, modulo), to make duplicates.
    Repeat(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum CgiName {
    ContentLength,
    Scgi,
    RequestMethod,
    RequestUri,
    QueryString,
    ContentType,
    HttpCookie,
    Empty,
    WithNul,
}

impl CgiName {
    const fn bytes(self) -> &'static [u8] {
        match self {
            CgiName::ContentLength => b"CONTENT_LENGTH",
            CgiName::Scgi => b"SCGI",
            CgiName::RequestMethod => b"REQUEST_METHOD",
            CgiName::RequestUri => b"REQUEST_URI",
            CgiName::QueryString => b"QUERY_STRING",
            CgiName::ContentType => b"CONTENT_TYPE",
            CgiName::HttpCookie => b"HTTP_COOKIE",
            CgiName::Empty => b"",
            CgiName::WithNul => b"HTTP_X\0Y",
        }
    }
}

/// Reads a [`RoundtripInput`] from raw bytes as the fuzz target does
/// (`arbitrary_take_rest`) and checks it; used to replay seed files.
pub fn roundtrip(data: &[u8]) {
    if let Ok(input) = RoundtripInput::arbitrary_take_rest(Unstructured::new(data)) {
        roundtrip_input(&input);
    }
}

/// Why the encoder may refuse header `i`.
#[derive(Default)]
struct Problems {
    name: bool,
    value: bool,
    reserved: bool,
    duplicate: bool,
}

impl Problems {
    fn of(headers: &[(&[u8], &[u8])], i: usize) -> Self {
        let (name, value) = headers[i];
        Problems {
            name: name.is_empty() || name.contains(&0),
            value: value.contains(&0),
            reserved: name == b"CONTENT_LENGTH" || name == b"SCGI",
            duplicate: headers[..i].iter().any(|(n, _)| *n == name),
        }
    }

    fn any(&self) -> bool {
        self.name || self.value || self.reserved || self.duplicate
    }

    /// Whether `e` names header `i` for one of its problems.
    fn explains(&self, i: usize, e: EncodeError) -> bool {
        match e {
            EncodeError::InvalidName { index } => index == i && self.name,
            EncodeError::InvalidValue { index } => index == i && self.value,
            EncodeError::ReservedName { index } => index == i && self.reserved,
            EncodeError::DuplicateName { index } => index == i && self.duplicate,
            _ => false,
        }
    }
}

/// Encodes `input` and decodes it back, whole and in pieces, under a
/// limitless strict config and the defaults. The encoder must refuse
/// exactly the headers SCGI cannot carry (empty name, NUL, a reserved or a
/// repeated name), naming the first such header; everything else must come
/// back as `CONTENT_LENGTH`, `SCGI=1`, then the headers in order, the body,
/// and the bytes after it untouched.
pub fn roundtrip_input(input: &RoundtripInput) {
    let mut names: Vec<Vec<u8>> = Vec::with_capacity(input.headers.len());
    for (name, _) in &input.headers {
        let resolved = match name {
            NameGen::Raw(n) => n.clone(),
            NameGen::Cgi(c) => c.bytes().to_vec(),
            NameGen::Repeat(i) if !names.is_empty() => names[usize::from(*i) % names.len()].clone(),
            NameGen::Repeat(_) => Vec::new(),
        };
        names.push(resolved);
    }
    let headers: Vec<(&[u8], &[u8])> = names
        .iter()
        .zip(&input.headers)
        .map(|(n, (_, v))| (n.as_slice(), v.as_slice()))
        .collect();
    let body = &input.body;
    let cl = body.len() as u64;
    let first_bad = (0..headers.len())
        .map(|i| (i, Problems::of(&headers, i)))
        .find(|(_, p)| p.any());

    let encoded = encode_request_to_vec(&headers, body);
    assert_eq!(
        encoded_request_len(cl, &headers).err(),
        encoded.as_ref().err().copied()
    );
    let wire = match (encoded, first_bad) {
        (Err(e), Some((i, p))) => {
            assert!(
                p.explains(i, e),
                "refused with {e:?}, first bad header is #{i}"
            );
            return;
        }
        (Err(e), None) => panic!("encoder refused a valid request: {e:?}"),
        (Ok(_), Some((i, _))) => panic!("encoder accepted bad header #{i}: {:?}", headers[i]),
        (Ok(wire), None) => wire,
    };

    let head_len = wire.len() - body.len();
    assert_eq!(&wire[head_len..], &body[..]);
    assert_eq!(encoded_request_len(cl, &headers), Ok(head_len));
    let mut exact = vec![0; head_len];
    assert_eq!(encode_request(&mut exact, cl, &headers), Ok(head_len));
    assert_eq!(exact, &wire[..head_len]);
    let mut short = vec![0; head_len - 1];
    assert_eq!(
        encode_request(&mut short, cl, &headers),
        Err(EncodeError::BufferTooSmall { required: head_len })
    );

    let mut want: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"CONTENT_LENGTH".to_vec(), cl.to_string().into_bytes()),
        (b"SCGI".to_vec(), b"1".to_vec()),
    ];
    want.extend(headers.iter().map(|(n, v)| (n.to_vec(), v.to_vec())));
    let mut full = wire;
    full.extend_from_slice(&input.after);

    let limitless = Config::DEFAULT
        .with_limits(
            Limits::DEFAULT
                .with_max_head(usize::MAX)
                .with_max_headers(usize::MAX),
        )
        .with_policy(Policy::DEFAULT.with_duplicates(Duplicates::Reject));
    let colon = full.iter().position(|&b| b == b':').expect("prefix");
    let block_len = head_len - colon - 2;
    assert_eq!(full[..colon], *block_len.to_string().as_bytes());
    for config in [limitless, Config::DEFAULT] {
        let size = [input.piece];
        let runs = [
            run_whole(&config, &full),
            run_split(&config, &full, pieces(&size, &full)),
        ];
        check_against_oracle(&config, &full, &runs[0]);
        for run in runs {
            let t = &run.transcript;
            if block_len > config.limits.max_head || want.len() > config.limits.max_headers {
                assert!(matches!(t.outcome, Outcome::Failed(_)) && t.head.is_none());
                continue;
            }
            let head = t.head.as_ref().expect("encoded request decodes");
            assert_eq!(head.head.wire_len(), head_len);
            assert_eq!(head.head.content_length(), cl);
            assert_eq!(head.headers, want);
            assert_eq!(&t.body, body);
            assert_eq!(
                t.outcome,
                Outcome::End {
                    after: input.after.clone()
                }
            );
        }
    }
}

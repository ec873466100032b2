//! Every error's message, word for word: logs, `scgi request` output and
//! the error answers' bodies quote them, so a change is a visible change.
//! Runs in every feature configuration (the test harness has `std`; the
//! crate under test may not).

use core::error::Error as _;

use scgi_proto::server::BodyError;
use scgi_proto::{EncodeError, Error, ResponseError};

/// Each error shows exactly its message and names no source (every one is
/// a leaf: none wraps another error it would repeat).
fn check<E: core::error::Error>(cases: &[(E, &str)]) {
    for (error, message) in cases {
        assert_eq!(format!("{error}"), *message, "{error:?}");
        assert!(error.source().is_none(), "{error:?}");
    }
}

#[test]
fn decoder_errors() {
    let cases: &[(Error, &str)] = &[
        (
            Error::NotNetstring { byte: b'G' },
            "not an SCGI request: expected the netstring length, found byte 0x47 \
             (is an HTTP client talking to the SCGI port?)",
        ),
        (Error::LeadingZero, "netstring length has a leading zero"),
        (
            Error::InvalidLength { byte: 0x0a },
            "invalid byte 0x0a in the netstring length",
        ),
        (
            Error::EmptyHead,
            "empty header netstring: CONTENT_LENGTH is mandatory",
        ),
        (
            Error::HeadTooLarge {
                limit: 65536,
                claimed: 70000,
            },
            "header block of 70000 bytes exceeds the limit of 65536 bytes",
        ),
        (
            Error::MissingComma { found: b';' },
            "header netstring not terminated by ',' (found byte 0x3b)",
        ),
        (
            Error::UnterminatedHead,
            "header block does not end with NUL: last string unterminated",
        ),
        (Error::EmptyName { index: 3 }, "header #3 has an empty name"),
        (Error::MissingValue { index: 4 }, "header #4 has no value"),
        (
            Error::TooManyHeaders { limit: 1024 },
            "more than 1024 headers in the request",
        ),
        (
            Error::ContentLengthNotFirst,
            "the first header must be CONTENT_LENGTH",
        ),
        (Error::MissingContentLength, "no CONTENT_LENGTH header"),
        (
            Error::InvalidContentLength,
            "CONTENT_LENGTH is not a decimal number that fits in 64 bits",
        ),
        (
            Error::DuplicateContentLength,
            "CONTENT_LENGTH appears more than once",
        ),
        (
            Error::MissingScgi,
            "no SCGI header: the web server did not send SCGI=1 \
             (with nginx, add `include scgi_params;` to the location)",
        ),
        (Error::InvalidScgi, "the SCGI header's value is not 1"),
        (
            Error::DuplicateHeader { index: 7 },
            "header #7 repeats an earlier header name",
        ),
        (
            Error::BodyTooLarge {
                limit: 100,
                content_length: 101,
            },
            "body of 101 bytes exceeds the limit of 100 bytes",
        ),
        (
            Error::IncompleteHead,
            "connection closed inside the request head",
        ),
        (
            Error::IncompleteBody { missing: 27 },
            "connection closed with 27 body bytes still missing",
        ),
    ];
    check(cases);
}

#[test]
fn encode_errors() {
    let cases: &[(EncodeError, &str)] = &[
        (
            EncodeError::BufferTooSmall { required: 42 },
            "buffer too small: 42 bytes required",
        ),
        (
            EncodeError::InvalidStatus { code: 102 },
            "status 102 refused: only 101 and 200..=599 may be sent",
        ),
        (
            EncodeError::InvalidReason,
            "reason phrase contains a control byte",
        ),
        (
            EncodeError::InvalidName { index: 1 },
            "header #1 has an invalid name",
        ),
        (
            EncodeError::InvalidValue { index: 2 },
            "header #2 has a value with a forbidden byte (CR, LF, NUL or another control byte)",
        ),
        (
            EncodeError::ReservedName { index: 0 },
            "header #0 is written by the encoder itself and may not be given",
        ),
        (
            EncodeError::DuplicateName { index: 5 },
            "header #5 repeats an earlier name",
        ),
        (
            EncodeError::InvalidContentLength,
            "the response's Content-Length is not one decimal number, or contradicts its body",
        ),
    ];
    check(cases);
}

#[test]
fn response_errors() {
    let cases: &[(ResponseError, &str)] = &[
        (
            ResponseError::HeadTooLarge { limit: 8192 },
            "response head exceeds 8192 bytes",
        ),
        (ResponseError::InvalidStatusLine, "invalid HTTP status line"),
        (
            ResponseError::InvalidHeader { line: 2 },
            "invalid response header on line 2",
        ),
        (
            ResponseError::InvalidStatus { line: 0 },
            "invalid Status header on line 0",
        ),
        (
            ResponseError::DuplicateStatus { line: 3 },
            "second status on line 3",
        ),
    ];
    check(cases);
}

#[test]
fn body_errors() {
    // `Incomplete` shows the decoder's error as its own message, and (as
    // before) does not name it as its source: the text would repeat.
    let incomplete = BodyError::Incomplete(Error::IncompleteBody { missing: 5 });
    assert_eq!(
        format!("{incomplete}"),
        "connection closed with 5 body bytes still missing"
    );
    assert!(incomplete.source().is_none());
    assert_eq!(
        format!("{}", BodyError::TimedOut),
        "no request body data within the body timeout"
    );
}

#[cfg(feature = "http")]
#[test]
fn http_errors() {
    use scgi_proto::http::HttpError;
    let cases: &[(HttpError, &str)] = &[
        (HttpError::MissingMethod, "no REQUEST_METHOD header"),
        (
            HttpError::InvalidMethod,
            "REQUEST_METHOD is not an HTTP method",
        ),
        (HttpError::MissingUri, "no REQUEST_URI header"),
        (
            HttpError::InvalidUri,
            "REQUEST_URI is not a valid request target",
        ),
    ];
    check(cases);
}

/// The error types stay small plain values (`Copy`, `Send`, `Sync`,
/// `'static`), so they box into `Box<dyn Error + Send + Sync>` and a
/// decoder can hand the same one back after the first.
#[test]
fn errors_are_copy_and_thread_safe() {
    fn plain<T: Copy + Send + Sync + 'static + core::error::Error>() {}
    plain::<Error>();
    plain::<EncodeError>();
    plain::<ResponseError>();
    plain::<BodyError>();
    #[cfg(feature = "http")]
    plain::<scgi_proto::http::HttpError>();
}

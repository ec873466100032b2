//! The decoder's error type and its HTTP status hints.

/// Why a request could not be decoded.
///
/// Small and `Copy`, so a [`Decoder`](crate::Decoder) can keep returning the
/// same error after the first one (the error state is sticky). Each variant
/// carries the numbers involved and maps to the HTTP status a server should
/// answer with ([`Error::status_hint`]):
///
/// | status | variants |
/// | --- | --- |
/// | 400 Bad Request | every malformed-input variant, and end of input mid-request |
/// | 413 Content Too Large | [`Error::BodyTooLarge`] |
/// | 431 Request Header Fields Too Large | [`Error::HeadTooLarge`], [`Error::TooManyHeaders`] |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The first byte is not an ASCII digit, so this is not an SCGI netstring
    /// (typically an HTTP client talking straight to the SCGI port).
    #[error(
        "not an SCGI request: expected the netstring length, found byte 0x{byte:02x} \
         (is an HTTP client talking to the SCGI port?)"
    )]
    NotNetstring {
        /// The offending first byte.
        byte: u8,
    },
    /// The netstring length has a leading zero (`"07:"`), which the netstring
    /// format forbids.
    #[error("netstring length has a leading zero")]
    LeadingZero,
    /// A byte other than a digit or `:` inside the netstring length.
    #[error("invalid byte 0x{byte:02x} in the netstring length")]
    InvalidLength {
        /// The offending byte.
        byte: u8,
    },
    /// The netstring is empty (`"0:,"`): there is no `CONTENT_LENGTH` header.
    #[error("empty header netstring: CONTENT_LENGTH is mandatory")]
    EmptyHead,
    /// The netstring claims a header block larger than
    /// [`Limits::max_head`](crate::Limits::max_head). Reported as soon as the
    /// length prefix exceeds the limit, before any byte of the block is read.
    #[error("header block of {claimed} bytes exceeds the limit of {limit} bytes")]
    HeadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
        /// The claimed size so far (a lower bound when the prefix was cut off
        /// as soon as it passed the limit; `usize::MAX` if it overflowed).
        claimed: usize,
    },
    /// The byte after the header block is not the netstring's `,`.
    #[error("header netstring not terminated by ',' (found byte 0x{found:02x})")]
    MissingComma {
        /// The byte found instead.
        found: u8,
    },
    /// The header block does not end with NUL: its last string is unterminated.
    #[error("header block does not end with NUL: last string unterminated")]
    UnterminatedHead,
    /// A header name is empty.
    #[error("header #{index} has an empty name")]
    EmptyName {
        /// Zero-based position of the header in the block.
        index: usize,
    },
    /// A header name is the block's last string: its value is missing.
    #[error("header #{index} has no value")]
    MissingValue {
        /// Zero-based position of the header in the block.
        index: usize,
    },
    /// More headers than [`Limits::max_headers`](crate::Limits::max_headers).
    #[error("more than {limit} headers in the request")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The first header is not `CONTENT_LENGTH` (the spec requires it first;
    /// see [`ContentLengthPosition`](crate::ContentLengthPosition)).
    #[error("the first header must be CONTENT_LENGTH")]
    ContentLengthNotFirst,
    /// No `CONTENT_LENGTH` header at all.
    #[error("no CONTENT_LENGTH header")]
    MissingContentLength,
    /// `CONTENT_LENGTH` is empty, has a byte other than an ASCII digit, or
    /// does not fit in a `u64`.
    #[error("CONTENT_LENGTH is not a decimal number that fits in 64 bits")]
    InvalidContentLength,
    /// `CONTENT_LENGTH` appears twice. Always an error, whatever the
    /// duplicate policy: two lengths make the body's framing ambiguous.
    #[error("CONTENT_LENGTH appears more than once")]
    DuplicateContentLength,
    /// No `SCGI` header. nginx omits it when a location lacks
    /// `include scgi_params;`.
    #[error(
        "no SCGI header: the web server did not send SCGI=1 \
         (with nginx, add `include scgi_params;` to the location)"
    )]
    MissingScgi,
    /// The `SCGI` header's value is not `1`.
    #[error("the SCGI header's value is not 1")]
    InvalidScgi,
    /// A header name repeats, and the policy is
    /// [`Duplicates::Reject`](crate::Duplicates::Reject).
    #[error("header #{index} repeats an earlier header name")]
    DuplicateHeader {
        /// Zero-based position of the repeated (second) occurrence.
        index: usize,
    },
    /// `CONTENT_LENGTH` exceeds [`Limits::max_body`](crate::Limits::max_body).
    #[error("body of {content_length} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The configured limit in bytes.
        limit: u64,
        /// The request's `CONTENT_LENGTH`.
        content_length: u64,
    },
    /// The input ended inside the header netstring (after at least one byte).
    #[error("connection closed inside the request head")]
    IncompleteHead,
    /// The input ended before `CONTENT_LENGTH` body bytes arrived.
    #[error("connection closed with {missing} body bytes still missing")]
    IncompleteBody {
        /// Body bytes still missing.
        missing: u64,
    },
}

impl Error {
    /// The HTTP status code a server should answer this error with: 400, 413
    /// or 431 (see the table on [`Error`]).
    #[must_use]
    pub const fn status_hint(&self) -> u16 {
        match self {
            Error::HeadTooLarge { .. } | Error::TooManyHeaders { .. } => 431,
            Error::BodyTooLarge { .. } => 413,
            _ => 400,
        }
    }
}

/// Why a writer or encoder refused to produce output.
///
/// Returned by the response head writer ([`HeadWriter`](crate::HeadWriter),
/// [`ResponseHead`](crate::ResponseHead)) and the request encoder
/// ([`encode_request`](crate::encode_request)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The caller's buffer is too small; `required` bytes would fit the whole
    /// output.
    #[error("buffer too small: {required} bytes required")]
    BufferTooSmall {
        /// The total size the output needs.
        required: usize,
    },
    /// A status code the response writer does not send: outside
    /// `200..=599`, or a 1xx other than `101` (web servers mishandle interim
    /// responses from a backend).
    #[error("status {code} refused: only 101 and 200..=599 may be sent")]
    InvalidStatus {
        /// The refused code.
        code: u16,
    },
    /// A reason phrase containing CR, LF, NUL or another control byte.
    #[error("reason phrase contains a control byte")]
    InvalidReason,
    /// A header name that is empty, or (response) not an HTTP token, or
    /// (request) contains NUL.
    #[error("header #{index} has an invalid name")]
    InvalidName {
        /// Zero-based position of the header in the caller's list.
        index: usize,
    },
    /// A header value containing a byte that would break framing or that
    /// no HTTP peer accepts: in a response, CR, LF, NUL or another control
    /// byte but HTAB; in a request, NUL.
    #[error(
        "header #{index} has a value with a forbidden byte (CR, LF, NUL or another control byte)"
    )]
    InvalidValue {
        /// Zero-based position of the header in the caller's list.
        index: usize,
    },
    /// A header name that the writer emits itself: `Status` in a response,
    /// `CONTENT_LENGTH` or `SCGI` in a request.
    #[error("header #{index} is written by the encoder itself and may not be given")]
    ReservedName {
        /// Zero-based position of the header in the caller's list.
        index: usize,
    },
    /// A request header name given twice (SCGI forbids duplicates).
    #[error("header #{index} repeats an earlier name")]
    DuplicateName {
        /// Zero-based position of the second occurrence in the caller's list.
        index: usize,
    },
    /// A response's `Content-Length` is not one decimal number (two
    /// different values, or not digits), or contradicts the known size of
    /// its body (see `http::frame_response`).
    #[error("the response's Content-Length is not one decimal number, or contradicts its body")]
    InvalidContentLength,
}

#[cfg(feature = "std")]
impl From<EncodeError> for std::io::Error {
    fn from(e: EncodeError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

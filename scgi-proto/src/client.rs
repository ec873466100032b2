//! The response head parser (client side): reads what a backend answers.

use core::ops::Range;
use core::str;

use crate::response::{valid_response_name, valid_response_value};

/// Why a response head could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// No blank line within the size limit.
    #[error("response head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The first line starts like an `HTTP/` status line but is not
    /// `HTTP/1.x NNN [reason]`.
    #[error("invalid HTTP status line")]
    InvalidStatusLine,
    /// A header line is not `name: value` with a token name and a value free
    /// of CR and NUL (or is an obsolete folded continuation line).
    #[error("invalid response header on line {line}")]
    InvalidHeader {
        /// Zero-based line number in the head.
        line: usize,
    },
    /// A `Status` header whose value is not `NNN [reason]`.
    #[error("invalid Status header on line {line}")]
    InvalidStatus {
        /// Zero-based line number in the head.
        line: usize,
    },
    /// More than one status (two `Status` headers, or a status line and a
    /// `Status` header).
    #[error("second status on line {line}")]
    DuplicateStatus {
        /// Zero-based line number of the second one.
        line: usize,
    },
}

/// A parsed response head's facts, without a borrow; view it with
/// [`ParsedResponse::view`] on the same input.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParsedResponse {
    head_len: usize,
    status: u16,
    explicit: bool,
    reason: Range<usize>,
    count: usize,
}

impl ParsedResponse {
    /// The head's length including its blank line: the body starts here.
    #[must_use]
    pub const fn head_len(&self) -> usize {
        self.head_len
    }

    /// The effective status: the explicit one, else `302` when a `Location`
    /// header is present (RFC 3875 section 6.2.3, as nginx and lighttpd
    /// read it; Apache says 200), else `200`.
    #[must_use]
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status was sent (a `Status` header or status line).
    #[must_use]
    pub const fn explicit_status(&self) -> bool {
        self.explicit
    }

    /// A view of the head in `input` (the same bytes the parser saw).
    #[must_use]
    pub fn view<'a>(&self, input: &'a [u8]) -> Response<'a> {
        let head = input.get(..self.head_len).unwrap_or(&[]);
        Response {
            head,
            status: self.status,
            explicit: self.explicit,
            reason: head.get(self.reason.clone()).unwrap_or(&[]),
            count: self.count,
        }
    }
}

/// What [`ResponseParser::parse`] found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResponseStep {
    /// No blank line yet: pass the same bytes again with more appended.
    Partial,
    /// The head is complete.
    Complete(ParsedResponse),
}

/// An incremental, zero-copy parser of CGI-style response heads, as SCGI
/// backends send them: a `Status: NNN reason` header or an
/// `HTTP/1.x NNN reason` first line, header lines, and a blank line; lines
/// end with CRLF or a bare LF.
///
/// ```
/// use scgi_proto::{ResponseParser, ResponseStep};
/// let input = b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope";
/// let mut p = ResponseParser::new();
/// let ResponseStep::Complete(head) = p.parse(input)? else { unreachable!() };
/// let view = head.view(input);
/// assert_eq!(view.status(), 404);
/// assert_eq!(view.reason(), b"Not Found");
/// assert_eq!(view.get("content-type"), Some(&b"text/plain"[..]));
/// assert_eq!(&input[head.head_len()..], b"nope");
/// # Ok::<(), scgi_proto::ResponseError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ResponseParser {
    max_head: usize,
    /// Start of the first line not yet read.
    scanned: usize,
    line: usize,
    status: Option<(u16, Range<usize>)>,
    location: bool,
    count: usize,
    failed: Option<ResponseError>,
}

impl Default for ResponseParser {
    fn default() -> Self {
        ResponseParser::new()
    }
}

impl ResponseParser {
    /// The default head size limit: 64 KiB.
    pub const DEFAULT_MAX_HEAD: usize = 64 * 1024;

    /// A parser with the default 64 KiB limit.
    #[must_use]
    pub const fn new() -> Self {
        ResponseParser::with_max_head(Self::DEFAULT_MAX_HEAD)
    }

    /// A parser accepting heads up to `max_head` bytes (blank line included).
    #[must_use]
    pub const fn with_max_head(max_head: usize) -> Self {
        ResponseParser {
            max_head,
            scanned: 0,
            line: 0,
            status: None,
            location: false,
            count: 0,
            failed: None,
        }
    }

    /// Reads complete lines of `input` not read before. Pass the same bytes
    /// each time with more appended. Errors are sticky.
    pub fn parse(&mut self, input: &[u8]) -> Result<ResponseStep, ResponseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.lines(input);
        if let Err(e) = result {
            self.failed = Some(e);
        }
        result
    }

    fn lines(&mut self, input: &[u8]) -> Result<ResponseStep, ResponseError> {
        let window = input.get(..self.max_head.min(input.len())).unwrap_or(&[]);
        while let Some(rest) = window.get(self.scanned..) {
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                break;
            };
            let start = self.scanned;
            let mut end = start + nl;
            if end > start && input[end - 1] == b'\r' {
                end -= 1;
            }
            self.scanned = start + nl + 1;
            if start == end {
                return Ok(ResponseStep::Complete(self.complete()));
            }
            self.line(input, start..end)?;
            self.line += 1;
        }
        if input.len() >= self.max_head {
            return Err(ResponseError::HeadTooLarge {
                limit: self.max_head,
            });
        }
        Ok(ResponseStep::Partial)
    }

    fn complete(&self) -> ParsedResponse {
        let (status, reason, explicit) = match &self.status {
            Some((code, reason)) => (*code, reason.clone(), true),
            None if self.location => (302, 0..0, false),
            None => (200, 0..0, false),
        };
        ParsedResponse {
            head_len: self.scanned,
            status,
            explicit,
            reason,
            count: self.count,
        }
    }

    fn line(&mut self, input: &[u8], range: Range<usize>) -> Result<(), ResponseError> {
        let line = &input[range.clone()];
        let n = self.line;
        if n == 0 && line.starts_with(b"HTTP/") {
            let rest = line
                .strip_prefix(b"HTTP/1.0 ")
                .or_else(|| line.strip_prefix(b"HTTP/1.1 "))
                .ok_or(ResponseError::InvalidStatusLine)?;
            let (code, reason) = parse_status(rest).ok_or(ResponseError::InvalidStatusLine)?;
            let offset = range.end - reason.len();
            self.status = Some((code, offset..range.end));
            return Ok(());
        }
        let (name, value) = split_header(line).ok_or(ResponseError::InvalidHeader { line: n })?;
        if name.eq_ignore_ascii_case(b"status") {
            if self.status.is_some() {
                return Err(ResponseError::DuplicateStatus { line: n });
            }
            let (code, reason) =
                parse_status(value).ok_or(ResponseError::InvalidStatus { line: n })?;
            let offset = reason.as_ptr() as usize - input.as_ptr() as usize;
            self.status = Some((code, offset..offset + reason.len()));
        } else {
            self.location |= name.eq_ignore_ascii_case(b"location");
            self.count += 1;
        }
        Ok(())
    }
}

/// `NNN` or `NNN SP reason`, with a reason free of control bytes (tab
/// allowed).
fn parse_status(s: &[u8]) -> Option<(u16, &[u8])> {
    let (digits, reason) = match s.get(3) {
        None => (s, &s[s.len()..]),
        Some(b' ') => (&s[..3], &s[4..]),
        Some(_) => return None,
    };
    if digits.len() != 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if reason
        .iter()
        .any(|&b| (b < b' ' && b != b'\t') || b == 0x7f)
    {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    (code >= 100).then_some((code, reason))
}

/// `name: value` with a token name; the value loses its surrounding spaces
/// and tabs, and may not hold CR or NUL.
fn split_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = memchr::memchr(b':', line)?;
    let name = &line[..colon];
    let value = trim_ows(&line[colon + 1..]);
    (valid_response_name(name) && valid_response_value(value)).then_some((name, value))
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// A view of a parsed response head, borrowing the caller's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    head: &'a [u8],
    status: u16,
    explicit: bool,
    reason: &'a [u8],
    count: usize,
}

impl<'a> Response<'a> {
    /// The effective status (see [`ParsedResponse::status`]).
    #[must_use]
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status was sent explicitly.
    #[must_use]
    pub const fn explicit_status(&self) -> bool {
        self.explicit
    }

    /// The reason phrase as sent (empty when none was).
    #[must_use]
    pub const fn reason(&self) -> &'a [u8] {
        self.reason
    }

    /// The whole head, blank line included.
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.head
    }

    /// How many headers there are, not counting the status.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no headers besides the status.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The headers in order, without the status line or `Status` header.
    /// Values are trimmed of surrounding spaces and tabs.
    #[must_use]
    pub fn headers(&self) -> ResponseHeaders<'a> {
        ResponseHeaders {
            rest: self.head,
            first: true,
        }
    }

    /// The first value of the header `name` (ASCII case-insensitive).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }

    /// Every value of the header `name`, in order (e.g. several
    /// `Set-Cookie`).
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// `Content-Length`, if present and a valid number.
    #[must_use]
    pub fn content_length(&self) -> Option<u64> {
        str::from_utf8(self.get("content-length")?)
            .ok()?
            .parse()
            .ok()
    }
}

/// Iterator over a [`Response`]'s headers: `(name, value)` pairs.
#[derive(Clone, Debug)]
pub struct ResponseHeaders<'a> {
    rest: &'a [u8],
    first: bool,
}

impl<'a> Iterator for ResponseHeaders<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let nl = memchr::memchr(b'\n', self.rest)?;
            let mut line = &self.rest[..nl];
            self.rest = &self.rest[nl + 1..];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let first = core::mem::replace(&mut self.first, false);
            if line.is_empty() {
                self.rest = &[];
                return None;
            }
            if first && line.starts_with(b"HTTP/") {
                continue;
            }
            let (name, value) = split_header(line)?;
            if name.eq_ignore_ascii_case(b"status") {
                continue;
            }
            // Validated as an HTTP token, so ASCII.
            let name = str::from_utf8(name).ok()?;
            return Some((name, value));
        }
    }
}

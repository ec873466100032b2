//! The validated header view.

use core::fmt;
use core::str;

use crate::decoder::Duplicates;

/// A view of a validated SCGI header block, borrowing the caller's bytes.
///
/// Built by [`Head::headers`](crate::Head::headers) after the decoder has
/// validated the block, so its accessors cannot fail: iteration yields each
/// header in wire order, lookups return `None` only for an absent name.
/// Values are bytes (web servers pass raw, possibly non-UTF-8 paths and
/// header bytes); the `_str` accessors give `&str` when the bytes are UTF-8.
///
/// Lookups are linear scans: a request has a few dozen headers, and a scan
/// of one contiguous block beats building an index.
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    block: &'a [u8],
    count: usize,
    content_length: u64,
    duplicates: Duplicates,
}

/// One header: a non-empty name and a possibly empty value, both borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header<'a> {
    name: &'a [u8],
    value: &'a [u8],
}

impl<'a> Header<'a> {
    /// The name's bytes.
    #[must_use]
    pub const fn name(&self) -> &'a [u8] {
        self.name
    }

    /// The value's bytes.
    #[must_use]
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The name as `&str`, if it is UTF-8 (CGI variable names always are).
    #[must_use]
    pub fn name_str(&self) -> Option<&'a str> {
        str::from_utf8(self.name).ok()
    }

    /// The value as `&str`, if it is UTF-8.
    #[must_use]
    pub fn value_str(&self) -> Option<&'a str> {
        str::from_utf8(self.value).ok()
    }
}

impl fmt::Debug for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\"=\"{}\"",
            self.name.escape_ascii(),
            self.value.escape_ascii()
        )
    }
}

impl<'a> Headers<'a> {
    pub(crate) const fn from_parts(
        block: &'a [u8],
        count: usize,
        content_length: u64,
        duplicates: Duplicates,
    ) -> Self {
        Headers {
            block,
            count,
            content_length,
            duplicates,
        }
    }

    /// The headers in wire order, duplicates included.
    #[must_use]
    pub fn iter(&self) -> Iter<'a> {
        Iter {
            rest: self.block,
            left: self.count,
        }
    }

    /// How many headers there are.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no headers (never true for a decoded request, which
    /// has at least `CONTENT_LENGTH`).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The raw header block: NUL-separated names and values, without the
    /// netstring's length prefix and comma.
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.block
    }

    /// The validated `CONTENT_LENGTH`: exactly how many body bytes follow.
    #[must_use]
    pub const fn content_length(&self) -> u64 {
        self.content_length
    }

    /// The value of the header `name` (exact, case-sensitive match, as CGI
    /// variable names are). When the name repeats, the first occurrence wins,
    /// or the last under [`Duplicates::Last`].
    #[must_use]
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&'a [u8]> {
        self.pick(self.get_all(name))
    }

    /// The occurrence the duplicate policy selects among `values`.
    fn pick(&self, mut values: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
        match self.duplicates {
            Duplicates::Last => values.last(),
            _ => values.next(),
        }
    }

    /// [`get`](Headers::get) as `&str`: `None` if absent or not UTF-8 (use
    /// [`get`](Headers::get) to tell the two apart).
    #[must_use]
    pub fn get_str(&self, name: impl AsRef<[u8]>) -> Option<&'a str> {
        self.get(name).and_then(|v| str::from_utf8(v).ok())
    }

    /// Whether a header `name` is present.
    #[must_use]
    pub fn contains(&self, name: impl AsRef<[u8]>) -> bool {
        self.get_all(name).next().is_some()
    }

    /// Every value of the header `name`, in wire order.
    #[must_use]
    pub fn get_all<N: AsRef<[u8]>>(&self, name: N) -> GetAll<'a, N> {
        GetAll {
            iter: self.iter(),
            name,
        }
    }

    /// `REQUEST_METHOD`, e.g. `GET`.
    #[must_use]
    pub fn method(&self) -> Option<&'a str> {
        self.get_str("REQUEST_METHOD")
    }

    /// `REQUEST_URI`: the path and query as the client sent them (raw bytes;
    /// may be non-UTF-8 or percent-encoded).
    #[must_use]
    pub fn request_uri(&self) -> Option<&'a [u8]> {
        self.get("REQUEST_URI")
    }

    /// The path of `REQUEST_URI`, raw as the client sent it (still
    /// percent-encoded): the part before `?`, with the `scheme://authority`
    /// of an absolute-form target removed (Apache passes
    /// `GET http://host/p` through as is). Servers disagree on their decoded
    /// paths (`DOCUMENT_URI` in nginx, `SCRIPT_NAME` + `PATH_INFO` in Apache
    /// and lighttpd); the raw one is the same everywhere.
    #[must_use]
    pub fn path(&self) -> Option<&'a [u8]> {
        let uri = self.request_uri()?;
        let uri = match memchr::memchr(b'?', uri) {
            Some(q) => &uri[..q],
            None => uri,
        };
        Some(match memchr::memmem::find(uri, b"://") {
            Some(i) if !uri.starts_with(b"/") => {
                let after = &uri[i + 3..];
                memchr::memchr(b'/', after).map_or(&b"/"[..], |s| &after[s..])
            }
            _ => uri,
        })
    }

    /// `PATH_INFO`.
    #[must_use]
    pub fn path_info(&self) -> Option<&'a [u8]> {
        self.get("PATH_INFO")
    }

    /// `QUERY_STRING` (present but empty for a request without a query).
    #[must_use]
    pub fn query_string(&self) -> Option<&'a [u8]> {
        self.get("QUERY_STRING")
    }

    /// `CONTENT_TYPE`, treating nginx's empty value as absent.
    #[must_use]
    pub fn content_type(&self) -> Option<&'a str> {
        self.get_str("CONTENT_TYPE").filter(|v| !v.is_empty())
    }

    /// `REMOTE_ADDR`: the HTTP client's address as the web server saw it.
    #[must_use]
    pub fn remote_addr(&self) -> Option<&'a str> {
        self.get_str("REMOTE_ADDR")
    }

    /// `REMOTE_PORT`, parsed.
    #[must_use]
    pub fn remote_port(&self) -> Option<u16> {
        self.get_str("REMOTE_PORT")?.parse().ok()
    }

    /// `SERVER_NAME`.
    #[must_use]
    pub fn server_name(&self) -> Option<&'a str> {
        self.get_str("SERVER_NAME")
    }

    /// `SERVER_PORT`, parsed.
    #[must_use]
    pub fn server_port(&self) -> Option<u16> {
        self.get_str("SERVER_PORT")?.parse().ok()
    }

    /// `SERVER_PROTOCOL`, e.g. `HTTP/1.1`.
    #[must_use]
    pub fn server_protocol(&self) -> Option<&'a str> {
        self.get_str("SERVER_PROTOCOL")
    }

    /// Whether the client used TLS: `HTTPS` is `on` or `1` (any case), or
    /// `REQUEST_SCHEME` is `https`.
    #[must_use]
    pub fn https(&self) -> bool {
        let on = |v: &[u8]| v.eq_ignore_ascii_case(b"on") || v == b"1";
        self.get("HTTPS").is_some_and(on)
            || self
                .get("REQUEST_SCHEME")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"https"))
    }

    /// An HTTP request header by its HTTP name, e.g. `http("User-Agent")`
    /// looks up `HTTP_USER_AGENT` (CGI's mapping: uppercase, `-` to `_`),
    /// without allocating.
    #[must_use]
    pub fn http(&self, field: &str) -> Option<&'a [u8]> {
        let matches = |name: &[u8]| {
            name.len() == field.len() + 5
                && name.starts_with(b"HTTP_")
                && name[5..].iter().zip(field.bytes()).all(|(&n, f)| {
                    let f = if f == b'-' {
                        b'_'
                    } else {
                        f.to_ascii_uppercase()
                    };
                    n == f
                })
        };
        self.pick(self.iter().filter(|h| matches(h.name)).map(|h| h.value))
    }
}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over [`Headers`] in wire order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.left == 0 {
            return None;
        }
        // The block was validated, so both NULs exist; `?` only guards a
        // view built over other bytes than the decoder saw.
        let name_end = memchr::memchr(0, self.rest)?;
        let after = &self.rest[name_end + 1..];
        let value_end = memchr::memchr(0, after)?;
        let header = Header {
            name: &self.rest[..name_end],
            value: &after[..value_end],
        };
        self.rest = &after[value_end + 1..];
        self.left -= 1;
        Some(header)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

impl core::iter::FusedIterator for Iter<'_> {}

/// Iterator over the values of one header name, from [`Headers::get_all`].
#[derive(Clone, Debug)]
pub struct GetAll<'a, N> {
    iter: Iter<'a>,
    name: N,
}

impl<'a, N: AsRef<[u8]>> Iterator for GetAll<'a, N> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let name = self.name.as_ref();
        self.iter.find(|h| h.name == name).map(|h| h.value)
    }
}

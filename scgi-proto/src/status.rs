//! Canonical HTTP reason phrases.

/// The canonical reason phrase of an HTTP status code (RFC 9110 and the IANA
/// registry, plus `418 I'm a teapot` and `510 Not Extended`, which the
/// `http` crate's `StatusCode::canonical_reason` also knows), or `None`
/// for an unregistered code.
///
/// The phrase matters: nginx and Apache pass the backend's `Status:` line
/// to the client as it is (nginx copies the header's value into its status
/// line, Apache keeps it as `status_line`), so a wrong phrase reaches the
/// browser; lighttpd sends its own.
///
/// ```
/// assert_eq!(scgi_proto::reason_phrase(404), Some("Not Found"));
/// assert_eq!(scgi_proto::reason_phrase(418), Some("I'm a teapot"));
/// assert_eq!(scgi_proto::reason_phrase(299), None);
/// ```
#[must_use]
pub const fn reason_phrase(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        // RFC 9110 15.5.19 keeps 418 unused; the `http` crate, browsers and
        // the web servers' own tables know it by RFC 2324's name.
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => return None,
    })
}

/// The reason phrase the writer sends for `code`: the canonical one, else a
/// generic one for the code's class (RFC 3875 wants a reason after the code,
/// and an unregistered code has no better one; pass your own with
/// [`HeadWriter::with_reason`](crate::HeadWriter::with_reason)).
pub(crate) const fn default_reason(code: u16) -> &'static str {
    match reason_phrase(code) {
        Some(r) => r,
        None => match code / 100 {
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

//! Reading a backend's answer: the CGI head through
//! `scgi_proto::ResponseParser`, then the body.

use std::fmt;
use std::io;

use scgi_proto::{ParsedResponse, ResponseError, ResponseParser, ResponseStep};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How much is read from the backend at a time.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// Why no response head came.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The backend closed the connection before the blank line ending the
    /// head, after sending `received` bytes.
    Closed {
        /// Bytes received before the close.
        received: usize,
    },
    /// What came is not a CGI response head.
    Malformed {
        /// The parser's reason.
        error: ResponseError,
        /// The first bytes received, to show what came instead.
        start: Vec<u8>,
    },
    /// Reading failed.
    Io(io::Error),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Closed { received: 0 } => {
                f.write_str("the backend closed the connection without answering")
            }
            HeadError::Closed { received } => write!(
                f,
                "the backend closed the connection in the middle of the response head \
                 ({received} bytes received, no blank line)"
            ),
            HeadError::Malformed { error, start } => write!(
                f,
                "the backend's answer is not a CGI response head ({error}); it starts with \"{}\"",
                start.escape_ascii()
            ),
            HeadError::Io(e) => write!(f, "reading the backend's answer: {e}"),
        }
    }
}

/// A parsed response head, and every byte read so far (the head, then the
/// first body bytes).
#[derive(Debug)]
pub(crate) struct Head {
    /// The parse.
    pub(crate) parsed: ParsedResponse,
    /// The bytes read: `buf[..parsed.head_len()]` is the head.
    pub(crate) buf: Vec<u8>,
}

impl Head {
    /// The head's bytes, blank line included.
    pub(crate) fn head_bytes(&self) -> &[u8] {
        &self.buf[..self.parsed.head_len()]
    }

    /// The body bytes read along with the head.
    pub(crate) fn leftover(&self) -> &[u8] {
        &self.buf[self.parsed.head_len()..]
    }

    /// A view of the head.
    pub(crate) fn view(&self) -> scgi_proto::Response<'_> {
        self.parsed.view(&self.buf)
    }

    /// The status and its reason as sent (`404 Not Found`), or the
    /// implied one (`200`).
    pub(crate) fn status_line(&self) -> String {
        let view = self.view();
        let reason = view.reason();
        if reason.is_empty() {
            view.status().to_string()
        } else {
            format!("{} {}", view.status(), reason.escape_ascii())
        }
    }
}

/// Reads until a whole response head is in, into `buf` (cleared first;
/// handed back in the [`Head`], so a loop can reuse its allocation).
pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    mut buf: Vec<u8>,
) -> Result<Head, HeadError> {
    buf.clear();
    let mut parser = ResponseParser::new();
    loop {
        let start = buf.len();
        buf.resize(start + READ_CHUNK.min(16 * 1024), 0);
        let n = match r.read(&mut buf[start..]).await {
            Ok(n) => n,
            Err(e) => return Err(HeadError::Io(e)),
        };
        buf.truncate(start + n);
        if n == 0 {
            return Err(HeadError::Closed {
                received: buf.len(),
            });
        }
        match parser.parse(&buf) {
            Ok(ResponseStep::Partial) => {}
            Ok(ResponseStep::Complete(parsed)) => return Ok(Head { parsed, buf }),
            Err(error) => {
                buf.truncate(80);
                return Err(HeadError::Malformed { error, start: buf });
            }
        }
    }
}

//! The least an SCGI backend can cost: no library, no validation. The
//! floor of the benchmarks (`bench/load.sh` behind nginx,
//! `bench/capacity.sh` straight at the backend), one per runtime.
//!
//! [`Exchange`] is one connection's whole job as a naive state machine: it
//! reads the netstring's length, assumes the first header is
//! `CONTENT_LENGTH` (as the spec requires) and reads its value, then
//! answers a fixed hello when the body is empty, else echoes the body
//! (head and the body's first bytes in one write, the rest as it comes).
//! Every answer carries `Content-Length`. The binary drives it on tokio,
//! async-std, smol or a thread per connection, with nothing else on the
//! path.

/// The whole answer to a request without a body: one write, fixed bytes,
/// with `Content-Length`.
pub const HELLO: &[u8] =
    b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n\r\nHello for the 1th time";

/// The read buffer: the head must fit in it (a benchmark's head does).
const BUF: usize = 8 * 1024;

/// What the connection's driver does next.
pub enum Next<'a> {
    /// Read into this buffer, then call [`Exchange::read`] with the count.
    Read(&'a mut [u8]),
    /// Write all of this, then call [`Exchange::wrote`].
    Write(&'a [u8]),
    /// Close the connection.
    Done,
}

enum Phase {
    Head,
    Answer,
    Body,
    Echo(usize),
    Done,
}

/// One connection's exchange; see the crate docs.
pub struct Exchange {
    buf: Vec<u8>,
    have: usize,
    out: Vec<u8>,
    left: u64,
    phase: Phase,
}

impl Default for Exchange {
    fn default() -> Self {
        Self::new()
    }
}

impl Exchange {
    /// A fresh connection, waiting for the head.
    pub fn new() -> Self {
        Exchange {
            buf: vec![0; BUF],
            have: 0,
            out: Vec::new(),
            left: 0,
            phase: Phase::Head,
        }
    }

    /// What to do next.
    pub fn step(&mut self) -> Next<'_> {
        match self.phase {
            Phase::Head => Next::Read(&mut self.buf[self.have..]),
            Phase::Answer if self.out.is_empty() => Next::Write(HELLO),
            Phase::Answer => Next::Write(&self.out),
            Phase::Body => {
                let n = self.left.min(BUF as u64) as usize;
                Next::Read(&mut self.buf[..n])
            }
            Phase::Echo(n) => Next::Write(&self.buf[..n]),
            Phase::Done => Next::Done,
        }
    }

    /// `n` bytes were read into the buffer [`step`](Self::step) gave.
    pub fn read(&mut self, n: usize) {
        if n == 0 {
            self.phase = Phase::Done;
            return;
        }
        match self.phase {
            Phase::Head => {
                self.have += n;
                self.head();
            }
            Phase::Body => {
                self.left -= n as u64;
                self.phase = Phase::Echo(n);
            }
            _ => self.phase = Phase::Done,
        }
    }

    /// The bytes [`step`](Self::step) gave were written.
    pub fn wrote(&mut self) {
        self.phase = if self.left > 0 {
            Phase::Body
        } else {
            Phase::Done
        };
    }

    /// "<len>:<headers>," then the body: once the netstring is in, the
    /// answer (hello, or the echo's head and the body read so far).
    fn head(&mut self) {
        let buf = &self.buf[..self.have];
        let Some(colon) = buf.iter().position(|&b| b == b':') else {
            return self.full();
        };
        let len: usize = parse(&buf[..colon]).unwrap_or(0) as usize;
        if self.have <= colon + len + 1 {
            return self.full();
        }
        // The first header is CONTENT_LENGTH: its value follows the first NUL.
        let Some(value) = buf.get(colon + 16..colon + 1 + len) else {
            self.phase = Phase::Done;
            return;
        };
        let end = value.iter().position(|&b| b == 0).unwrap_or(0);
        let length = parse(&value[..end]).unwrap_or(0);
        let body_at = colon + len + 2;
        let first = self
            .have
            .min(body_at.saturating_add(length.try_into().unwrap_or(usize::MAX)));
        if length > 0 {
            self.out = format!(
                "Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
            )
            .into_bytes();
            self.out.extend_from_slice(&buf[body_at..first]);
        }
        self.left = length - (first - body_at) as u64;
        self.phase = Phase::Answer;
    }

    /// No whole head yet: read on, unless the buffer is full.
    fn full(&mut self) {
        if self.have == self.buf.len() {
            self.phase = Phase::Done;
        }
    }
}

fn parse(digits: &[u8]) -> Option<u64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `piece` bytes and collects what the
    /// exchange writes.
    fn run(input: &[u8], piece: usize) -> Vec<u8> {
        let mut x = Exchange::new();
        let mut rest = input;
        let mut out = Vec::new();
        loop {
            match x.step() {
                Next::Read(buf) => {
                    let n = rest.len().min(piece).min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    x.read(n);
                }
                Next::Write(bytes) => {
                    out.extend_from_slice(bytes);
                    x.wrote();
                }
                Next::Done => return out,
            }
        }
    }

    fn request(body: &[u8]) -> Vec<u8> {
        let headers = format!(
            "CONTENT_LENGTH\0{}\0SCGI\x001\0REQUEST_METHOD\0POST\0",
            body.len()
        );
        let mut r = format!("{}:{headers},", headers.len()).into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn hello_for_a_request_without_a_body() {
        for piece in [1, 7, 4096] {
            assert_eq!(run(&request(b""), piece), HELLO);
        }
    }

    #[test]
    fn a_body_comes_back_whole_after_a_head_with_its_length() {
        let body: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        for piece in [1, 100, 4096, 1 << 20] {
            let out = run(&request(&body), piece);
            let head = b"Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 20000\r\n\r\n";
            assert_eq!(&out[..head.len()], head, "piece {piece}");
            assert_eq!(&out[head.len()..], &body[..], "piece {piece}");
        }
    }

    #[test]
    fn a_connection_closed_early_gets_nothing() {
        let r = request(b"abc");
        assert!(run(&r[..10], 4096).is_empty());
    }
}

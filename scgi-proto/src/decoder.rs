//! The request decoder: a sans-IO state machine over byte slices.

use core::num::NonZeroUsize;

use crate::error::Error;
use crate::headers::{ChunkNuls, Headers, NulCount, Nuls, mask_at};

/// Size limits, checked by the [`Decoder`]. Plain data with documented
/// defaults; change a field or use the `with_*` methods.
///
/// | field | default | exceeded gives |
/// | --- | --- | --- |
/// | [`max_head`](Limits::max_head) | 65 536 bytes (64 KiB) | [`Error::HeadTooLarge`] (431) |
/// | [`max_headers`](Limits::max_headers) | 1 024 | [`Error::TooManyHeaders`] (431) |
/// | [`max_body`](Limits::max_body) | `None` (no limit) | [`Error::BodyTooLarge`] (413) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted header block, in bytes: the netstring's claimed
    /// length (the prefix digits, `:` and `,` are not counted). A larger claim
    /// fails as soon as the length prefix passes this value, before the block
    /// is buffered. The default, 64 KiB, is the floor below which real
    /// requests (one long cookie or query string) start failing.
    pub max_head: usize,
    /// Largest accepted number of headers. Bounds the work done per request
    /// (and the quadratic duplicate check under [`Duplicates::Reject`]).
    /// nginx and Apache send 17-25 for a plain request, plus one per client
    /// header.
    pub max_headers: usize,
    /// Largest accepted `CONTENT_LENGTH`, or `None` for no limit. The decoder
    /// streams the body without buffering it, so the limit is an application
    /// policy, not a memory safeguard.
    pub max_body: Option<u64>,
}

impl Limits {
    /// The defaults (see the table on [`Limits`]).
    pub const DEFAULT: Limits = Limits {
        max_head: 64 * 1024,
        max_headers: 1024,
        max_body: None,
    };

    /// Returns these limits with `max_head` set.
    #[must_use]
    pub const fn with_max_head(mut self, bytes: usize) -> Self {
        self.max_head = bytes;
        self
    }

    /// Returns these limits with `max_headers` set.
    #[must_use]
    pub const fn with_max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// Returns these limits with `max_body` set.
    #[must_use]
    pub const fn with_max_body(mut self, bytes: Option<u64>) -> Self {
        self.max_body = bytes;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Where `CONTENT_LENGTH` may appear in the header block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentLengthPosition {
    /// It must be the first header, as the spec says (default). nginx, Apache
    /// and lighttpd all send it first.
    #[default]
    First,
    /// It may be anywhere (lenient, for hand-written clients).
    Anywhere,
}

/// What to do when the `SCGI` header is missing or its value is not `1`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScgiHeader {
    /// Fail with [`Error::MissingScgi`] or [`Error::InvalidScgi`] (default).
    /// A missing header usually means an nginx location without
    /// `include scgi_params;`, which also drops every other CGI variable.
    #[default]
    Require,
    /// Accept the request without it, or with another value.
    Optional,
}

/// What to do with a header name that appears more than once.
///
/// The spec forbids duplicates, but nginx before 1.23 forwards a repeated
/// client header (two `Cookie:` lines) as two SCGI headers with one name, and
/// lighttpd maps `X_Foo` and `X-Foo` both to `HTTP_X_FOO`. Rejecting them
/// would turn ordinary browser traffic into 400s, so the default keeps them.
/// A repeated `CONTENT_LENGTH` is refused under every policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Duplicates {
    /// Keep all, in wire order; [`Headers::get`] gives the first (default).
    #[default]
    First,
    /// Keep all, in wire order; [`Headers::get`] gives the last.
    Last,
    /// Fail with [`Error::DuplicateHeader`].
    Reject,
}

/// Policies for what the spec and real clients disagree on. Runtime settings
/// with documented defaults; see each type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Policy {
    /// Where `CONTENT_LENGTH` may appear. Default: first.
    pub content_length: ContentLengthPosition,
    /// Whether `SCGI: 1` is required. Default: required.
    pub scgi: ScgiHeader,
    /// Duplicate header names. Default: keep all, first wins.
    pub duplicates: Duplicates,
}

impl Policy {
    /// The defaults: strict `CONTENT_LENGTH` position, `SCGI=1` required,
    /// duplicates kept with the first winning.
    pub const DEFAULT: Policy = Policy {
        content_length: ContentLengthPosition::First,
        scgi: ScgiHeader::Require,
        duplicates: Duplicates::First,
    };

    /// Returns this policy with `content_length` set.
    #[must_use]
    pub const fn with_content_length(mut self, p: ContentLengthPosition) -> Self {
        self.content_length = p;
        self
    }

    /// Returns this policy with `scgi` set.
    #[must_use]
    pub const fn with_scgi(mut self, p: ScgiHeader) -> Self {
        self.scgi = p;
        self
    }

    /// Returns this policy with `duplicates` set.
    #[must_use]
    pub const fn with_duplicates(mut self, p: Duplicates) -> Self {
        self.duplicates = p;
        self
    }
}

/// A [`Decoder`]'s configuration: limits and policies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Config {
    /// Size limits.
    pub limits: Limits,
    /// Policies.
    pub policy: Policy,
}

impl Config {
    /// The defaults of [`Limits`] and [`Policy`].
    pub const DEFAULT: Config = Config {
        limits: Limits::DEFAULT,
        policy: Policy::DEFAULT,
    };

    /// Returns this configuration with `limits` set.
    #[must_use]
    pub const fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Returns this configuration with `policy` set.
    #[must_use]
    pub const fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
}

/// The outcome of one [`Decoder::decode`] call. It holds no borrow, so a
/// caller can match on it and then mutate its buffer (see the crate docs).
///
/// [`Step::consumed`] says how many bytes at the front of the input the step
/// accounts for; the caller drops them (once done with any view of them) and
/// passes the rest next time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// More input is needed. Nothing is consumed: while the head is
    /// incomplete, pass the same bytes again with more appended. `needed` is
    /// a lower bound (at least 1) on the bytes still to come, useful to size
    /// the next read.
    Partial {
        /// At least this many more bytes are needed.
        needed: usize,
    },
    /// The header block is complete and valid. It spans
    /// `input[..head.wire_len()]`; view it with [`Head::headers`] on the same
    /// input, then drop those bytes.
    Head(Head),
    /// `input[..n]` is body. Drop it after use.
    Body(usize),
    /// The request is complete. Nothing is consumed: whatever the caller still
    /// holds, and whatever the peer sends later, comes after the request (the
    /// raw tunnel after a `101` answer, or nginx's extra bytes after a short
    /// `CONTENT_LENGTH`). The decoder never consumes or rejects it.
    End,
}

impl Step {
    /// How many bytes at the front of the input this step accounts for.
    #[must_use]
    pub const fn consumed(&self) -> usize {
        match self {
            Step::Head(head) => head.wire_len(),
            Step::Body(n) => *n,
            Step::Partial { .. } | Step::End => 0,
        }
    }
}

/// A validated header block's position and facts, without a borrow. Turn it
/// into a [`Headers`] view with [`Head::headers`], passing the input the
/// decoder saw (or any copy of those bytes at the same offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Head {
    start: usize,
    len: usize,
    count: usize,
    content_length: u64,
    duplicates: Duplicates,
}

impl Head {
    /// The body length the request announced.
    #[must_use]
    pub const fn content_length(&self) -> u64 {
        self.content_length
    }

    /// How many headers the block holds.
    #[must_use]
    pub const fn header_count(&self) -> usize {
        self.count
    }

    /// The header block's byte range in the input (after `len:`, before `,`).
    #[must_use]
    pub const fn block_range(&self) -> core::ops::Range<usize> {
        self.start..self.start.saturating_add(self.len)
    }

    /// The whole netstring's length on the wire: prefix, block and comma.
    #[must_use]
    pub const fn wire_len(&self) -> usize {
        self.start.saturating_add(self.len).saturating_add(1)
    }

    /// A view of the headers in `input`, which must hold the bytes the
    /// decoder validated at the same offsets. With other bytes the view never
    /// panics but shows whatever those bytes contain.
    #[must_use]
    pub fn headers<'a>(&self, input: &'a [u8]) -> Headers<'a> {
        let block = input.get(self.block_range()).unwrap_or(&[]);
        Headers::from_parts(block, self.count, self.content_length, self.duplicates)
    }
}

/// What the peer's end of input meant, from [`Decoder::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Closed {
    /// The connection closed before its first byte. Normal and quiet: Apache
    /// opens and closes a backend connection without a byte when it answers
    /// a chunked request with 411 itself.
    Idle,
    /// The connection closed after a complete request. Normal: lighttpd
    /// 1.4.40-41 half-closes after sending the request.
    Complete,
}

// `repr(u8)`: a tag of its own (no niche in `Error`'s), so `decode`'s tests
// of the state are one compare each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum State {
    /// Reading the netstring length; `digits` bytes of it already seen.
    Prefix {
        value: usize,
        digits: usize,
    },
    /// Waiting for the whole block and its comma, which start at `start`.
    Block {
        start: usize,
        len: usize,
    },
    /// Streaming the body.
    Body {
        remaining: u64,
    },
    Failed(Error),
}

/// The SCGI request decoder. See the crate docs for its contract and the
/// driving loop.
///
/// It never allocates, copies header bytes, or touches I/O. After the first
/// error every call returns that error again.
#[derive(Clone, Debug)]
pub struct Decoder {
    config: Config,
    state: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the default [`Config`].
    #[must_use]
    pub const fn new() -> Self {
        Decoder::with_config(Config::DEFAULT)
    }

    /// A decoder with the given configuration.
    #[must_use]
    pub const fn with_config(config: Config) -> Self {
        Decoder {
            config,
            state: State::Prefix {
                value: 0,
                digits: 0,
            },
        }
    }

    /// The configuration this decoder checks against.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Body bytes still expected, once the head is decoded; `None` before
    /// that and after an error.
    #[must_use]
    pub const fn remaining_body(&self) -> Option<u64> {
        match self.state {
            State::Body { remaining } => Some(remaining),
            _ => None,
        }
    }

    /// Whether the whole request (head and body) has been decoded.
    #[must_use]
    pub const fn is_complete(&self) -> bool {
        matches!(self.state, State::Body { remaining: 0 })
    }

    /// The error this decoder failed with, if it has.
    #[must_use]
    pub const fn error(&self) -> Option<Error> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Reads the front of `input` and reports one [`Step`].
    ///
    /// While the head is incomplete, pass the same bytes each time with more
    /// appended (the decoder remembers how far it got and does not rescan).
    /// After [`Step::Head`], [`Step::Body`], drop [`Step::consumed`] bytes
    /// and pass the rest. Errors are sticky.
    // `inline(always)`: the usual steps (a whole head at once, then the
    // body and `End`) fold into the caller's loop: the body steps are a few
    // instructions, a whole head the length prefix read inline and one call
    // to the lean pass (`validate_fast`); anything else is one call away
    // (`decode_steps`).
    #[inline(always)]
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, Error> {
        if let State::Body { remaining } = self.state {
            return Ok(body_step(&mut self.state, input, remaining));
        }
        if matches!(
            self.state,
            State::Prefix {
                value: 0,
                digits: 0
            }
        ) && let Some(head) = self.whole_head(input)
        {
            self.state = State::Body {
                remaining: head.content_length,
            };
            return Ok(Step::Head(head));
        }
        // By value, and the new state back: the decoder's address passed
        // out of line would keep it in memory in the caller's loop, where
        // otherwise its fields stay in registers (and a configuration known
        // there, such as the default, has its checks folded away).
        let (state, result) = Decoder::decode_steps(self.config, self.state, input);
        self.state = state;
        result
    }

    /// [`decode`](Decoder::decode) through the state machine: the new
    /// state and the step.
    #[inline(never)]
    fn decode_steps(config: Config, state: State, input: &[u8]) -> (State, Result<Step, Error>) {
        let mut decoder = Decoder { config, state };
        let result = decoder.step(input);
        if let Err(e) = result {
            decoder.state = State::Failed(e);
        }
        (decoder.state, result)
    }

    /// Tells the decoder the peer closed its sending side. Returns what that
    /// means: [`Closed::Idle`] before any byte, [`Closed::Complete`] after a
    /// whole request, else [`Error::IncompleteHead`] or
    /// [`Error::IncompleteBody`] (which the decoder then keeps).
    pub fn finish(&mut self) -> Result<Closed, Error> {
        let result = match self.state {
            State::Prefix { digits: 0, .. } => Ok(Closed::Idle),
            State::Prefix { .. } | State::Block { .. } => Err(Error::IncompleteHead),
            State::Body { remaining: 0 } => Ok(Closed::Complete),
            State::Body { remaining } => Err(Error::IncompleteBody { missing: remaining }),
            State::Failed(e) => Err(e),
        };
        if let Err(e) = result {
            self.state = State::Failed(e);
        }
        result
    }

    /// The usual first call: the whole netstring is in `input`, and valid.
    /// Parses the length prefix and validates the block in one go, without
    /// the state machine's stops; `None` for anything else (a partial head,
    /// any fault, a policy the lean pass does not serve), which the state
    /// machine then reads from the start, naming the fault exactly.
    #[inline(always)]
    fn whole_head(&self, input: &[u8]) -> Option<Head> {
        let limits = &self.config.limits;
        // Strict digits, as `prefix`: no leading zero (a `0` first is
        // either `0:` or a leading zero, both faults), at most 16 of them
        // (no overflow in a `u64`; a longer claim takes the exact path).
        if input.first() == Some(&b'0') {
            return None;
        }
        let (claimed, colon) = prefix_digits(input)?;
        if input.get(colon) != Some(&b':') || claimed == 0 {
            return None;
        }
        let len = usize::try_from(claimed)
            .ok()
            .filter(|&len| len <= limits.max_head)?;
        let start = colon + 1;
        let end = start.checked_add(len)?;
        if input.get(end) != Some(&b',') {
            return None;
        }
        let policy = &self.config.policy;
        if policy.content_length != ContentLengthPosition::First
            || policy.duplicates == Duplicates::Reject
        {
            return None;
        }
        let (count, content_length) = validate_fast(
            input.get(start..end)?,
            policy.scgi == ScgiHeader::Require,
            limits.max_headers,
        )?;
        let count = count.get();
        if limits.max_body.is_some_and(|limit| content_length > limit) {
            return None;
        }
        Some(Head {
            start,
            len,
            count,
            content_length,
            duplicates: policy.duplicates,
        })
    }

    fn step(&mut self, input: &[u8]) -> Result<Step, Error> {
        match self.state {
            State::Prefix { value, digits } => self.prefix(input, value, digits),
            State::Block { start, len } => self.block(input, start, len),
            State::Body { remaining } => Ok(body_step(&mut self.state, input, remaining)),
            State::Failed(e) => Err(e),
        }
    }

    /// Parses the netstring length from `input[digits..]`, strictly: digits,
    /// no leading zero, and never a value above `max_head` (so neither an
    /// overflow nor a huge claim is ever accepted).
    fn prefix(&mut self, input: &[u8], mut value: usize, digits: usize) -> Result<Step, Error> {
        let limit = self.config.limits.max_head;
        for (i, &b) in input.iter().enumerate().skip(digits) {
            match b {
                b'0'..=b'9' => {
                    if i == 1 && value == 0 {
                        return Err(Error::LeadingZero);
                    }
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(usize::from(b - b'0')))
                        .unwrap_or(usize::MAX);
                    if value > limit {
                        return Err(Error::HeadTooLarge {
                            limit,
                            claimed: value,
                        });
                    }
                }
                b':' if i > 0 => {
                    if value == 0 {
                        return Err(Error::EmptyHead);
                    }
                    self.state = State::Block {
                        start: i + 1,
                        len: value,
                    };
                    return self.block(input, i + 1, value);
                }
                _ if i == 0 => return Err(Error::NotNetstring { byte: b }),
                _ => return Err(Error::InvalidLength { byte: b }),
            }
        }
        self.state = State::Prefix {
            value,
            digits: input.len().max(digits),
        };
        Ok(Step::Partial { needed: 1 })
    }

    fn block(&mut self, input: &[u8], start: usize, len: usize) -> Result<Step, Error> {
        // Saturating: `len` is at most `max_head`, which a caller may set to
        // `usize::MAX`; such a claim then simply never completes.
        let end = start.saturating_add(len);
        let Some(&comma) = input.get(end) else {
            return Ok(Step::Partial {
                needed: end.saturating_add(1) - input.len().min(end),
            });
        };
        if comma != b',' {
            return Err(Error::MissingComma { found: comma });
        }
        let (count, content_length) = validate(&input[start..end], &self.config)?;
        if let Some(limit) = self.config.limits.max_body
            && content_length > limit
        {
            return Err(Error::BodyTooLarge {
                limit,
                content_length,
            });
        }
        self.state = State::Body {
            remaining: content_length,
        };
        Ok(Step::Head(Head {
            start,
            len,
            count,
            content_length,
            duplicates: self.config.policy.duplicates,
        }))
    }
}

#[inline(always)]
fn body_step(state: &mut State, input: &[u8], remaining: u64) -> Step {
    if remaining == 0 {
        return Step::End;
    }
    if input.is_empty() {
        return Step::Partial {
            needed: usize::try_from(remaining).unwrap_or(usize::MAX),
        };
    }
    let n = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
    // `n <= remaining`, so this cannot underflow.
    *state = State::Body {
        remaining: remaining - n as u64,
    };
    Step::Body(n)
}

/// Validates a complete header block. Returns the header count and
/// `CONTENT_LENGTH`.
///
/// Under the usual policies ([`ContentLengthPosition::First`], duplicates
/// not rejected) a lean pass ([`validate_fast`]) accepts a valid block; any
/// block it does not accept goes through [`validate_exact`], which finds the
/// first fault in wire order and names it. The lean pass only ever accepts
/// what the exact one accepts, with the same result (a property test and the
/// fuzz target `decode` compare the decoder against an independent oracle).
#[inline]
fn validate(block: &[u8], config: &Config) -> Result<(usize, u64), Error> {
    let policy = &config.policy;
    if policy.content_length == ContentLengthPosition::First
        && policy.duplicates != Duplicates::Reject
        && let Some((count, content_length)) = validate_fast(
            block,
            policy.scgi == ScgiHeader::Require,
            config.limits.max_headers,
        )
    {
        return Ok((count.get(), content_length));
    }
    validate_exact(block, config)
}

/// The lean pass of [`validate`]: `Some` for a valid block, `None` when the
/// block has a fault or needs a closer look. Only for
/// [`ContentLengthPosition::First`] without [`Duplicates::Reject`].
///
/// It works on 64 bytes at a time, on the bit mask of their NULs, with no
/// per-header step. Three masks flag what needs a look: two NULs in a row
/// (an empty value, or an empty name: a fault), and a 4- or 14-byte field
/// between two NULs (perhaps `SCGI` or `CONTENT_LENGTH`). Only for those
/// does it tell name ends from value ends (a prefix XOR over the mask: the
/// odd NULs end names) and compare bytes. The NULs' count gives the header
/// count.
///
/// The configuration comes as the two values it needs, not a reference,
/// and the count as `NonZeroUsize` (a valid block has `CONTENT_LENGTH`), so
/// the result comes back in two registers: a reference to the caller's
/// decoder, or a result through memory, would keep the decoder in memory
/// in the caller's loop.
#[inline(never)]
fn validate_fast(
    block: &[u8],
    require_scgi: bool,
    max_headers: usize,
) -> Option<(NonZeroUsize, u64)> {
    const CL: &[u8] = b"CONTENT_LENGTH\0";
    if block.last() != Some(&0) {
        return None;
    }
    let rest = block.strip_prefix(CL)?;
    // The value is short: one or more digits up to its NUL, read in one
    // loop. At most 19 of them, so no overflow is possible; a longer
    // value takes the exact path.
    let (content_length, digits) = leading_digits(rest, 19)?;
    if digits == 0 || rest.get(digits) != Some(&0) {
        return None;
    }
    let len = block.len();
    // Bit 0: an `SCGI` header seen; bit 1: one with a value other than
    // `1` (tested after the loop, so `require_scgi` is not live in it).
    let mut scgi = 0u8;
    // NULs of the whole chunks up to this one (since the last skip).
    let mut nuls = NulCount::new();
    // NULs counted outside `nuls`: those of a short last chunk, and those
    // before a skip.
    let mut tail = 0u64;
    // The previous chunk's NULs, for what crosses into this one.
    let mut prev = 0u64;
    let mut base = 0;
    // The loop over the chunks has no call in it (the `memchr` skip is
    // outside), so the NUL count stays in a register.
    while let Some(at) = loop {
        if base >= len {
            break None;
        }
        let nul = match block.get(base..).and_then(<[u8]>::first_chunk) {
            Some(chunk) => {
                let whole = ChunkNuls::of(chunk);
                nuls.add(&whole);
                whole.mask()
            }
            None => {
                // Only the last chunk is short.
                let nul = mask_at(block, base);
                tail += u64::from(nul.count_ones());
                nul
            }
        };
        if nul == 0 {
            break Some(base);
        }
        // Bit i: a NUL at i and one at i - 1 (i - 5, i - 15).
        let empty = nul & (nul << 1 | prev >> 63);
        let four = nul & (nul << 5 | prev >> 59);
        let fourteen = nul & (nul << 15 | prev >> 49);
        if empty | four | fourteen != 0 {
            // Bit i: an odd number of NULs up to and including byte i, so a
            // NUL there ends a name.
            let odd = prefix_xor(nul);
            // The NULs before this chunk: all counted so far less this
            // chunk's, whose parity is the top bit of `odd`.
            let before = (nuls.total() + tail) ^ (odd >> 63);
            let odd = odd ^ 0u64.wrapping_sub(before & 1);
            let name_ends = nul & odd;
            if empty & name_ends != 0 {
                return None; // an empty name
            }
            for end in Bits(four & name_ends) {
                let end = base + end;
                // `end >= 5` (a NUL 5 bytes before); `get` all the same.
                if block.get(end.wrapping_sub(4)..end) == Some(b"SCGI") {
                    // Seen, and (bit 1) with a value other than `1`.
                    let other = block.get(end + 1..end + 3) != Some(b"1\0");
                    scgi |= 1 | u8::from(other) << 1;
                }
            }
            for end in Bits(fourteen & name_ends) {
                let end = base + end;
                // The last byte first: few 14-byte names end in `H`, and
                // one byte is a cheaper test (`nginx_many_headers` has 62
                // such names, mostly `HTTP_...`).
                if block.get(end.wrapping_sub(1)) == Some(&b'H')
                    && block.get(end.wrapping_sub(14)..end) == Some(&CL[..14])
                {
                    return None; // a second one
                }
            }
        }
        prev = nul;
        base += 64;
    } {
        // No NUL in 64 bytes: a long value (or name, too long to be one we
        // look for). Jump to the next NUL.
        // The count so far moves to `tail`, so the vector count is not
        // live across the call (which would keep it in memory in the loop).
        tail += nuls.total();
        nuls = NulCount::new();
        let next = memchr::memchr(0, block.get(at + 64..)?)?;
        base = at + 64 + next;
        prev = 0;
    }
    let nuls = nuls.total() + tail;
    // Every name has its value; at most `max_headers`.
    let count = NonZeroUsize::new(usize::try_from(nuls / 2).ok()?)?;
    if !nuls.is_multiple_of(2) || count.get() > max_headers || (require_scgi && scgi != 1) {
        return None;
    }
    Some((count, content_length))
}

/// The value of the ASCII digits at the front of `bytes`, at most `max` of
/// them (`max <= 19`, so it cannot overflow), and how many there are; `None`
/// if `bytes` ends before a byte that is not a digit or the `max`-th digit.
#[inline(always)]
fn leading_digits(bytes: &[u8], max: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    let mut n = 0;
    loop {
        let digit = bytes.get(n)?.wrapping_sub(b'0');
        if digit > 9 || n == max {
            return Some((value, n));
        }
        value = value * 10 + u64::from(digit);
        n += 1;
    }
}

/// [`leading_digits`]`(input, 16)`, eight bytes at a time when the first
/// eight hold a byte that is not a digit (a length prefix below 10 000 000
/// and its colon): the digits found and combined with integer arithmetic,
/// about 25 instructions where the loop takes about 14 per byte.
#[inline(always)]
fn prefix_digits(input: &[u8]) -> Option<(u64, usize)> {
    const LOW: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    if let Some(word) = input.first_chunk::<8>() {
        // A digit becomes its value (0-9), any other byte a value with a
        // high nibble, or a low nibble above 9 (which carries into bit 4
        // when 6 is added; no carry leaves its byte).
        let t = u64::from_le_bytes(*word) ^ 0x3030_3030_3030_3030;
        let other = (t & !LOW) | ((t & LOW) + 0x0606_0606_0606_0606) & 0x1010_1010_1010_1010;
        if let Some(other) = core::num::NonZeroU64::new(other) {
            // The first byte that is not a digit; the digits before it.
            let n = other.trailing_zeros() as usize / 8;
            if n == 0 {
                return Some((0, 0));
            }
            // The `n` digits (the first is the most significant) moved to
            // the top bytes, zeros below them; then pairs, fours and
            // eights of digits combined.
            let d = (t & LOW) << (64 - 8 * n);
            let d = (d * 10 + (d >> 8)) & 0x00ff_00ff_00ff_00ff;
            let d = (d * 100 + (d >> 16)) & 0x0000_ffff_0000_ffff;
            let d = (d * 10_000 + (d >> 32)) & 0xffff_ffff;
            return Some((d, n));
        }
    }
    leading_digits(input, 16)
}

/// For each bit set in `x`, bit `i` of the result is the XOR of bits `0..=i`
/// of `x`.
#[inline(always)]
const fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The positions of the bits set in a mask, lowest first.
struct Bits(u64);

impl Iterator for Bits {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        let i = core::num::NonZeroU64::new(self.0)?.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(i)
    }
}

/// Validates a complete header block in one pass over its NULs, reporting
/// the first fault in wire order. Returns the header count and
/// `CONTENT_LENGTH`.
#[cold]
fn validate_exact(block: &[u8], config: &Config) -> Result<(usize, u64), Error> {
    let policy = &config.policy;
    let max_headers = config.limits.max_headers;
    if block.last() != Some(&0) {
        return Err(Error::UnterminatedHead);
    }
    let mut nuls = Nuls::new(block);
    let mut pos = 0;
    let mut index = 0;
    let mut content_length = None;
    let mut scgi = false;
    while let Some(name_end) = nuls.next() {
        if name_end == pos {
            return Err(Error::EmptyName { index });
        }
        let Some(value_end) = nuls.next() else {
            return Err(Error::MissingValue { index });
        };
        if index == max_headers {
            return Err(Error::TooManyHeaders { limit: max_headers });
        }
        let name = &block[pos..name_end];
        let value = &block[name_end + 1..value_end];
        if name == b"CONTENT_LENGTH" {
            if content_length.is_some() {
                return Err(Error::DuplicateContentLength);
            }
            if index != 0 && policy.content_length == ContentLengthPosition::First {
                return Err(Error::ContentLengthNotFirst);
            }
            content_length = Some(parse_content_length(value)?);
        } else {
            if index == 0 && policy.content_length == ContentLengthPosition::First {
                return Err(Error::ContentLengthNotFirst);
            }
            if name == b"SCGI" {
                if value != b"1" && policy.scgi == ScgiHeader::Require {
                    return Err(Error::InvalidScgi);
                }
                scgi = true;
            }
            if policy.duplicates == Duplicates::Reject && name_seen_before(&block[..pos], name) {
                return Err(Error::DuplicateHeader { index });
            }
        }
        pos = value_end + 1;
        index += 1;
    }
    let content_length = content_length.ok_or(Error::MissingContentLength)?;
    if !scgi && policy.scgi == ScgiHeader::Require {
        return Err(Error::MissingScgi);
    }
    Ok((index, content_length))
}

/// Whether `name` is among the names of the (already validated) headers in
/// `earlier`. Quadratic over a request, which `max_headers` bounds; only run
/// under [`Duplicates::Reject`].
fn name_seen_before(earlier: &[u8], name: &[u8]) -> bool {
    Headers::from_parts(earlier, usize::MAX, 0, Duplicates::First)
        .iter()
        .any(|h| h.name() == name)
}

/// `CONTENT_LENGTH`: a non-empty run of ASCII digits that fits in a `u64`.
fn parse_content_length(value: &[u8]) -> Result<u64, Error> {
    if value.is_empty() {
        return Err(Error::InvalidContentLength);
    }
    value.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(Error::InvalidContentLength);
        }
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(Error::InvalidContentLength)
    })
}

#[cfg(test)]
mod tests {
    use super::{
        Config, Duplicates, Limits, Policy, ScgiHeader, leading_digits, prefix_digits, validate,
        validate_exact, validate_fast,
    };

    /// The eight-byte length prefix parse agrees with the loop, on inputs
    /// of every length up to 12 of digits and the bytes around them.
    #[test]
    fn prefix_digits_agrees_with_the_loop() {
        const BYTES: &[u8] = b"0123456789:/,\0\x7f\x80\xb0\xb9\xff";
        let mut rng = Rng(0x853c_49e6_748f_ea9b);
        let mut input = [0u8; 12];
        for _ in 0..200_000 {
            let len = rng.below(13);
            // Mostly digits, so that every count of them comes up.
            let digits = rng.below(len + 1);
            for (i, b) in input[..len].iter_mut().enumerate() {
                *b = if i < digits {
                    b'0' + rng.below(10) as u8
                } else {
                    BYTES[rng.below(BYTES.len())]
                };
            }
            let input = &input[..len];
            assert_eq!(
                prefix_digits(input),
                leading_digits(input, 16),
                "{:?}",
                input.escape_ascii()
            );
        }
    }

    /// xorshift64: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Writes a near-valid header block into `buf` and returns its length:
    /// names and values of every length around the 4- and 14-byte names the
    /// lean pass compares, long enough to cross 64-byte chunks and to be
    /// skipped by `memchr`, then sometimes one byte changed or cut.
    fn block(rng: &mut Rng, buf: &mut [u8]) -> usize {
        const NAMES: [&[u8]; 8] = [
            b"CONTENT_LENGTH",
            b"SCGI",
            b"SCGJ",
            b"PATH",
            b"REQUEST_METHOD",
            b"CONTENT_LENGTI",
            b"",
            b"X",
        ];
        const VALUES: [&[u8]; 6] = [b"1", b"0", b"12", b"", b"2", b"007"];
        let mut len = 0;
        let put = |buf: &mut [u8], len: &mut usize, bytes: &[u8]| {
            let n = bytes.len().min(buf.len() - *len);
            buf[*len..*len + n].copy_from_slice(&bytes[..n]);
            *len += n;
        };
        let headers = 1 + rng.below(12);
        for i in 0..headers {
            let long = [b'a'; 150];
            let (name, value) = match rng.below(10) {
                _ if i == 0 && rng.below(10) > 0 => (NAMES[0], VALUES[rng.below(3)]),
                _ if i == 1 && rng.below(10) > 2 => (NAMES[1], VALUES[0]),
                0..=3 => (
                    NAMES[rng.below(NAMES.len())],
                    VALUES[rng.below(VALUES.len())],
                ),
                _ => (&long[..1 + rng.below(80)], &long[..rng.below(150)]),
            };
            put(buf, &mut len, name);
            put(buf, &mut len, b"\0");
            put(buf, &mut len, value);
            put(buf, &mut len, b"\0");
        }
        match rng.below(12) {
            0 if len > 0 => buf[rng.below(len)] = 0,
            1 if len > 0 => buf[rng.below(len)] = b'S',
            2 if len > 0 => len -= 1,
            // Bytes after the last NUL: a name that never ends.
            3 => put(buf, &mut len, &b"CONTENT_TY\xb0"[..1 + rng.below(11)]),
            _ => {}
        }
        len
    }

    /// The lean pass accepts exactly the blocks the exact pass accepts, with
    /// the same count and `CONTENT_LENGTH`, under every policy it serves;
    /// and `validate` always answers as the exact pass does.
    #[test]
    fn lean_pass_agrees_with_exact_pass() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut buf = [0u8; 2048];
        let (mut valid, mut invalid) = (0, 0);
        for round in 0..60_000 {
            let len = block(&mut rng, &mut buf);
            let block = &buf[..len];
            let policy = Policy::default()
                .with_scgi([ScgiHeader::Require, ScgiHeader::Optional][round % 2])
                .with_duplicates([Duplicates::First, Duplicates::Last][round / 2 % 2]);
            let limits = Limits::default().with_max_headers([1024, 3][round / 4 % 2]);
            let config = Config::default().with_policy(policy).with_limits(limits);
            let exact = validate_exact(block, &config);
            assert_eq!(
                validate_fast(
                    block,
                    config.policy.scgi == ScgiHeader::Require,
                    config.limits.max_headers
                )
                .map(|(count, content_length)| (count.get(), content_length)),
                exact.ok(),
                "{:?}",
                block.escape_ascii()
            );
            assert_eq!(validate(block, &config), exact);
            if exact.is_ok() {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        // The generator reaches both sides.
        assert!(
            valid > 10_000 && invalid > 10_000,
            "{valid} valid, {invalid} invalid"
        );
    }
}

//! The `decode` and `decode_split` targets: the request decoder against
//! arbitrary bytes, an oracle, and itself fed in pieces.

use scgi_proto::{
    Closed, Config, ContentLengthPosition, Decoder, Duplicates, Error, Head, Limits, Policy,
    ScgiHeader, Step,
};

use crate::pieces::{inside, pieces, plan};

/// The configurations every input is decoded with: the defaults, the lenient
/// policies, and tiny limits with duplicates rejected (so each limit and
/// policy branch is reachable from short inputs).
pub(crate) const CONFIGS: [Config; 3] = [
    Config::DEFAULT,
    Config::DEFAULT.with_policy(
        Policy::DEFAULT
            .with_content_length(ContentLengthPosition::Anywhere)
            .with_scgi(ScgiHeader::Optional)
            .with_duplicates(Duplicates::Last),
    ),
    Config::DEFAULT
        .with_limits(
            Limits::DEFAULT
                .with_max_head(256)
                .with_max_headers(8)
                .with_max_body(Some(64)),
        )
        .with_policy(Policy::DEFAULT.with_duplicates(Duplicates::Reject)),
];

/// The spec's worked example: a valid request, used to poke failed decoders.
pub(crate) const SPEC_EXAMPLE: &[u8] = b"70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00\
    REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,What is the answer to life?";

/// Arbitrary bytes, whole, into a decoder of each configuration. Checks:
/// no panic, no endless loop, every view inside the input, sticky errors,
/// and the same verdict and headers as a straightforward oracle.
pub fn decode(data: &[u8]) {
    for config in &CONFIGS {
        let run = run_whole(config, data);
        check_against_oracle(config, data, &run);
    }
}

/// `data` is `[k] [k size bytes] [request bytes]` (see the crate's
/// `pieces::plan`): the request bytes are fed in pieces of those sizes,
/// dropping consumed bytes as a server does. The merged events and the final
/// result must equal the one-shot decode.
pub fn decode_split(data: &[u8]) {
    let (sizes, input) = plan(data);
    for config in &CONFIGS {
        let whole = run_whole(config, input);
        let split = run_split(config, input, pieces(sizes, input));
        assert_eq!(
            whole.transcript, split.transcript,
            "split decode differs from one-shot decode"
        );
    }
}

/// A decoded head, owned, to compare runs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OwnedHead {
    pub(crate) head: Head,
    pub(crate) headers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `Step::End`, with every input byte after the request.
    End { after: Vec<u8> },
    /// An error from `decode` or `finish`.
    Failed(Error),
    /// Input ran out and `finish` accepted it.
    Closed(Closed),
}

/// Everything a run observed, with body chunks merged.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Transcript {
    pub(crate) head: Option<OwnedHead>,
    pub(crate) body: Vec<u8>,
    pub(crate) outcome: Outcome,
}

/// A finished run (its `Partial` hints were checked on the way).
pub(crate) struct Run {
    pub(crate) transcript: Transcript,
}

/// One decoder driven through a request, checking each step.
struct Session<'c> {
    config: &'c Config,
    decoder: Decoder,
    head: Option<OwnedHead>,
    body: Vec<u8>,
    /// `(bytes offered so far, needed, in body)` for each `Partial`.
    partials: Vec<(usize, usize, bool)>,
    steps: usize,
    /// The most steps a correct decoder can take on this input.
    max_steps: usize,
}

enum Flow {
    NeedMore,
    Consumed(usize),
    Done(Outcome),
}

impl<'c> Session<'c> {
    fn new(config: &'c Config, input_len: usize) -> Self {
        Session {
            config,
            decoder: Decoder::with_config(*config),
            head: None,
            body: Vec::new(),
            partials: Vec::new(),
            steps: 0,
            // Each piece gives at most one `Partial`, each `Head`/`Body`
            // consumes a byte or more, and `End`/`Err` stop the run.
            max_steps: 2 * input_len + 4,
        }
    }

    /// One `decode` call on `buf`, after `offered` bytes have been offered
    /// in total.
    fn step(&mut self, buf: &[u8], offered: usize) -> Flow {
        self.steps += 1;
        assert!(self.steps <= self.max_steps, "decoder does not progress");
        let step = self.decoder.decode(buf);
        if let Ok(s) = &step {
            let expect = match s {
                Step::Head(h) => h.wire_len(),
                Step::Body(n) => *n,
                Step::Partial { .. } | Step::End => 0,
            };
            assert_eq!(s.consumed(), expect);
        }
        match step {
            Ok(Step::Partial { needed }) => {
                assert!(needed >= 1, "Partial needs at least one byte");
                if let Some(h) = &self.head {
                    // In the body, `Partial` only comes with an empty buffer.
                    assert!(buf.is_empty(), "Partial with body bytes available");
                    let remaining = self.decoder.remaining_body().expect("in body");
                    assert!(remaining > 0 && remaining <= h.head.content_length());
                    assert_eq!(needed, usize::try_from(remaining).unwrap_or(usize::MAX));
                }
                self.partials.push((offered, needed, self.head.is_some()));
                Flow::NeedMore
            }
            Ok(Step::Head(head)) => {
                assert!(self.head.is_none(), "second Head");
                let owned = check_head(self.config, &self.decoder, buf, &head);
                self.head = Some(owned);
                Flow::Consumed(head.wire_len())
            }
            Ok(Step::Body(n)) => {
                let head = self.head.as_ref().expect("Body before Head");
                assert!(n >= 1 && n <= buf.len(), "Body({n}) of {} bytes", buf.len());
                self.body.extend_from_slice(&buf[..n]);
                let cl = head.head.content_length();
                let seen = self.body.len() as u64;
                assert!(seen <= cl, "more body than CONTENT_LENGTH");
                assert_eq!(self.decoder.remaining_body(), Some(cl - seen));
                Flow::Consumed(n)
            }
            Ok(Step::End) => {
                let head = self.head.as_ref().expect("End before Head");
                assert_eq!(self.body.len() as u64, head.head.content_length());
                assert!(self.decoder.is_complete());
                assert_eq!(self.decoder.remaining_body(), Some(0));
                // End is stable, and closing now is a normal end.
                assert_eq!(self.decoder.decode(buf), Ok(Step::End));
                assert_eq!(self.decoder.finish(), Ok(Closed::Complete));
                assert_eq!(self.decoder.decode(buf), Ok(Step::End));
                Flow::Done(Outcome::End {
                    after: buf.to_vec(),
                })
            }
            Err(e) => {
                check_failed(self.config, &mut self.decoder, e, buf);
                Flow::Done(Outcome::Failed(e))
            }
        }
    }

    /// The input ran out after `offered` bytes.
    fn finish(&mut self, offered: usize) -> Outcome {
        match self.decoder.finish() {
            Ok(Closed::Idle) => {
                assert_eq!(offered, 0, "Idle after {offered} bytes");
                Outcome::Closed(Closed::Idle)
            }
            Ok(c) => panic!("finish said {c:?} before End"),
            Err(e) => {
                assert_ne!(offered, 0, "finish failed before any byte");
                match (&self.head, e) {
                    (None, Error::IncompleteHead) => {}
                    (Some(h), Error::IncompleteBody { missing }) => {
                        assert_eq!(missing + self.body.len() as u64, h.head.content_length());
                    }
                    _ => panic!("finish gave {e:?} with head {:?}", self.head),
                }
                check_failed(self.config, &mut self.decoder, e, &[]);
                Outcome::Failed(e)
            }
        }
    }

    fn into_run(self, outcome: Outcome) -> Run {
        // `needed` is a lower bound on the bytes still to come: never past
        // the head's end while in the head, exactly the rest of the body in
        // the body.
        if let Some(h) = &self.head {
            let wire = h.head.wire_len();
            let end = wire as u128 + u128::from(h.head.content_length());
            for &(offered, needed, in_body) in &self.partials {
                if in_body {
                    assert_eq!(offered as u128 + needed as u128, end, "body Partial");
                } else {
                    assert!(
                        offered + needed <= wire,
                        "Partial needed {needed} after {offered} bytes, head ends at {wire}"
                    );
                }
            }
        }
        Run {
            transcript: Transcript {
                head: self.head,
                body: self.body,
                outcome,
            },
        }
    }
}

/// Decodes `input` passed whole, borrowing straight from it.
pub(crate) fn run_whole(config: &Config, input: &[u8]) -> Run {
    let mut s = Session::new(config, input.len());
    let mut at = 0;
    let outcome = loop {
        match s.step(&input[at..], input.len()) {
            Flow::NeedMore => break s.finish(input.len()),
            Flow::Consumed(n) => at += n,
            Flow::Done(o) => break o,
        }
    };
    s.into_run(outcome)
}

/// Decodes `input` arriving in `pieces` (which concatenate to `input`),
/// appending each to a buffer and dropping what the decoder consumed.
pub(crate) fn run_split<'a>(
    config: &Config,
    input: &[u8],
    mut pieces: impl Iterator<Item = &'a [u8]>,
) -> Run {
    let mut s = Session::new(config, input.len());
    let mut buf = Vec::new();
    let mut offered = 0;
    let outcome = loop {
        match s.step(&buf, offered) {
            Flow::NeedMore => match pieces.next() {
                Some(p) => {
                    buf.extend_from_slice(p);
                    offered += p.len();
                }
                None => break s.finish(offered),
            },
            Flow::Consumed(n) => {
                buf.drain(..n);
            }
            Flow::Done(Outcome::End { mut after }) => {
                after.extend_from_slice(&input[offered..]);
                break Outcome::End { after };
            }
            Flow::Done(o) => break o,
        }
    };
    assert!(offered <= input.len());
    s.into_run(outcome)
}

/// Checks a `Head` step against the bytes it describes and the config.
fn check_head(config: &Config, decoder: &Decoder, buf: &[u8], head: &Head) -> OwnedHead {
    let wire = head.wire_len();
    assert!(wire <= buf.len(), "head of {wire} bytes in {}", buf.len());
    let range = head.block_range();
    assert_eq!(range.end + 1, wire);
    assert_eq!(buf[range.end], b',');
    assert!(range.start >= 2 && buf[range.start - 1] == b':');
    let prefix = &buf[..range.start - 1];
    assert!(prefix.iter().all(u8::is_ascii_digit) && prefix[0] != b'0');
    let claimed: usize = std::str::from_utf8(prefix)
        .expect("digits")
        .parse()
        .expect("fits");
    assert_eq!(claimed, range.len());
    assert!(claimed <= config.limits.max_head);
    let block = &buf[range];

    let headers = head.headers(buf);
    assert!(inside(buf, headers.as_bytes()) && headers.as_bytes() == block);
    assert_eq!(headers.len(), head.header_count());
    assert!(!headers.is_empty());
    assert!(headers.len() <= config.limits.max_headers);
    assert_eq!(headers.content_length(), head.content_length());

    let list: Vec<_> = headers.iter().collect();
    assert_eq!(list.len(), head.header_count());
    let mut rebuilt = Vec::with_capacity(block.len());
    for h in &list {
        assert!(inside(block, h.name()) && inside(block, h.value()));
        assert!(!h.name().is_empty() && !h.name().contains(&0) && !h.value().contains(&0));
        rebuilt.extend_from_slice(h.name());
        rebuilt.push(0);
        rebuilt.extend_from_slice(h.value());
        rebuilt.push(0);
    }
    assert_eq!(rebuilt, block, "headers do not tile the block");

    let policy = &config.policy;
    let cls: Vec<_> = list
        .iter()
        .enumerate()
        .filter(|(_, h)| h.name() == b"CONTENT_LENGTH")
        .collect();
    assert_eq!(cls.len(), 1, "CONTENT_LENGTH count");
    let (cl_index, cl) = cls[0];
    assert_eq!(parse_digits(cl.value()), Some(head.content_length()));
    if policy.content_length == ContentLengthPosition::First {
        assert_eq!(cl_index, 0);
    }
    if policy.scgi == ScgiHeader::Require {
        let scgi: Vec<_> = list.iter().filter(|h| h.name() == b"SCGI").collect();
        assert!(!scgi.is_empty() && scgi.iter().all(|h| h.value() == b"1"));
    }
    if policy.duplicates == Duplicates::Reject {
        for (i, h) in list.iter().enumerate() {
            assert!(list[..i].iter().all(|e| e.name() != h.name()), "duplicate");
        }
    }
    if let Some(limit) = config.limits.max_body {
        assert!(head.content_length() <= limit);
    }
    assert_eq!(decoder.remaining_body(), Some(head.content_length()));
    assert_eq!(decoder.error(), None);

    // Lookups agree with the list (first few names: lookups are linear).
    for h in list.iter().take(8) {
        let all: Vec<_> = list
            .iter()
            .filter(|e| e.name() == h.name())
            .map(|e| e.value())
            .collect();
        let want = match policy.duplicates {
            Duplicates::Last => all.last().copied(),
            _ => all.first().copied(),
        };
        assert_eq!(headers.get(h.name()), want);
        assert!(headers.contains(h.name()));
        assert_eq!(headers.get_all(h.name()).collect::<Vec<_>>(), all);
    }
    // The typed accessors never panic on whatever the values hold.
    let _ = (headers.method(), headers.path(), headers.remote_port());
    let _ = (
        headers.server_port(),
        headers.https(),
        headers.content_type(),
    );
    let _ = (headers.http("User-Agent"), format!("{headers:?}"));

    OwnedHead {
        head: *head,
        headers: list
            .iter()
            .map(|h| (h.name().to_vec(), h.value().to_vec()))
            .collect(),
    }
}

/// Checks a decoder that just failed with `e`: the error is sticky, and
/// consistent with the configuration.
fn check_failed(config: &Config, decoder: &mut Decoder, e: Error, buf: &[u8]) {
    assert_eq!(decoder.error(), Some(e));
    assert_eq!(decoder.decode(buf), Err(e), "error not sticky");
    assert_eq!(decoder.decode(&[]), Err(e), "error not sticky");
    assert_eq!(decoder.decode(SPEC_EXAMPLE), Err(e), "error not sticky");
    assert_eq!(decoder.finish(), Err(e), "error not sticky");
    assert_eq!(decoder.remaining_body(), None);
    assert!(!decoder.is_complete());
    assert!(!e.to_string().is_empty());

    let limits = &config.limits;
    let policy = &config.policy;
    let hint = match e {
        Error::HeadTooLarge { limit, claimed } => {
            assert_eq!(limit, limits.max_head);
            assert!(claimed > limit);
            431
        }
        Error::TooManyHeaders { limit } => {
            assert_eq!(limit, limits.max_headers);
            431
        }
        Error::BodyTooLarge {
            limit,
            content_length,
        } => {
            assert_eq!(Some(limit), limits.max_body);
            assert!(content_length > limit);
            413
        }
        Error::DuplicateHeader { .. } => {
            assert_eq!(policy.duplicates, Duplicates::Reject);
            400
        }
        Error::ContentLengthNotFirst => {
            assert_eq!(policy.content_length, ContentLengthPosition::First);
            400
        }
        Error::MissingScgi | Error::InvalidScgi => {
            assert_eq!(policy.scgi, ScgiHeader::Require);
            400
        }
        _ => 400,
    };
    assert_eq!(e.status_hint(), hint);
    crate::response::check_error_response(hint, &e.to_string());
}

/// `CONTENT_LENGTH`'s grammar: one or more ASCII digits, fitting a `u64`.
fn parse_digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// A complete, valid head as the oracle reads it.
struct Accepted<'a> {
    wire_len: usize,
    headers: Vec<(&'a [u8], &'a [u8])>,
    content_length: u64,
}

/// The spec and the config, read as plainly as possible: `Some` when
/// `input` starts with a complete header netstring that the config accepts.
fn oracle<'a>(config: &Config, input: &'a [u8]) -> Option<Accepted<'a>> {
    let colon = input.iter().position(|&b| b == b':')?;
    let digits = &input[..colon];
    if digits.first() == Some(&b'0') || parse_digits(digits).is_none() {
        return None;
    }
    let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    if len > config.limits.max_head {
        return None;
    }
    let start = colon + 1;
    let end = start.checked_add(len)?;
    let block = input.get(start..end)?;
    if input.get(end) != Some(&b',') {
        return None;
    }
    let (&0, strings) = block.split_last()? else {
        return None;
    };
    let strings: Vec<&[u8]> = strings.split(|&b| b == 0).collect();
    if !strings.len().is_multiple_of(2) {
        return None;
    }
    let headers: Vec<(&[u8], &[u8])> = strings.chunks(2).map(|p| (p[0], p[1])).collect();
    if headers.len() > config.limits.max_headers || headers.iter().any(|(n, _)| n.is_empty()) {
        return None;
    }
    let cl: Vec<usize> = (0..headers.len())
        .filter(|&i| headers[i].0 == b"CONTENT_LENGTH")
        .collect();
    let [cl] = cl[..] else { return None };
    let policy = &config.policy;
    if policy.content_length == ContentLengthPosition::First && cl != 0 {
        return None;
    }
    let content_length = parse_digits(headers[cl].1)?;
    if policy.scgi == ScgiHeader::Require {
        let mut scgi = headers.iter().filter(|(n, _)| *n == b"SCGI").peekable();
        if scgi.peek().is_none() || !scgi.all(|(_, v)| *v == b"1") {
            return None;
        }
    }
    if policy.duplicates == Duplicates::Reject
        && (0..headers.len()).any(|i| headers[..i].iter().any(|(n, _)| *n == headers[i].0))
    {
        return None;
    }
    if config.limits.max_body.is_some_and(|l| content_length > l) {
        return None;
    }
    Some(Accepted {
        wire_len: end + 1,
        headers,
        content_length,
    })
}

/// The decoder accepts exactly what the oracle accepts, with the same
/// headers, and then hands over exactly `CONTENT_LENGTH` body bytes and the
/// rest of the input.
pub(crate) fn check_against_oracle(config: &Config, input: &[u8], run: &Run) {
    let t = &run.transcript;
    let Some(want) = oracle(config, input) else {
        assert!(
            t.head.is_none(),
            "decoder accepted a head the oracle refuses"
        );
        assert!(t.body.is_empty());
        match t.outcome {
            Outcome::Closed(Closed::Idle) => assert!(input.is_empty()),
            Outcome::Failed(e) => assert!(!matches!(e, Error::IncompleteBody { .. })),
            _ => panic!("no head, yet {:?}", t.outcome),
        }
        return;
    };
    let Some(got) = &t.head else {
        panic!("decoder refused a head the oracle accepts: {:?}", t.outcome);
    };
    assert_eq!(got.head.wire_len(), want.wire_len);
    assert_eq!(got.head.content_length(), want.content_length);
    let want_headers: Vec<_> = want
        .headers
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect();
    assert_eq!(got.headers, want_headers);
    let body_start = want.wire_len;
    let body_end = usize::try_from(want.content_length)
        .ok()
        .and_then(|cl| body_start.checked_add(cl));
    match body_end {
        Some(end) if end <= input.len() => {
            assert_eq!(t.body, &input[body_start..end]);
            assert_eq!(
                t.outcome,
                Outcome::End {
                    after: input[end..].to_vec()
                }
            );
        }
        _ => {
            assert_eq!(t.body, &input[body_start..]);
            let missing = want.content_length - t.body.len() as u64;
            assert_eq!(
                t.outcome,
                Outcome::Failed(Error::IncompleteBody { missing })
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_decodes_whole_and_split() {
        let mut input = SPEC_EXAMPLE.to_vec();
        input.extend_from_slice(b"tunnel");
        for config in &CONFIGS[..2] {
            let whole = run_whole(config, &input);
            check_against_oracle(config, &input, &whole);
            let t = &whole.transcript;
            assert_eq!(t.head.as_ref().map(|h| h.headers.len()), Some(4));
            assert_eq!(t.body, b"What is the answer to life?");
            assert_eq!(
                t.outcome,
                Outcome::End {
                    after: b"tunnel".to_vec()
                }
            );
            let split = run_split(config, &input, pieces(&[2], &input));
            assert_eq!(split.transcript, whole.transcript);
        }
        // Within the tiny limits too (70-byte head, 27-byte body).
        assert!(run_whole(&CONFIGS[2], &input).transcript.head.is_some());
    }
}

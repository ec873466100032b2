//! Fuzzer-chosen split points.

/// Reads a piece plan from the front of `data`: `data[0] % 16` is the number
/// `k` of size bytes that follow, and the rest is the payload. Returns the
/// size bytes and the payload.
///
/// The layout keeps seeds easy to write by hand: a `0x00` byte in front of a
/// captured request feeds it one byte at a time.
pub(crate) fn plan(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    rest.split_at(usize::from(first % 16).min(rest.len()))
}

/// The payload cut into non-empty pieces: sizes `sizes[i] + 1`, used in turn
/// and cycled; one byte at a time when `sizes` is empty.
pub(crate) fn pieces<'a>(sizes: &'a [u8], payload: &'a [u8]) -> Pieces<'a> {
    Pieces {
        sizes,
        next: 0,
        rest: payload,
    }
}

/// Iterator built by [`pieces`].
pub(crate) struct Pieces<'a> {
    sizes: &'a [u8],
    next: usize,
    rest: &'a [u8],
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let size = match self.sizes.get(self.next % self.sizes.len().max(1)) {
            Some(&s) => usize::from(s) + 1,
            None => 1,
        };
        self.next += 1;
        let (piece, rest) = self.rest.split_at(size.min(self.rest.len()));
        self.rest = rest;
        Some(piece)
    }
}

/// Whether `inner` lies inside `outer` (by address, not by content).
pub(crate) fn inside(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr_range(), inner.as_ptr_range());
    o.start <= i.start && i.end <= o.end
}

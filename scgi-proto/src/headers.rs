//! The validated header view.

use core::fmt;
use core::num::NonZeroU64;
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
    #[inline]
    pub fn iter(&self) -> Iter<'a> {
        Iter {
            nuls: Nuls::new(self.block),
            pos: 0,
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
    #[inline]
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = Iter<'a>;
    #[inline]
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over [`Headers`] in wire order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    nuls: Nuls<'a>,
    /// Where the next name starts.
    pos: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Header<'a>;

    // `inline(always)`: lets the caller's loop over the headers, in another
    // crate, keep the scan's state in registers (plain `inline` left a call
    // per header in the benchmark's loop).
    #[inline(always)]
    fn next(&mut self) -> Option<Header<'a>> {
        // The block was validated: its NULs pair up into exactly its
        // headers, so the NULs running out ends the iteration (no count to
        // keep). `?` on the second only guards a view built over other
        // bytes than the decoder saw.
        let (name_end, value_end) = match self.nuls.pair() {
            Some(pair) => pair,
            None => (self.nuls.next()?, self.nuls.next()?),
        };
        let block = self.nuls.block;
        // The value first, from its name's NUL: then the name's end is
        // known to be in the block, and three bounds checks remain of four.
        let value = &block[name_end..value_end][1..];
        let header = Header {
            name: &block[self.pos..name_end],
            value,
        };
        self.pos = value_end + 1;
        Some(header)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Each header takes two NULs at least.
        let left = self.nuls.block.len().saturating_sub(self.pos) / 2;
        (0, Some(left))
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

/// The offsets of the NULs in a header block, in order.
///
/// A header block is NULs a few dozen bytes apart (a plain GET from nginx
/// has 34 in 344 bytes), where calling `memchr` once per NUL costs more than
/// the search. So this computes a bit mask of the NULs in 64 bytes at a
/// time (SSE2 on x86_64, integer arithmetic elsewhere: [`chunk_mask`]), and
/// pops NULs from it; it hands a long NUL-free stretch (one long cookie or
/// query string) to `memchr`, which is faster there. Safe code only, and no
/// allocation.
#[derive(Clone, Debug)]
pub(crate) struct Nuls<'a> {
    block: &'a [u8],
    /// Offset of the 64 bytes `mask` was computed from.
    base: usize,
    /// Bit `i` set: `block[base + i]` is a NUL not yet returned.
    mask: u64,
}

impl<'a> Nuls<'a> {
    #[inline]
    pub(crate) fn new(block: &'a [u8]) -> Self {
        Nuls {
            block,
            base: 0,
            mask: mask_at(block, 0),
        }
    }
}

impl Iterator for Nuls<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.mask == 0 {
            self.refill()?;
        }
        // Non-zero, so `trailing_zeros` needs no zero case.
        let mask = NonZeroU64::new(self.mask)?;
        let nul = self.base + mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(nul)
    }
}

impl Nuls<'_> {
    /// The next two NULs when the current mask holds both (most headers):
    /// one test for both instead of one each.
    #[inline(always)]
    fn pair(&mut self) -> Option<(usize, usize)> {
        let mask = self.mask;
        let rest = NonZeroU64::new(mask & mask.wrapping_sub(1))?;
        // `mask` has a bit above its lowest: `trailing_zeros` needs no zero
        // case.
        let first = self.base + (mask | 1 << 63).trailing_zeros() as usize;
        let second = self.base + rest.trailing_zeros() as usize;
        self.mask = rest.get() & (rest.get() - 1);
        Some((first, second))
    }

    /// Moves to the next 64 bytes holding a NUL; `None` at the end (and on
    /// every later call).
    #[inline]
    fn refill(&mut self) -> Option<()> {
        let next = self.base + 64;
        // The usual case, 64 more bytes, first: `get` of the 64-byte range
        // is two compare-and-branches (start <= end, end <= length), where
        // `get(next..)` then `first_chunk` was eight instructions.
        let chunk = self.block.get(next..next.wrapping_add(64));
        self.mask = match chunk.and_then(|c| <&[u8; 64]>::try_from(c).ok()) {
            Some(chunk) => chunk_mask(chunk),
            None => {
                let len = self.block.len();
                if next >= len {
                    self.base = len;
                    return None;
                }
                mask_at(self.block, next)
            }
        };
        self.base = next;
        if self.mask != 0 {
            return Some(());
        }
        // By value, not `&mut self`: a cold call taking the scanner's
        // address would keep its state in memory (not registers) in the
        // caller's loop over the headers.
        match skip(self.block, self.base) {
            Some((base, mask)) => {
                (self.base, self.mask) = (base, mask);
                Some(())
            }
            None => {
                self.base = self.block.len();
                None
            }
        }
    }
}

/// [`Nuls::refill`] after 64 bytes at `base` without a NUL: a long value,
/// where `memchr` is faster. The next NUL's chunk: its offset and mask.
#[cold]
fn skip(block: &[u8], base: usize) -> Option<(usize, u64)> {
    let rest = block.get(base + 64..)?;
    let base = base + 64 + memchr::memchr(0, rest)?;
    Some((base, mask_at(block, base)))
}

/// The NUL mask of the 64 bytes at `at` (bit `i` for `block[at + i]`); past
/// the end of `block` no bit is set.
#[inline(always)]
pub(crate) fn mask_at(block: &[u8], at: usize) -> u64 {
    if let Some(chunk) = block.get(at..).and_then(<[u8]>::first_chunk::<64>) {
        return chunk_mask(chunk);
    }
    let len = block.len();
    if at < len && len >= 64 {
        // The block's last 64 bytes, shifted so bit 0 is `block[at]`.
        // Inline, not cold: nearly every block ends in a short chunk, so
        // this runs once per scan of a block.
        return chunk_mask(&block[len - 64..]) >> (at - (len - 64));
    }
    short_mask(block, at)
}

/// [`mask_at`] in a block shorter than 64 bytes, or past its end.
#[cold]
fn short_mask(block: &[u8], at: usize) -> u64 {
    let Some(rest) = block.get(at..).filter(|r| !r.is_empty()) else {
        return 0;
    };
    let mut padded = [0xff; 64];
    let n = rest.len().min(64);
    padded[..n].copy_from_slice(&rest[..n]);
    chunk_mask(&padded)
}

/// Bit `i` set for each NUL `chunk[i]`; `chunk` is 64 bytes long.
///
/// On x86_64, SSE2 (part of every x86_64 CPU) compares 16 bytes per
/// instruction, through `safe_arch`'s safe wrappers; elsewhere the portable
/// `chunk_mask_swar`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn chunk_mask(chunk: &[u8]) -> u64 {
    use safe_arch::{cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, zeroed_m128i};
    let (quarters, _) = chunk.as_chunks::<16>();
    quarters.iter().take(4).rev().fold(0, |mask, quarter| {
        let nul = cmp_eq_mask_i8_m128i(load_unaligned_m128i(quarter), zeroed_m128i());
        // `move_mask` sets only the low 16 bits.
        mask << 16 | u64::from(move_mask_i8_m128i(nul) as u16)
    })
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
use chunk_mask_swar as chunk_mask;

/// A running count of the NULs in the chunks passed to [`NulCount::add`].
///
/// On x86_64 the count stays in a vector register: per chunk, the four
/// compare results summed byte-wise and folded by `psadbw` (six
/// instructions, where `count_ones` without the `popcnt` target feature
/// takes about twenty); it is read out once, at the end. Elsewhere a plain
/// `count_ones` total.
#[derive(Clone, Copy)]
pub(crate) struct NulCount {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    sums: safe_arch::m128i,
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    sums: u64,
}

impl NulCount {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        NulCount {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            sums: safe_arch::zeroed_m128i(),
            #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
            sums: 0,
        }
    }

    /// The NULs counted so far.
    #[inline(always)]
    pub(crate) fn total(self) -> u64 {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        {
            use safe_arch::{add_i64_m128i, get_i64_from_m128i_s, unpack_high_i64_m128i};
            // Two 64-bit lanes, each the count of one half of every chunk.
            let both = add_i64_m128i(self.sums, unpack_high_i64_m128i(self.sums, self.sums));
            get_i64_from_m128i_s(both) as u64
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        {
            self.sums
        }
    }
}

/// The NULs of one 64-byte chunk: its mask now, its count added to a
/// [`NulCount`] when the caller is ready.
#[derive(Clone, Copy)]
pub(crate) struct ChunkNuls {
    /// The four 16-byte compare results (-1 per NUL byte).
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    nul: [safe_arch::m128i; 4],
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    mask: u64,
}

impl ChunkNuls {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline(always)]
    pub(crate) fn of(chunk: &[u8; 64]) -> Self {
        use safe_arch::{cmp_eq_mask_i8_m128i, load_unaligned_m128i, zeroed_m128i};
        let (quarters, _) = chunk.as_chunks::<16>();
        let zero = zeroed_m128i();
        let mut nul = [zero; 4];
        for (n, quarter) in nul.iter_mut().zip(quarters) {
            *n = cmp_eq_mask_i8_m128i(load_unaligned_m128i(quarter), zero);
        }
        ChunkNuls { nul }
    }

    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    #[inline(always)]
    pub(crate) fn of(chunk: &[u8; 64]) -> Self {
        ChunkNuls {
            mask: chunk_mask(chunk),
        }
    }

    /// Bit `i` set for each NUL at `chunk[i]`, as [`chunk_mask`].
    #[inline(always)]
    pub(crate) fn mask(&self) -> u64 {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        {
            self.nul.iter().rev().fold(0, |mask, n| {
                // `move_mask` sets only the low 16 bits.
                mask << 16 | u64::from(safe_arch::move_mask_i8_m128i(*n) as u16)
            })
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        {
            self.mask
        }
    }
}

impl NulCount {
    /// Adds the chunk's NULs.
    #[inline(always)]
    pub(crate) fn add(&mut self, chunk: &ChunkNuls) {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        {
            use safe_arch::{
                add_i8_m128i, add_i64_m128i, sub_i8_m128i, sum_of_u8_abs_diff_m128i, zeroed_m128i,
            };
            let [a, b, c, d] = chunk.nul;
            // -1 per NUL: the negated byte-wise sum is 0-4 per byte, and
            // `psadbw` against zero adds up each 8 bytes.
            let zero = zeroed_m128i();
            let per_byte = sub_i8_m128i(zero, add_i8_m128i(add_i8_m128i(a, b), add_i8_m128i(c, d)));
            self.sums = add_i64_m128i(self.sums, sum_of_u8_abs_diff_m128i(per_byte, zero));
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        {
            self.sums += u64::from(chunk.mask.count_ones());
        }
    }
}

/// `chunk_mask` in portable code: eight bytes per step, with integer
/// arithmetic and no branch.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
fn chunk_mask_swar(chunk: &[u8]) -> u64 {
    chunk.chunks_exact(8).rev().fold(0, |mask, word| {
        let mut w = [0; 8];
        w.copy_from_slice(word);
        mask << 8 | compress(zero_bytes(u64::from_le_bytes(w)))
    })
}

/// The high bit set in each byte of `w` that is zero, and no other bit.
/// Per byte: the low seven bits plus 0x7f carry into the high bit unless
/// they are all zero, and never into the next byte.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
const fn zero_bytes(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((w & LOW7).wrapping_add(LOW7)) | w | LOW7)
}

/// Packs the high bits of the eight bytes of `z` (the only bits it may
/// have) into its low byte, byte `i`'s into bit `i`. The multiplication
/// moves bit `8i + 7` to bit `56 + i` and puts no other term, nor any carry,
/// in the top byte.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
const fn compress(z: u64) -> u64 {
    z.wrapping_mul(0x0002_0408_1020_4081) >> 56
}

#[cfg(test)]
mod tests {
    use super::Nuls;

    /// `Nuls` against a byte-by-byte search, on lengths around each 64-byte
    /// step and NULs at every spacing, including runs long enough for
    /// `memchr`.
    #[test]
    fn nuls_match_a_plain_search() {
        let mut block = [0u8; 300];
        let lengths = (0..=140).chain([191, 192, 193, 255, 256, 257, 300]);
        for len in lengths {
            for gap in 1..=len.max(1) {
                for phase in [0, gap / 2, gap - 1] {
                    for (i, b) in block.iter_mut().enumerate() {
                        *b = if i % gap == phase {
                            0
                        } else {
                            0x80 | (i as u8)
                        };
                    }
                    let block = &block[..len];
                    let expected = block.iter().enumerate().filter(|(_, b)| **b == 0);
                    let mut nuls = Nuls::new(block);
                    for (i, _) in expected {
                        assert_eq!(nuls.next(), Some(i), "len {len} gap {gap} phase {phase}");
                    }
                    assert_eq!(nuls.next(), None);
                    assert_eq!(nuls.next(), None);
                }
            }
        }
    }

    /// The SSE2 mask and the portable one agree (on x86_64 they are two
    /// functions; elsewhere one), for NULs at every position and in every
    /// density.
    #[test]
    fn chunk_masks_agree() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for density in [0u64, 1, 3, 8, 32, 64] {
            for _ in 0..2000 {
                let mut chunk = [0u8; 64];
                let mut expected = 0u64;
                for (i, b) in chunk.iter_mut().enumerate() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    *b = if state % 64 < density {
                        0
                    } else {
                        (state >> 8) as u8 | 1
                    };
                    if *b == 0 {
                        expected |= 1 << i;
                    }
                }
                assert_eq!(super::chunk_mask(&chunk), expected);
                assert_eq!(super::chunk_mask_swar(&chunk), expected);
            }
        }
    }

    /// `ChunkNuls` gives `chunk_mask`'s mask, and `NulCount` the sum of the
    /// masks' bits, over chunks of every density.
    #[test]
    fn chunk_nuls_count_matches_count_ones() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for density in [0u64, 1, 3, 8, 32, 64] {
            let mut count = super::NulCount::new();
            let mut expected = 0;
            for _ in 0..2000 {
                let mut chunk = [0u8; 64];
                for b in &mut chunk {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    *b = if state % 64 < density { 0 } else { 1 };
                }
                let nuls = super::ChunkNuls::of(&chunk);
                assert_eq!(nuls.mask(), super::chunk_mask(&chunk));
                count.add(&nuls);
                expected += u64::from(nuls.mask().count_ones());
                assert_eq!(count.total(), expected);
            }
        }
    }

    /// Every pattern of NUL bytes in a word.
    #[test]
    fn compress_packs_high_bits() {
        for bits in 0..=255u64 {
            let z = (0..8).fold(0, |z, i| z | ((bits >> i) & 1) << (8 * i + 7));
            assert_eq!(super::compress(z), bits);
        }
    }

    /// Every pair of neighbouring byte values, in both orders.
    #[test]
    fn zero_bytes_is_exact() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let w = [a, b, a, b, b, a, b, a];
                let expected = w
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| **x == 0)
                    .fold(0u64, |m, (i, _)| m | 0x80 << (8 * i));
                assert_eq!(super::zero_bytes(u64::from_le_bytes(w)), expected);
            }
        }
    }
}

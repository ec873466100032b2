//! The request encoder (client side): for proxies, tests and fuzzing.

use crate::error::EncodeError;

/// Decimal digits of `n`, right-aligned in a 20-byte array; returns the
/// array and the index of the first digit.
pub(crate) fn digits_u64(mut n: u64) -> ([u8; 20], usize) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return (d, i);
        }
    }
}

/// Checks the caller's headers and returns the header block's length.
fn check<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    headers: &[(N, V)],
    cl_digits: usize,
) -> Result<usize, EncodeError> {
    // "CONTENT_LENGTH\0<digits>\0SCGI\0" "1\0"
    let mut block = 15 + cl_digits + 1 + 5 + 2;
    for (index, (name, value)) in headers.iter().enumerate() {
        let (name, value) = (name.as_ref(), value.as_ref());
        if name.is_empty() || memchr::memchr(0, name).is_some() {
            return Err(EncodeError::InvalidName { index });
        }
        if memchr::memchr(0, value).is_some() {
            return Err(EncodeError::InvalidValue { index });
        }
        if name == b"CONTENT_LENGTH" || name == b"SCGI" {
            return Err(EncodeError::ReservedName { index });
        }
        if headers[..index].iter().any(|(n, _)| n.as_ref() == name) {
            return Err(EncodeError::DuplicateName { index });
        }
        block = block
            .saturating_add(name.len())
            .saturating_add(value.len())
            .saturating_add(2);
    }
    Ok(block)
}

/// Encodes an SCGI request head into `buf`: the netstring holding
/// `CONTENT_LENGTH` (first, as the spec requires), `SCGI=1`, then `headers`
/// in order. The body's `content_length` bytes are the caller's to send
/// after it. Returns the length written, or
/// [`EncodeError::BufferTooSmall`] with the size needed.
///
/// Refuses an empty name, NUL in a name or value, a repeated name, and a
/// caller-supplied `CONTENT_LENGTH` or `SCGI` (the encoder writes both).
/// The block length is not limited here; decoders limit it (64 KiB by
/// default in this crate's).
///
/// ```
/// let mut buf = [0u8; 128];
/// let n = scgi_proto::encode_request(
///     &mut buf,
///     27,
///     &[("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/deepthought")],
/// )?;
/// assert_eq!(
///     &buf[..n],
///     b"70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,"
/// );
/// # Ok::<(), scgi_proto::EncodeError>(())
/// ```
pub fn encode_request<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    buf: &mut [u8],
    content_length: u64,
    headers: &[(N, V)],
) -> Result<usize, EncodeError> {
    let (cl, cl_start) = digits_u64(content_length);
    let cl = &cl[cl_start..];
    let block = check(headers, cl.len())?;
    let (prefix, prefix_start) = digits_u64(block as u64);
    let prefix = &prefix[prefix_start..];
    let required = prefix.len() + 1 + block + 1;
    if buf.len() < required {
        return Err(EncodeError::BufferTooSmall { required });
    }
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(prefix);
    put(b":CONTENT_LENGTH\0");
    put(cl);
    put(b"\0SCGI\x001\0");
    for (name, value) in headers {
        put(name.as_ref());
        put(b"\0");
        put(value.as_ref());
        put(b"\0");
    }
    put(b",");
    Ok(at)
}

/// The length [`encode_request`] would write, after the same checks.
pub fn encoded_request_len<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    content_length: u64,
    headers: &[(N, V)],
) -> Result<usize, EncodeError> {
    match encode_request(&mut [], content_length, headers) {
        Ok(n) | Err(EncodeError::BufferTooSmall { required: n }) => Ok(n),
        Err(e) => Err(e),
    }
}

/// Encodes a whole request, head and `body`, into a new buffer
/// (`CONTENT_LENGTH` is `body.len()`).
///
/// ```
/// let req = scgi_proto::encode_request_to_vec(&[("REQUEST_METHOD", "GET")], b"")?;
/// assert_eq!(req, b"43:CONTENT_LENGTH\x000\x00SCGI\x001\x00REQUEST_METHOD\x00GET\x00,");
/// # Ok::<(), scgi_proto::EncodeError>(())
/// ```
#[cfg(feature = "alloc")]
pub fn encode_request_to_vec<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    headers: &[(N, V)],
    body: &[u8],
) -> Result<alloc::vec::Vec<u8>, EncodeError> {
    let head = encoded_request_len(body.len() as u64, headers)?;
    let mut v = alloc::vec![0; head];
    encode_request(&mut v, body.len() as u64, headers)?;
    v.extend_from_slice(body);
    Ok(v)
}

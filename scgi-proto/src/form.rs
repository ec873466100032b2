//! Query strings and form bodies, percent-decoded (feature `form`), by the
//! `form_urlencoded` crate (rust-url's, the parser behind `url` and
//! `serde_urlencoded`). For typed decoding into a `serde` struct, hand
//! the same bytes to `serde_urlencoded::from_bytes`:
//! [`Headers::query`] for the query, the body from `read_body`.

use alloc::borrow::Cow;

use crate::Headers;

impl<'a> Headers<'a> {
    /// The query string: `QUERY_STRING` (nginx, Apache and lighttpd all
    /// send it, empty for a request without a query), else what follows
    /// `?` in `REQUEST_URI`; raw, still percent-encoded.
    #[must_use]
    pub fn query(&self) -> &'a [u8] {
        if let Some(q) = self.query_string() {
            return q;
        }
        let uri = self.request_uri().unwrap_or_default();
        memchr::memchr(b'?', uri).map_or(&[], |q| &uri[q + 1..])
    }

    /// The query's `name=value` pairs in order, percent-decoded (`+` is a
    /// space, invalid UTF-8 becomes U+FFFD), as borrowed strings where
    /// nothing needed decoding. Repeated names come once per occurrence.
    ///
    /// ```
    /// let wire = scgi_proto::encode_request_to_vec(
    ///     &[("QUERY_STRING", "q=caf%C3%A9+au+lait&page=2&tag=a&tag=b")],
    ///     b"",
    /// )?;
    /// let Ok(scgi_proto::Step::Head(head)) = scgi_proto::Decoder::new().decode(&wire) else {
    ///     unreachable!()
    /// };
    /// let headers = head.headers(&wire);
    /// let pairs: Vec<_> = headers.query_pairs().collect();
    /// assert_eq!(pairs[0], ("q".into(), "café au lait".into()));
    /// assert_eq!(headers.query_param("page").as_deref(), Some("2"));
    /// assert_eq!(headers.query_param("missing"), None);
    /// let tags: Vec<_> = headers.query_pairs().filter(|(k, _)| k == "tag").map(|(_, v)| v).collect();
    /// assert_eq!(tags, ["a", "b"]);
    /// # Ok::<(), scgi_proto::EncodeError>(())
    /// ```
    #[must_use]
    pub fn query_pairs(&self) -> form_urlencoded::Parse<'a> {
        form_urlencoded::parse(self.query())
    }

    /// The decoded value of the query's first `name` parameter (see
    /// [`query_pairs`](Headers::query_pairs)); `Some("")` for `?name` or
    /// `?name=`.
    #[must_use]
    pub fn query_param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, value)| value)
    }
}

/// The `name=value` pairs of an `application/x-www-form-urlencoded` body
/// (an HTML form's `POST`), percent-decoded as
/// [`Headers::query_pairs`] decodes a query. Read the body with a limit
/// first (the runtime crates' `read_body`).
///
/// ```
/// let body = b"name=Ada+Lovelace&lang=en%2Dgb";
/// let form: Vec<(String, String)> = scgi_proto::form_pairs(body).into_owned().collect();
/// assert_eq!(form, [("name".into(), "Ada Lovelace".into()), ("lang".into(), "en-gb".into())]);
/// ```
#[must_use]
pub fn form_pairs(body: &[u8]) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(body)
}

#[cfg(test)]
mod tests {
    use crate::{Decoder, Step, encode_request_to_vec};

    fn query_of(headers: &[(&str, &str)]) -> alloc::vec::Vec<u8> {
        let wire = encode_request_to_vec(headers, b"").expect("valid");
        let Ok(Step::Head(head)) = Decoder::new().decode(&wire) else {
            panic!("no head")
        };
        head.headers(&wire).query().to_vec()
    }

    #[test]
    fn query_falls_back_to_the_request_uri() {
        assert_eq!(query_of(&[("QUERY_STRING", "a=1")]), b"a=1");
        // An empty QUERY_STRING wins: it is what the web server says.
        assert_eq!(
            query_of(&[("QUERY_STRING", ""), ("REQUEST_URI", "/p?a=1")]),
            b""
        );
        assert_eq!(query_of(&[("REQUEST_URI", "/p?a=1&b")]), b"a=1&b");
        assert_eq!(query_of(&[("REQUEST_URI", "/p")]), b"");
        assert_eq!(query_of(&[]), b"");
    }

    #[test]
    fn params_decode_and_first_wins() {
        let wire =
            encode_request_to_vec(&[("QUERY_STRING", "a=1&a=2&b&c=%zz&d=%FF&e=x+y%2Bz")], b"")
                .expect("valid");
        let Ok(Step::Head(head)) = Decoder::new().decode(&wire) else {
            panic!("no head")
        };
        let h = head.headers(&wire);
        assert_eq!(h.query_param("a").as_deref(), Some("1"));
        assert_eq!(h.query_param("b").as_deref(), Some(""));
        // Invalid escapes are kept as they are, invalid UTF-8 replaced.
        assert_eq!(h.query_param("c").as_deref(), Some("%zz"));
        assert_eq!(h.query_param("d").as_deref(), Some("\u{fffd}"));
        assert_eq!(h.query_param("e").as_deref(), Some("x y+z"));
        assert_eq!(h.query_pairs().count(), 6);
    }
}

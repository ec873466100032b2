//! The CGI variables of a request, as nginx's `scgi_params` sends them.
//!
//! The order and the values follow the captures in
//! `scgi-proto/tests/data/corpus/nginx` (nginx 1.22 with Debian's
//! `scgi_params`): `REQUEST_METHOD`, `REQUEST_URI`, `QUERY_STRING`,
//! `CONTENT_TYPE` (empty when there is none), `DOCUMENT_URI` (the decoded,
//! normalised path), `DOCUMENT_ROOT`, `SERVER_PROTOCOL`, `REQUEST_SCHEME`,
//! `HTTPS` (only when on), `REMOTE_ADDR`, `REMOTE_PORT`, `SERVER_PORT`,
//! `SERVER_NAME`, then one `HTTP_*` variable per request header in the
//! client's order. `CONTENT_LENGTH` and `SCGI` are the encoder's.
//!
//! Two choices differ from nginx 1.22 and are nginx 1.23's (and the SCGI
//! spec's): a header sent twice becomes one variable, the values joined by
//! `", "` (`"; "` for `Cookie`), because the spec forbids repeated names
//! and `scgi_proto::encode_request` refuses them; and `HTTP_HOST` is the
//! client's `Host` header as upstream nginx's `scgi_params` passes it
//! (Debian's passes `$host`, without the port, which a development server
//! on `127.0.0.1:8080` needs for the URLs it builds).

use std::fmt;

/// Why a request cannot be turned into CGI variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum VarError {
    /// The path decodes to a NUL byte or climbs above the root with `..`.
    BadPath(String),
    /// A header name or value that cannot be a CGI variable.
    BadHeader(String),
    /// The encoder refused the variables.
    Encode(String),
}

impl fmt::Display for VarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarError::BadPath(s) | VarError::BadHeader(s) | VarError::Encode(s) => f.write_str(s),
        }
    }
}

/// The CGI variables of one request, in order (no `CONTENT_LENGTH`, no
/// `SCGI`: the encoder writes those).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Vars {
    vars: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Vars {
    /// Sets `name` to `value`: in place if it is there, else at the end.
    /// `CONTENT_LENGTH` and `SCGI` are ignored (the encoder writes both).
    pub(crate) fn set(&mut self, name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        let (name, value) = (name.into(), value.into());
        if name == b"CONTENT_LENGTH" || name == b"SCGI" {
            return;
        }
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }

    /// Appends `value` to `name` with `sep` if it is there, else adds it.
    fn join(&mut self, name: Vec<u8>, value: &[u8], sep: &[u8]) {
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1.extend_from_slice(sep);
                slot.1.extend_from_slice(value);
            }
            None => self.vars.push((name, value.to_vec())),
        }
    }

    /// The value of `name`, if set.
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.vars
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The SCGI head (the netstring) for a body of `content_length` bytes.
    pub(crate) fn encode_head(&self, content_length: u64) -> Result<Vec<u8>, VarError> {
        let len = scgi_proto::encoded_request_len(content_length, &self.vars)
            .map_err(|e| self.encode_error(e))?;
        let mut head = vec![0; len];
        scgi_proto::encode_request(&mut head, content_length, &self.vars)
            .map_err(|e| self.encode_error(e))?;
        Ok(head)
    }

    fn encode_error(&self, e: scgi_proto::EncodeError) -> VarError {
        let which = match e {
            scgi_proto::EncodeError::InvalidName { index }
            | scgi_proto::EncodeError::InvalidValue { index }
            | scgi_proto::EncodeError::DuplicateName { index }
            | scgi_proto::EncodeError::ReservedName { index } => self
                .vars
                .get(index)
                .map(|(n, _)| format!(" (variable `{}`)", n.escape_ascii()))
                .unwrap_or_default(),
            _ => String::new(),
        };
        VarError::Encode(format!("cannot encode the SCGI request: {e}{which}"))
    }
}

/// What nginx knows about a request besides its headers.
#[derive(Clone, Debug)]
pub(crate) struct Request<'a> {
    /// `GET`, `POST`...
    pub(crate) method: &'a str,
    /// The request target as sent: path and query (origin form).
    pub(crate) target: &'a [u8],
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub(crate) protocol: &'a str,
    /// The client's address and port.
    pub(crate) remote_addr: String,
    /// The client's port.
    pub(crate) remote_port: String,
    /// The port the request came in on.
    pub(crate) server_port: String,
    /// nginx's `server_name`.
    pub(crate) server_name: &'a str,
    /// nginx's `root`.
    pub(crate) document_root: &'a str,
    /// Whether the request came over TLS (`HTTPS=on`, scheme `https`).
    pub(crate) https: bool,
}

/// The variables nginx sends for `req` with `headers` (in the client's
/// order), under `include scgi_params;`.
///
/// A header whose name holds an underscore is dropped, as nginx does by
/// default (`underscores_in_headers off`); one whose name is not an HTTP
/// token, or whose value holds NUL, CR or LF, is an error.
pub(crate) fn nginx_vars<'h>(
    req: &Request<'_>,
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
) -> Result<Vars, VarError> {
    let (path, query) = match req.target.iter().position(|&b| b == b'?') {
        Some(q) => (&req.target[..q], &req.target[q + 1..]),
        None => (req.target, &b""[..]),
    };
    let document_uri = normalize_path(path)?;
    let mut vars = Vars::default();
    vars.set("REQUEST_METHOD", req.method);
    vars.set("REQUEST_URI", req.target);
    vars.set("QUERY_STRING", query);
    vars.set("CONTENT_TYPE", "");
    vars.set("DOCUMENT_URI", document_uri);
    vars.set("DOCUMENT_ROOT", req.document_root);
    vars.set("SERVER_PROTOCOL", req.protocol);
    vars.set("REQUEST_SCHEME", if req.https { "https" } else { "http" });
    if req.https {
        vars.set("HTTPS", "on");
    }
    vars.set("REMOTE_ADDR", req.remote_addr.as_str());
    vars.set("REMOTE_PORT", req.remote_port.as_str());
    vars.set("SERVER_PORT", req.server_port.as_str());
    vars.set("SERVER_NAME", req.server_name);
    for (name, value) in headers {
        // A header name is an HTTP token (RFC 9110 5.6.2): the `http`
        // crate's check.
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(VarError::BadHeader(format!(
                "invalid header name `{}`",
                name.escape_debug()
            )));
        }
        if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
            return Err(VarError::BadHeader(format!(
                "header `{name}` has a NUL, CR or LF in its value"
            )));
        }
        if name.contains('_') {
            continue;
        }
        if name.eq_ignore_ascii_case("content-type") && vars.get("CONTENT_TYPE") == Some(b"") {
            vars.set("CONTENT_TYPE", value);
        }
        let sep: &[u8] = if name.eq_ignore_ascii_case("cookie") {
            b"; "
        } else {
            b", "
        };
        vars.join(http_var(name), value, sep);
    }
    Ok(vars)
}

/// `X-Forwarded-For` -> `HTTP_X_FORWARDED_FOR`.
pub(crate) fn http_var(name: &str) -> Vec<u8> {
    let mut v = b"HTTP_".to_vec();
    v.extend(name.bytes().map(|b| match b {
        b'-' => b'_',
        b => b.to_ascii_uppercase(),
    }));
    v
}

/// nginx's `$uri`: the path percent-decoded, `//` merged, `.` and `..`
/// resolved. A NUL byte or a `..` above the root is an error (nginx
/// answers 400).
pub(crate) fn normalize_path(path: &[u8]) -> Result<Vec<u8>, VarError> {
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                path.get(i + 1).and_then(|&c| hex(c)),
                path.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            decoded.push(h * 16 + l);
            i += 3;
            continue;
        }
        decoded.push(b);
        i += 1;
    }
    if decoded.contains(&0) {
        return Err(VarError::BadPath("the path decodes to a NUL byte".into()));
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    let trailing = decoded.ends_with(b"/")
        || decoded.ends_with(b"/.")
        || decoded.ends_with(b"/..")
        || decoded == b"."
        || decoded == b"..";
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if segments.pop().is_none() {
                    return Err(VarError::BadPath("the path climbs above the root".into()));
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push(b'/');
    }
    Ok(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str) -> Request<'_> {
        Request {
            method: "POST",
            target: target.as_bytes(),
            protocol: "HTTP/1.1",
            remote_addr: "127.0.0.1".into(),
            remote_port: "43286".into(),
            server_port: "55367".into(),
            server_name: "localhost",
            document_root: "/srv",
            https: false,
        }
    }

    /// The variables of corpus/nginx/post_form.txt, in its order.
    #[test]
    fn like_the_nginx_capture() {
        let headers: [(&str, &[u8]); 5] = [
            ("Host", b"127.0.0.1"),
            ("User-Agent", b"curl/7.88.1"),
            ("Accept", b"*/*"),
            ("Content-Type", b"application/x-www-form-urlencoded"),
            ("Content-Length", b"26"),
        ];
        let vars = nginx_vars(&req("/submit"), headers).unwrap();
        let names: Vec<_> = vars
            .vars
            .iter()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "REQUEST_METHOD",
                "REQUEST_URI",
                "QUERY_STRING",
                "CONTENT_TYPE",
                "DOCUMENT_URI",
                "DOCUMENT_ROOT",
                "SERVER_PROTOCOL",
                "REQUEST_SCHEME",
                "REMOTE_ADDR",
                "REMOTE_PORT",
                "SERVER_PORT",
                "SERVER_NAME",
                "HTTP_HOST",
                "HTTP_USER_AGENT",
                "HTTP_ACCEPT",
                "HTTP_CONTENT_TYPE",
                "HTTP_CONTENT_LENGTH",
            ]
        );
        assert_eq!(
            vars.get("CONTENT_TYPE"),
            Some(&b"application/x-www-form-urlencoded"[..])
        );
        assert_eq!(vars.get("QUERY_STRING"), Some(&b""[..]));
        let head = vars.encode_head(26).unwrap();
        assert!(head.starts_with(b"4"), "{}", head.escape_ascii());
        assert!(head.ends_with(b"\0,"));
    }

    #[test]
    fn duplicates_join_and_underscores_drop() {
        let headers: [(&str, &[u8]); 6] = [
            ("X-Dup", b"one"),
            ("X-Dup", b"two"),
            ("Cookie", b"a=1"),
            ("cookie", b"b=2"),
            ("X_Under", b"underscore"),
            ("X-Under", b"dash"),
        ];
        let vars = nginx_vars(&req("/a?b=c"), headers).unwrap();
        assert_eq!(vars.get("HTTP_X_DUP"), Some(&b"one, two"[..]));
        assert_eq!(vars.get("HTTP_COOKIE"), Some(&b"a=1; b=2"[..]));
        assert_eq!(vars.get("HTTP_X_UNDER"), Some(&b"dash"[..]));
        assert_eq!(vars.get("QUERY_STRING"), Some(&b"b=c"[..]));
        assert!(vars.encode_head(0).is_ok());
    }

    #[test]
    fn bad_headers() {
        let bad: [(&str, &[u8]); 1] = [("X-Bad", b"a\nb")];
        assert!(nginx_vars(&req("/"), bad).is_err());
        let bad: [(&str, &[u8]); 1] = [("X Bad", b"ok")];
        assert!(nginx_vars(&req("/"), bad).is_err());
    }

    #[test]
    fn paths() {
        let n = |p: &str| normalize_path(p.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(n("/"), Ok("/".into()));
        assert_eq!(n(""), Ok("/".into()));
        assert_eq!(n("/a//b/./c/../d"), Ok("/a/b/d".into()));
        assert_eq!(n("/a/b/"), Ok("/a/b/".into()));
        assert_eq!(n("/a/b/.."), Ok("/a/".into()));
        assert_eq!(n("/caf%C3%A9/%E2%9C%93"), Ok("/café/✓".into()));
        assert_eq!(n("/a%2Fb/c%20d"), Ok("/a/b/c d".into()));
        assert_eq!(n("/100%"), Ok("/100%".into()));
        assert!(n("/../etc").is_err());
        assert!(n("/a%00b").is_err());
    }
}

#![cfg(feature = "alloc")]
//! The validated header view: lookups, duplicate policies, `&str` views and
//! the typed CGI accessors, on captured requests.

use scgi_proto::{Config, Decoder, Duplicates, Policy, Step};

fn corpus(case: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/corpus/{case}.scgi",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).expect("capture")
}

/// Decodes the head of `input` and runs `f` on its view.
fn with_headers(config: Config, input: &[u8], f: impl FnOnce(scgi_proto::Headers<'_>)) {
    let mut d = Decoder::with_config(config);
    match d.decode(input) {
        Ok(Step::Head(head)) => f(head.headers(input)),
        other => panic!("expected a head, got {other:?}"),
    }
}

#[test]
fn lookup_gives_first_duplicate_by_default() {
    with_headers(Config::DEFAULT, &corpus("nginx/dup_headers"), |h| {
        assert_eq!(h.get("HTTP_COOKIE"), Some(&b"a=1"[..]));
        assert_eq!(h.get_str("HTTP_X_DUP"), Some("one"));
        let all: Vec<&[u8]> = h.get_all("HTTP_COOKIE").collect();
        assert_eq!(all, [&b"a=1"[..], b"b=2"]);
        assert_eq!(h.http("Cookie"), Some(&b"a=1"[..]));
    });
}

#[test]
fn lookup_gives_last_duplicate_when_asked() {
    let cfg = Config::DEFAULT.with_policy(Policy::DEFAULT.with_duplicates(Duplicates::Last));
    with_headers(cfg, &corpus("nginx/dup_headers"), |h| {
        assert_eq!(h.get("HTTP_COOKIE"), Some(&b"b=2"[..]));
        assert_eq!(h.http("accept"), Some(&b"application/json"[..]));
        // Iteration is unaffected by the policy: all, in wire order.
        assert_eq!(h.get_all("HTTP_ACCEPT").count(), 2);
    });
}

#[test]
fn iteration_is_in_wire_order() {
    with_headers(Config::DEFAULT, &corpus("lighttpd/get_query"), |h| {
        let names: Vec<&str> = h.iter().map(|x| x.name_str().unwrap()).collect();
        assert_eq!(names.first(), Some(&"CONTENT_LENGTH"));
        assert_eq!(names.last(), Some(&"SCGI"));
        assert_eq!(names.len(), h.len());
        assert!(!h.is_empty());
        assert_eq!((&h).into_iter().count(), h.len());
    });
}

#[test]
fn absent_names_and_case_sensitivity() {
    with_headers(Config::DEFAULT, &corpus("apache/get_root"), |h| {
        assert_eq!(h.get("NO_SUCH_HEADER"), None);
        assert!(
            !h.contains("request_method"),
            "CGI names are case-sensitive"
        );
        assert!(h.contains("REQUEST_METHOD"));
        assert_eq!(h.get_all("NO_SUCH_HEADER").count(), 0);
    });
}

#[test]
fn typed_accessors_nginx() {
    with_headers(Config::DEFAULT, &corpus("nginx/get_query"), |h| {
        assert_eq!(h.method(), Some("GET"));
        assert_eq!(
            h.request_uri(),
            Some(&b"/path/to/res?a=1&b=two%20words&c=%E2%9C%93&empty=&flag"[..])
        );
        assert_eq!(h.path(), Some(&b"/path/to/res"[..]));
        assert_eq!(
            h.query_string(),
            Some(&b"a=1&b=two%20words&c=%E2%9C%93&empty=&flag"[..])
        );
        assert_eq!(
            h.content_type(),
            None,
            "nginx's empty CONTENT_TYPE is absent"
        );
        assert_eq!(h.content_length(), 0);
        assert_eq!(h.remote_addr(), Some("127.0.0.1"));
        assert_eq!(h.remote_port(), Some(43250));
        assert_eq!(h.server_name(), Some("localhost"));
        assert_eq!(h.server_port(), Some(55367));
        assert_eq!(h.server_protocol(), Some("HTTP/1.1"));
        assert!(!h.https());
        assert_eq!(h.http("User-Agent"), Some(&b"curl/7.88.1"[..]));
        assert_eq!(h.http("X-Missing"), None);
    });
}

#[test]
fn typed_accessors_apache_post() {
    with_headers(Config::DEFAULT, &corpus("apache/post_json"), |h| {
        assert_eq!(h.method(), Some("POST"));
        assert!(h.content_type().unwrap().starts_with("application/json"));
        assert!(h.content_length() > 0);
    });
}

#[test]
fn path_strips_absolute_form_target() {
    with_headers(Config::DEFAULT, &corpus("apache/absolute_uri"), |h| {
        assert_eq!(h.request_uri(), Some(&b"http://other.example/abs?x=1"[..]));
        assert_eq!(h.path(), Some(&b"/abs"[..]));
    });
}

#[test]
fn raw_utf8_path_is_bytes_and_str() {
    with_headers(Config::DEFAULT, &corpus("nginx/utf8_path_raw"), |h| {
        assert_eq!(h.path(), Some("/café/✓".as_bytes()));
        assert_eq!(h.get_str("QUERY_STRING"), Some("q=ß"));
    });
}

#[test]
fn non_utf8_value_has_bytes_but_no_str() {
    let input =
        scgi_proto::encode_request_to_vec(&[(&b"REQUEST_URI"[..], &b"/caf\xe9"[..])], b"").unwrap();
    with_headers(Config::DEFAULT, &input, |h| {
        assert_eq!(h.get("REQUEST_URI"), Some(&b"/caf\xe9"[..]));
        assert_eq!(h.get_str("REQUEST_URI"), None);
        let header = h.iter().nth(2).unwrap();
        assert_eq!(header.name_str(), Some("REQUEST_URI"));
        assert_eq!(header.value_str(), None);
        assert_eq!(format!("{header:?}"), r#""REQUEST_URI"="/caf\xe9""#);
    });
}

#[test]
fn https_detection() {
    for (headers, expect) in [
        (&[("HTTPS", "on")][..], true),
        (&[("HTTPS", "ON")][..], true),
        (&[("HTTPS", "1")][..], true),
        (&[("HTTPS", "off")][..], false),
        (&[("REQUEST_SCHEME", "https")][..], true),
        (&[("REQUEST_SCHEME", "http")][..], false),
        (&[][..], false),
    ] {
        let input = scgi_proto::encode_request_to_vec(headers, b"").unwrap();
        with_headers(Config::DEFAULT, &input, |h| {
            assert_eq!(h.https(), expect, "{headers:?}");
        });
    }
}

#[test]
fn view_over_wrong_bytes_does_not_panic() {
    let input = corpus("nginx/get_root");
    let mut d = Decoder::new();
    let Ok(Step::Head(head)) = d.decode(&input) else {
        panic!("head")
    };
    // A caller who breaks the contract gets nonsense, never a panic.
    for other in [&b""[..], b"short", &[0u8; 4096][..], &[b'a'; 4096][..]] {
        let view = head.headers(other);
        let _ = view.iter().count();
        let _ = view.get("REQUEST_METHOD");
        let _ = view.path();
    }
}

//! Every request captured from a real web server (nginx 1.22.1, Apache
//! 2.4.71, lighttpd 1.4.69; see `data/corpus/cases.tsv`) decodes, whole,
//! bytewise and at every split point, to exactly the headers, body and
//! trailing bytes of its readable dump (`<case>.txt`). One named test per
//! capture.

mod common;

use std::path::{Path, PathBuf};

use common::{Outcome, decode_all_ways};
use scgi_proto::{Closed, Config, Duplicates, Error, Policy};
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus")
}

/// What a `<case>.txt` dump says the capture holds.
#[derive(Debug, Default)]
struct Dump {
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body_len: usize,
    body_sha256: String,
    trailing: usize,
    empty_connection: bool,
    /// Position of the second occurrence of the first duplicated name.
    first_duplicate: Option<usize>,
}

fn read_dump(path: &Path) -> Dump {
    let text = std::fs::read_to_string(path).expect("dump");
    let mut dump = Dump::default();
    for line in text.lines().skip(1) {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("body: ") {
            let (len, sha) = rest.split_once(" bytes sha256=").expect("body line");
            dump.body_len = len.parse().expect("body length");
            dump.body_sha256 = sha.to_owned();
        } else if let Some(n) = line.strip_prefix("TRAILING BYTES after body: ") {
            dump.trailing = n.parse().expect("trailing count");
        } else if let Some(v) = line.strip_prefix("VIOLATION: duplicate header name ") {
            let (_, pos) = v.split_once(" and ").expect("positions");
            let second: usize = pos.trim_end_matches(')').parse().expect("position");
            dump.first_duplicate = Some(dump.first_duplicate.map_or(second, |d| d.min(second)));
        } else if line.starts_with("VIOLATION") {
            panic!("unexpected violation in {}: {line}", path.display());
        } else if line.starts_with("PARSE ERROR: EOF before any byte") {
            dump.empty_connection = true;
        } else if let Some((index, header)) = line.split_once(' ') {
            let index: usize = index.parse().expect("header index");
            assert_eq!(index, dump.headers.len());
            let (name, value) = header.split_once('=').expect("name=value");
            dump.headers
                .push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
        }
    }
    dump
}

fn check(case: &str) {
    let input = std::fs::read(dir().join(format!("{case}.scgi"))).expect("capture");
    let dump = read_dump(&dir().join(format!("{case}.txt")));
    let got: Outcome = decode_all_ways(Config::DEFAULT, &input);
    if dump.empty_connection {
        assert!(input.is_empty());
        assert_eq!(got.end, Ok(Some(Closed::Idle)));
        return;
    }
    assert_eq!(got.end, Ok(None), "request must complete");
    assert_eq!(got.headers.as_ref(), Some(&dump.headers));
    assert_eq!(got.body.len(), dump.body_len);
    assert_eq!(format!("{:x}", Sha256::digest(&got.body)), dump.body_sha256);
    assert_eq!(got.trailing.len(), dump.trailing);
    // The spec forbids duplicate names; the default keeps them (real servers
    // send them), and `Duplicates::Reject` refuses them at the second one.
    let strict = Config::DEFAULT.with_policy(Policy::DEFAULT.with_duplicates(Duplicates::Reject));
    let got = common::drive(strict, [&input[..]]);
    match dump.first_duplicate {
        Some(index) => assert_eq!(got.end, Err(Error::DuplicateHeader { index })),
        None => assert_eq!(got.end, Ok(None)),
    }
}

macro_rules! corpus {
    ($($name:ident => $case:literal;)*) => {
        $(
            #[test]
            fn $name() {
                check($case);
            }
        )*

        /// Every capture in the directory has its named test above.
        #[test]
        fn every_capture_is_listed() {
            let listed: std::collections::BTreeSet<&str> = [$($case),*].into_iter().collect();
            let mut found = std::collections::BTreeSet::new();
            for fe in std::fs::read_dir(dir()).expect("corpus dir") {
                let fe = fe.expect("entry").path();
                if !fe.is_dir() { continue; }
                for f in std::fs::read_dir(&fe).expect("frontend dir") {
                    let f = f.expect("entry").path();
                    if f.extension().is_some_and(|e| e == "scgi") {
                        let rel = f.strip_prefix(dir()).expect("prefix").with_extension("");
                        found.insert(rel.to_string_lossy().into_owned());
                    }
                }
            }
            let found: std::collections::BTreeSet<&str> = found.iter().map(String::as_str).collect();
            assert_eq!(listed, found);
        }
    };
}

corpus! {
    apache_absolute_uri => "apache/absolute_uri";
    apache_authorization => "apache/authorization";
    apache_delete => "apache/delete";
    apache_dot_segments => "apache/dot_segments";
    apache_dup_headers => "apache/dup_headers";
    apache_empty_query => "apache/empty_query";
    apache_expect_100 => "apache/expect_100";
    apache_get_query => "apache/get_query";
    apache_get_root => "apache/get_root";
    apache_get_with_body => "apache/get_with_body";
    apache_head => "apache/head";
    apache_host_port => "apache/host_port";
    apache_http10_get => "apache/http10_get";
    apache_http10_nohost => "apache/http10_nohost";
    apache_http10_post => "apache/http10_post";
    apache_keepalive_two_1 => "apache/keepalive_two.1";
    apache_keepalive_two_2 => "apache/keepalive_two.2";
    apache_long_header => "apache/long_header";
    apache_long_query => "apache/long_query";
    apache_many_headers => "apache/many_headers";
    apache_options => "apache/options";
    apache_patch => "apache/patch";
    apache_post_1mib => "apache/post_1mib";
    apache_post_binary_256 => "apache/post_binary_256";
    apache_post_chunked => "apache/post_chunked";
    apache_post_chunked_small => "apache/post_chunked_small";
    apache_post_chunked_trailer => "apache/post_chunked_trailer";
    apache_post_empty => "apache/post_empty";
    apache_post_form => "apache/post_form";
    apache_post_json => "apache/post_json";
    apache_post_nolen => "apache/post_nolen";
    apache_put => "apache/put";
    apache_underscore_header => "apache/underscore_header";
    apache_utf8_path_pct => "apache/utf8_path_pct";
    apache_utf8_path_raw => "apache/utf8_path_raw";
    lighttpd_stream_authorization => "lighttpd-stream/authorization";
    lighttpd_stream_delete => "lighttpd-stream/delete";
    lighttpd_stream_dot_segments => "lighttpd-stream/dot_segments";
    lighttpd_stream_dup_headers => "lighttpd-stream/dup_headers";
    lighttpd_stream_empty_query => "lighttpd-stream/empty_query";
    lighttpd_stream_encoded_slash => "lighttpd-stream/encoded_slash";
    lighttpd_stream_expect_100 => "lighttpd-stream/expect_100";
    lighttpd_stream_get_query => "lighttpd-stream/get_query";
    lighttpd_stream_get_root => "lighttpd-stream/get_root";
    lighttpd_stream_head => "lighttpd-stream/head";
    lighttpd_stream_host_port => "lighttpd-stream/host_port";
    lighttpd_stream_http10_get => "lighttpd-stream/http10_get";
    lighttpd_stream_http10_nohost => "lighttpd-stream/http10_nohost";
    lighttpd_stream_http10_post => "lighttpd-stream/http10_post";
    lighttpd_stream_keepalive_two_1 => "lighttpd-stream/keepalive_two.1";
    lighttpd_stream_keepalive_two_2 => "lighttpd-stream/keepalive_two.2";
    lighttpd_stream_long_header => "lighttpd-stream/long_header";
    lighttpd_stream_long_query => "lighttpd-stream/long_query";
    lighttpd_stream_many_headers => "lighttpd-stream/many_headers";
    lighttpd_stream_options => "lighttpd-stream/options";
    lighttpd_stream_patch => "lighttpd-stream/patch";
    lighttpd_stream_post_1mib => "lighttpd-stream/post_1mib";
    lighttpd_stream_post_binary_256 => "lighttpd-stream/post_binary_256";
    lighttpd_stream_post_chunked => "lighttpd-stream/post_chunked";
    lighttpd_stream_post_chunked_small => "lighttpd-stream/post_chunked_small";
    lighttpd_stream_post_chunked_trailer => "lighttpd-stream/post_chunked_trailer";
    lighttpd_stream_post_empty => "lighttpd-stream/post_empty";
    lighttpd_stream_post_form => "lighttpd-stream/post_form";
    lighttpd_stream_post_json => "lighttpd-stream/post_json";
    lighttpd_stream_put => "lighttpd-stream/put";
    lighttpd_stream_underscore_header => "lighttpd-stream/underscore_header";
    lighttpd_stream_utf8_path_pct => "lighttpd-stream/utf8_path_pct";
    lighttpd_stream_utf8_path_raw => "lighttpd-stream/utf8_path_raw";
    lighttpd_authorization => "lighttpd/authorization";
    lighttpd_delete => "lighttpd/delete";
    lighttpd_dot_segments => "lighttpd/dot_segments";
    lighttpd_dup_headers => "lighttpd/dup_headers";
    lighttpd_empty_query => "lighttpd/empty_query";
    lighttpd_encoded_slash => "lighttpd/encoded_slash";
    lighttpd_expect_100 => "lighttpd/expect_100";
    lighttpd_get_query => "lighttpd/get_query";
    lighttpd_get_root => "lighttpd/get_root";
    lighttpd_head => "lighttpd/head";
    lighttpd_host_port => "lighttpd/host_port";
    lighttpd_http10_get => "lighttpd/http10_get";
    lighttpd_http10_nohost => "lighttpd/http10_nohost";
    lighttpd_http10_post => "lighttpd/http10_post";
    lighttpd_keepalive_two_1 => "lighttpd/keepalive_two.1";
    lighttpd_keepalive_two_2 => "lighttpd/keepalive_two.2";
    lighttpd_long_header => "lighttpd/long_header";
    lighttpd_long_query => "lighttpd/long_query";
    lighttpd_many_headers => "lighttpd/many_headers";
    lighttpd_options => "lighttpd/options";
    lighttpd_patch => "lighttpd/patch";
    lighttpd_post_1mib => "lighttpd/post_1mib";
    lighttpd_post_binary_256 => "lighttpd/post_binary_256";
    lighttpd_post_chunked => "lighttpd/post_chunked";
    lighttpd_post_chunked_small => "lighttpd/post_chunked_small";
    lighttpd_post_chunked_trailer => "lighttpd/post_chunked_trailer";
    lighttpd_post_empty => "lighttpd/post_empty";
    lighttpd_post_form => "lighttpd/post_form";
    lighttpd_post_json => "lighttpd/post_json";
    lighttpd_put => "lighttpd/put";
    lighttpd_underscore_header => "lighttpd/underscore_header";
    lighttpd_utf8_path_pct => "lighttpd/utf8_path_pct";
    lighttpd_utf8_path_raw => "lighttpd/utf8_path_raw";
    nginx_nobuf_absolute_uri => "nginx-nobuf/absolute_uri";
    nginx_nobuf_authorization => "nginx-nobuf/authorization";
    nginx_nobuf_delete => "nginx-nobuf/delete";
    nginx_nobuf_dot_segments => "nginx-nobuf/dot_segments";
    nginx_nobuf_dup_headers => "nginx-nobuf/dup_headers";
    nginx_nobuf_empty_query => "nginx-nobuf/empty_query";
    nginx_nobuf_encoded_slash => "nginx-nobuf/encoded_slash";
    nginx_nobuf_expect_100 => "nginx-nobuf/expect_100";
    nginx_nobuf_get_query => "nginx-nobuf/get_query";
    nginx_nobuf_get_root => "nginx-nobuf/get_root";
    nginx_nobuf_get_with_body => "nginx-nobuf/get_with_body";
    nginx_nobuf_head => "nginx-nobuf/head";
    nginx_nobuf_host_port => "nginx-nobuf/host_port";
    nginx_nobuf_http10_get => "nginx-nobuf/http10_get";
    nginx_nobuf_http10_nohost => "nginx-nobuf/http10_nohost";
    nginx_nobuf_http10_post => "nginx-nobuf/http10_post";
    nginx_nobuf_keepalive_two_1 => "nginx-nobuf/keepalive_two.1";
    nginx_nobuf_keepalive_two_2 => "nginx-nobuf/keepalive_two.2";
    nginx_nobuf_long_header => "nginx-nobuf/long_header";
    nginx_nobuf_long_query => "nginx-nobuf/long_query";
    nginx_nobuf_many_headers => "nginx-nobuf/many_headers";
    nginx_nobuf_options => "nginx-nobuf/options";
    nginx_nobuf_patch => "nginx-nobuf/patch";
    nginx_nobuf_post_1mib => "nginx-nobuf/post_1mib";
    nginx_nobuf_post_binary_256 => "nginx-nobuf/post_binary_256";
    nginx_nobuf_post_chunked => "nginx-nobuf/post_chunked";
    nginx_nobuf_post_chunked_small => "nginx-nobuf/post_chunked_small";
    nginx_nobuf_post_chunked_trailer => "nginx-nobuf/post_chunked_trailer";
    nginx_nobuf_post_empty => "nginx-nobuf/post_empty";
    nginx_nobuf_post_form => "nginx-nobuf/post_form";
    nginx_nobuf_post_json => "nginx-nobuf/post_json";
    nginx_nobuf_post_nolen => "nginx-nobuf/post_nolen";
    nginx_nobuf_put => "nginx-nobuf/put";
    nginx_nobuf_underscore_header => "nginx-nobuf/underscore_header";
    nginx_nobuf_utf8_path_pct => "nginx-nobuf/utf8_path_pct";
    nginx_nobuf_utf8_path_raw => "nginx-nobuf/utf8_path_raw";
    nginx_absolute_uri => "nginx/absolute_uri";
    nginx_authorization => "nginx/authorization";
    nginx_delete => "nginx/delete";
    nginx_dot_segments => "nginx/dot_segments";
    nginx_dup_headers => "nginx/dup_headers";
    nginx_empty_query => "nginx/empty_query";
    nginx_encoded_slash => "nginx/encoded_slash";
    nginx_expect_100 => "nginx/expect_100";
    nginx_get_query => "nginx/get_query";
    nginx_get_root => "nginx/get_root";
    nginx_get_with_body => "nginx/get_with_body";
    nginx_head => "nginx/head";
    nginx_host_port => "nginx/host_port";
    nginx_http10_get => "nginx/http10_get";
    nginx_http10_nohost => "nginx/http10_nohost";
    nginx_http10_post => "nginx/http10_post";
    nginx_keepalive_two_1 => "nginx/keepalive_two.1";
    nginx_keepalive_two_2 => "nginx/keepalive_two.2";
    nginx_long_header => "nginx/long_header";
    nginx_long_query => "nginx/long_query";
    nginx_many_headers => "nginx/many_headers";
    nginx_options => "nginx/options";
    nginx_patch => "nginx/patch";
    nginx_post_1mib => "nginx/post_1mib";
    nginx_post_binary_256 => "nginx/post_binary_256";
    nginx_post_chunked => "nginx/post_chunked";
    nginx_post_chunked_small => "nginx/post_chunked_small";
    nginx_post_chunked_trailer => "nginx/post_chunked_trailer";
    nginx_post_empty => "nginx/post_empty";
    nginx_post_form => "nginx/post_form";
    nginx_post_json => "nginx/post_json";
    nginx_post_nolen => "nginx/post_nolen";
    nginx_put => "nginx/put";
    nginx_underscore_header => "nginx/underscore_header";
    nginx_utf8_path_pct => "nginx/utf8_path_pct";
    nginx_utf8_path_raw => "nginx/utf8_path_raw";
}

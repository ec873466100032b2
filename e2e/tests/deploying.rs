//! DEPLOYING.md quotes the configs the e2e tests run, rendered from the
//! same templates (`e2e/templates/*-site.conf`) with example addresses.
//! This test fails when they drift apart; `UPDATE_DOCS=1 cargo test -p e2e
//! --test deploying` rewrites the quoted blocks.

use std::path::PathBuf;

use e2e::frontend::{render, templates};
use e2e::{BackendAddr, Kind};

/// The example addresses the docs use.
const TCP: &str = "127.0.0.1:4000";
const SOCKET: &str = "/run/app/scgi.sock";
const LISTEN: &str = "80";

/// `(marker, code-fence language, text)` for every quoted config.
fn blocks() -> Vec<(String, &'static str, String)> {
    let tcp = BackendAddr::Tcp(TCP.parse().expect("address"));
    let unix = BackendAddr::Unix(SOCKET.into());
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let lang = match kind {
            Kind::Nginx => "nginx",
            Kind::Apache => "apache",
            Kind::Lighttpd => "lighttpd",
        };
        for (transport, addr) in [("tcp", &tcp), ("unix", &unix)] {
            out.push((format!("{kind}-{transport}"), lang, kind.site(LISTEN, addr)));
        }
    }
    let upstream = render(
        templates::NGINX_UPSTREAM_SITE,
        &[
            ("LISTEN", LISTEN),
            ("BACKEND_1", "127.0.0.1:4001"),
            ("BACKEND_2", "unix:/run/app/scgi-2.sock"),
        ],
    );
    out.push(("nginx-upstream".into(), "nginx", upstream));
    out
}

fn quoted(lang: &str, text: &str) -> String {
    format!("```{lang}\n{text}```\n")
}

/// The text between `<!-- e2e:NAME -->\n` and `<!-- /e2e:NAME -->`, and
/// where it starts and ends.
fn region(doc: &str, name: &str) -> Option<(usize, usize)> {
    let open = format!("<!-- e2e:{name} -->\n");
    let close = format!("<!-- /e2e:{name} -->");
    let start = doc.find(&open)? + open.len();
    let end = start + doc[start..].find(&close)?;
    Some((start, end))
}

#[test]
fn deploying_md_quotes_the_tested_configs() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../DEPLOYING.md");
    let mut doc = std::fs::read_to_string(&path).expect("DEPLOYING.md");
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for (name, lang, text) in blocks() {
        let Some((start, end)) = region(&doc, &name) else {
            panic!("DEPLOYING.md has no <!-- e2e:{name} --> ... <!-- /e2e:{name} --> block");
        };
        let want = quoted(lang, &text);
        if doc[start..end] != want {
            stale.push(name);
            doc.replace_range(start..end, &want);
        }
    }
    if update {
        std::fs::write(&path, doc).expect("write DEPLOYING.md");
    } else {
        assert!(
            stale.is_empty(),
            "DEPLOYING.md's quoted configs differ from e2e/templates: {stale:?}; \
             run `UPDATE_DOCS=1 cargo test -p e2e --test deploying`"
        );
    }
}

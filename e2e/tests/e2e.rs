//! The matrix: each front end x each runtime x each transport runs every
//! case of `e2e::cases` against one front-end instance; plus, per runtime,
//! nginx 1.22's short `CONTENT_LENGTH` without request buffering, and nginx
//! load-balancing over two backends.
//!
//! `E2E_CASE=<part of a case name>` runs only the matching cases;
//! `E2E_KEEP_TMP=1` keeps the front ends' temp dirs (configs, logs).

use e2e::Transport::{Tcp, Unix};
use e2e::cases::{run_matrix, run_nginx_unbuffered, run_scale_out};
use e2e::{Kind, runtime};

/// `runtime_name => start_function`: one test per front end and transport,
/// and one scale-out test, for each runtime.
macro_rules! matrix {
    ($($runtime:ident => $start:path),* $(,)?) => {
        $(
            mod $runtime {
                use super::*;

                #[test]
                fn nginx_tcp() {
                    run_matrix(Kind::Nginx, Tcp, stringify!($runtime), $start);
                }

                #[test]
                fn nginx_unix() {
                    run_matrix(Kind::Nginx, Unix, stringify!($runtime), $start);
                }

                #[test]
                fn apache_tcp() {
                    run_matrix(Kind::Apache, Tcp, stringify!($runtime), $start);
                }

                #[test]
                fn apache_unix() {
                    run_matrix(Kind::Apache, Unix, stringify!($runtime), $start);
                }

                #[test]
                fn lighttpd_tcp() {
                    run_matrix(Kind::Lighttpd, Tcp, stringify!($runtime), $start);
                }

                #[test]
                fn lighttpd_unix() {
                    run_matrix(Kind::Lighttpd, Unix, stringify!($runtime), $start);
                }

                #[test]
                fn nginx_unbuffered_short_content_length() {
                    run_nginx_unbuffered(stringify!($runtime), $start);
                }

                #[test]
                fn nginx_upstream_two_backends() {
                    run_scale_out(stringify!($runtime), $start);
                }
            }
        )*
    };
}

matrix! {
    blocking => runtime::blocking::start,
    tokio => runtime::tokio::start,
    async_std => runtime::async_std::start,
    smol => runtime::async_std::start_smol,
}

//! The `echo` example as a real process: a graceful stop on SIGTERM and
//! SIGINT, systemd socket activation, readiness notification (the
//! scenarios of `scgi_test_support::process`).

scgi_test_support::process_scenarios!("scgi-blocking", "");

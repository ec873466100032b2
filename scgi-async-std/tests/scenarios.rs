//! The shared scenarios of `scgi-test-support`, run on async-std: the
//! server's `run` future on async-std's `block_on`, a task per connection
//! on async-std's executor.

mod common;

use scgi_async_std::AsyncStd;
use scgi_test_support::{Running, Setup};

fn start(setup: &Setup) -> Running {
    common::start_with(setup, AsyncStd, async_std::task::block_on)
}

scgi_test_support::scenarios!(start);

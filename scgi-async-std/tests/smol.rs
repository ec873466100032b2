//! The shared scenarios of `scgi-test-support` again, on smol: the same
//! crate, with connection tasks spawned on a `smol::Executor` run by two
//! threads of the test's own, and the `run` future on `smol::block_on`.
//! Needs no async-std: it also runs with `--no-default-features`.

mod common;

use std::sync::{Arc, LazyLock};

use scgi_test_support::{Running, Setup};

/// One executor for the whole test binary, run by two threads forever (as
/// a smol program runs its executor).
static EXECUTOR: LazyLock<Arc<smol::Executor<'static>>> = LazyLock::new(|| {
    let ex = Arc::new(smol::Executor::new());
    for i in 0..2 {
        let ex = Arc::clone(&ex);
        std::thread::Builder::new()
            .name(format!("smol-{i}"))
            .spawn(move || smol::block_on(ex.run(smol::future::pending::<()>())))
            .expect("executor thread");
    }
    ex
});

fn start(setup: &Setup) -> Running {
    let ex = Arc::clone(&EXECUTOR);
    common::start_with(setup, move |task| ex.spawn(task).detach(), smol::block_on)
}

scgi_test_support::scenarios!(start);

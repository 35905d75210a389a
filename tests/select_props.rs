//! The select layer's property test (`support/src/props/select_ops.rs`, also a fuzz target), in a
//! binary of its own: its operation sequences close descriptors and then check what
//! `select` and `Selector` say of those numbers, so no other test may open or close
//! descriptors meanwhile (in the shared test binary one did, and a number the model knew as
//! closed came back as someone else's socket). The same reason `select_closed_fd.rs` stands
//! alone.

use evloop_support::props::select_ops;
use evloop_support::testing::Rng;

#[test]
fn select_op_sequences_match_the_model() {
    let mut rng = Rng::seeded("select_op_sequences_match_the_model");
    let mut reports = 0;
    for _ in 0..200 {
        let len = 3 * rng.range(1, 60);
        let ops = rng.bytes(len);
        reports += select_ops::run(&ops);
    }
    eprintln!("{reports} readiness reports checked");
    assert!(reports >= 500, "only {reports} readiness reports: the sequences selected too little");
}

use super::*;

fn at(base: Instant, ms: u64) -> Instant {
    base + Duration::from_millis(ms)
}

/// Pops every timer expired at `now`, in order.
fn drain(timers: &mut Timers<&'static str>, now: Instant) -> Vec<&'static str> {
    let fence = timers.sequence();
    std::iter::from_fn(|| timers.pop_expired(now, fence).map(|(_, owner)| owner)).collect()
}

#[test]
fn fires_in_deadline_order_and_fifo_among_equals() {
    let base = Instant::now();
    let mut timers = Timers::default();
    timers.insert(at(base, 30), "c");
    timers.insert(at(base, 10), "a1");
    timers.insert(at(base, 10), "a2");
    timers.insert(at(base, 20), "b");
    timers.insert(at(base, 10), "a3");
    assert_eq!(timers.next_deadline(), Some(at(base, 10)));
    assert_eq!(drain(&mut timers, at(base, 25)), ["a1", "a2", "a3", "b"]);
    assert_eq!(drain(&mut timers, at(base, 29)), Vec::<&str>::new());
    assert_eq!(drain(&mut timers, at(base, 30)), ["c"]);
    assert_eq!(timers.len(), 0);
    assert_eq!(timers.next_deadline(), None);
}

#[test]
fn a_timer_fires_exactly_once() {
    let base = Instant::now();
    let mut timers = Timers::default();
    let id = timers.insert(base, "once");
    assert_eq!(drain(&mut timers, base), ["once"]);
    assert_eq!(drain(&mut timers, at(base, 1000)), Vec::<&str>::new());
    assert_eq!(timers.cancel(id), None, "cancelling a fired timer is a no-op");
}

#[test]
fn cancelled_timers_never_fire_and_stale_ids_cannot_cancel_new_timers() {
    let base = Instant::now();
    let mut timers = Timers::default();
    let old = timers.insert(at(base, 5), "old");
    assert_eq!(timers.cancel(old), Some("old"));
    // The slab slot is reused by the next insert; the stale id must not reach it.
    let new = timers.insert(at(base, 5), "new");
    assert_eq!(timers.cancel(old), None);
    assert_eq!(drain(&mut timers, at(base, 5)), ["new"]);
    assert_eq!(timers.cancel(new), None);
}

#[test]
fn timers_inserted_during_a_pass_wait_for_the_next_one() {
    let base = Instant::now();
    let mut timers = Timers::default();
    timers.insert(base, "first");
    let fence = timers.sequence();
    let (_, owner) = timers.pop_expired(base, fence).unwrap();
    assert_eq!(owner, "first");
    // A callback re-arms a zero-length timer: it must not fire in this same pass.
    timers.insert(base, "rearmed");
    assert!(timers.pop_expired(base, fence).is_none());
    assert_eq!(drain(&mut timers, base), ["rearmed"]);
}

#[test]
fn huge_durations_saturate_instead_of_overflowing() {
    let now = Instant::now();
    let far = deadline_after(now, Duration::MAX);
    assert!(far > now + Duration::from_secs(3600 * 24 * 365));
    let mut timers = Timers::default();
    timers.insert(far, "never");
    assert_eq!(drain(&mut timers, now + Duration::from_secs(3600)), Vec::<&str>::new());
}

#[test]
fn set_and_cancel_forever_keeps_the_heap_small() {
    let base = Instant::now();
    let mut timers = Timers::default();
    let keep = timers.insert(at(base, 1_000_000), "keep");
    for i in 0..100_000 {
        let id = timers.insert(at(base, 1000 + i), "churn");
        timers.cancel(id);
    }
    assert_eq!(timers.len(), 1);
    assert!(timers.heap.len() <= 130, "heap kept {} orphaned items", timers.heap.len());
    assert_eq!(timers.cancel(keep), Some("keep"));
}

/// Model check: thousands of random inserts, cancels (live, fired and stale ids) and expiry
/// passes, compared step by step against a plain list that is obviously right.
#[test]
fn random_operations_match_a_naive_model() {
    let base = Instant::now();
    let mut timers: Timers<u32> = Timers::default();
    // The model: (deadline in ms, insertion order, owner, id) of live timers.
    let mut model: Vec<(u64, u64, u32, TimerId)> = Vec::new();
    let mut all_ids: Vec<TimerId> = Vec::new();
    let mut order = 0u64;
    let mut now_ms = 0u64;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    for step in 0..20_000u32 {
        match random(10) {
            0..=4 => {
                let deadline = now_ms + random(50);
                let id = timers.insert(at(base, deadline), step);
                order += 1;
                model.push((deadline, order, step, id));
                all_ids.push(id);
            }
            5..=6 if !all_ids.is_empty() => {
                // Any id ever issued: live, fired or already cancelled.
                let id = all_ids[random(all_ids.len() as u64) as usize];
                let expected = model.iter().position(|t| t.3 == id).map(|i| model.remove(i).2);
                assert_eq!(timers.cancel(id), expected, "step {step}");
            }
            _ => {
                now_ms += random(20);
                let fence = timers.sequence();
                let fired: Vec<u32> = std::iter::from_fn(|| timers.pop_expired(at(base, now_ms), fence))
                    .map(|(_, o)| o)
                    .collect();
                let mut due: Vec<_> = model.iter().filter(|t| t.0 <= now_ms).copied().collect();
                due.sort_by_key(|t| (t.0, t.1));
                model.retain(|t| t.0 > now_ms);
                assert_eq!(fired, due.iter().map(|t| t.2).collect::<Vec<_>>(), "step {step}");
            }
        }
        assert_eq!(timers.len(), model.len(), "step {step}");
        let earliest = model.iter().map(|t| t.0).min().map(|ms| at(base, ms));
        assert_eq!(timers.next_deadline(), earliest, "step {step}");
    }
}

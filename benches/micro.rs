//! Micro-benchmarks (criterion) for the reactor's data structures, away from the kernel:
//! timers (insert, cancel, expire at 10k and 1M live timers), token encode/decode (every
//! event's dispatch starts there), and input handling (line splitting and consuming).
//!
//! Run: `cargo bench --bench micro` (add a filter: `cargo bench --bench micro -- timers`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use evloop::timer::Timers;
use evloop::token;
use evloop::Input;

/// A heap holding `live` timers spread over ten minutes.
fn populated(live: usize, base: Instant) -> Timers<usize> {
    let mut timers = Timers::default();
    for i in 0..live {
        timers.insert(base + Duration::from_millis((i * 7919 % 600_000) as u64), i);
    }
    timers
}

fn timers(c: &mut Criterion) {
    let base = Instant::now();
    for live in [10_000usize, 1_000_000] {
        let mut group = c.benchmark_group(format!("timers/{live}"));
        if live >= 1_000_000 {
            group.sample_size(10);
        }
        let mut timers = populated(live, base);
        // Insert then cancel: the steady state of a timeout armed per request and cancelled
        // when the reply goes out (the heap stays at `live` thanks to compaction).
        let mut i = 0u64;
        group.bench_function("insert+cancel", |b| {
            b.iter(|| {
                i += 1;
                let id = timers.insert(base + Duration::from_millis(i % 600_000), 0);
                black_box(timers.cancel(id));
            })
        });
        // Expire: pop the earliest timer and arm a new one far out, so the size stays put.
        let mut timers = populated(live, base);
        let far = base + Duration::from_secs(3600);
        group.bench_function("expire+rearm", |b| {
            b.iter(|| {
                let fence = timers.sequence();
                let (_, owner) = timers.pop_expired(far, fence).expect("a timer is due");
                timers.insert(far + Duration::from_millis(owner as u64), owner);
            })
        });
        group.bench_function("next_deadline", |b| b.iter(|| black_box(timers.next_deadline())));
        group.finish();
    }
}

fn tokens(c: &mut Criterion) {
    let tokens: Vec<_> = (0..1024).map(|slot| token::conn(slot * 31, slot as u32 * 7)).collect();
    c.bench_function("token/decode 1024", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for &t in &tokens {
                if let token::Target::Conn(id) = token::decode(black_box(t)) {
                    sum += id.slot() ^ id.generation() as usize;
                }
            }
            sum
        })
    });
}

fn input(c: &mut Criterion) {
    // 1,000 short request lines in one read, as a pipelining client sends them.
    let lines: Vec<u8> = (0..1000).flat_map(|i| format!("{}\n", i % 40).into_bytes()).collect();
    c.bench_function("input/take_line x1000", |b| {
        b.iter(|| {
            let mut input = Input::new(black_box(&lines));
            let mut count = 0;
            while let Some(line) = input.take_line(b'\n') {
                count += line.len();
            }
            count
        })
    });
    // Staging a reply and consuming it: append to a reused buffer, then clear.
    let reply = [b'x'; 64];
    c.bench_function("output/append+clear 64B", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(64 * 1024),
            |staging: &mut Vec<u8>| {
                for _ in 0..16 {
                    staging.extend_from_slice(black_box(&reply));
                }
                staging.clear();
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, timers, tokens, input);
criterion_main!(benches);

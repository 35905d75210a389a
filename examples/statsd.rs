//! A statsd-style metrics sink on a datagram endpoint: counters, gauges and timings arrive
//! as UDP datagrams (`name:value|c`, `|g`, `|ms`, several per datagram, one per line), are
//! aggregated in memory, and every `--flush-ms` one summary line per metric is printed and
//! the interval's counters and timings start again.
//!
//! Run:  cargo run --release --example statsd
//! Send: echo "hits:1|c" | nc -u -w0 127.0.0.1 8125     (Debian's netcat-openbsd)
//!       printf 'load:0.5|g\nlatency:12|ms\nhits:3|c|@0.5' | nc -u -w0 127.0.0.1 8125
//! Stop: Ctrl-C (SIGINT) or SIGTERM.
//!
//! Bad lines are counted and skipped (`RUST_LOG=debug` shows each); a datagram is never
//! answered, as statsd's never is. Memory is bounded by `--max-metrics` names (new names
//! past it are dropped and counted) and 1,000 timings kept per name per interval.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use evloop::{Config, DatagramAddr, DatagramCx, Datagrams, Reactor, TimerId};
use evloop_support::app;
use evloop_support::cli::{self, Millis, LOGS};
use evloop_support::stats;

/// statsd: a statsd-style metrics sink over UDP.
#[derive(Debug, Parser)]
#[command(name = "statsd", version, after_help = LOGS)]
struct Args {
    /// Address to receive metrics on
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8125", value_parser = cli::addr)]
    addr: SocketAddr,

    /// Print and reset the aggregates this often: milliseconds, or with a unit (10s)
    #[arg(long, alias = "flush-ms", value_name = "MS", default_value_t = Millis::from(10_000),
          value_parser = cli::positive_ms)]
    flush: Millis,

    /// Most metric names held at once; lines for new names past it are dropped
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = cli::count(1, usize::MAX))]
    max_metrics: usize,
}

/// Timings kept per name per interval (the rest still count toward count, min and max).
const TIMINGS_KEPT: usize = 1_000;

/// One metric's aggregate over the current interval.
#[derive(Debug)]
enum Metric {
    Counter(f64),
    Gauge(f64),
    Timer { count: u64, sum: f64, min: f64, max: f64, kept: Vec<f64> },
}

struct Sink {
    metrics: BTreeMap<String, Metric>,
    max_metrics: usize,
    flush_every: Duration,
    bad_lines: u64,
    dropped_names: u64,
}

impl Sink {
    /// Folds one `name:value|type[|@rate]` line in; `Err` says what is wrong with it.
    fn record(&mut self, line: &str) -> Result<(), &'static str> {
        let (name, rest) = line.split_once(':').ok_or("no ':'")?;
        let mut fields = rest.split('|');
        let value: f64 = fields.next().and_then(|v| v.parse().ok()).ok_or("value is not a number")?;
        let kind = fields.next().ok_or("no '|type'")?;
        let rate = match fields.next() {
            Some(rate) => rate.strip_prefix('@').and_then(|r| r.parse::<f64>().ok()).ok_or("bad '@rate'")?,
            None => 1.0,
        };
        if name.is_empty() || !value.is_finite() || !(rate > 0.0 && rate <= 1.0) {
            return Err("empty name, or value or rate out of range");
        }
        if !self.metrics.contains_key(name) && self.metrics.len() >= self.max_metrics {
            self.dropped_names += 1;
            return Ok(());
        }
        let fresh = || match kind {
            "c" => Some(Metric::Counter(0.0)),
            "g" => Some(Metric::Gauge(0.0)),
            "ms" => {
                Some(Metric::Timer { count: 0, sum: 0.0, min: f64::MAX, max: f64::MIN, kept: Vec::new() })
            }
            _ => None,
        };
        let metric = match self.metrics.get_mut(name) {
            Some(metric) => metric,
            None => self.metrics.entry(name.to_owned()).or_insert(fresh().ok_or("unknown type")?),
        };
        match (metric, kind) {
            (Metric::Counter(total), "c") => *total += value / rate,
            (Metric::Gauge(level), "g") => *level = value,
            (Metric::Timer { count, sum, min, max, kept }, "ms") => {
                (*count, *sum, *min, *max) = (*count + 1, *sum + value, min.min(value), max.max(value));
                if kept.len() < TIMINGS_KEPT {
                    kept.push(value);
                }
            }
            _ => return Err("type differs from the metric's"),
        }
        Ok(())
    }

    /// Prints one line per metric; counters and timers start the next interval at zero.
    fn flush(&mut self) {
        for (name, metric) in &mut self.metrics {
            match metric {
                Metric::Counter(total) => println!("{name} counter {total}"),
                Metric::Gauge(level) => println!("{name} gauge {level}"),
                Metric::Timer { count: 0, .. } => {}
                Metric::Timer { count, sum, min, max, kept } => {
                    let p90 = stats::percentile(kept, 0.9);
                    let mean = *sum / *count as f64;
                    println!("{name} timer count={count} min={min} max={max} mean={mean:.3} p90={p90}");
                }
            }
        }
        if self.bad_lines + self.dropped_names > 0 {
            println!(
                "(skipped: {} bad lines, {} new names past the cap)",
                self.bad_lines, self.dropped_names
            );
        }
        // Gauges keep their level; counters and timers are per interval.
        self.metrics.retain(|_, metric| matches!(metric, Metric::Gauge(_)));
        (self.bad_lines, self.dropped_names) = (0, 0);
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}

impl Datagrams for Sink {
    fn on_datagram(&mut self, datagram: &[u8], from: &DatagramAddr, _cx: &mut DatagramCx<'_, Self>) {
        let text = String::from_utf8_lossy(datagram);
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            if let Err(why) = self.record(line) {
                self.bad_lines += 1;
                log::debug!("{from}: {why}: {line:?}");
            }
        }
    }

    fn on_timer(&mut self, _id: TimerId, cx: &mut DatagramCx<'_, Self>) {
        self.flush();
        cx.set_timer(self.flush_every);
    }
}

fn main() {
    let args = Args::parse();
    app::init_logging();
    let flush_every = args.flush.0;
    let sink = Sink {
        metrics: BTreeMap::new(),
        max_metrics: args.max_metrics,
        flush_every,
        bad_lines: 0,
        dropped_names: 0,
    };
    let served = (|| {
        let mut reactor: Reactor = Reactor::new(Config::default())?;
        let (id, bound) = reactor.bind_udp(args.addr, sink)?;
        reactor.with_endpoint(id, |_: &mut Sink, cx| cx.set_timer(flush_every));
        app::run_reactor(reactor, format!("udp {bound}"))
    })();
    if let Err(e) = served {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

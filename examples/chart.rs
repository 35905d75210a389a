//! Redraws BENCHMARKS.md's echo figure, throughput by connections, from the raw result lines
//! that `benches/harness/echo_compare.sh -o DIR` keeps (`server=... rc=0 ... conns=N ...
//! msgs_per_s=X`): the median msgs/s per server and connection count, one line per server.
//! The chart code is the lab's (`support/src/plot.rs`), so the repository needs no Python
//! to redraw its figures.
//!
//! Run:  cargo run --example chart -- benches/results/2026-11-22-echo-64B-by-conns.txt \
//!           benches/results/throughput-by-conns.svg

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use evloop_support::plot;
use evloop_support::stats::median;

/// Draws the echo benchmark's throughput by connections as an SVG line chart.
#[derive(Debug, Parser)]
#[command(name = "chart", version)]
struct Args {
    /// Raw result lines (key=value pairs, one run per line; lines without rc=0 are skipped).
    results: PathBuf,
    /// The SVG file to write.
    out: PathBuf,
}

/// The servers in the order (and so the colours) of the legend; others follow by name.
const ORDER: [&str; 4] = ["evloop", "tokio", "c_epoll", "mio"];

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let text = std::fs::read_to_string(&args.results)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", args.results.display())))?;
    // (server, connections) -> every run's msgs/s.
    let mut runs: BTreeMap<(String, u64), Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let fields: BTreeMap<&str, &str> =
            line.split_whitespace().filter_map(|word| word.split_once('=')).collect();
        if fields.get("rc") != Some(&"0") {
            continue;
        }
        let parsed = (|| {
            Some((
                fields.get("server")?,
                fields.get("conns")?.parse().ok()?,
                fields.get("msgs_per_s")?.parse().ok()?,
            ))
        })();
        if let Some((server, conns, rate)) = parsed {
            runs.entry((server.to_string(), conns)).or_default().push(rate);
        }
    }
    if runs.is_empty() {
        return Err(std::io::Error::other(format!("{}: no result line with rc=0", args.results.display())));
    }
    let mut servers: Vec<String> = runs.keys().map(|(server, _)| server.clone()).collect();
    servers.dedup();
    servers.sort_by_key(|server| {
        (ORDER.iter().position(|known| known == server).unwrap_or(ORDER.len()), server.clone())
    });
    let mut conns: Vec<u64> = runs.keys().map(|&(_, conns)| conns).collect();
    conns.sort_unstable();
    conns.dedup();
    let series = servers
        .iter()
        .map(|server| plot::Series {
            name: server.clone(),
            values: conns
                .iter()
                .map(|&c| runs.get(&(server.clone(), c)).map(|rates| median(rates)))
                .collect(),
            markers: vec![None; conns.len()],
        })
        .collect();
    let panel = plot::Panel {
        title: "Echo 64 B ping-pong: median msgs/s by connections".into(),
        y_label: "messages per second (higher is better)".into(),
        categories: conns.iter().map(u64::to_string).collect(),
        series,
    };
    plot::lines(&args.out, "connections", &panel)?;
    println!("{}", args.out.display());
    Ok(())
}

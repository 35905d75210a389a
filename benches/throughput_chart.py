#!/usr/bin/env python3
"""Draws throughput vs connections (median msgs/s per server) as an SVG, from the raw result
lines that ../shared/bench/echo_compare.sh keeps with `-o DIR` (DIR/results.txt).

usage: benches/throughput_chart.py RESULTS.txt OUT.svg
No plotting library: the SVG is written by hand, so this runs on any Python 3.
"""
import re
import statistics
import sys
from collections import defaultdict

COLORS = {"evloop": "#d62728", "tokio": "#1f77b4", "c_epoll": "#2ca02c", "mio": "#9467bd"}


def medians(path):
    runs = defaultdict(list)
    for line in open(path):
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        if fields.get("rc") != "0":
            continue
        runs[(fields["server"], int(fields["conns"]))].append(float(fields["msgs_per_s"]))
    return {key: statistics.median(values) for key, values in runs.items()}


def main(src, out):
    data = medians(src)
    servers = [s for s in COLORS if any(k[0] == s for k in data)]
    conns = sorted({c for _, c in data})
    width, height, left, bottom, top, right = 640, 360, 70, 50, 30, 130
    top_value = max(data.values()) * 1.15
    x = lambda i: left + i * (width - left - right) / max(1, len(conns) - 1)
    y = lambda v: height - bottom - v / top_value * (height - bottom - top)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">Echo 64 B ping-pong: median msgs/s by connections</text>']
    for k in range(5):
        v = top_value * k / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v / 1000:.0f}k</text>')
    for i, c in enumerate(conns):
        parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="middle">{c}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">connections</text>')
    for n, s in enumerate(servers):
        points = [(x(i), y(data[(s, c)])) for i, c in enumerate(conns) if (s, c) in data]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{COLORS[s]}" stroke-width="2"/>')
        for px, py in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{COLORS[s]}"/>')
        ly = top + 20 + n * 18
        parts.append(f'<line x1="{width - right + 15}" x2="{width - right + 35}" y1="{ly}" y2="{ly}" stroke="{COLORS[s]}" stroke-width="2"/>')
        parts.append(f'<text x="{width - right + 40}" y="{ly + 4}">{s}</text>')
    parts.append("</svg>")
    open(out, "w").write("\n".join(parts) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

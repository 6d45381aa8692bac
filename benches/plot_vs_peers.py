#!/usr/bin/env python3
"""Tables and a plot from the last `cargo bench --bench vs_peers` run.

Reads criterion's `target/criterion/peers_*/**/new/{benchmark,estimates}.json`, prints the
Markdown tables of BENCHMARKS.md (records per second and topiclog's ratios) and writes
`docs/vs_peers.svg`: records per second by value size for topiclog, commitlog and kafko
(append in batches of 1000 and of 1, and sequential read), on a log scale, with the floor.

Usage: python3 benches/plot_vs_peers.py [CRITERION_DIR] [SVG_PATH]
Only the standard library is needed.
"""

import glob
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITERION = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "criterion")
SVG = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "docs", "vs_peers.svg")

STORES = ["topiclog", "commitlog", "kafko", "floor"]
COLORS = {"topiclog": "#1f77b4", "topiclog-borrowed": "#17becf", "commitlog": "#ff7f0e",
          "kafko": "#2ca02c", "floor": "#7f7f7f"}
# The read cases: topiclog scans with `Batch::records` (owned `Bytes` views) and with
# `Batch::for_each_record` (borrowed slices, like commitlog's messages).
READERS = ["topiclog-borrowed", "topiclog", "commitlog", "kafko"]
SIZES = ["100B", "1024B", "10240B"]
SIZE_LABEL = {"100B": "100 B", "1024B": "1 KiB", "10240B": "10 KiB"}


def load():
    """{(group, store, value_str): (rec/s, low rec/s, high rec/s)}"""
    out = {}
    for bench in glob.glob(os.path.join(CRITERION, "peers_*", "**", "new", "benchmark.json"),
                           recursive=True):
        with open(bench) as f:
            b = json.load(f)
        with open(os.path.join(os.path.dirname(bench), "estimates.json")) as f:
            e = json.load(f)
        elements = (b.get("throughput") or {}).get("Elements")
        if not elements:
            continue
        # Criterion's "typical" estimate: the slope when it has one (linear sampling), else
        # the mean (flat sampling). The middle value of its printed `thrpt` is this.
        est = e.get("slope") or e["mean"]
        ns = est["point_estimate"]
        ci = est["confidence_interval"]
        out[(b["group_id"], b["function_id"], b["value_str"])] = (
            elements / ns * 1e9,
            elements / ci["upper_bound"] * 1e9,
            elements / ci["lower_bound"] * 1e9,
        )
    return out


def fmt(v):
    if v is None:
        return ""
    if v >= 1e6:
        return f"{v / 1e6:.3f} M"
    return f"{v / 1e3:.1f} K" if v >= 1e4 else f"{v:,.0f}"


def ratio(a, b):
    return "" if a is None or b is None else f"{a / b:.2f}x"


def table(data, group, stores, params, lead="topiclog"):
    get = lambda s, p: data.get((group, s, p), (None,))[0]
    head = ["case"] + [f"{s} rec/s" for s in stores]
    head += [f"{lead} / {s}" for s in stores if s != lead]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for p in params:
        if all(get(s, p) is None for s in stores):
            continue
        t = get(lead, p)
        row = [p.replace("1024B", "1KiB").replace("10240B", "10KiB")]
        row += [fmt(get(s, p)) for s in stores]
        row += [ratio(t, get(s, p)) for s in stores if s != lead]
        print("| " + " | ".join(row) + " |")
    print()


def human(v):
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= div:
            return f"{v / div:g}{unit}"
    return f"{v:g}"


def svg(data):
    panels = [
        ("Append, batches of 1000 (page cache)", "peers_append", "/batch1000", STORES),
        ("Append, single records (page cache)", "peers_append", "/batch1", STORES),
        ("Sequential read, CRC checked", "peers_read", "", READERS),
    ]
    values = [v for (group, store, param), est in data.items() for v in est
              if any(group == g and param.endswith(sfx) and store in st for _, g, sfx, st in panels)
              and v > 0]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    pw, ph = 300, 300  # plot area of one panel
    ml, mt, gap = 70, 60, 40
    width = ml + 3 * pw + 2 * gap + 20
    height = mt + ph + 90
    y = lambda v: mt + ph - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * ph
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">'
        "Records per second by value size (log scale; higher is better)</text>",
    ]
    for i, (title, group, suffix, stores) in enumerate(panels):
        x0 = ml + i * (pw + gap)
        out.append(f'<text x="{x0 + pw / 2}" y="{mt - 12}" text-anchor="middle">{title}</text>')
        decade = lo
        while decade <= hi * 1.0001:
            yy = y(decade)
            out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                       'stroke="#ddd"/>')
            if i == 0:
                label = human(decade)
                out.append(f'<text x="{x0 - 6}" y="{yy + 4:.1f}" text-anchor="end">'
                           f"{label}</text>")
            decade *= 10
        out.append(f'<line x1="{x0}" x2="{x0}" y1="{mt}" y2="{mt + ph}" stroke="black"/>')
        if i == 0:
            out.append(f'<text transform="translate(16 {mt + ph / 2}) rotate(-90)" '
                       'text-anchor="middle">records per second</text>')
        out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{mt + ph}" y2="{mt + ph}" '
                   'stroke="black"/>')
        slot = pw / len(SIZES)
        bw = (slot - 16) / len(stores)
        for j, size in enumerate(SIZES):
            sx = x0 + j * slot + 8
            out.append(f'<text x="{x0 + (j + 0.5) * slot:.1f}" y="{mt + ph + 16}" '
                       f'text-anchor="middle">{SIZE_LABEL[size]}</text>')
            for k, store in enumerate(stores):
                v = data.get((group, store, size + suffix))
                if not v:
                    continue
                bx = sx + k * bw
                top = y(v[0])
                fill = COLORS[store]
                extra = ' fill-opacity="0.45"' if store == "floor" else ""
                out.append(f'<rect x="{bx:.1f}" y="{top:.1f}" width="{bw - 2:.1f}" '
                           f'height="{mt + ph - top:.1f}" fill="{fill}"{extra}>'
                           f"<title>{store} {SIZE_LABEL[size]}: {v[0] / 1e6:.3f} M rec/s"
                           "</title></rect>")
                # Criterion's confidence interval.
                cx = bx + (bw - 2) / 2
                out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(v[2]):.1f}" '
                           f'y2="{y(v[1]):.1f}" stroke="black"/>')
    ly = mt + ph + 45
    for k, store in enumerate(["topiclog", "topiclog-borrowed", "commitlog", "kafko", "floor"]):
        lx = ml + k * 150
        extra = ' fill-opacity="0.45"' if store == "floor" else ""
        label = "floor (plain write)" if store == "floor" else store
        out.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" '
                   f'fill="{COLORS[store]}"{extra}/>')
        out.append(f'<text x="{lx + 18}" y="{ly}">{label}</text>')
    out.append(f'<text x="{ml}" y="{ly + 25}" font-size="11" fill="#555">'
               "Bars: criterion's estimate; whiskers: its confidence interval. "
               "kafko's read uses 256 KiB segments (see BENCHMARKS.md).</text>")
    out.append("</svg>")
    os.makedirs(os.path.dirname(SVG), exist_ok=True)
    with open(SVG, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    data = load()
    if not data:
        sys.exit(f"no peers_* results under {CRITERION}: run cargo bench --bench vs_peers first")
    appends = [f"{s}/batch{b}" for s in SIZES for b in (1000, 1)]
    print("peers_append (page cache):\n")
    table(data, "peers_append", STORES, appends)
    print("peers_append_fsync (durable per batch):\n")
    table(data, "peers_append_fsync", ["topiclog", "kafko", "floor"], appends)
    print("peers_read:\n")
    table(data, "peers_read", READERS, SIZES, lead="topiclog-borrowed")
    single = ["topiclog", "topiclog-prealloc", "wal-db", "commitlog", "floor"]
    print("peers_single (page cache; 100B/batch1000 is the A/B of batched appends):\n")
    table(data, "peers_single", single, ["100B/batch1", "1024B/batch1", "100B/batch1000"],
          lead="topiclog-prealloc")
    print("peers_single_fsync (a sync per append):\n")
    table(data, "peers_single_fsync", ["topiclog", "topiclog-prealloc", "wal-db", "floor"],
          ["100B/batch1"], lead="topiclog-prealloc")
    print("peers_group_commit (16 threads, a sync per append):\n")
    table(data, "peers_group_commit", ["topiclog", "topiclog-prealloc", "wal-db"], ["100B/16"],
          lead="topiclog-prealloc")
    svg(data)
    print(f"wrote {SVG}")


if __name__ == "__main__":
    main()

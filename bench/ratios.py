#!/usr/bin/env python3
"""weft's ratio to every peer, per workload, from a run of the peers harness.

usage: bench/ratios.py [RESULTS_DIR | RESULTS_DIR/report.md] [--name weft]
       (default: /tmp/weft-peers/results/latest, as written by bench/compare.sh)

Reads the raw TSVs next to report.md (the same rows report.py renders) and takes the
median over runs, as report.py does. "weft/peer" is weft's value divided by the peer's;
the last column says which side is better and by what factor.
"""
import argparse
import csv
import os
import statistics
import sys


def num(x):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v else None  # drop NaN


def med(vals):
    v = [x for x in vals if x is not None]
    return statistics.median(v) if v else None


def rows(d, name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def user_us_per_req(r):
    """server process user-mode CPU time per request, microseconds (report.py's 'user us/req')"""
    u, rps = num(r.get("srv_user_pct")), num(r.get("rps"))
    return u / 100 * 1e6 / rps if u is not None and rps else None


def kb_to_mb(x):
    v = num(x)
    return v / 1024 if v is not None else None


# (tsv, workload label, row filter, value of a row, unit, lower_is_better)
def metrics(d):
    out = []
    fa = rows(d, "fanout.tsv")
    for n in sorted({int(r["arg"]) for r in fa}):
        sub = [r for r in fa if int(r["arg"]) == n]
        out.append((sub, f"A fanout N={n:,}", lambda r: num(r["wall_s"]), "wall s", True))
        out.append((sub, f"A fanout N={n:,}", lambda r: kb_to_mb(r["maxrss_kb"]), "peak RSS MB", True))
    sp = rows(d, "spawn.tsv")
    for wl in ("spawn-seq", "spawn-all"):
        sub = [r for r in sp if r["workload"] == wl]
        if sub:
            out.append((sub, f"B {wl} N={int(sub[0]['arg']):,}", lambda r: num(r["ns_per_task"]), "ns/task", True))
    sw = rows(d, "switch.tsv")
    for wl, label in (("switch", "C switch (yield)"), ("pingpong", "C pingpong (hand-off)")):
        sub = [r for r in sw if r["workload"] == wl]
        if sub:
            out.append((sub, label, lambda r: num(r["ns_per_switch"]), "ns/switch", True))
    ec = rows(d, "echo.tsv")
    for s in sorted({int(r["size"]) for r in ec}):
        sub = [r for r in ec if int(r["size"]) == s]
        out.append((sub, f"D echo {s} B", lambda r: num(r["rps"]), "req/s", False))
        out.append((sub, f"D echo {s} B", user_us_per_req, "server user us/req", True))
    ht = rows(d, "http.tsv")
    if ht:
        out.append((ht, "E http-hello", lambda r: num(r["rps"]), "req/s", False))
        out.append((ht, "E http-hello", user_us_per_req, "server user us/req", True))
    return out


def fmt(v):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", nargs="?", default="/tmp/weft-peers/results/latest")
    ap.add_argument("--name", default="weft", help="peer name of our library (default: weft)")
    a = ap.parse_args()
    d = os.path.dirname(a.path) if a.path.endswith(".md") else a.path
    d = d or "."
    if not os.path.isdir(d):
        sys.exit(f"ratios.py: no results directory {d}")

    ms = metrics(d)
    if not ms:
        sys.exit(f"ratios.py: no *.tsv rows in {d}")
    missing = []
    for sub, label, val, unit, lower in ms:
        peers = []
        for r in sub:
            if r["peer"] not in peers:
                peers.append(r["peer"])
        if a.name not in peers:
            if label not in missing:
                missing.append(label)
            continue
        ours = med(val(r) for r in sub if r["peer"] == a.name)
        better = "lower" if lower else "higher"
        print(f"### {label}: {unit} ({better} is better), {a.name} = {fmt(ours)}\n")
        if len(peers) == 1:
            print("(no other peer in this run)\n")
            continue
        print(f"| peer | {unit} | {a.name}/peer | verdict |")
        print("|---|---:|---:|---|")
        for p in peers:
            if p == a.name:
                continue
            theirs = med(val(r) for r in sub if r["peer"] == p)
            if ours is None or theirs is None or theirs == 0 or ours == 0:
                print(f"| {p} | {fmt(theirs)} | n/a | n/a |")
                continue
            ratio = ours / theirs
            factor = (1 / ratio) if lower else ratio  # > 1: weft is better
            if abs(factor - 1) < 0.005:
                verdict = "equal"
            elif factor > 1:
                verdict = f"{a.name} {factor:.2f}x better"
            else:
                verdict = f"{a.name} {1 / factor:.2f}x worse"
            print(f"| {p} | {fmt(theirs)} | {ratio:.3f} | {verdict} |")
        print()
    if missing:
        print(f"(no '{a.name}' rows for: {', '.join(missing)})")


if __name__ == "__main__":
    main()

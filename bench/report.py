"""Turns bench/run's results (TSV: measure, server, value, unit) into the Markdown
report of doc/benchmarks.md: every figure, then each DESIGN §7 bar with its ratio."""

import sys
import time

results, machine, big_gib, many, commit = sys.argv[1:6]
v = {}
units = {}
order = []
for line in open(results, encoding="utf-8"):
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 4 or not parts[2]:
        continue
    m, s, x, u = parts
    try:
        v[(m, s)] = float(x)
    except ValueError:
        continue
    units[m] = u
    if m not in order:
        order.append(m)


def g(m, s):
    return v.get((m, s))


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


rows = []  # (bar, figure, ratio text, ok)


def bar(text, r, ok, figure):
    rows.append((text, figure, "—" if r is None else f"{r:.2f}×", "?" if ok is None else ("met" if ok else "**missed**")))


# large GET
k, n, rc = g("get_1g_mbps", "keep-web"), g("get_1g_mbps", "nginx"), g("get_1g_mbps", "rclone")
r = ratio(k, n)
bar("1 GiB GET ≥ 0.5× nginx MB/s", r, None if r is None else r >= 0.5, f"{k or 0:.0f} vs {n or 0:.0f} MB/s")
r = ratio(k, rc)
bar("1 GiB GET ahead of rclone", r, None if r is None else r > 1, f"{k or 0:.0f} vs {rc or 0:.0f} MB/s")
# ranges
for tag, label in (("f1m", "1 MiB file"), ("big10g", f"{big_gib} GiB file")):
    k, n = g(f"range_{tag}_median", "keep-web"), g(f"range_{tag}_median", "nginx")
    r = ratio(k, n)
    bar(f"4 KiB Range median, {label}, ≤ 1.5× nginx", r, None if r is None else r <= 1.5, f"{k or 0:.0f} vs {n or 0:.0f} µs")
a, b = g("range_big10g_median", "keep-web"), g("range_f1m_median", "keep-web")
r = ratio(a, b)
bar(f"Range cost independent of size ({big_gib} GiB vs 1 MiB, ≤ 1.2×)", r, None if r is None else r <= 1.2, f"{a or 0:.0f} vs {b or 0:.0f} µs")
# the same reads cold (not a bar: each server's own cost with the page cache out of it)
cold = {s: (g("range_cold_big10g_median", s), g("range_cold_f1m_median", s)) for s in ("keep-web", "nginx", "apache")}
if all(a is not None and b for a, b in cold.values()):
    (a, b) = cold["keep-web"]
    peers = ", ".join(f"{s} {x / y:.2f}×" for s, (x, y) in cold.items() if s != "keep-web")
    rows.append((f"(not a bar) the same, cold: page cache dropped before each request", f"{a:.0f} vs {b:.0f} µs ({peers})", f"{a / b:.2f}×", "—"))
# PROPFIND
k = g("propfind_many_ms", "keep-web")
for peer, lim in (("nginx", 1.0), ("apache", 0.3), ("rclone", 0.3)):
    p = g("propfind_many_ms", peer)
    r = ratio(k, p)
    bar(f"PROPFIND Depth 1 of {int(many):,} files ≤ {lim}× {peer}", r, None if r is None else r <= lim, f"{k or 0:.0f} vs {p or 0:.0f} ms")
f = g("propfind_many_first_ms", "keep-web")
bar("PROPFIND first byte within 10 ms", None, None if f is None else f <= 10, f"{f or 0:.1f} ms")
# wrk
k, n = g("wrk_4k_rps", "keep-web"), g("wrk_4k_rps", "nginx")
r = ratio(k, n)
bar("4 KiB GET, wrk 32 connections ≥ 0.6× nginx req/s", r, None if r is None else r >= 0.6, f"{k or 0:.0f} vs {n or 0:.0f} req/s")
# put
k, c = g("put_1g", "keep"), g("put_1g", "cp+sync")
r = ratio(c, k)  # throughput ratio = time(cp) / time(keep)
bar("keep put 1 GiB ≥ 0.8× cp + sync", r, None if r is None else r >= 0.8, f"{k or 0:.2f} vs {c or 0:.2f} s")
a = g("put_1g_again", "keep")
r = ratio(a, k)
bar("second put of the same data ≤ 0.3× the first", r, None if r is None else r <= 0.3, f"{a or 0:.2f} vs {k or 0:.2f} s")
# memory
m = g("rss_16x1g", "keep")
bar("keep serve RSS, 16 × 1 GiB downloads < 256 MiB", None, None if m is None else m < 256, f"{m or 0:.0f} MiB")

print("# Benchmarks\n")
print(f"Produced by `bench/run` (one run, servers alternating) on {time.strftime('%Y-%m-%d', time.gmtime())}, commit `{commit}`.  ")
print(f"Machine: {machine}.  ")
print(f"Data: 1 GiB and {big_gib} GiB files of random bytes, a 1 MiB file, a 4 KiB file, "
      f"10,000 files of 1 KiB, {int(many):,} files of 100 bytes; keep-web serves them from one collection, "
      "the peers from the same directory. Every server, client and the data share the machine.\n")
print("## The bars of DESIGN §7\n")
print("| bar | keep vs peer | ratio | |")
print("|---|---|---|---|")
for text, fig, rt, ok in rows:
    print(f"| {text} | {fig} | {rt} | {ok} |")
servers = []
for (m, s) in v:
    if s not in servers:
        servers.append(s)
print("\n## Every figure\n")
print("| measure | unit | " + " | ".join(servers) + " |")
print("|---|---|" + "---|" * len(servers))
for m in order:
    cells = []
    for s in servers:
        x = g(m, s)
        cells.append("" if x is None else (f"{x:.2f}" if x < 100 else f"{x:.0f}"))
    print(f"| {m} | {units[m]} | " + " | ".join(cells) + " |")
print("\nTimes for put/get include `sync`. `keep` in put/get rows is the CLI against `keep serve` "
      "(API + keepstore + keep-web in one process); `rss_16x1g` is that whole process. "
      "Neither keep serve nor nginx writes access logs during the run (`KEEP_LOG=warn`, `access_log off`).")

# the hand-kept explanation of each miss (profiles, bounds, next steps)
import os
notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
if os.path.exists(notes):
    print()
    print(open(notes, encoding="utf-8").read().rstrip("\n"))


#!/usr/bin/env python3
# bench/scenarios/http_report.py - the HTTP rows of one bench/run.sh run (results/h*.http.json).
import csv
import json
import os
import sys


def load(d, name):
    p = os.path.join(d, name + ".http.json")
    if not os.path.exists(p) or os.path.getsize(p) == 0:
        return None
    return json.load(open(p))


def cpu_us(d, name, calls):
    p = os.path.join(d, name + ".http.srv")
    try:
        ticks, hz = open(p).read().split()
        return float(ticks) / float(hz) * 1e6 / calls if calls else None
    except (OSError, ValueError):
        return None


def redis_rps(d, name):
    p = os.path.join(d, name + ".csv")
    try:
        with open(p) as f:
            rows = list(csv.DictReader(f))
        return float(rows[0]["rps"]) if rows else None
    except (OSError, KeyError, ValueError):
        return None


def scrape_share(d):
    """(server us per scrape, % of S1's server CPU per second that one scrape a second is)."""
    try:
        ticks, hz, n = open(os.path.join(d, "scrape.srv")).read().split()
        s1 = json.load(open(os.path.join(d, "s1.json")))
        ticks1, hz1 = open(os.path.join(d, "s1.srv")).read().split()[:2]
    except (OSError, ValueError):
        return None
    us = float(ticks) / float(hz) * 1e6 / float(n)
    secs = (s1.get("elapsed_s") or 0) + (s1.get("warmup_s") or 0)
    s1_cpu_per_s = float(ticks1) / float(hz1) / (secs or 1)
    if s1_cpu_per_s <= 0:
        return None
    return us, us / 1e6 / s1_cpu_per_s * 100


def main():
    d = sys.argv[1]
    h0, h1, h100, h1o, h0o = (load(d, n) for n in ("h0", "h1", "h100", "h1_open", "h0_open"))
    grpc = lambda n: json.load(open(os.path.join(d, n + ".json"))) \
        if os.path.exists(os.path.join(d, n + ".json")) else None
    s1, s1s = grpc("s1_ref") or grpc("s1"), grpc("s1_scraped")
    if h0 is None:
        return
    print()
    print("HTTP front door (fstore-http-bench, keep-alive, one request in flight per connection)")
    print("%-44s %10s %9s %9s %8s %10s %s" % ("row", "req/s", "p50 ms", "p99 ms", "ratio",
                                             "target", "result"))

    def row(name, r, ratio=None, target="", ok=None):
        if r is None:
            print("%-44s %10s" % (name, "-"))
            return
        print("%-44s %10.0f %9.3f %9.3f %8s %10s %s" % (
            name, r["rps"], r["p50_us"] / 1e3, r["p99_us"] / 1e3,
            "" if ratio is None else "%.2fx" % ratio, target,
            "" if ok is None else ("pass" if ok else "MISS")))

    row("H0 GET /health (floor)", h0)
    x = h1["rps"] / h0["rps"] if h1 and h0["rps"] else None
    row("H1 /get-online-features 1x50", h1, x, ">=0.7x H0", None if x is None else x >= 0.7)
    row("H2 /get-online-features 100x50", h100,
        h100["rps"] * 100 / h0["rps"] if h100 and h0["rps"] else None)
    r1, r100 = redis_rps(d, "redis-hmget50"), redis_rps(d, "redis-hmget50-p100")
    if h1 and r1:
        print("%-44s %10s %9s %9s %7.2fx" % ("  H1 against Redis HMGET-50 (same -c)", "", "", "",
                                             h1["rps"] / r1))
    if h100 and r100:
        print("%-44s %10s %9s %9s %7.2fx" % ("  H2 rows/s against Redis HMGET-50 -P100", "", "",
                                             "", h100["rps"] * 100 / r100))
    y = h1o["p99_us"] / h0o["p99_us"] if h1o and h0o and h0o["p99_us"] else None
    row("H1 open @50%% of H1 (%.0f/s)" % (h1o["rate_target"] if h1o else 0), h1o, y,
        "p99<=1.25x", None if y is None else y <= 1.25)
    row("  H0 open, same rate", h0o)
    if s1 and s1s:
        z = s1s["rps"] / s1["rps"]
        print("%-44s %10.0f %9s %9s %7.2fx %10s %s" % (
            "S1 1x50 gRPC while /metrics scraped every 1 s", s1s["rps"], "", "", z,
            ">=0.98x", "pass" if z >= 0.98 else "MISS"))
        print("  (against S1 run just before it, %.0f calls/s)" % s1["rps"])
    share = scrape_share(d)
    if share is not None:
        us, pct = share
        print("%-44s %10s %9s %9s %7.3f%% %10s %s" % (
            "  one scrape per second, as S1's server CPU", "", "", "", pct, "<2%",
            "pass" if pct < 2 else "MISS"))
        print("  (a scrape of %d bytes costs the server %.0f us of CPU; S1's server CPU per "
              "second is its calls/s x server us per call)" %
              (int(os.environ.get("METRICS_BYTES", "0") or 0), us))
    if h100:
        us = cpu_us(d, "h100", h100["ok"])
        if us:
            print("H2 costs the server %.1f us of CPU per call, %.0f ns per value (100 x 50 "
                  "values plus join keys; reading, HTTP and JSON together)" % (us, us * 1e3 / 5100))
    jp = os.path.join(d, "json.json")
    if os.path.exists(jp) and os.path.getsize(jp) > 0:
        j = json.load(open(jp))
        print("JSON encoding per value (fstore-json-bench: the server's writer vs jansson "
              "building and dumping the same values, same run):")
        for k in ("mix", "double", "decimal", "float", "int64", "string"):
            if k in j:
                v = j[k]
                print("  %-8s %7.1f ns   jansson %7.1f ns (dump alone %7.1f)   %.2fx" % (
                    k, v["fstore_ns"], v["jansson_build_dump_ns"], v["jansson_dump_ns"],
                    v["jansson_build_dump_ns"] / v["fstore_ns"]))
    if os.path.exists(jp) and os.path.getsize(jp) > 0:
        j = json.load(open(jp))
        for k, what in (("decode_h1", "H1's body (1 x 50)"), ("decode_h100", "H2's body (100 x 50)")):
            if k in j:
                v = j[k]
                print("Request decoding, %s, %d bytes: %.0f ns hand-written, jansson %.0f ns "
                      "(parse and entity values): %.2fx" % (what, v["bytes"], v["fstore_ns"],
                                                           v["jansson_ns"],
                                                           v["jansson_ns"] / v["fstore_ns"]))
    print("errors: %s" % ", ".join("%s %d" % (n, r["failed"]) for n, r in
                                   (("h0", h0), ("h1", h1), ("h100", h100), ("h1_open", h1o),
                                    ("h0_open", h0o)) if r))


if __name__ == "__main__":
    main()

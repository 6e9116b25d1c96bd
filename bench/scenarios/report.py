#!/usr/bin/env python3
# bench/scenarios/report.py - turns one bench/run.sh run's results into the table (or JSON).
#
# Input: a directory holding one JSON file per fstore-bench run (NAME.json), Redis's CSV
# (redis-*.csv), and facts.json (machine, load, ingest, RSS, storage floor) written by run.sh.
# Every ratio is between figures of this one run: nothing is carried over from elsewhere.
import csv
import json
import os
import re
import sys

MS = 1000.0  # fstore-bench reports microseconds


def load(d, name):
    p = os.path.join(d, name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        txt = f.read().strip()
    return json.loads(txt) if txt else None


def server_cpu(d, name):
    """The server's CPU across a run (NAME.srv from run.sh), in seconds, and Redis's request
    count when the file has one."""
    p = os.path.join(d, name + ".srv")
    if not os.path.exists(p):
        return None, None
    try:
        parts = open(p).read().split()
        ticks = float(parts[0])
        if ticks <= 0:  # the process was gone by the end of the run: no figure
            return None, None
        return ticks / float(parts[1]), (float(parts[2]) if len(parts) > 2 else None)
    except (ValueError, IndexError, ZeroDivisionError):
        return None, None


def redis(d, name):
    p = os.path.join(d, name + ".csv")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    r = rows[-1]
    out = {"rps": float(r["rps"]), "p50_ms": float(r["p50_latency_ms"]),
           "p99_ms": float(r["p99_latency_ms"]), "client_us": None, "server_us": None}
    secs, n = server_cpu(d, name)
    if secs is not None and n:
        out["server_us"] = secs * 1e6 / n
    cpu = os.path.join(d, name + ".cpu")
    if os.path.exists(cpu):
        try:
            parts = open(cpu).read().split()
            out["client_us"] = (float(parts[0]) + float(parts[1])) * 1e6 / float(parts[2])
        except (ValueError, IndexError):
            pass
    return out


def failures(run):
    return run["failed"] + run.get("warmup_failed", 0) + run.get("check", {}).get("problems", 0)


def s0_rps(run):
    return run["rps"] if run and run["ok"] and not failures(run) else None


def fmt(v, spec="{:.0f}"):
    return "-" if v is None else spec.format(v)


def main():
    d = sys.argv[1]
    want_json = len(sys.argv) > 2 and sys.argv[2] == "--json"
    with open(os.path.join(d, "facts.json")) as f:
        facts = json.load(f)
    runs = {n: load(d, n) for n in
            ["s0", "s0_end", "s1", "s1_od", "s1_open", "s0_open_s1", "s2_10", "s2_100", "s2_100_open",
             "s0_open_s2", "s3", "s4", "s5_1", "s5_100"]}
    peer = {"hmget": redis(d, "redis-hmget50"), "pipe10": redis(d, "redis-hmget50-p10"),
            "pipe": redis(d, "redis-hmget50-p100")}
    # The verdicts of a run on a busy or changing machine are marked as such ("pass?").
    e0 = runs["s0_end"]
    untrusted = (facts.get("other_cpu_pct") or 0) > 10 or bool(
        s0_rps(runs["s0"]) and e0 and e0["rps"] and
        abs(e0["rps"] - s0_rps(runs["s0"])) / s0_rps(runs["s0"]) > 0.15)
    # S0 is every row's floor: a run of it with failures is no floor.
    s0 = s0_rps(runs["s0"])
    rows = []

    def add(key, name, run, rows_key="rows_per_s", vs_redis=None, target="", verdict=None,
            note=""):
        r = {"key": key, "scenario": name, "rps": None, "p50_ms": None, "p99_ms": None,
             "p999_ms": None, "rows_per_s": None, "x_s0": None, "x_redis": None,
             "target": target, "result": "", "errors": 0, "problems": 0, "note": note,
             "client_us": None, "server_us": None}
        if run is not None:
            lat = run["latency_us"]["all"]
            # Failures during the warm-up count as errors too: the run was not clean.
            r.update(rps=run["rps"], p50_ms=lat["p50"] / MS, p99_ms=lat["p99"] / MS,
                     p999_ms=lat["p999"] / MS, rows_per_s=run[rows_key],
                     errors=run["failed"] + run.get("warmup_failed", 0),
                     problems=run.get("check", {}).get("problems", 0),
                     client_us=run.get("client_cpu_us_per_call"))
            # The server's CPU over the run's whole window (warm-up included, at the same load)
            # per call.
            secs, _ = server_cpu(d, key)
            calls = sum(run.get(k, 0) for k in ("ok", "failed", "warmup_ok", "warmup_failed"))
            if secs is not None and calls > 0:
                r["server_us"] = secs * 1e6 / calls
            if s0 and run["mode"] == "closed":
                r["x_s0"] = run["rps"] / s0
            if vs_redis:
                r["x_redis"] = vs_redis(run)
            if r["errors"] or r["problems"]:
                r["note"] = (r["note"] + " " if r["note"] else "") + \
                    "%d errors (%d in the warm-up), %d check problems (%s)" % (
                        r["errors"], run.get("warmup_failed", 0), r["problems"],
                        run.get("first_error") or run.get("warmup_first_error", ""))
        if verdict is not None and run is not None:
            ok = verdict(r)
            r["result"] = "n/a" if ok is None else ("pass" if ok else "MISS")
            if ok is not None and untrusted:
                r["result"] += "?"
        # A figure with failed calls or check problems does not count, target or not.
        if run is not None and (r["errors"] or r["problems"]):
            r["result"] = "INVALID"
        rows.append(r)
        return r

    hm = peer["hmget"]
    pp = peer["pipe"]
    pp10 = peer["pipe10"]
    add("s0", "S0 Health/Check (floor)", runs["s0"])
    add("s1", "S1 1x50 closed (max)", runs["s1"],
        vs_redis=(lambda run: run["rps"] / hm["rps"]) if hm else None,
        target=">=1.0x Redis, >=0.8x S0",
        verdict=lambda r: None if r["x_redis"] is None or r["x_s0"] is None else
        (r["x_redis"] >= 1.0 and r["x_s0"] >= 0.8))
    # On-demand: the same read with 5 of its 50 features computed from the other 45 and a
    # request field; the in-process cost per row comes from bench_storage.
    od_note = ""
    fl = facts.get("storage_floor") or {}
    m = re.search(r"on-demand ([0-9.]+) ns per entity row.*alone ([0-9.]+) ns per feature",
                  fl.get("on_demand", ""))
    if m:
        od_note = ("in process: %s ns per entity row for the 5 (decode 10 inputs, evaluate, "
                   "encode), %s ns per feature evaluated" % (m.group(1), m.group(2)))
    s1_rps = runs["s1"]["rps"] if runs["s1"] and runs["s1"]["ok"] else None
    add("s1_od", "S1 1x50, 5 on-demand", runs["s1_od"], target=">=0.9x S1",
        verdict=lambda r: None if not s1_rps else r["rps"] / s1_rps >= 0.9,
        note=(("%.2fx S1; " % (runs["s1_od"]["rps"] / s1_rps))
              if runs["s1_od"] and s1_rps else "") + od_note)
    add("s1_open", "S1 1x50 open @50% max", runs["s1_open"], target="p99 <= 0.3 ms",
        verdict=lambda r: r["p99_ms"] <= 0.3)
    if runs["s0_open_s1"] is not None:
        add("s0_open_s1", "  S0 open, same rate (floor)", runs["s0_open_s1"])
    add("s2_10", "S2 10x50 closed", runs["s2_10"],
        vs_redis=(lambda run: run["rows_per_s"] / pp10["rps"]) if pp10 else None)
    add("s2_100", "S2 100x50 closed (max)", runs["s2_100"],
        vs_redis=(lambda run: run["rows_per_s"] / pp["rps"]) if pp else None,
        target=">=1.5x Redis rows/s",
        verdict=lambda r: None if r["x_redis"] is None else r["x_redis"] >= 1.5)
    add("s2_100_open", "S2 100x50 open @50% max", runs["s2_100_open"], target="p99 <= 2 ms",
        verdict=lambda r: r["p99_ms"] <= 2.0)
    if runs["s0_open_s2"] is not None:
        add("s0_open_s2", "  S0 open, same rate (floor)", runs["s0_open_s2"])
    add("s3", "S3 1x250 closed", runs["s3"])
    s4 = add("s4", "S4 Write 100x10 sync=full", runs["s4"], target=">=150k rows/s",
             verdict=lambda r: r["rows_per_s"] >= 150000)
    # What the disk took: what the data directory's block device wrote over S4's whole window
    # (warm-up included, at the same load) per acknowledged row.
    disk = facts.get("s4_disk") or {}
    run4 = runs["s4"]
    acked = run4 and (run4.get("ok", 0) + run4.get("warmup_ok", 0)) * run4.get("rows_per_call", 0)
    if acked and disk.get("write_bytes", 0) > 0 and disk.get("seconds", 0) > 0:
        disk["kb_per_row"] = disk["write_bytes"] / acked / 1e3
        disk["mb_per_s"] = disk["write_bytes"] / disk["seconds"] / 1e6
        s4["note"] = (s4["note"] + " " if s4["note"] else "") + \
            "the device under the data directory wrote %.1f KB per acknowledged row (warm-up " \
            "included), %.0f MB/s over S4 with its start and final sync (the whole device: " \
            "other writers count too)" % (disk["kb_per_row"], disk["mb_per_s"])
    elif run4 and disk.get("note"):
        s4["note"] = (s4["note"] + " " if s4["note"] else "") + "disk: " + disk["note"]
    ing = facts.get("ingest_rows_per_s")
    rows.append({"key": "ingest", "scenario": "S4 bulk ingest (sync=none)", "rps": None,
                 "p50_ms": None, "p99_ms": None, "p999_ms": None, "rows_per_s": ing,
                 "x_s0": None, "x_redis": None, "target": ">=1M rows/s",
                 "result": "" if ing is None else ("pass" if ing >= 1e6 else "MISS") +
                 ("?" if untrusted else ""),
                 "errors": 0, "problems": 0, "note": facts.get("ingest_note", "")})
    for key, name in (("s5_1", "S5 Predict batch 1"), ("s5_100", "S5 Predict batch 100")):
        if runs[key] is None:
            rows.append({"key": key, "scenario": name, "rps": None, "p50_ms": None,
                         "p99_ms": None, "p999_ms": None, "rows_per_s": None, "x_s0": None,
                         "x_redis": None, "target": "", "result": "n/a", "errors": 0,
                         "problems": 0, "note": facts.get("predict_note", "n/a")})
        else:
            # The Predict path's cost over the same read through GetOnlineFeatures.
            base, what = (runs["s1"], "S1") if key == "s5_1" else (runs["s2_100"], "S2 100x50")
            note = ""
            if base and base["rows_per_s"]:
                note = "%.2fx %s rows/s" % (runs[key]["rows_per_s"] / base["rows_per_s"], what)
            add(key, name, runs[key], note=note)
    if runs["s0_end"] is not None:
        add("s0_end", "S0 again at the end", runs["s0_end"])
    for key, name, r, per in (("redis_hmget", "Peer Redis HMGET-50", hm, 1),
                              ("redis_pipe10", "Peer Redis HMGET-50 -P10", peer["pipe10"], 1),
                              ("redis_pipe", "Peer Redis HMGET-50 -P100", pp, 1)):
        rows.append({"key": key, "scenario": name, "rps": r and r["rps"],
                     "p50_ms": r and r["p50_ms"], "p99_ms": r and r["p99_ms"], "p999_ms": None,
                     "rows_per_s": r and r["rps"] * per, "x_s0": (r["rps"] / s0) if r and s0
                     else None, "x_redis": None, "target": "", "result": "",
                     "errors": 0, "problems": 0, "client_us": r and r["client_us"],
                     "server_us": r and r["server_us"],
                     "note": "" if r else facts.get("redis_note", "not run")})
    fl = facts.get("storage_floor")
    if fl:
        # The verdict is the storage read path's (store_read_* against raw mdb_get of the same
        # keys, one and a request's worth per transaction). For context, the whole server's CPU
        # per (view, entity) in S2 100x50 (5 views x 100 entities a call; gRPC, decoding and
        # encoding included) next to the batched floor.
        result, note = fl.get("result", ""), fl.get("summary", "")
        m = re.search(r"batched ([0-9.]+) vs ([0-9.]+) ns", note)
        s2 = next((r for r in rows if r["key"] == "s2_100"), None)
        if m and s2 and s2.get("server_us"):
            ns = s2["server_us"] * 1e3 / (5 * runs["s2_100"].get("rows_per_call", 100))
            x = ns / float(m.group(2))
            fl["server_ns_per_view_entity"], fl["ratio_server"] = ns, x
            note += ("; for context, the whole server in S2 100x50 (gRPC, decoding and encoding "
                     "included): %.0f ns of CPU per (view, entity) = %.2fx" % (ns, x))
        if result in ("pass", "MISS") and untrusted:
            result += "?"
        rows.append({"key": "floor", "scenario": "Floor mdb_get (in-process)", "rps": None,
                     "p50_ms": None, "p99_ms": None, "p999_ms": None, "rows_per_s": None,
                     "x_s0": None, "x_redis": None, "target": "store read <= 2x mdb_get",
                     "result": result, "errors": 0, "problems": 0, "note": note})
        # The record checksum every read checks (#14: its cost <= 3% of S2): bench_storage's
        # in-process cost per (view, entity), against the server's CPU per (view, entity) in S2.
        m = re.search(r"checksum ([0-9.]+) ns per \(view, entity\)", fl.get("checksum", ""))
        if m:
            sum_ns = float(m.group(1))
            share = sum_ns / fl["server_ns_per_view_entity"] if fl.get(
                "server_ns_per_view_entity") else None
            cres = "n/a" if share is None else ("pass" if share <= 0.03 else "MISS")
            if cres in ("pass", "MISS") and untrusted:
                cres += "?"
            rows.append({"key": "checksum", "scenario": "Record checksum per read", "rps": None,
                         "p50_ms": None, "p99_ms": None, "p999_ms": None, "rows_per_s": None,
                         "x_s0": None, "x_redis": None, "target": "<= 3% of S2 per (view, entity)",
                         "result": cres, "errors": 0, "problems": 0,
                         "note": "%.1f ns per (view, entity) in process%s" % (
                             sum_ns, "" if share is None else
                             " = %.1f%% of the server's %.0f ns in S2 100x50" % (
                                 share * 100, fl["server_ns_per_view_entity"]))})
    rss = facts.get("rss")
    if rss:
        outside = rss["outside_map_kb"] / 1024.0
        rows.append({"key": "rss", "scenario": "Server RSS at end", "rps": None,
                     "p50_ms": None, "p99_ms": None, "p999_ms": None, "rows_per_s": None,
                     "x_s0": None, "x_redis": None, "target": "outside map <= 64 MB",
                     "result": "pass" if outside <= 64 else "MISS", "errors": 0, "problems": 0,
                     "note": "VmRSS %.1f MB, file-backed (LMDB map) %.1f MB, outside %.1f MB" %
                     (rss["vmrss_kb"] / 1024.0, rss["rssfile_kb"] / 1024.0, outside)})

    # The run measures S0 first and last: a drift means the machine changed under the run.
    stability = ""
    e = runs["s0_end"]
    if s0 and e and e["rps"]:
        drift = (e["rps"] - s0) / s0
        facts["s0_drift"] = drift
        stability = "stability: S0 %.0f calls/s at the start, %.0f at the end (%+.0f%%)%s" % (
            s0, e["rps"], drift * 100,
            "" if abs(drift) <= 0.15 else
            " -- UNSTABLE: the machine's capacity changed during the run; do not trust the ratios")
        facts["stability"] = stability
    other = facts.get("other_cpu_pct")
    if other is not None and other > 10:
        stability += ("\n" if stability else "") + (
            "BUSY: other processes took %.0f%% of the machine during the measurements; the "
            "figures are not those of a quiet machine" % other)
        facts["stability"] = stability

    if want_json:
        json.dump({"facts": facts, "rows": rows}, sys.stdout, indent=1)
        print()
        return
    print("fstore benchmark: %s" % facts.get("command", ""))
    print("machine: %s" % facts.get("machine", ""))
    print("other load: %s" % facts.get("load", ""))
    if stability:
        print(stability)
    print("dataset: %s" % facts.get("dataset", ""))
    print("load: %s" % facts.get("concurrency", ""))
    print()
    hdr = ["scenario", "calls/s", "p50 ms", "p99 ms", "p99.9 ms", "rows/s", "xS0", "xRedis",
           "server us", "client us", "target", "result"]
    table = [hdr]
    for r in rows:
        table.append([r["scenario"], fmt(r["rps"]), fmt(r["p50_ms"], "{:.3f}"),
                      fmt(r["p99_ms"], "{:.3f}"), fmt(r["p999_ms"], "{:.3f}"),
                      fmt(r["rows_per_s"]), fmt(r["x_s0"], "{:.2f}"),
                      fmt(r["x_redis"], "{:.2f}"), fmt(r.get("server_us"), "{:.1f}"),
                      fmt(r.get("client_us"), "{:.1f}"),
                      r["target"], r["result"]])
    w = [max(len(str(row[i])) for row in table) for i in range(len(hdr))]
    for i, row in enumerate(table):
        print("  ".join(str(c).ljust(w[k]) if k in (0, 10, 11) else str(c).rjust(w[k])
                        for k, c in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * x for x in w))
    print()
    print("  server us: the server's CPU per call (fstore's over the run, warm-up included;"
          " Redis's per request)")
    print("  client us: the load generator's CPU per call (all its threads), on the same cores")
    print("  result: INVALID = the run had failed calls or check problems; pass? / MISS? = measured"
          " on a busy or changing machine (see above)")
    notes = [(r["scenario"], r["note"]) for r in rows if r["note"]]
    if notes:
        print()
        for name, note in notes:
            print("  %s: %s" % (name, note))


if __name__ == "__main__":
    main()

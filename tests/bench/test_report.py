# tests/bench/test_report.py - bench/scenarios/report.py on a made-up results directory: the
# ratios, the server CPU per call, the verdicts (INVALID, pass?/MISS?) and the notes.
import json
import os
import subprocess
import sys
import tempfile
import unittest

REPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                      "scenarios", "report.py")


def run_json(name, rps, rows_per_call=1, failed=0, warmup_ok=0, warmup_failed=0, mode="closed",
             problems=0, p99_us=1000.0):
    ok = int(rps * 10)
    return {"label": name, "mode": mode, "rps": rps, "rows_per_s": rps * rows_per_call,
            "rows_per_call": rows_per_call, "ok": ok, "failed": failed,
            "warmup_ok": warmup_ok, "warmup_failed": warmup_failed, "warmup_s": 2.0,
            "elapsed_s": 10.0, "client_cpu_us_per_call": 20.0, "first_error": "",
            "warmup_first_error": "UNAVAILABLE: x" if warmup_failed else "",
            "latency_us": {"all": {"count": ok + failed, "p50": 500.0, "p90": 800.0,
                                   "p99": p99_us, "p999": 2000.0, "max": 3000.0,
                                   "mean": 600.0, "min": 100.0}},
            "check": {"problems": problems}}


class Report(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        self.facts = {"command": "bench/run.sh", "machine": "m", "load": "l", "dataset": "d",
                      "concurrency": "c", "other_cpu_pct": 0.0, "ingest_rows_per_s": 1.2e6,
                      "ingest_note": "", "predict_note": "", "redis_note": "",
                      "rss": {"vmrss_kb": 100 * 1024, "rssfile_kb": 60 * 1024,
                              "rssanon_kb": 0, "rssshmem_kb": 0, "outside_map_kb": 40 * 1024},
                      "s4_disk": {"write_bytes": 450_000_000, "seconds": 12.0},
                      "storage_floor": {"summary": "read 900 ns/entity (10 features) vs raw "
                                        "mdb_get 800 ns = 1.12x; batched 700 vs 500 ns = 1.40x",
                                        "ratio_single": 1.12, "ratio_batched": 1.40,
                                        "result": "pass"}}
        self.runs = {
            "s0": run_json("s0", 30000), "s0_end": run_json("s0_end", 30000),
            "s1": run_json("s1", 27000), "s1_open": run_json("s1_open", 13500, mode="open"),
            "s2_10": run_json("s2_10", 13000, rows_per_call=10),
            "s2_100": run_json("s2_100", 2000, rows_per_call=100),
            "s2_100_open": run_json("s2_100_open", 1000, rows_per_call=100, mode="open"),
            "s3": run_json("s3", 20000),
            "s4": run_json("s4", 500, rows_per_call=100),
            "s5_1": run_json("s5_1", 27000), "s5_100": run_json("s5_100", 1800, 100),
        }
        # Server CPU across each run: ticks, ticks per second.
        self.srv = {"s1": "1200 100", "s2_100": "1500 100"}
        self.redis = {"redis-hmget50": (30000, "300 100 300000"),
                      "redis-hmget50-p10": (20000, "200 100 200000"),
                      "redis-hmget50-p100": (40000, "100 100 400000")}

    def tearDown(self):
        self.tmp.cleanup()

    def report(self):
        with open(os.path.join(self.d, "facts.json"), "w") as f:
            json.dump(self.facts, f)
        for name, run in self.runs.items():
            with open(os.path.join(self.d, name + ".json"), "w") as f:
                json.dump(run, f)
        for name, text in self.srv.items():
            with open(os.path.join(self.d, name + ".srv"), "w") as f:
                f.write(text + "\n")
        for name, (rps, srv) in self.redis.items():
            with open(os.path.join(self.d, name + ".csv"), "w") as f:
                f.write('"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",'
                        '"p95_latency_ms","p99_latency_ms","max_latency_ms"\n')
                f.write('"HMGET","%d","1","0.1","0.9","1.5","2.5","9"\n' % rps)
            with open(os.path.join(self.d, name + ".cpu"), "w") as f:
                f.write("1.5 0.5\n%d\n" % (rps * 10))
            with open(os.path.join(self.d, name + ".srv"), "w") as f:
                f.write(srv + "\n")
        out = subprocess.run([sys.executable, REPORT, self.d, "--json"], check=True,
                             capture_output=True, text=True).stdout
        rows = {r["key"]: r for r in json.loads(out)["rows"]}
        text = subprocess.run([sys.executable, REPORT, self.d], check=True,
                              capture_output=True, text=True).stdout
        return rows, text

    def test_ratios_pick_the_matching_redis_peer(self):
        rows, _ = self.report()
        self.assertAlmostEqual(rows["s1"]["x_redis"], 27000 / 30000)
        self.assertAlmostEqual(rows["s1"]["x_s0"], 27000 / 30000)
        self.assertAlmostEqual(rows["s2_10"]["x_redis"], 130000 / 20000)
        self.assertAlmostEqual(rows["s2_100"]["x_redis"], 200000 / 40000)
        self.assertEqual(rows["s1"]["result"], "MISS")   # 0.9x Redis
        self.assertEqual(rows["s2_100"]["result"], "pass")

    def test_server_cpu_per_call_counts_every_call_of_the_window(self):
        self.runs["s1"]["warmup_ok"] = 30000
        rows, _ = self.report()
        # 12 s of CPU over 270000 measured + 30000 warm-up calls.
        self.assertAlmostEqual(rows["s1"]["server_us"], 12.0 * 1e6 / 300000)
        self.assertIsNone(rows["s3"]["server_us"])   # no .srv file: no figure, no crash
        # Redis: its CPU over its requests (3 s over 300000).
        self.assertAlmostEqual(rows["redis_hmget"]["server_us"], 10.0)

    def test_failures_make_a_row_invalid_even_in_the_warm_up(self):
        self.runs["s1"]["failed"] = 3
        self.runs["s2_100"]["warmup_failed"] = 1
        self.runs["s2_100"]["warmup_first_error"] = "UNAVAILABLE: connection refused"
        self.runs["s4"]["check"]["problems"] = 2
        rows, text = self.report()
        self.assertEqual(rows["s1"]["result"], "INVALID")
        self.assertEqual(rows["s2_100"]["result"], "INVALID")
        self.assertEqual(rows["s4"]["result"], "INVALID")
        self.assertIn("1 in the warm-up", rows["s2_100"]["note"])
        self.assertIn("UNAVAILABLE", rows["s2_100"]["note"])
        self.assertIn("INVALID", text)

    def test_a_busy_or_drifting_machine_marks_verdicts(self):
        self.facts["other_cpu_pct"] = 25.0
        rows, text = self.report()
        self.assertEqual(rows["s1"]["result"], "MISS?")
        self.assertEqual(rows["s2_100"]["result"], "pass?")
        self.assertEqual(rows["ingest"]["result"], "pass?")
        self.assertEqual(rows["rss"]["result"], "pass")   # memory does not depend on load
        self.assertIn("BUSY", text)
        self.facts["other_cpu_pct"] = 0.0
        self.runs["s0_end"]["rps"] = 20000
        rows, text = self.report()
        self.assertEqual(rows["s2_100"]["result"], "pass?")
        self.assertIn("UNSTABLE", text)

    def test_s4_disk_and_floor_notes(self):
        rows, _ = self.report()
        # 450 MB over 12 s for (5000 measured + 0 warm-up calls) x 100 rows: 0.9 KB a row.
        self.assertIn("0.9 KB per acknowledged row (warm-up included), 38 MB/s",
                      rows["s4"]["note"])
        # S2 100x50: 15 s of CPU over 20000 calls = 750 us a call = 1500 ns per (view, entity),
        # 3x the batched floor (500 ns); the verdict stays the storage read path's.
        self.assertIn("1500 ns of CPU per (view, entity) = 3.00x", rows["floor"]["note"])
        self.assertEqual(rows["floor"]["result"], "pass")

    def test_rows_without_a_target_are_invalid_too_and_a_failed_s0_is_no_floor(self):
        self.runs["s3"]["failed"] = 1
        self.runs["s0"]["failed"] = 2
        rows, _ = self.report()
        self.assertEqual(rows["s3"]["result"], "INVALID")
        self.assertEqual(rows["s0"]["result"], "INVALID")
        self.assertIsNone(rows["s1"]["x_s0"])
        self.assertEqual(rows["s1"]["result"], "n/a")

    def test_a_missing_peer_or_device_is_said_not_substituted(self):
        del self.redis["redis-hmget50-p10"]
        self.facts["s4_disk"] = {"write_bytes": 0, "seconds": 12.0,
                                 "note": "n/a: no block device under /w (overlay)"}
        self.srv["s1"] = "-500 100"   # the server died during the run
        rows, _ = self.report()
        self.assertIsNone(rows["s2_10"]["x_redis"])
        self.assertIn("no block device", rows["s4"]["note"])
        self.assertIsNone(rows["s1"]["server_us"])

    def test_predict_rows_give_their_ratio_to_the_same_read(self):
        rows, _ = self.report()
        self.assertIn("1.00x S1 rows/s", rows["s5_1"]["note"])
        self.assertIn("0.90x S2 100x50 rows/s", rows["s5_100"]["note"])


if __name__ == "__main__":
    unittest.main()

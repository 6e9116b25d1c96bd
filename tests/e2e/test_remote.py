# tests/e2e/test_remote.py - the CLI against a running server: `fstore ingest --target` and
# `fstore gc --target`, what the Kubernetes loading Job and gc CronJob run.
"""ingest: the example data files (quoted list cells among them) sent to a running server with
WriteFeatures, checked whole first against the server's catalog (GetCatalog, or --catalog), in
requests the server's --max-write-rows allows; a bad file sends nothing; a server behind
--tokens-file takes a --token-file with the write scope. gc: the server sweeps its own rows past
their TTL (CollectGarbage, admin scope)."""
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import FSTORE, SOURCE_DIR, Server

EXAMPLES = os.path.join(SOURCE_DIR, "examples")
DATA = os.path.join(EXAMPLES, "data")


def ingest(*args):
    return subprocess.run([FSTORE, "ingest"] + list(args), capture_output=True, text=True,
                          timeout=120)


def gc(*args):
    return subprocess.run([FSTORE, "gc"] + list(args), capture_output=True, text=True,
                          timeout=120)


class IngestTarget(unittest.TestCase):
    def start(self, *args):
        s = Server(catalog=os.path.join(EXAMPLES, "catalog"), args=list(args))
        self.addCleanup(s.cleanup)
        s.start()
        return s

    def stop(self, s):
        log = s.log()
        self.assertEqual(s.stop(), 0, log[-2000:])
        self.assertIsNone(s.sanitizer_report())

    def test_the_example_data_loads_in_requests_the_server_allows(self):
        s = self.start("--max-write-rows", "3")
        rows = {}
        for name in sorted(os.listdir(DATA)):
            view = name[:-len(".csv")]
            out = ingest("--target", s.target, "--view", view, os.path.join(DATA, name))
            self.assertEqual(out.returncode, 0, out.stderr)
            with open(os.path.join(DATA, name)) as f:
                n = sum(1 for line in f) - 1
            rows[view] = n
            # Every row once (none sent twice), in requests of at most 3 rows.
            self.assertIn("%d rows into %s sent to %s in %d requests: %d written, 0 stale"
                          % (n, view, s.target, (n + 2) // 3, n), out.stdout)
        self.assertEqual(rows["driver_realtime_stats@v1"], 8)
        r = s.client.get_online_features(
            features=["driver_realtime_stats:recent_ratings", "driver_realtime_stats:last_city",
                      "driver_hourly_stats:conv_rate"],
            entities={"driver_id": [1001]})
        self.assertEqual(r["recent_ratings"], [[5.0, 5.0, 3.0]])
        self.assertEqual(r["last_city"], ["Lisbon"])
        self.assertAlmostEqual(r["conv_rate"][0], 0.456, places=6)
        self.stop(s)

    def test_a_bad_file_sends_nothing_and_names_its_rows(self):
        s = self.start()
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        bad = os.path.join(d, "bad.csv")
        with open(bad, "w") as f:
            f.write("driver_id,conv_rate\n424242,0.5\n424243,7\nx,0.5\n")
        out = ingest("--target", s.target, "--view", "driver_hourly_stats", bad)
        self.assertEqual(out.returncode, 1)
        self.assertIn("bad.csv:3: conv_rate: max: 7 > 1", out.stderr)
        self.assertIn("bad.csv:4: driver_id: want INT64, got 'x'", out.stderr)
        self.assertIn("2 of 3 rows are bad; nothing was loaded", out.stderr)
        r = s.client.get_online_features(features=["driver_hourly_stats:conv_rate"],
                                         entities={"driver_id": [424242]})
        self.assertEqual(r.statuses["conv_rate"], ["NOT_FOUND"])
        out = ingest("--target", s.target, "--view", "driver_hourly_stat", bad)
        self.assertEqual(out.returncode, 1)
        self.assertIn("(did you mean 'driver_hourly_stats'?)", out.stderr)
        # FSTORE_DATA_DIR from the environment (the image sets it) yields to --target...
        out = subprocess.run([FSTORE, "ingest", "--target", s.target, "--view",
                              "platform_stats", os.path.join(DATA, "platform_stats@v1.csv")],
                             capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, FSTORE_DATA_DIR=d))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "data.mdb")))
        # ...but exactly one destination on the command line.
        self.assertEqual(ingest("--target", s.target, "--data-dir", d, "--view", "x", bad)
                         .returncode, 2)
        self.assertEqual(ingest("--token-file", bad, "--data-dir", d, "--view", "x", bad)
                         .returncode, 2)
        self.stop(s)

    def test_a_token_with_the_write_scope_and_the_catalog_as_a_file(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        tokens = os.path.join(d, "tokens")
        with open(tokens, "w") as f:
            for name, token, scopes in (("loader", "load-123", "write"),
                                        ("reader", "read-789", "read"),
                                        ("ops", "ops-456", "admin")):
                f.write("%s %s %s\n" % (name, hashlib.sha256(token.encode()).hexdigest(), scopes))
        for name, token in (("loader", "load-123"), ("reader", "read-789"), ("ops", "ops-456"),
                            ("wrong", "nope")):
            with open(os.path.join(d, name), "w") as f:
                f.write("  %s\n" % token)  # as a Secret or an editor leaves it
        s = self.start("--tokens-file", tokens)
        csv = os.path.join(DATA, "platform_stats@v1.csv")
        catalog = os.path.join(EXAMPLES, "catalog")
        out = ingest("--target", s.target, "--view", "platform_stats", csv)
        self.assertEqual(out.returncode, 1)
        self.assertIn("GetCatalog from %s:" % s.target, out.stderr)
        out = ingest("--target", s.target, "--token-file", os.path.join(d, "wrong"),
                     "--catalog", catalog, "--view", "platform_stats", csv)
        self.assertEqual(out.returncode, 1)
        self.assertIn("WriteFeatures", out.stderr)
        self.assertNotIn("nope", out.stderr)
        # write alone cannot read the catalog from the server, so it takes it as files...
        out = ingest("--target", s.target, "--token-file", os.path.join(d, "loader"),
                     "--view", "platform_stats", csv)
        self.assertEqual(out.returncode, 1)
        self.assertIn("admin", out.stderr)
        out = ingest("--target", s.target, "--token-file", os.path.join(d, "loader"),
                     "--catalog", catalog, "--view", "platform_stats", csv)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("1 written", out.stdout)
        # ...read may not write...
        out = ingest("--target", s.target, "--token-file", os.path.join(d, "reader"),
                     "--catalog", catalog, "--view", "platform_stats", csv)
        self.assertEqual(out.returncode, 1)
        self.assertIn("write", out.stderr)
        # ...and admin does both.
        out = ingest("--target", s.target, "--token-file", os.path.join(d, "ops"),
                     "--view", "platform_stats", csv)
        self.assertEqual(out.returncode, 0, out.stderr)
        # gc on a server is admin's alone.
        out = gc("--target", s.target, "--token-file", os.path.join(d, "loader"))
        self.assertEqual(out.returncode, 1)
        self.assertIn("admin", out.stderr)
        out = gc("--target", s.target)
        self.assertEqual(out.returncode, 1)
        out = gc("--target", s.target, "--token-file", os.path.join(d, "ops"))
        self.assertEqual(out.returncode, 0, out.stderr)
        for secret in ("load-123", "read-789", "ops-456"):
            self.assertNotIn(secret, s.log())
        self.stop(s)

    def test_gc_on_a_server_deletes_its_rows_past_their_ttl_and_only_those(self):
        s = self.start()
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        rows = os.path.join(d, "rows.csv")
        now = time.time()
        with open(rows, "w") as f:
            # driver_hourly_stats keeps 7 days: two rows of 8 days ago, one of an hour ago.
            f.write("driver_id,conv_rate,event_timestamp\n")
            f.write("777001,0.5,%d\n777002,0.25,%d\n777003,0.75,%d\n"
                    % (now - 8 * 86400, now - 8 * 86400, now - 3600))
        out = ingest("--target", s.target, "--view", "driver_hourly_stats@v1", rows)
        self.assertEqual(out.returncode, 0, out.stderr)
        ids = {"driver_id": [777001, 777002, 777003]}
        r = s.client.get_online_features(features=["driver_hourly_stats@v1:conv_rate"],
                                         entities=ids)
        self.assertEqual(r.statuses["conv_rate"], ["OUTSIDE_MAX_AGE", "OUTSIDE_MAX_AGE",
                                                   "PRESENT"])
        out = gc("--target", s.target)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("gc: %s deleted 2 expired rows" % s.target, out.stdout)
        r = s.client.get_online_features(features=["driver_hourly_stats@v1:conv_rate"],
                                         entities=ids)
        self.assertEqual(r.statuses["conv_rate"], ["NOT_FOUND", "NOT_FOUND", "PRESENT"])
        self.assertEqual([e["deleted"] for e in s.events("gc")], [2])
        # Nothing left to sweep; and exactly one destination.
        self.assertIn("deleted 0 expired rows", gc("--target", s.target).stdout)
        self.assertEqual(gc("--target", s.target, "--data-dir", d).returncode, 2)
        self.assertEqual(gc().returncode, 2)
        self.stop(s)
        # A server not reached (it stopped): exit 3, which lets a caller try another node.
        out = gc("--target", s.target, "--timeout-ms", "3000")
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertIn(s.target, out.stderr)


if __name__ == "__main__":
    unittest.main()

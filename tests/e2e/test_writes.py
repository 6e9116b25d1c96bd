# tests/e2e/test_writes.py - WriteFeatures / DeleteEntities: last write wins, deletes, stale rows.
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

from harness import Server, ServerTestCase


class Writes(ServerTestCase):
    def read(self, feats, ids):
        return self.client.get_online_features(features=feats, entities={"driver_id": ids})

    def test_newer_event_wins_and_older_is_counted_stale(self):
        c = self.client
        now = time.time()
        self.assertEqual(c.write_features("driver_stats@v1", {"driver_id": [1], "trips": [5]},
                                          event_timestamps=[now]), (1, 0))
        self.assertEqual(c.write_features("driver_stats@v1", {"driver_id": [1], "trips": [4]},
                                          event_timestamps=[now - 60]), (0, 1))
        self.assertEqual(self.read(["driver_stats@v1:trips"], [1])["trips"], [5])
        self.assertEqual(c.write_features("driver_stats@v1", {"driver_id": [1], "trips": [6]},
                                          event_timestamps=[now + 1]), (1, 0))
        self.assertEqual(self.read(["driver_stats@v1:trips"], [1])["trips"], [6])

    def test_an_event_time_in_year_9999_is_refused_and_the_row_stays_writable(self):
        import grpc
        c = self.client
        self.assertRpcError(
            lambda: c.write_features("driver_stats@v1", {"driver_id": [77], "trips": [1]},
                                     event_timestamps=[253402214400.0]),
            grpc.StatusCode.INVALID_ARGUMENT, "9999-12-31", "--max-future-skew")
        self.assertEqual(c.write_features("driver_stats@v1", {"driver_id": [77], "trips": [2]}),
                         (1, 0))
        self.assertEqual(self.read(["driver_stats@v1:trips"], [77])["trips"], [2])

    def test_partial_writes_keep_other_features(self):
        c = self.client
        c.write_features("driver_stats@v1", {"driver_id": [2], "trips": [1], "conv_rate": [0.5]})
        c.write_features("driver_stats@v1", {"driver_id": [2], "trips": [2]})
        r = self.read(["driver_stats@v1:trips", "driver_stats@v1:conv_rate"], [2])
        self.assertEqual(r["trips"], [2])
        self.assertEqual(r["conv_rate"], [0.5])

    def test_delete_entities_forgets_rows(self):
        c = self.client
        c.write_features("driver_stats@v1", {"driver_id": [3, 4], "trips": [1, 2]})
        self.assertEqual(c.delete_entities("driver_stats@v1", {"driver_id": [3, 99]}), 1)
        r = self.read(["driver_stats@v1:trips"], [3, 4])
        self.assertEqual(r.statuses["trips"], ["NOT_FOUND", "PRESENT"])

    def test_last_write_wins_under_concurrent_writers(self):
        """Several client threads write the same entities with distinct event times; whatever
        the commit order, every entity ends with its newest event's value."""
        ids = list(range(100, 120))
        base = time.time() - 1000
        threads, errors = [], []

        def writer(k):
            try:
                for rnd in range(10):
                    seq = rnd * 8 + k  # unique per (thread, round); higher = newer
                    self.client.write_features(
                        "driver_stats@v1",
                        {"driver_id": ids, "trips": [seq] * len(ids)},
                        event_timestamps=[base + seq] * len(ids))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        for k in range(8):
            t = threading.Thread(target=writer, args=(k,))
            t.start()
            threads.append(t)
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        r = self.read(["driver_stats@v1:trips"], ids)
        self.assertEqual(r["trips"], [9 * 8 + 7] * len(ids))
        ts = r.event_timestamps["trips"][0]
        self.assertAlmostEqual(ts, base + 79, delta=0.001)

    def test_a_bad_row_fails_its_call_alone_among_concurrent_writes(self):
        """Writes in flight together share group commits; a call with a value its validation
        refuses fails with INVALID_ARGUMENT naming row and feature, and every other call of the
        same moment is acknowledged and readable."""
        import grpc
        ids_of = {k: list(range(1000 + 50 * k, 1050 + 50 * k)) for k in range(8)}
        bad = 3
        results = {}

        def writer(k):
            trips = list(range(50))
            if k == bad:
                trips[17] = -1  # trips has validation min 0
            try:
                results[k] = self.client.write_features(
                    "driver_stats@v1", {"driver_id": ids_of[k], "trips": trips})
            except grpc.RpcError as e:
                results[k] = e

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for k in range(8):
            if k == bad:
                e = results[k]
                self.assertIsInstance(e, grpc.RpcError)
                self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn("row 17", e.details())
                self.assertIn("'trips'", e.details())
                r = self.read(["driver_stats@v1:trips"], ids_of[k])
                self.assertEqual(r.statuses["trips"], ["NOT_FOUND"] * 50)
            else:
                self.assertEqual(results[k], (50, 0), "call %d" % k)
                self.assertEqual(self.read(["driver_stats@v1:trips"], ids_of[k])["trips"],
                                 list(range(50)))

    def test_write_then_read_on_the_entityless_view(self):
        self.client.write_features("global_stats", {"total_drivers": [42]})
        r = self.client.get_online_features(features=["global_stats:total_drivers"])
        self.assertEqual(r["total_drivers"], [42])


class DiskFull(unittest.TestCase):
    """A full disk under the data directory: writes fail RESOURCE_EXHAUSTED "disk full" naming
    it (logged once), nothing acknowledged is lost, and writes resume by themselves once space
    is freed. The disk is a small tmpfs (needs mount: skipped where the test may not mount)."""

    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="fstore-diskfull-")
        self.addCleanup(shutil.rmtree, self.mnt, True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest("cannot mount a small tmpfs here: " + p.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt])

    def test_a_full_disk_is_named_logged_once_and_recovers_by_itself(self):
        data = os.path.join(self.mnt, "data")
        os.makedirs(data)
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (2 << 20))
        server = Server(data_dir=data, args=["--sync", "full"])
        self.addCleanup(server.cleanup)
        server.start()
        c = server.client
        acked, failures = [], []
        for i in range(5000):
            ids = list(range(i * 100, i * 100 + 100))
            try:
                c.write_features("driver_stats@v1", {"driver_id": ids, "trips": [i] * 100,
                                                     "conv_rate": [0.5] * 100})
                acked.append(i)
            except grpc.RpcError as e:
                failures.append((e.code(), e.details()))
                if len(failures) >= 5:
                    break
        self.assertEqual(len(failures), 5, "the disk never filled")
        for code, details in failures:
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)
            self.assertIn("disk full", details)
            self.assertIn(data, details)
        self.assertEqual(len(server.events("disk_full")), 1, "logged once per episode")
        # Every acknowledged write is readable.
        for i in acked[-3:] + acked[:3]:
            got = c.get_online_features(features=["driver_stats@v1:trips"],
                                        entities={"driver_id": [i * 100, i * 100 + 99]})
            self.assertEqual(got["trips"], [i, i])
        # Space back: writes resume without a restart.
        os.unlink(filler)
        self.assertEqual(c.write_features("driver_stats@v1", {"driver_id": [999999],
                                                              "trips": [7]}), (1, 0))
        self.assertEqual(len(server.events("store_writes_resumed")), 1)
        self.assertEqual(server.stop(), 0, server.log()[-2000:])
        self.assertIsNone(server.sanitizer_report())


if __name__ == "__main__":
    unittest.main()

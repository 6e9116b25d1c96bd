# tests/e2e/test_faults.py - storage failures a test cannot cause with a real disk, injected at
# storage/fault.c's points (FSTORE_FAULTS_FILE; test builds only): what a client gets for each
# (status, message, over gRPC and HTTP), what the operator sees in the log and /metrics, and that
# the server keeps serving and the next call works once the failure is gone.
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

import grpc

from harness import CATALOG, FSTORE, Server

READ = dict(features=["driver_stats@v1:trips"], entities={"driver_id": [1]})


@unittest.skipUnless(os.environ.get("FSTORE_FAULT_INJECTION", "ON").upper() in ("ON", "1"),
                     "this build has no fault points (FSTORE_FAULT_INJECTION=OFF)")
class StoreFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fstore-faults-")
        # Not beside the catalog: the server would take its changes for catalog edits.
        os.mkdir(os.path.join(cls.tmp, "faults.d"))
        cls.faults = os.path.join(cls.tmp, "faults.d", "faults")
        cls.catalog = os.path.join(cls.tmp, "catalog.yaml")
        shutil.copy(CATALOG, cls.catalog)
        # Reloads only on SIGHUP: a watched edit would race the reload test's fault.
        cls.server = Server(catalog=cls.catalog, args=["--sync", "full", "--catalog-watch-ms", "0"],
                            env={"FSTORE_FAULTS_FILE": cls.faults})
        cls.server.start()
        cls.client = cls.server.client
        cls.client.write_features("driver_stats@v1", {"driver_id": [1], "trips": [10]})

    @classmethod
    def tearDownClass(cls):
        try:
            assert cls.server.stop() == 0, cls.server.log()[-3000:]
            assert cls.server.sanitizer_report() is None, cls.server.sanitizer_report()
        finally:
            cls.server.cleanup()
            shutil.rmtree(cls.tmp, True)

    def arm(self, spec):
        with open(self.faults, "w") as f:
            f.write(spec)

    def assertFired(self):
        self.assertFalse(os.path.exists(self.faults), "the armed fault never fired")

    def rpc_error(self, fn, code, *fragments):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        err = cm.exception
        self.assertEqual(err.code(), code, err.details())
        for f in fragments:
            self.assertIn(f, err.details())
        return err

    def trips(self, driver):
        return self.client.get_online_features(features=["driver_stats@v1:trips"],
                                               entities={"driver_id": [driver]})["trips"][0]

    def write(self, driver, trips):
        return self.client.write_features("driver_stats@v1",
                                          {"driver_id": [driver], "trips": [trips]})

    def http_post(self, path, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=30)
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        return resp.status, raw

    def metric(self, name):
        v = self.server.metric(name)
        self.assertIsNotNone(v, name)
        return int(v)

    def failed_write(self, spec, code, *fragments):
        """Arms spec, checks the write it fails and the one after it, and returns the error."""
        self.write(50, 1)
        failed = len(self.server.events("store_write_failed"))
        resumed = len(self.server.events("store_writes_resumed"))
        self.arm(spec)
        err = self.rpc_error(lambda: self.write(50, 2), code, *fragments)
        self.assertFired()
        self.assertEqual(self.write(50, 3), (1, 0), "the next write failed")
        self.assertEqual(self.trips(50), 3)
        self.assertEqual(len(self.server.events("store_writes_resumed")), resumed + 1)
        return err, len(self.server.events("store_write_failed")) - failed

    def test_a_failed_commit_fails_the_write_internal_and_keeps_nothing(self):
        self.write(40, 1)
        self.arm("commit EIO\n")
        self.rpc_error(lambda: self.write(40, 2), grpc.StatusCode.INTERNAL,
                       "write failed: Input/output error")
        self.assertFired()
        self.assertEqual(self.trips(40), 1, "the failed write's row was kept")
        _, logged = self.failed_write("commit EIO\n", grpc.StatusCode.INTERNAL,
                                      "write failed: Input/output error")
        self.assertEqual(logged, 1)
        ev = self.server.events("store_write_failed")[-1]
        self.assertEqual(ev["error"], "Input/output error")
        self.assertEqual(ev["data_dir"], self.server.data_dir)

    def test_a_failed_fsync_fails_the_write_internal(self):
        _, logged = self.failed_write("sync EIO\n", grpc.StatusCode.INTERNAL,
                                      "write failed: Input/output error")
        self.assertEqual(logged, 1)

    def test_a_failing_episode_is_logged_once(self):
        failed = len(self.server.events("store_write_failed"))
        self.arm("commit EIO 3\n")
        for i in range(3):
            self.rpc_error(lambda: self.write(41, i), grpc.StatusCode.INTERNAL, "write failed")
        self.assertFired()
        self.assertEqual(len(self.server.events("store_write_failed")), failed + 1)
        self.assertEqual(self.write(41, 9), (1, 0))
        self.assertEqual(self.trips(41), 9)

    def test_a_map_that_cannot_grow_is_resource_exhausted_naming_the_data_dir(self):
        err, _ = self.failed_write("put MAP_FULL\nmap_grow ENOSPC\n",
                                   grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   "the store's map is at its largest size",
                                   self.server.data_dir, "fstore gc")
        self.assertTrue(self.server.events("store_map_full"))

    def test_a_full_map_grows_and_the_write_goes_through(self):
        before = self.metric("fstore_store_map_size_bytes")
        self.arm("put MAP_FULL\n")
        self.assertEqual(self.write(42, 5), (1, 0))
        self.assertFired()
        self.assertEqual(self.trips(42), 5)
        self.assertEqual(self.metric("fstore_store_map_size_bytes"), before * 2)

    def test_a_failed_write_over_http_is_a_feast_500(self):
        self.arm("commit EIO\n")
        status, raw = self.http_post("/write-to-online-store", {
            "feature_view_name": "driver_stats@v1",
            "df": {"driver_id": [43], "trips": [1],
                   "event_timestamp": ["2026-01-01T00:00:00Z"]}})
        self.assertEqual(status, 500, raw)
        self.assertFired()
        self.assertIn("write failed: Input/output error", json.loads(json.loads(raw))["message"])
        self.assertEqual(self.write(43, 2), (1, 0))

    def test_a_full_map_over_http_is_507(self):
        self.arm("put MAP_FULL\nmap_grow ENOSPC\n")
        status, raw = self.http_post("/write-to-online-store", {
            "feature_view_name": "driver_stats@v1",
            "df": {"driver_id": [44], "trips": [1],
                   "event_timestamp": ["2026-01-01T00:00:00Z"]}})
        self.assertEqual(status, 507, raw)
        self.assertFired()
        self.assertIn("largest size", json.loads(json.loads(raw))["message"])
        self.assertEqual(self.write(44, 2), (1, 0))

    def test_a_failed_lookup_is_internal_naming_the_view_and_logged(self):
        errors = self.metric("fstore_store_read_errors_total")
        logged = len(self.server.events("store_read_failed"))
        self.arm("read CORRUPTED\n")
        self.rpc_error(lambda: self.client.get_online_features(**READ), grpc.StatusCode.INTERNAL,
                       "store read failed (feature view 'driver_stats@v1'): Input/output error")
        self.assertFired()
        self.assertEqual(self.trips(1), 10, "the next read failed")
        self.assertEqual(self.metric("fstore_store_read_errors_total"), errors + 1)
        evs = self.server.events("store_read_failed")
        self.assertEqual(len(evs), logged + 1)
        self.assertEqual(evs[-1]["view"], "driver_stats")
        self.assertEqual(evs[-1]["error"], "Input/output error")

    def test_a_failed_lookup_over_http_is_500(self):
        self.arm("read PAGE_NOTFOUND\n")
        status, raw = self.http_post("/get-online-features", {
            "features": ["driver_stats@v1:trips"], "entities": {"driver_id": [1]}})
        self.assertEqual(status, 500, raw)
        self.assertFired()
        self.assertIn("store read failed", raw.decode())
        status, raw = self.http_post("/get-online-features", {
            "features": ["driver_stats@v1:trips"], "entities": {"driver_id": [1]}})
        self.assertEqual(status, 200, raw)

    def test_no_free_reader_slot_is_unavailable_and_retryable(self):
        self.arm("read_begin READERS_FULL\n")
        self.rpc_error(lambda: self.client.get_online_features(**READ),
                       grpc.StatusCode.UNAVAILABLE, "no free LMDB reader slot", "retry")
        self.assertFired()
        self.assertEqual(self.trips(1), 10)
        self.arm("read_begin READERS_FULL\n")
        status, raw = self.http_post("/get-online-features", {
            "features": ["driver_stats@v1:trips"], "entities": {"driver_id": [1]}})
        self.assertEqual(status, 503, raw)
        self.assertFired()
        self.assertIn("no free LMDB reader slot", raw.decode())

    def test_a_reload_whose_commit_fails_keeps_the_old_catalog_serving(self):
        with open(self.catalog) as f:
            text = f.read()
        with open(self.catalog, "w") as f:
            f.write(text.replace("feature_services:", """  - name: added_later
    version: 1
    entities: [driver]
    ttl: 1h
    features:
      - {name: x, dtype: INT64}
feature_services:""", 1))
        def restore():
            with open(self.catalog, "w") as f:
                f.write(text)
        self.addCleanup(restore)
        rejected = len(self.server.events("catalog_reload_rejected"))
        reloaded = len(self.server.events("catalog_reloaded"))
        self.arm("commit EIO\n")
        self.server.send(signal.SIGHUP)
        evs = self.server.wait_event("catalog_reload_rejected", rejected + 1)
        self.assertFired()
        self.assertEqual(evs[-1]["error"], "Input/output error")
        self.rpc_error(lambda: self.client.write_features("added_later", {"driver_id": [1],
                                                                          "x": [1]}),
                       grpc.StatusCode.NOT_FOUND, "added_later")
        self.assertEqual(self.trips(1), 10, "the old catalog stopped serving")
        self.server.send(signal.SIGHUP)
        self.server.wait_event("catalog_reloaded", reloaded + 1)
        self.assertEqual(self.client.write_features("added_later", {"driver_id": [1], "x": [7]}),
                         (1, 0))


@unittest.skipUnless(os.environ.get("FSTORE_FAULT_INJECTION", "ON").upper() in ("ON", "1"),
                     "this build has no fault points (FSTORE_FAULT_INJECTION=OFF)")
class StartFaults(unittest.TestCase):
    def test_a_store_that_cannot_commit_at_start_fails_serve_with_the_reason(self):
        tmp = tempfile.mkdtemp(prefix="fstore-faults-")
        self.addCleanup(shutil.rmtree, tmp, True)
        faults = os.path.join(tmp, "faults")
        with open(faults, "w") as f:
            f.write("commit EIO\n")
        env = dict(os.environ, FSTORE_FAULTS_FILE=faults)
        p = subprocess.run([FSTORE, "serve", "--catalog", CATALOG, "--data-dir",
                            os.path.join(tmp, "data"), "--listen", "127.0.0.1:0",
                            "--http-listen", ""],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        out = p.stdout + p.stderr
        self.assertIn("store_open_failed", out)
        self.assertIn("Input/output error", out)
        self.assertFalse(os.path.exists(faults))


if __name__ == "__main__":
    unittest.main()

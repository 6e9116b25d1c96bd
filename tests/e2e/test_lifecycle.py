# tests/e2e/test_lifecycle.py - SIGHUP reload under load, drain on SIGTERM, restart, busy port.
import datetime
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import grpc

from harness import CATALOG, FSTORE, Server, SANITIZER_RE, free_port
from grpc_health.v1 import health_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from test_predict import predict_request, render_catalog, write_drivers
from upstream_model_server import UpstreamModelServer, make_tensor, tensor_rows

EXTRA_VIEW = """
  - name: added_later
    version: 1
    entities: [driver]
    ttl: 0
    features:
      - {name: bonus, dtype: INT64}
"""


def catalog_with(tmpdir, extra="", replace=None):
    with open(CATALOG) as f:
        text = f.read()
    text = text.replace("feature_services:", extra.strip("\n") + "\nfeature_services:", 1) \
        if extra else text
    if replace:
        text = text.replace(*replace)
    path = os.path.join(tmpdir, "catalog.yaml")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)  # atomic: a reload never sees half a file
    return path


def log_seconds(ev):
    """A log line's time ("2026-11-21T13:07:18.777Z") as seconds since the epoch."""
    return datetime.datetime.strptime(ev["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Load:
    """Client threads reading without pause; every failure is recorded."""

    def __init__(self, target, threads=3):
        from fstore_client import FeatureStoreClient
        self.client = FeatureStoreClient(target, timeout=30)
        self.stop_flag = threading.Event()
        self.ok = 0
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]

    def run(self):
        while not self.stop_flag.is_set():
            try:
                r = self.client.get_online_features(
                    features=["driver_stats@v1:trips", "driver_stats@v2:conv_rate"],
                    entities={"driver_id": [1, 2, 3]}, full_feature_names=True)
                assert r["driver_stats@v1__trips"] == [11, 22, 33], r
                with self.lock:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - collected and asserted on
                with self.lock:
                    self.failures.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def wait_more(self, n, timeout=60):
        """Waits for n more successful reads than now (or a failure)."""
        with self.lock:
            want = self.ok + n
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.ok >= want or self.failures:
                    return
            time.sleep(0.01)
        raise AssertionError("the load made no progress in %ds" % timeout)

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(60)
        self.client.close()


class Lifecycle(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fstore-e2e-life-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start(self, **kw):
        s = Server(**kw)
        self.addCleanup(s.cleanup)
        return s.start()

    def assertRpcStatus(self, fn, code):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        self.assertEqual(cm.exception.code(), code, cm.exception.details())

    def assertCleanExit(self, server, rc):
        report = server.sanitizer_report()
        self.assertIsNone(report, report)
        self.assertEqual(rc, 0, server.log())

    def seed(self, client):
        client.write_features("driver_stats@v1", {"driver_id": [1, 2, 3], "trips": [11, 22, 33]})

    def test_sighup_reload_under_load_applies_good_and_rejects_bad_catalogs(self):
        path = catalog_with(self.tmp)
        s = self.start(catalog=path)
        self.seed(s.client)
        with Load(s.target) as load:
            load.wait_more(3)
            # A compatible change: a new view appears without a failed request.
            catalog_with(self.tmp, extra=EXTRA_VIEW)
            s.send(signal.SIGHUP)
            s.wait_event("catalog_reloaded", 1)
            s.client.write_features("added_later", {"driver_id": [1], "bonus": [5]})
            r = s.client.get_online_features(features=["added_later:bonus"],
                                             entities={"driver_id": [1]})
            self.assertEqual(r["bonus"], [5])
            # An invalid catalog: rejected with its errors, the old one keeps serving.
            with open(path, "w") as f:
                f.write("project: e2e\nfeature_views: [{name: broken, version: 0}]\n")
            s.send(signal.SIGHUP)
            ev = s.wait_event("catalog_reload_rejected", 1)[0]
            self.assertTrue(ev.get("errors"), ev)
            # A breaking change (a dtype changed in place): refused too.
            catalog_with(self.tmp, extra=EXTRA_VIEW,
                         replace=("{name: conv_rate, dtype: FLOAT}", "{name: conv_rate, dtype: DOUBLE}"))
            s.send(signal.SIGHUP)
            ev = s.wait_event("catalog_reload_rejected", 2)[1]
            self.assertIn("breaking", ev, ev)
            load.wait_more(3 * len(load.threads))
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok, 0)
        r = s.client.get_online_features(features=["added_later:bonus"],
                                         entities={"driver_id": [1]})
        self.assertEqual(r["bonus"], [5])
        self.assertEqual(s.client.health(), "SERVING")
        self.assertCleanExit(s, s.stop())

    # Heavy reads queued behind the one worker when SIGTERM comes: enough that some are still in
    # flight once the control thread (which polls every 10-100 ms) has seen the signal, even on
    # a loaded machine (20 once all finished first, with fuzzers running beside the suite).
    HEAVY_READS = 30

    def sigterm_during_heavy_reads(self, extra_args, n_reads=HEAVY_READS):
        """Starts one worker, puts n_reads heavy reads in flight, sends SIGTERM once the first is
        answered; returns (server, ok count, refused status codes, exit code)."""
        # A wide view makes each read heavy enough (1000 rows x 300 features) that calls are
        # still running when SIGTERM lands; one worker queues the rest behind them.
        wide = os.path.join(self.tmp, "wide.yaml")
        with open(wide, "w") as f:
            f.write("project: wide\n"
                    "entities: [{name: driver, join_keys: [{name: driver_id, type: INT64}]}]\n"
                    "feature_views:\n  - name: wide\n    version: 1\n    entities: [driver]\n"
                    "    features:\n")
            for i in range(300):
                f.write("      - {name: f%d, dtype: INT64}\n" % i)
        s = self.start(catalog=wide, args=["--workers", "1", "--log-requests",
                                           "--shutdown-grace-ms", "60000"] + extra_args)
        ids = list(range(1000))
        s.client.write_features("wide", {"driver_id": ids[:500], "f299": ids[:500]})
        # The watch has a connection of its own: on the readers' connection a reset at close
        # (see the no-delay test) would take its last messages too.
        # (Channels to one target share a connection unless given a local subchannel pool.)
        from fstore_client import FeatureStoreClient
        own = grpc.insecure_channel(s.target, options=[("grpc.use_local_subchannel_pool", 1)])
        watcher = FeatureStoreClient(s.target, timeout=60, channel=own)
        self.addCleanup(watcher.close)
        watch = watcher.health_stub.Watch(health_pb2.HealthCheckRequest(), timeout=60)
        self.assertEqual(next(watch).status, health_pb2.HealthCheckResponse.SERVING)
        big = s.client.online_request(features=["wide:f%d" % i for i in range(300)],
                                      entities={"driver_id": ids})
        futures = [s.client.serving.GetOnlineFeatures.future(big, timeout=120)
                   for _ in range(n_reads)]
        # SIGTERM as soon as the server has answered its first read (its request log, not the
        # client, which may notice late): the one worker is then busy with the rest, however
        # fast this machine is (a fixed sleep, and later the client's first completion, let
        # every call finish before the signal was seen).
        def answered():
            return [c for c in s.events("call") if c["method"].endswith("/GetOnlineFeatures")]
        deadline = time.monotonic() + 60
        while not answered() and time.monotonic() < deadline:
            time.sleep(0.002)
        s.send(signal.SIGTERM)
        ok, refused = 0, []
        for f in futures:
            try:
                resp = f.result()
                self.assertEqual(len(resp.results), 301)
                self.assertEqual(resp.results[300].values[499].int64_val, 499)
                ok += 1
            except grpc.RpcError as e:
                refused.append((e.code(), e.details()))
        # The watch sees NOT_SERVING, then its stream ends cleanly.
        statuses = [m.status for m in watch]
        self.assertEqual(statuses[-1], health_pb2.HealthCheckResponse.NOT_SERVING)
        self.assertEqual(watch.code(), grpc.StatusCode.OK)
        rc = s.proc.wait(90)
        self.assertCleanExit(s, rc)
        # Every call a worker took is answered, and answered OK; every answer the client got
        # was one of those.
        reads = [c for c in s.events("call") if c["method"].endswith("/GetOnlineFeatures")]
        self.assertTrue(all(c["code"] == 0 for c in reads), reads)
        self.assertLessEqual(ok, len(reads), refused)
        self.assertEqual(ok + len(refused), n_reads)
        self.assertFalse(s.events("cancelling_calls"))
        return s, ok, refused, reads

    def held_call_at_sigterm(self, extra_args):
        """A server whose one Predict passthrough is held by the stand-in model server (the
        test decides when it is answered) when SIGTERM comes: a call provably in flight, where
        heavy reads are only probably still running (all 80 once finished before the signal
        landed). Returns (server, upstream, the call's future)."""
        up = UpstreamModelServer().start()
        self.addCleanup(up.stop)
        self.addCleanup(up.release)  # a failed assertion must not leave the call held
        cat_dir, catalog = render_catalog(up.port, free_port())
        self.addCleanup(shutil.rmtree, cat_dir, True)
        s = self.start(catalog=catalog, args=["--log-requests"] + extra_args)
        write_drivers(s.client)
        channel = grpc.insecure_channel(s.target)
        self.addCleanup(channel.close)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        req = predict_request("scorer_held", {"driver_id": make_tensor("DT_INT64", [1])})
        future = stub.Predict.future(req, timeout=90)
        self.assertTrue(up.wait_event("held", timeout=30), "the passthrough never arrived")
        s.send(signal.SIGTERM)
        return s, up, future

    def test_sigterm_answers_the_call_in_flight_then_exits_zero(self):
        s, up, future = self.held_call_at_sigterm(["--shutdown-grace-ms", "60000"])
        s.wait_event("draining")
        # Draining, the listener closed, and the held call still open: the server waits for it.
        self.assertFalse(future.done())
        self.assertIsNone(s.proc.poll())
        up.release()
        resp = future.result()
        self.assertEqual(tensor_rows(resp.outputs["score"]), [1 * 0.5 + 2 * 0.75 + 0.5 * 10])
        self.assertCleanExit(s, s.proc.wait(60))
        calls = [c for c in s.events("call") if c["method"].endswith("/Predict")]
        self.assertEqual([c["code"] for c in calls], [0])
        self.assertGreater(calls[0]["time"], s.events("draining")[0]["time"])
        self.assertFalse(s.events("cancelling_calls"))

    def test_a_call_past_the_shutdown_grace_is_cancelled_and_the_exit_is_clean(self):
        s, up, future = self.held_call_at_sigterm(["--shutdown-grace-ms", "1500"])
        ev = s.wait_event("cancelling_calls")[0]
        self.assertEqual(ev["reason"], "shutdown grace period over")
        self.assertGreaterEqual(log_seconds(ev) - log_seconds(s.events("draining")[0]), 1.4)
        with self.assertRaises(grpc.RpcError) as cm:
            future.result()
        # gRPC's cancel of every call is UNAVAILABLE "Cancelling all calls": a client retries.
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE, cm.exception.details())
        self.assertIn("Cancelling all calls", cm.exception.details())
        # The cancel reached the model server: the passthrough let its upstream call go.
        self.assertTrue(up.wait_event("cancelled", timeout=30))
        self.assertCleanExit(s, s.proc.wait(60))

    def test_a_call_held_through_the_drain_delay_is_answered_before_draining(self):
        s, up, future = self.held_call_at_sigterm(["--drain-delay-ms", "60000"])
        delay = s.wait_event("drain_delay")[0]
        self.assertFalse(future.done())
        up.release()
        self.assertEqual(tensor_rows(future.result().outputs["score"]), [7.0])
        # Answered inside the delay: nothing has drained yet, and a second SIGTERM ends it.
        self.assertFalse(s.events("draining"))
        s.send(signal.SIGTERM)
        self.assertCleanExit(s, s.proc.wait(60))
        call = [c for c in s.events("call") if c["method"].endswith("/Predict")][0]
        self.assertEqual(call["code"], 0)
        self.assertLess(call["time"], s.events("draining")[0]["time"])
        self.assertGreater(call["time"], delay["time"])

    def test_sigterm_during_heavy_reads_answers_or_refuses_each_and_exits_zero(self):
        # That a call in flight at the signal is answered is the held call's test above; here,
        # with many reads queued behind one worker, each is answered OK or refused cleanly.
        s, ok, refused, reads = self.sigterm_during_heavy_reads([], n_reads=80)
        self.assertGreater(ok, 0)
        # With no drain delay the listener closes at once. A call that never reached a worker
        # is refused: UNAVAILABLE if the server had not read its headers (the GOAWAY names the
        # last stream taken), CANCELLED if gRPC had them but not the whole request yet. And a
        # call whose 3.6 MB answer was still on its way when gRPC closed the connection after the
        # last stream can end UNAVAILABLE ("Connection reset by peer"): the client's window
        # updates arrive after gRPC's last read, so the close resets the connection and the
        # client's kernel drops what it had not read yet. The drain delay is what avoids both.
        for code, details in refused:
            self.assertIn(code, (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), details)
        self.assertFalse(s.events("drain_delay"))

    def test_drain_delay_keeps_serving_while_health_says_not_serving(self):
        # The delay far outlasts the 29 queued reads (about 1.5-3 s under ASan): every answer is
        # out before the listener closes, and not one call is refused.
        s, ok, refused, reads = self.sigterm_during_heavy_reads(["--drain-delay-ms", "6000"])
        self.assertEqual(refused, [])
        self.assertEqual(ok, self.HEAVY_READS)
        delay = s.events("drain_delay")
        self.assertEqual(delay[0]["delay_ms"], 6000)
        self.assertGreaterEqual(log_seconds(s.events("draining")[0]) - log_seconds(delay[0]), 5.9)

    def test_drain_delay_accepts_new_calls_until_it_ends(self):
        # From the environment, as the StatefulSet sets it.
        # Ten minutes: the test ends long before, only through the second SIGTERM.
        s = self.start(env={"FSTORE_DRAIN_DELAY_MS": "600000"})
        self.seed(s.client)

        def http_status(path):
            try:
                with urllib.request.urlopen("http://%s%s" % (s.http, path), timeout=10) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code
        self.assertEqual((http_status("/ping"), http_status("/health")), (200, 200))
        s.send(signal.SIGTERM)
        s.wait_event("drain_delay", 1)
        # Health says go away at once (SageMaker's /ping and Feast's /health too: 503); reads
        # are still answered meanwhile.
        self.assertEqual(s.client.health(), "NOT_SERVING")
        self.assertEqual((http_status("/ping"), http_status("/health")), (503, 503))
        r = s.client.get_online_features(features=["driver_stats@v1:trips"],
                                         entities={"driver_id": [1]})
        self.assertEqual(r["trips"], [11])
        self.assertIsNone(s.proc.poll())
        # A second SIGTERM cuts the delay short (an exit at all, within the wait, shows it).
        s.send(signal.SIGTERM)
        rc = s.proc.wait(60)
        self.assertCleanExit(s, rc)
        self.assertTrue(s.events("draining"))

    def test_restart_keeps_data_and_serves_the_applied_catalog(self):
        data = os.path.join(self.tmp, "data")
        s = self.start(data_dir=data)
        s.client.write_features("driver_stats@v1", {"driver_id": [7], "trips": [77]})
        self.assertCleanExit(s, s.stop())
        # No --catalog: the one applied to the data directory is served.
        s2 = self.start(data_dir=data, catalog=None)
        r = s2.client.get_online_features(features=["driver_stats@v1:trips"],
                                          entities={"driver_id": [7]})
        self.assertEqual(r["trips"], [77])
        self.assertCleanExit(s2, s2.stop(signal.SIGINT))

    def test_sigterm_while_starting_exits_zero_without_serving(self):
        # The catalog is a FIFO: `fstore serve` blocks reading it, half built (signals blocked,
        # ports bound, the store opening), until the test writes it, and the SIGTERM is sent in
        # between. The stop must be kept for the server, not lost or handled on a half-built one,
        # and a server that never reported SERVING must not wait out its (ten minute) drain
        # delay. No timing: the server cannot get to SERVING before the signal.
        fifo = os.path.join(self.tmp, "catalog.yaml")
        os.mkfifo(fifo)
        s = Server(catalog=fifo, env={"FSTORE_DRAIN_DELAY_MS": "600000"})
        self.addCleanup(s.cleanup)
        proc = s.spawn()
        with open(CATALOG) as f:
            text = f.read()
        with open(fifo, "w") as w:  # returns once fstore opened the catalog
            with open("/proc/%d/status" % proc.pid) as f:
                blocked = [ln for ln in f if ln.startswith("SigBlk:")]
            self.assertTrue(int(blocked[0].split()[1], 16) & (1 << (signal.SIGTERM - 1)),
                            "fstore read its catalog before blocking SIGTERM")
            proc.send_signal(signal.SIGTERM)
            w.write(text)
        rc = proc.wait(90)
        self.assertCleanExit(s, rc)
        self.assertTrue(s.events("stopped"), s.log())
        self.assertFalse(s.events("serving"), s.log())
        self.assertFalse(s.events("drain_delay"), s.log())

    def test_a_pattern_with_a_backreference_is_refused_where_it_is_written(self):
        # Attack 6: a backreference makes a regex match take exponential time (one 1000-byte
        # write pinned a worker for 40 s). The real binary refuses the catalog at start, and at
        # a reload, naming the file, line and column; the running server keeps its catalog.
        bad = os.path.join(self.tmp, "backref.yaml")
        with open(bad, "w") as f:
            f.write("project: br\n"
                    "entities: [{name: user, join_keys: [{name: user_id, type: STRING}]}]\n"
                    "feature_views:\n"
                    "  - name: v\n"
                    "    version: 1\n"
                    "    entities: [user]\n"
                    "    features:\n"
                    "      - name: s\n"
                    "        dtype: STRING\n"
                    "        validation: {pattern: '(a*)*\\1b'}\n")
        p = subprocess.run([FSTORE, "serve", "--catalog", bad, "--data-dir",
                            os.path.join(self.tmp, "br"), "--listen", "127.0.0.1:0",
                            "--http-listen", ""], capture_output=True, text=True, timeout=90)
        self.assertNotEqual(p.returncode, 0)
        rejected = [json.loads(l) for l in p.stderr.splitlines() if '"catalog_rejected"' in l]
        self.assertEqual(len(rejected), 1, p.stderr)
        err = rejected[0]["errors"][0]
        self.assertEqual((err["line"], err["column"]), (10, 31))
        self.assertIn("backreference", err["message"])
        # A reload to it is refused as well, and the server goes on with its catalog.
        path = catalog_with(self.tmp)
        s = self.start(catalog=path)
        shutil.copy(bad, path)
        s.send(signal.SIGHUP)
        ev = s.wait_event("catalog_reload_rejected", 1)[0]
        self.assertIn("backreference", json.dumps(ev))
        self.assertEqual(s.client.health(), "SERVING")
        self.assertCleanExit(s, s.stop())

    def test_a_busy_port_fails_loudly(self):
        s = self.start()
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
        p = subprocess.run([FSTORE, "serve", "--listen", s.target, "--catalog", CATALOG,
                            "--data-dir", os.path.join(self.tmp, "other")],
                           capture_output=True, text=True, timeout=90, env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(s.target, p.stderr)
        self.assertIsNone(SANITIZER_RE.search(p.stderr), p.stderr)
        # Found before the data directory is touched: no catalog applied, no data file.
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "other", "data.mdb")), p.stderr)
        self.assertNotIn("catalog_applied", p.stderr)
        # The HTTP port likewise.
        p = subprocess.run([FSTORE, "serve", "--listen", "127.0.0.1:0", "--http-listen", s.http,
                            "--catalog", CATALOG, "--data-dir", os.path.join(self.tmp, "third")],
                           capture_output=True, text=True, timeout=90, env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(s.http, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "third", "data.mdb")), p.stderr)
        # An address not on this machine (TEST-NET-1: bind only, nothing is sent) and a port
        # that is no port fail the same way, before the data directory is touched.
        for listen, http, why in (
                ("192.0.2.1:%d" % free_port(), "", "Cannot assign requested address"),
                ("127.0.0.1:99999", "", "from 0 to 65535"),
                ("127.0.0.1:0", "localhost:%d" % free_port(), "want a numeric address"),
                ("127.0.0.1:0", ":%d" % free_port(), "want host:port"),
                ("127.0.0.1:0", "unix:/tmp/fstore-e2e.sock", "takes no unix: address")):
            d = os.path.join(self.tmp, "fourth")
            p = subprocess.run([FSTORE, "serve", "--listen", listen, "--http-listen", http,
                                "--catalog", CATALOG, "--data-dir", d],
                               capture_output=True, text=True, timeout=90, env=env)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(why, p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "data.mdb")), p.stderr)
        self.assertEqual(s.client.health(), "SERVING")
        self.assertCleanExit(s, s.stop())

    def test_a_configmap_style_swap_reloads_the_catalog_once_after_the_swap(self):
        # A mounted ConfigMap: files are symlinks into ..data, which the kubelet points at a new
        # hidden directory by renaming a temporary symlink onto it.
        root = os.path.join(self.tmp, "configmap")
        os.makedirs(os.path.join(root, "..v1"))
        shutil.copy(CATALOG, os.path.join(root, "..v1", "catalog.yaml"))
        os.symlink("..v1", os.path.join(root, "..data"))
        os.symlink("..data/catalog.yaml", os.path.join(root, "catalog.yaml"))
        s = self.start(catalog=root, args=["--catalog-watch-ms", "300"])
        self.assertRpcStatus(lambda: s.client.write_features("watched_view", {"driver_id": [1],
                                                                              "x": [1]}),
                             grpc.StatusCode.NOT_FOUND)
        with open(CATALOG) as f:
            text = f.read()
        marker = "feature_views:\n"
        os.makedirs(os.path.join(root, "..v2"))
        with open(os.path.join(root, "..v2", "catalog.yaml"), "w") as f:
            f.write(text.replace(marker, marker + "  - name: watched_view\n    version: 1\n"
                                 "    entities: [driver]\n    ttl: 0\n"
                                 "    features: [{name: x, dtype: INT64}]\n", 1))
        os.symlink("..v2", os.path.join(root, "..data_tmp"))
        os.rename(os.path.join(root, "..data_tmp"), os.path.join(root, "..data"))
        s.wait_event("catalog_reloaded", timeout=30)
        self.assertEqual(s.client.write_features("watched_view", {"driver_id": [1], "x": [7]}),
                         (1, 0))
        time.sleep(1)  # any further reload the swap would cause has had time to happen
        self.assertEqual(len(s.events("catalog_reloaded")), 1, "one reload for one swap")
        self.assertCleanExit(s, s.stop())

    def test_one_serve_per_data_directory(self):
        s = self.start()
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
        p = subprocess.run([FSTORE, "serve", "--listen", "127.0.0.1:0", "--http-listen", "",
                            "--catalog", CATALOG, "--data-dir", s.data_dir],
                           capture_output=True, text=True, timeout=90, env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("already served by another fstore serve (pid %d)" % s.proc.pid, p.stderr)
        self.assertNotIn("catalog_applied", p.stderr)
        self.assertEqual(s.client.health(), "SERVING")
        self.assertCleanExit(s, s.stop())
        # Once the first is gone, the directory is free again.
        again = self.start(data_dir=s.data_dir)
        self.assertEqual(again.client.health(), "SERVING")
        self.assertCleanExit(again, again.stop())

    def test_no_store_and_no_catalog_is_said_before_anything_is_made(self):
        d = os.path.join(self.tmp, "empty")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
        p = subprocess.run([FSTORE, "serve", "--listen", "127.0.0.1:0", "--http-listen", "",
                            "--data-dir", d], capture_output=True, text=True, timeout=90,
                           env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("holds no store and no catalog was given: pass --catalog", p.stderr)
        self.assertFalse(os.path.exists(d), "nothing made in the data directory")

    def test_read_workers_take_the_cpu_slice_asked_for(self):
        s = self.start(args=["--workers", "2", "--sched-slice-us", "200"])
        self.assertEqual(s.client.health(), "SERVING")

        def slices():
            out = []
            for tid in os.listdir("/proc/%d/task" % s.proc.pid):
                try:
                    with open("/proc/%d/task/%s/sched" % (s.proc.pid, tid)) as f:
                        out += [int(l.split(":")[1]) for l in f if l.startswith("se.slice")]
                except OSError:
                    pass
            return out
        # Each worker sets its slice as it starts; on a loaded machine the second one may not
        # have run yet when the first answers the health check.
        deadline = time.monotonic() + 10
        while slices().count(200000) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        slices = slices()
        if s.events("sched_slice_unsupported"):
            # Kernels before 6.12 refuse custom slices: said once, and serving goes on.
            self.assertNotIn(200000, slices)
        else:
            self.assertGreaterEqual(slices.count(200000), 2, slices)
        self.assertCleanExit(s, s.stop())

    def test_bad_flags_and_catalogs_fail_before_serving(self):
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
        p = subprocess.run([FSTORE, "serve", "--data-dir", self.tmp, "--workers", "x"],
                           capture_output=True, text=True, timeout=90, env=env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--workers", p.stderr)
        p = subprocess.run([FSTORE, "serve", "--data-dir", self.tmp, "--sched-slice-us", "50"],
                           capture_output=True, text=True, timeout=90, env=env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--sched-slice-us wants 0 or 100 to 100000", p.stderr)
        bad = os.path.join(self.tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write("project: x\nfeature_views: [{name: v, version: 1, features: "
                    "[{name: a, dtype: NOPE}]}]\n")
        p = subprocess.run([FSTORE, "serve", "--data-dir", os.path.join(self.tmp, "d"),
                            "--catalog", bad, "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=90, env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("catalog_rejected", p.stderr)
        self.assertIsNone(SANITIZER_RE.search(p.stderr), p.stderr)


if __name__ == "__main__":
    unittest.main()

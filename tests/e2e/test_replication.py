# tests/e2e/test_replication.py - N fstore nodes, one NATS JetStream log, real processes.
"""Replication end to end: nats-server (one, or a cluster of three with an R3 stream) and fstore
nodes started here on 127.0.0.1; Python gRPC clients; `fstore digest` to compare replicas.

What each class shows:
  ClusterTest     three nats-servers, R3 stream, three nodes (a fourth joins): writes on one
                  node are read on the others, read-your-writes with fstore-min-seq, concurrent
                  writers converge, SIGKILL of a node or of a nats-server loses no acknowledged
                  write and applies none twice, every nats-server restarted, bootstrap from a
                  peer while writes go on, catalog changes and ingest through the log
  TlsNatsTest     a TLS-only nats-server requiring client certificates: nodes with theirs
                  replicate; without it, or trusting another CA, a node is refused, saying why;
                  rotated certificate files are taken without a restart under write load
  SingleNatsTest  one nats-server: the log down (writes UNAVAILABLE naming the stream, reads
                  go on, status says so), retried request ids, retention past a stopped node
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

from harness import CATALOG, FSTORE, SANITIZER_RE, SOURCE_DIR, Server, free_port
from fstore_client import FeatureStoreClient, to_value
from fstore.v1 import fstore_pb2, fstore_pb2_grpc

NATS_SERVER = shutil.which("nats-server") or "/usr/bin/nats-server"


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class NatsServer:
    """One nats-server -js process; with `routes`, a member of a cluster."""

    def __init__(self, name, store_dir, port=None, cluster_port=None, routes=None, extra=()):
        self.name = name
        self.extra = list(extra)
        self.store_dir = store_dir
        self.port = port or free_port()
        self.cluster_port = cluster_port
        self.routes = routes
        self.proc = None
        self.log_path = os.path.join(store_dir, name + ".log")

    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self, wait=True):
        cmd = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port),
               "-sd", os.path.join(self.store_dir, self.name), "--server_name", self.name]
        if self.routes:
            cmd += ["--cluster_name", "fsc", "--cluster",
                    "nats://127.0.0.1:%d" % self.cluster_port, "--routes", self.routes]
        cmd += self.extra
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait:
            self.wait()

    def wait(self):
        deadline = time.monotonic() + 20
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("nats-server %s did not start" % self.name)
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.proc = None


class NatsCluster:
    def __init__(self, n):
        self.dir = tempfile.mkdtemp(prefix="fstore-nats-")
        ports = [free_port() for _ in range(n)]
        cports = [free_port() for _ in range(n)]
        routes = ",".join("nats://127.0.0.1:%d" % p for p in cports) if n > 1 else None
        self.servers = [NatsServer("n%d" % (i + 1), self.dir, ports[i], cports[i], routes)
                        for i in range(n)]

    def urls(self):
        return ",".join(s.url() for s in self.servers)

    def start(self):
        for s in self.servers:
            s.start(wait=False)
        for s in self.servers:
            s.wait()

    def stop(self):
        for s in self.servers:
            s.stop()

    def cleanup(self):
        for s in self.servers:
            s.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def js_request(port, subject, payload=b"", timeout=3.0):
    """One JetStream API request in NATS's text protocol to the server on port; its reply as
    JSON (socket.timeout when none comes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        f = s.makefile("rb")
        f.readline()  # INFO
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.t 1\r\n'
                  b"PUB %s _INBOX.t %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))
        while True:
            line = f.readline()
            if not line:
                raise socket.timeout("connection closed")
            if line.startswith(b"PING"):
                s.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG"):
                n = int(line.split()[-1])
                return json.loads(f.read(n + 2)[:n])


def status(node):
    resp = node.client.fstore.GetReplicationStatus(fstore_pb2.GetReplicationStatusRequest(),
                                                   timeout=10)
    return resp


def digest(node):
    """`fstore digest --json` of a node's data directory (read-only, while it serves)."""
    out = subprocess.run([FSTORE, "digest", "--data-dir", node.data_dir, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    return [(v["view"], v["version"], v["digest"], v["rows"], v["tombstones"])
            for v in doc["views"]], doc["position"]


def write(node, ids, value, request_id=None, metadata=(), view="driver_stats@v1", timeout=30):
    """WriteFeatures of trips=value for driver ids; returns the response."""
    req = fstore_pb2.WriteFeaturesRequest(feature_view=view)
    req.columns["driver_id"].val.extend(to_value(i, "INT64") for i in ids)
    req.columns["trips"].val.extend(to_value(value, "INT64") for _ in ids)
    if request_id:
        req.request_id = request_id
    return node.client.fstore.WriteFeatures(req, timeout=timeout, metadata=list(metadata))


def write_when_back(node, ids, value, within=60):
    """write() retried until the node's log takes it again (a restarted nats-server)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return write(node, ids, value, timeout=10)
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise AssertionError("no write within %d s:\n%s" % (within, node.log()[-3000:]))
            time.sleep(0.5)


def read_trips(node, ids, metadata=(), timeout=30):
    req = FeatureStoreClient.online_request(features=["driver_stats@v1:trips"],
                                            entities={"driver_id": list(ids)})
    resp = node.client.serving.GetOnlineFeatures(req, timeout=timeout, metadata=list(metadata))
    col = resp.results[1]
    return [v.int64_val if s == 1 else None for v, s in zip(col.values, col.statuses)]


class ReplicationCase(unittest.TestCase):
    nodes = ()

    def node(self, urls, data_dir=None, extra=(), catalog=CATALOG, start=True):
        n = Server(catalog=catalog, data_dir=data_dir,
                   args=["--replication", urls, "--max-read-wait-ms", "3000"] + list(extra))
        self.addCleanup(n.cleanup)
        if start:
            n.start()
        return n

    def wait_converged(self, nodes, timeout=120):
        """Every node applied the stream's last sequence; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            sts = [status(n) for n in nodes]
            last = max(s.stream_sequence for s in sts)
            if all(s.applied_sequence == last for s in sts):
                return last
            if time.monotonic() > deadline:
                raise AssertionError("no convergence: %s" % [
                    (s.applied_sequence, s.stream_sequence, s.state, s.last_error) for s in sts])
            time.sleep(0.2)

    def assert_same_digests(self, nodes):
        ds = [digest(n) for n in nodes]
        for d in ds[1:]:
            self.assertEqual(d, ds[0])
        return ds[0]

    def assert_clean_stop(self, node):
        rc = node.stop()
        m = SANITIZER_RE.search(node.log())
        self.assertIsNone(m, node.log()[-4000:])
        self.assertEqual(rc, 0, node.log()[-4000:])


class ClusterTest(ReplicationCase):
    """Three nats-servers, an R3 stream, three nodes; the tests run in order on one cluster."""

    @classmethod
    def setUpClass(cls):
        cls.nats = NatsCluster(3)
        cls.addClassCleanup(cls.nats.cleanup)
        cls.nats.start()
        cls.urls = cls.nats.urls()
        cls.servers = []
        for i in range(3):
            s = Server(catalog=CATALOG, args=["--replication", cls.urls, "--stream-replicas",
                                              "3", "--max-read-wait-ms", "3000"])
            cls.addClassCleanup(s.cleanup)
            cls.servers.append(s)
        # The first publishes its catalog; the others find it in the log.
        cls.servers[0].start()
        for s in cls.servers[1:]:
            s.start()

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            if s.proc is not None and s.proc.poll() is None:
                rc = s.stop()
                m = SANITIZER_RE.search(s.log())
                assert m is None, s.log()[-4000:]
                assert rc == 0, "fstore exited with %s:\n%s" % (rc, s.log()[-4000:])

    def test_1_a_write_on_one_node_is_read_on_the_others(self):
        a, b, c = self.servers
        resp = write(a, [1, 2, 3], 41)
        self.assertEqual(resp.rows_written, 3)
        self.assertGreater(resp.sequence, 1)
        # Read-your-writes: B waits for the sequence A returned.
        md = [("fstore-min-seq", str(resp.sequence))]
        self.assertEqual(read_trips(b, [1, 2, 3], md), [41, 41, 41])
        self.assertEqual(read_trips(c, [1, 2, 3], md), [41, 41, 41])
        # A node never says it has a sequence it does not.
        with self.assertRaises(grpc.RpcError) as cm:
            read_trips(c, [1], [("fstore-min-seq", str(resp.sequence + 1000))])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("replica behind", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            read_trips(c, [1], [("fstore-min-seq", "x1")])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # The writer itself applied it before it answered.
        self.assertEqual(read_trips(a, [1]), [41])
        # A caller's deadline hours away bounds the publish and the read's wait as given (it
        # was once taken in 32-bit milliseconds: past 35 minutes it wrapped into the past).
        resp = write(a, [4], 43, timeout=2200)
        self.assertEqual(resp.rows_written, 1)
        self.assertEqual(read_trips(b, [4], [("fstore-min-seq", str(resp.sequence))],
                                    timeout=2200), [43])
        # ...and a read waiting for the next sequence under such a deadline waits for it (in
        # the past, the deadline had ended the wait at once).
        got = {}

        def reader():
            try:
                got["v"] = read_trips(b, [5], [("fstore-min-seq", str(resp.sequence + 1))],
                                      timeout=2200)
            except grpc.RpcError as e:
                got["e"] = "%s: %s" % (e.code(), e.details())

        t = threading.Thread(target=reader)
        t.start()
        b.wait_metric("fstore_replication_read_waiters", 1)  # the read waits for its sequence
        self.assertEqual(write(a, [5], 44).sequence, resp.sequence + 1)
        t.join(60)
        self.assertEqual(got.get("v"), [44], got.get("e"))
        st = status(b)
        self.assertTrue(st.replicated)
        self.assertEqual(st.state, "ready")
        self.assertEqual(st.stream, "FSTORE_E2E")
        self.assertEqual(st.health, "SERVING")
        # fstore status prints the same.
        out = subprocess.run([FSTORE, "status", "--listen", b.target], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("state      ready", out.stdout)
        self.assertIn("FSTORE_E2E (connected)", out.stdout)

    def test_2_concurrent_writers_to_the_same_keys_converge(self):
        errors = []

        def writer(node, value):
            try:
                for k in range(30):
                    write(node, list(range(100, 120)), value * 1000 + k)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(n, i + 1))
                   for i, n in enumerate(self.servers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.wait_converged(self.servers)
        views, _ = self.assert_same_digests(self.servers)
        self.assertTrue(any(v[0] == "driver_stats" and v[3] >= 20 for v in views), views)
        values = [read_trips(n, list(range(100, 120))) for n in self.servers]
        self.assertEqual(values[0], values[1])
        self.assertEqual(values[0], values[2])

    def _load(self, stop, acked, failures, nodes):
        """Writes 5 unique rows per call until stop, round robin over nodes; a failed write is
        retried with the same request id on the next node until acknowledged.
        acked: {request_id: (ids, sequence)}."""
        k = 0
        nonce = "%d-%d" % (os.getpid(), time.monotonic_ns())
        while not stop.is_set():
            k += 1
            rid = "load-%s-%d" % (nonce, k)
            ids = list(range(100000 + k * 5, 100000 + k * 5 + 5))
            deadline = time.monotonic() + 60
            attempt = 0
            while True:
                node = nodes[(k + attempt) % len(nodes)]
                try:
                    resp = write(node, ids, k, request_id=rid, timeout=30)
                    acked[rid] = (ids, resp.sequence, k)
                    break
                except grpc.RpcError as e:
                    failures.append((rid, e.code()))
                    if time.monotonic() > deadline:
                        raise
                    attempt += 1
                    time.sleep(0.2)

    def wait_acked(self, acked, n, timeout=60):
        """Waits until the load thread has n acknowledged writes."""
        deadline = time.monotonic() + timeout
        while len(acked) < n:
            if time.monotonic() > deadline:
                raise AssertionError("%d writes acknowledged, not %d, within %.0fs"
                                     % (len(acked), n, timeout))
            time.sleep(0.05)

    def _check_load(self, acked, nodes):
        last = self.wait_converged(nodes)
        for rid, (ids, seq, k) in acked.items():
            self.assertLessEqual(seq, last)
        # Every acknowledged write is on every node, with its value.
        want = {i: k for ids, _, k in acked.values() for i in ids}
        all_ids = sorted(want)
        for node in nodes:
            for at in range(0, len(all_ids), 900):
                chunk = all_ids[at:at + 900]
                self.assertEqual(read_trips(node, chunk), [want[i] for i in chunk],
                                 "an acknowledged write is missing on %s" % node.target)
        # None applied twice: one message per request id (retries deduplicated by the log).
        seqs = [seq for _, seq, _ in acked.values()]
        self.assertEqual(len(seqs), len(set(seqs)), "two request ids share a sequence")
        return last

    def test_3_sigkill_of_a_replica_under_load_converges(self):
        stop, acked, failures = threading.Event(), {}, []
        t = threading.Thread(target=self._load,
                             args=(stop, acked, failures, self.servers[:2]))
        t.start()
        try:
            self.wait_acked(acked, 10)
            c = self.servers[2]
            c.kill()
            self.wait_acked(acked, len(acked) + 10)  # the others write on without it
            c.start()  # same data directory: it resumes from its own position
        finally:
            stop.set()
            t.join()
        self.assertGreater(len(acked), 10)
        self._check_load(acked, self.servers)
        self.assert_same_digests(self.servers)

    def test_4_sigkill_of_a_nats_server_loses_no_acknowledged_write(self):
        stop, acked, failures = threading.Event(), {}, []
        before = status(self.servers[0]).stream_sequence
        t = threading.Thread(target=self._load,
                             args=(stop, acked, failures, self.servers))
        t.start()
        try:
            self.wait_acked(acked, 10)
            self.nats.servers[0].stop(signal.SIGKILL)
            # Writes go on once the two left elected their leaders (5-12 s of failed publishes).
            self.wait_acked(acked, len(acked) + 20, timeout=90)
        finally:
            stop.set()
            t.join()
        self.nats.servers[0].start()
        last = self._check_load(acked, self.servers)
        # Exactly one message per acknowledged request id was added to the log.
        self.assertEqual(last - before, len(acked),
                         "retries were applied twice or a message is missing")
        self.assert_same_digests(self.servers)

    def test_5_every_nats_server_restarted_nodes_resume_without_gaps(self):
        write(self.servers[0], [7], 700)
        self.nats.stop()
        # The log is down: reads go on from the local replicas.
        self.assertEqual(read_trips(self.servers[1], [7], timeout=10), [700])
        self.nats.start()
        deadline = time.monotonic() + 90
        while True:
            try:
                resp = write(self.servers[1], [8], 800, timeout=30)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        md = [("fstore-min-seq", str(resp.sequence))]
        for n in self.servers:
            self.assertEqual(read_trips(n, [7, 8], md), [700, 800])
        self.wait_converged(self.servers)
        self.assert_same_digests(self.servers)

    def test_6_a_fourth_node_bootstraps_from_a_peer_while_writes_continue(self):
        stop, acked, failures = threading.Event(), {}, []
        t = threading.Thread(target=self._load,
                             args=(stop, acked, failures, self.servers))
        t.start()
        try:
            self.wait_acked(acked, 10)
            d = self.node(self.urls, extra=["--bootstrap-from", self.servers[0].target])
            d.wait_event("bootstrapped")
            self.wait_acked(acked, len(acked) + 10)  # and more after its snapshot
        finally:
            stop.set()
            t.join()
        ev = d.events("bootstrapped")[0]
        self.assertGreater(ev["bytes"], 0)
        self.assertGreater(ev["sequence"], 1)
        nodes = self.servers + [d]
        self._check_load(acked, nodes)
        self.assert_same_digests(nodes)
        self.assert_clean_stop(d)

    def test_7_catalog_changes_and_ingest_go_through_the_log(self):
        tmp = tempfile.mkdtemp(prefix="fstore-e2e-cat-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(CATALOG) as f:
            text = f.read()
        extra = ("  - name: repl_extra\n    version: 1\n    entities: [driver]\n"
                 "    features:\n      - {name: score, dtype: INT64}\n")
        marker = "feature_views:\n"
        newcat = os.path.join(tmp, "catalog.yaml")
        with open(newcat, "w") as f:
            f.write(text.replace(marker, marker + extra, 1))
        out = subprocess.run([FSTORE, "apply", "--catalog", newcat, "--replication", self.urls],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("published", out.stdout)
        # Every node serves it once its replica applied it.
        deadline = time.monotonic() + 30
        for n in self.servers:
            while not any(fv.name == "repl_extra" for fv in n.client.get_catalog().feature_views):
                self.assertLess(time.monotonic(), deadline, "catalog not applied on every node")
                time.sleep(0.1)
        # A breaking change is refused before anything is published.
        broken = os.path.join(tmp, "broken.yaml")
        with open(broken, "w") as f:
            f.write(text.replace("{name: conv_rate, dtype: FLOAT}", "{name: conv_rate, dtype: INT64}",
                                 1))
        out = subprocess.run([FSTORE, "apply", "--catalog", broken, "--replication", self.urls],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 1)
        self.assertIn("breaking", out.stderr)
        # Ingest through the log: validated whole first, then published.
        rows = os.path.join(tmp, "rows.csv")
        with open(rows, "w") as f:
            f.write("driver_id,score\n")
            for i in range(2500):
                # Some cells quoted: the parser unquotes in place, and the file is parsed twice
                # (checked whole, then published).
                f.write(("%d,\"%d\"\n" if i % 3 == 0 else "%d,%d\n") % (500000 + i, i))
        out = subprocess.run([FSTORE, "ingest", "--replication", self.urls, "--project", "e2e",
                              "--view", "repl_extra", "--batch-rows", "1000", rows],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        # 2500 rows in messages of 1000: three, none sent twice.
        self.assertIn("2500 rows", out.stdout)
        self.assertIn("in 3 messages", out.stdout)
        bad = os.path.join(tmp, "bad.csv")
        with open(bad, "w") as f:
            f.write("driver_id,score\n1,2\nx,3\n")
        before = status(self.servers[0]).stream_sequence
        out = subprocess.run([FSTORE, "ingest", "--replication", self.urls, "--project", "e2e",
                              "--view", "repl_extra", bad],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 1)
        self.assertIn(":3:", out.stderr)
        self.assertEqual(status(self.servers[0]).stream_sequence, before,
                         "a file with a bad row published something")
        self.wait_converged(self.servers)
        req = FeatureStoreClient.online_request(features=["repl_extra:score"],
                                                entities={"driver_id": [500000, 502499]})
        for n in self.servers:
            resp = n.client.serving.GetOnlineFeatures(req, timeout=30)
            self.assertEqual([v.int64_val for v in resp.results[1].values], [0, 2499])
        self.assert_same_digests(self.servers)

    def test_8_a_node_started_while_jetstream_has_no_quorum_waits_for_it(self):
        # Two of three nats-servers down: JetStream answers "temporarily unavailable" (10008).
        # A node restarting then waits, says so, and starts when the quorum is back (it once
        # took the first 10008 as final and exited).
        c = self.servers[2]
        self.assertEqual(c.stop(), 0, c.log()[-4000:])
        # The quorum can take longer than the default 30 s to come back here (test_5 allows 90).
        c.args = c.args + ["--connect-timeout-ms", "120000"]
        for ns in self.nats.servers[1:]:
            ns.stop()
        # The one left answers from its state for a moment: wait until it says it has no
        # quorum, as the node will be told.
        get_catalog = json.dumps({"last_by_subj": "fstore.e2e.$catalog"}).encode()
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = js_request(self.nats.servers[0].port,
                                   "$JS.API.STREAM.MSG.GET.FSTORE_E2E", get_catalog)
                if reply.get("error", {}).get("err_code") == 10008:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "JetStream kept answering")
            time.sleep(0.2)
        failed = []

        def start():
            try:
                c.start()
            except AssertionError as e:
                failed.append(e)
        old = c.proc
        t = threading.Thread(target=start)
        t.start()
        try:
            deadline = time.monotonic() + 60
            while c.proc is old:  # the new process, and its log, not the stopped one's
                self.assertLess(time.monotonic(), deadline, "the node never started")
                time.sleep(0.02)
            # Waiting for the log's catalog (what once exited at the first 10008).
            while not [e for e in c.events("jetstream_waiting")
                       if e["for"] == "the log's catalog"]:
                self.assertLess(time.monotonic(), deadline, "no wait for the catalog:\n" +
                                c.log())
                self.assertIsNone(c.proc.poll(), c.log())
                time.sleep(0.05)
            self.assertIsNone(c.proc.poll(), c.log())
            ev = [e for e in c.events("jetstream_waiting") if e["for"] == "the log's catalog"][0]
            self.assertIn("10008", ev["error"])
        finally:
            for ns in self.nats.servers[1:]:
                ns.start(wait=False)
            for ns in self.nats.servers[1:]:
                ns.wait()
            t.join()
        self.assertEqual(failed, [])
        resp = write(self.servers[0], [9], 900, timeout=60)
        md = [("fstore-min-seq", str(resp.sequence))]
        self.assertEqual(read_trips(c, [9], md), [900])
        self.wait_converged(self.servers)
        self.assert_same_digests(self.servers)


class SingleNatsTest(ReplicationCase):
    def setUp(self):
        self.nats = NatsCluster(1)
        self.addCleanup(self.nats.cleanup)
        self.nats.start()
        self.urls = self.nats.urls()

    def test_history_rows_go_through_the_log_to_the_nodes_that_keep_history(self):
        # A serving node without --history takes a history-only write (insert_batch) and
        # publishes it; the node with --history applies it into its history, at its place in
        # the log; neither puts it online.
        cat = os.path.join(SOURCE_DIR, "examples", "catalog")
        a = self.node(self.urls, catalog=cat)
        b = self.node(self.urls, catalog=cat, extra=["--history"])
        t = 1764590400
        rq = fstore_pb2.WriteFeaturesRequest(feature_view="driver_trips", to=fstore_pb2.WRITE_TARGET_OFFLINE)
        rq.columns["driver_id"].val.add().int64_val = 5
        rq.columns["trips_last_hour"].val.add().int64_val = 9
        rq.event_timestamps.add().seconds = t
        seq = fstore_pb2_grpc.OnlineFeatureServiceStub(a.client.channel).WriteFeatures(
            rq, timeout=30).sequence
        self.assertGreater(seq, 0)
        hq = fstore_pb2.GetHistoricalFeaturesRequest()
        hq.features.val.append("driver_trips:trips_last_hour")
        hq.entities["driver_id"].val.add().int64_val = 5
        hq.event_timestamps.add().seconds = t + 60
        md = [("fstore-min-seq", str(seq))]
        msgs = list(fstore_pb2_grpc.OnlineFeatureServiceStub(b.client.channel)
                    .GetHistoricalFeatures(hq, timeout=30, metadata=md))
        names = list(msgs[0].metadata.feature_names.val)
        self.assertEqual(msgs[0].results[names.index("trips_last_hour")].values[0].int64_val, 9)
        with self.assertRaises(grpc.RpcError) as cm:
            list(fstore_pb2_grpc.OnlineFeatureServiceStub(a.client.channel)
                 .GetHistoricalFeatures(hq, timeout=30, metadata=md))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        for n in (a, b):
            r = n.client.get_online_features(features=["driver_trips:trips_last_hour"],
                                             entities={"driver_id": [5]})
            self.assertEqual(r.statuses["trips_last_hour"], ["NOT_FOUND"])
        self.assert_clean_stop(a)
        self.assert_clean_stop(b)

    def test_writes_through_the_log_are_held_to_the_nodes_max_future_skew(self):
        # Validated before publishing, with the node's own --max-future-skew (it once took the
        # default 1d whatever the flag said), and fstore ingest --replication with its own.
        a = self.node(self.urls, extra=["--max-future-skew", "1h"])
        b = self.node(self.urls, extra=["--max-future-skew", "3d"])
        ahead = time.time() + 2 * 3600
        req = fstore_pb2.WriteFeaturesRequest(feature_view="driver_stats@v1")
        req.columns["driver_id"].val.add().int64_val = 41
        req.columns["trips"].val.add().int64_val = 4
        req.event_timestamps.add().FromNanoseconds(int(ahead * 1e9))
        with self.assertRaises(grpc.RpcError) as cm:
            a.client.fstore.WriteFeatures(req, timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("3600 s ahead", cm.exception.details())
        self.assertIn("--max-future-skew", cm.exception.details())
        req.event_timestamps[0].FromNanoseconds(int((time.time() + 2 * 86400) * 1e9))
        seq = b.client.fstore.WriteFeatures(req, timeout=30).sequence
        self.assertEqual(read_trips(a, [41], [("fstore-min-seq", str(seq))]), [4])
        tmp = tempfile.mkdtemp(prefix="fstore-e2e-skew-")
        self.addCleanup(shutil.rmtree, tmp, True)
        rows = os.path.join(tmp, "rows.csv")
        with open(rows, "w") as f:
            f.write("driver_id,trips,event_timestamp\n42,1,%d\n43,1,%d\n" % (time.time(), ahead))
        before = status(a).stream_sequence
        out = subprocess.run([FSTORE, "ingest", "--replication", self.urls, "--project", "e2e",
                              "--view", "driver_stats@v1", "--max-future-skew", "1h", rows],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn(":3:", out.stderr)
        self.assertIn("--max-future-skew", out.stderr)
        self.assertEqual(status(a).stream_sequence, before, "a refused file published something")
        out = subprocess.run([FSTORE, "ingest", "--replication", self.urls, "--project", "e2e",
                              "--view", "driver_stats@v1", "--max-future-skew", "3h", rows],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assert_clean_stop(a)
        self.assert_clean_stop(b)

    def test_a_replica_holds_only_what_the_log_holds(self):
        # Rows written without the log (a single node's directory) would be on one node alone:
        # such a directory is refused at start, and a replica's directory refuses direct writes.
        tmp = tempfile.mkdtemp(prefix="fstore-e2e-local-")
        self.addCleanup(shutil.rmtree, tmp, True)
        single = os.path.join(tmp, "single")
        rows = os.path.join(tmp, "rows.csv")
        with open(rows, "w") as f:
            f.write("driver_id,trips\n71,7\n")
        for cmd in (["apply", "--catalog", CATALOG, "--data-dir", single],
                    ["ingest", "--data-dir", single, "--view", "driver_stats@v1", rows]):
            out = subprocess.run([FSTORE] + cmd, capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr)
        out = subprocess.run([FSTORE, "serve", "--catalog", CATALOG, "--data-dir", single,
                              "--replication", self.urls, "--listen", "127.0.0.1:0",
                              "--http-listen", ""], capture_output=True, text=True, timeout=120)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("replica_has_local_rows", out.stderr)
        self.assertIn("--bootstrap-from", out.stderr)
        # A replica's own directory, once it stopped: ingest, apply, materialize and gc refuse it.
        a = self.node(self.urls)
        write(a, [72], 7)
        self.assert_clean_stop(a)
        for cmd, how in ((["ingest", "--data-dir", a.data_dir, "--view", "driver_stats@v1", rows],
                          "--replication"),
                         (["apply", "--catalog", CATALOG, "--data-dir", a.data_dir],
                          "fstore apply --replication"),
                         (["materialize", "--data-dir", a.data_dir, "2025-01-01T00:00:00Z",
                           "2025-01-02T00:00:00Z"], "without --replication"),
                         (["gc", "--data-dir", a.data_dir], "fstore gc --target")):
            out = subprocess.run([FSTORE] + cmd, capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 1, cmd)
            self.assertIn("is a replica of a replication log", out.stderr)
            self.assertIn(how, out.stderr)
        # Served alone and written there, it is a single node's directory again: ingest takes it,
        # and it can no longer rejoin the log (its position is the log's, its rows are not).
        alone = Server(catalog=CATALOG, data_dir=a.data_dir)
        alone.start()
        alone.client.write_features("driver_stats@v1", {"driver_id": [73], "trips": [7]})
        self.assertEqual(alone.stop(), 0)
        out = subprocess.run([FSTORE, "ingest", "--data-dir", a.data_dir, "--view",
                              "driver_stats@v1", rows], capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        out = subprocess.run([FSTORE, "serve", "--data-dir", a.data_dir, "--replication",
                              self.urls, "--listen", "127.0.0.1:0", "--http-listen", ""],
                             capture_output=True, text=True, timeout=120)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("replica_has_local_rows", out.stderr)

    def test_deletes_go_through_the_log_as_tombstones(self):
        # A delete on one node is a tombstone on every node, at the time the delete was taken:
        # an older write that comes after it (through another node) stays stale everywhere, a
        # newer one is the row again.
        a = self.node(self.urls)
        b = self.node(self.urls)
        t = time.time() - 60

        def put(node, value, when):
            req = fstore_pb2.WriteFeaturesRequest(feature_view="driver_stats@v1")
            req.columns["driver_id"].val.add().int64_val = 81
            req.columns["trips"].val.add().int64_val = value
            req.event_timestamps.add().FromNanoseconds(int(when * 1e9))
            return node.client.fstore.WriteFeatures(req, timeout=30)
        put(a, 1, t)
        dreq = fstore_pb2.DeleteEntitiesRequest(feature_view="driver_stats@v1")
        dreq.entities["driver_id"].val.add().int64_val = 81
        d = b.client.fstore.DeleteEntities(dreq, timeout=30)
        md = [("fstore-min-seq", str(d.sequence))]
        self.assertEqual(read_trips(a, [81], md), [None])
        self.assertEqual(read_trips(b, [81], md), [None])
        old = put(a, 2, t - 10)
        self.assertEqual(old.rows_stale, 1)
        md = [("fstore-min-seq", str(old.sequence))]
        self.assertEqual(read_trips(a, [81], md), [None])
        self.assertEqual(read_trips(b, [81], md), [None])
        new = put(b, 3, time.time() + 5)  # after the delete's own time (when it was taken)
        md = [("fstore-min-seq", str(new.sequence))]
        self.assertEqual(read_trips(a, [81], md), [3])
        self.assertEqual(read_trips(b, [81], md), [3])
        self.wait_converged([a, b])
        self.assert_clean_stop(a)
        self.assert_clean_stop(b)
        self.assert_same_digests([a, b])

    def test_gc_goes_through_the_log_and_every_node_sweeps_alike(self):
        # A keeps tombstones 1 s, B 7 days (the default). `fstore gc --target A` publishes the
        # sweep with A's clock and retention; B applies it at the same place in the log, so both
        # drop the same tombstone and a later write older than it is a row again on both (with a
        # sweep of each node's own, B would keep the tombstone and that write would be stale
        # there alone).
        a = self.node(self.urls, extra=["--tombstone-retention", "1s"])
        b = self.node(self.urls)
        t = time.time() - 60

        def put(node, driver, value, when):
            req = fstore_pb2.WriteFeaturesRequest(feature_view="driver_stats@v1")
            req.columns["driver_id"].val.add().int64_val = driver
            req.columns["trips"].val.add().int64_val = value
            req.event_timestamps.add().FromNanoseconds(int(when * 1e9))
            return node.client.fstore.WriteFeatures(req, timeout=30)
        put(a, 83, 1, t)
        put(b, 84, 4, t)
        dreq = fstore_pb2.DeleteEntitiesRequest(feature_view="driver_stats@v1")
        dreq.entities["driver_id"].val.add().int64_val = 83
        d = b.client.fstore.DeleteEntities(dreq, timeout=30)
        time.sleep(1.5)  # the tombstone is now older than A's retention
        out = subprocess.run([FSTORE, "gc", "--target", a.target], capture_output=True,
                             text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("deleted 1 ", out.stdout)
        [pub] = a.events("gc_published")
        self.assertGreater(pub["sequence"], d.sequence)
        self.assertEqual(pub["deleted"], 1)
        [applied] = b.wait_event("gc_applied_from_log")
        self.assertEqual((applied["sequence"], applied["deleted"]), (pub["sequence"], 1))
        self.assertFalse(a.events("gc"), "no sweep of A's own beside the log's")
        late = put(a, 83, 2, t + 1)  # after the first write, before the dropped delete
        self.assertEqual(late.rows_written, 1)
        md = [("fstore-min-seq", str(late.sequence))]
        self.assertEqual(read_trips(a, [83, 84], md), [2, 4])
        self.assertEqual(read_trips(b, [83, 84], md), [2, 4])
        self.wait_converged([a, b])
        self.assert_clean_stop(a)
        self.assert_clean_stop(b)
        views, position = self.assert_same_digests([a, b])
        self.assertEqual(position, late.sequence)

    def test_bootstrap_without_a_ready_peer_replays_the_log_and_a_store_skips_it(self):
        # A new cluster: the peer to copy from is not there (nothing listens). After the wait,
        # the node replays the log from its start. Restarted on its own directory, it resumes
        # from its store and does not ask a peer at all.
        a = self.node(self.urls)
        seq = write(a, [91], 9).sequence
        nobody = "127.0.0.1:%d" % free_port()
        b = self.node(self.urls, extra=["--bootstrap-from", nobody, "--bootstrap-wait-ms", "500"])
        skipped = b.events("bootstrap_skipped")
        self.assertEqual(len(skipped), 1, b.log()[-2000:])
        self.assertIn("replaying the log from its start", skipped[0]["reason"])
        self.assertFalse(b.events("bootstrapped"))
        self.assertEqual(read_trips(b, [91], [("fstore-min-seq", str(seq))]), [9])
        self.assert_clean_stop(b)
        b2 = self.node(self.urls, data_dir=b.data_dir,
                       extra=["--bootstrap-from", nobody, "--bootstrap-wait-ms", "60000"])
        skipped = b2.events("bootstrap_skipped")
        self.assertEqual(len(skipped), 1, b2.log()[-2000:])
        self.assertIn("resumes from its own position", skipped[0]["reason"])
        self.assertFalse(b2.events("bootstrap_waiting"))
        self.assertEqual(read_trips(b2, [91]), [9])
        self.assert_clean_stop(b2)
        self.assert_clean_stop(a)

    def test_a_retried_write_with_the_same_request_id_is_applied_once(self):
        a = self.node(self.urls)
        b = self.node(self.urls)
        first = write(a, [1], 10, metadata=[("fstore-request-id", "order-17")])
        again = write(b, [1], 99, metadata=[("fstore-request-id", "order-17")])
        self.assertEqual(again.sequence, first.sequence)
        # The proto field works the same, and wins over the metadata.
        third = write(b, [2], 5, request_id="order-18",
                      metadata=[("fstore-request-id", "order-17")])
        self.assertEqual(third.sequence, first.sequence + 1)
        md = [("fstore-min-seq", str(third.sequence))]
        self.assertEqual(read_trips(a, [1, 2], md), [10, 5])
        self.assertEqual(read_trips(b, [1, 2], md), [10, 5])
        with self.assertRaises(grpc.RpcError) as cm:
            write(a, [3], 1, request_id="has space")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("request id", cm.exception.details())
        self.assert_clean_stop(a)
        self.assert_clean_stop(b)

    @unittest.skipUnless(os.environ.get("FSTORE_FAULT_INJECTION", "ON").upper() in ("ON", "1"),
                         "this build has no fault points (FSTORE_FAULT_INJECTION=OFF)")
    def test_a_failed_flush_of_the_replica_is_logged_once_and_applying_goes_on(self):
        # The replica commits without fsync and flushes every second: a flush that fails (a
        # fault armed in a test build) is said once, writes go on, and the next one recovers.
        faults = os.path.join(tempfile.mkdtemp(prefix="fstore-e2e-faults-"), "faults")
        self.addCleanup(shutil.rmtree, os.path.dirname(faults), True)
        n = Server(catalog=CATALOG, args=["--replication", self.urls],
                   env={"FSTORE_FAULTS_FILE": faults})
        self.addCleanup(n.cleanup)
        n.start()
        write(n, [1], 1)
        with open(faults + ".tmp", "w") as f:
            f.write("sync EIO 3\n")
        os.replace(faults + ".tmp", faults)  # never read half-written
        k = 1
        while not n.events("store_flush_resumed"):  # three failed flushes, then one that works
            k += 1
            self.assertEqual(write(n, [k], k).rows_written, 1)
            time.sleep(0.05)
            self.assertLess(k, 2000, "the flush never failed and resumed:\n" + n.log()[-3000:])
        failed = n.events("store_flush_failed")
        self.assertEqual(len(failed), 1, n.log()[-3000:])
        self.assertIn("Input/output error", failed[0]["error"])
        self.assertEqual(read_trips(n, [k]), [k])
        self.assert_clean_stop(n)

    @unittest.skipUnless(os.environ.get("FSTORE_FAULT_INJECTION", "ON").upper() in ("ON", "1"),
                         "this build has no fault points (FSTORE_FAULT_INJECTION=OFF)")
    def test_a_replica_whose_store_refuses_to_apply_stops_serving_until_it_applies_again(self):
        # Its commits fail (ENOSPC armed in a test build): state failed, NOT_SERVING, reads
        # refused as stale; once the store takes writes again, it catches up and serves.
        faults = os.path.join(tempfile.mkdtemp(prefix="fstore-e2e-faults-"), "faults")
        self.addCleanup(shutil.rmtree, os.path.dirname(faults), True)
        a = self.node(self.urls)
        b = Server(catalog=CATALOG, args=["--replication", self.urls],
                   env={"FSTORE_FAULTS_FILE": faults})
        self.addCleanup(b.cleanup)
        b.start()
        write(a, [61], 1)
        self.wait_converged([a, b])
        with open(faults + ".tmp", "w") as f:
            f.write("commit ENOSPC 100000\n")
        os.replace(faults + ".tmp", faults)
        write(a, [61], 2)
        deadline = time.monotonic() + 30
        while status(b).state != "failed":
            self.assertLess(time.monotonic(), deadline, b.log()[-3000:])
            time.sleep(0.1)
        self.assertEqual(b.client.health(), "NOT_SERVING")
        with self.assertRaises(grpc.RpcError) as cm:
            read_trips(b, [61])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("cannot apply the log", cm.exception.details())
        self.assertIn("applying sequence", cm.exception.details())
        self.assertEqual(read_trips(a, [61]), [2])
        # A sweep asked of the failed node goes into the log all the same (a applies it), and
        # the answer says this node is not applying it, naming the sequence; not UNAVAILABLE,
        # which would send a caller to another node to publish a second one.
        with self.assertRaises(grpc.RpcError) as cm:
            b.client.fstore.CollectGarbage(fstore_pb2.CollectGarbageRequest(), timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("gc is in the replication log at sequence", cm.exception.details())
        self.assertIn("not applying the log (failed)", cm.exception.details())
        [swept] = a.wait_event("gc_applied_from_log")
        self.assertIn("sequence %d" % swept["sequence"], cm.exception.details())
        # The log goes on meanwhile: b must catch up with all of it before it serves again.
        behind = max(write(a, [62 + k], k).sequence for k in range(20))
        os.remove(faults)
        seq = write(a, [61], 3).sequence
        # It retries from its store's position every second; meanwhile a read that needs a
        # sequence fails at once (it waits only for a replica that can catch up).
        deadline = time.monotonic() + 30
        while status(b).state != "ready":
            self.assertLess(time.monotonic(), deadline, b.log()[-3000:])
            time.sleep(0.1)
        self.assertEqual(read_trips(b, [61], [("fstore-min-seq", str(seq))]), [3])
        self.assertGreaterEqual(status(b).target_sequence, behind)
        self.assertEqual(b.client.health(), "SERVING")
        self.assertTrue(b.events("replica_apply_resumed"), b.log()[-3000:])
        self.assert_clean_stop(b)
        self.assert_clean_stop(a)

    def test_with_the_log_down_writes_fail_unavailable_and_reads_go_on(self):
        a = self.node(self.urls, extra=["--publish-timeout-ms", "1500"])
        b = self.node(self.urls)  # the default publish timeout, 20 s
        write(a, [1], 11)
        self.nats.stop()
        # A write whose caller gives up after 2 s holds b's publisher no longer than that (it
        # was retried for the whole publish timeout).
        with self.assertRaises(grpc.RpcError) as cm:
            write(b, [3], 33, timeout=2)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        deadline = time.monotonic() + 8
        while status(b).pending_writes != 0:
            self.assertLess(time.monotonic(), deadline, "the publish outlived its call's deadline")
            time.sleep(0.1)
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            write(a, [2], 22)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("FSTORE_E2E", cm.exception.details())
        self.assertLess(time.monotonic() - t0, 15)
        self.assertEqual(read_trips(a, [1, 2]), [11, None], "nothing half-written")
        self.assertEqual(a.client.health(), "SERVING")
        out = subprocess.run([FSTORE, "status", "--listen", a.target], capture_output=True,
                             text=True, timeout=60)
        self.assertIn("NATS unreachable", out.stdout)
        self.nats.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                write(a, [2], 22)
                break
            except grpc.RpcError:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.3)
        self.assertEqual(read_trips(a, [1, 2]), [11, 22])
        self.assert_clean_stop(a)
        self.assert_clean_stop(b)

    def test_a_node_past_the_streams_retention_refuses_to_serve_and_says_why(self):
        a = self.node(self.urls, extra=["--stream-max-age", "2s"])
        c = self.node(self.urls)
        write(a, [1], 1)
        self.wait_converged([a, c])
        self.assert_clean_stop(c)
        # Writes go on for longer than the retention: what c needs next is gone.
        for k in range(8):
            write(a, [10 + k], k)
            time.sleep(0.5)
        c2 = self.node(self.urls, data_dir=c.data_dir, start=False)
        c2.spawn()
        c2.wait_event("replica_needs_snapshot")
        deadline = time.monotonic() + 30
        while not c2.port_open():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        client = FeatureStoreClient(c2.target, timeout=10)
        self.addCleanup(client.close)
        c2.client = client
        self.assertEqual(client.health(), "NOT_SERVING")
        st = status(c2)
        self.assertEqual(st.state, "needs_snapshot")
        self.assertIn("snapshot", st.last_error)
        # Its data is stale: no reads either (a client that ignores health asks another node).
        with self.assertRaises(grpc.RpcError) as cm:
            read_trips(c2, [17])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("stale", cm.exception.details())
        # A snapshot from a ready peer brings it back.
        self.assert_clean_stop(c2)
        shutil.rmtree(c.data_dir)
        c3 = self.node(self.urls, extra=["--bootstrap-from", a.target])
        self.assertEqual(read_trips(c3, [17]), [7])
        self.assert_clean_stop(c3)
        self.assert_clean_stop(a)

    def test_sighup_publishes_the_catalog_file_and_a_node_with_an_older_file_takes_the_logs(self):
        tmp = tempfile.mkdtemp(prefix="fstore-e2e-cat-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "catalog.yaml")
        shutil.copy(CATALOG, path)
        a = self.node(self.urls, catalog=path)
        b = self.node(self.urls, catalog=CATALOG)
        with open(CATALOG) as f:
            text = f.read()
        marker = "feature_views:\n"
        with open(path, "w") as f:
            f.write(text.replace(marker, marker + "  - name: hup_view\n    version: 1\n"
                                 "    entities: [driver]\n    features:\n"
                                 "      - {name: x, dtype: INT64}\n", 1))
        a.send(signal.SIGHUP)
        a.wait_event("catalog_reloaded")
        deadline = time.monotonic() + 30
        while not any(fv.name == "hup_view" for fv in b.client.get_catalog().feature_views):
            self.assertLess(time.monotonic(), deadline, "b never applied the reloaded catalog")
            time.sleep(0.1)
        # b restarts with its older file: it serves the log's catalog and says so.
        self.assert_clean_stop(b)
        b2 = self.node(self.urls, data_dir=b.data_dir, catalog=CATALOG)
        ev = b2.wait_event("catalog_from_log")[0]
        self.assertNotEqual(ev["file_digest"], ev["log_digest"])
        self.assertTrue(any(fv.name == "hup_view" for fv in b2.client.get_catalog().feature_views))
        # A breaking edit is refused on SIGHUP: nothing is published, the old catalog serves.
        with open(path, "w") as f:
            f.write(text.replace("{name: conv_rate, dtype: FLOAT}",
                                 "{name: conv_rate, dtype: INT64}", 1))
        a.send(signal.SIGHUP)
        a.wait_event("catalog_reload_rejected")
        self.assertTrue(any(fv.name == "hup_view" for fv in a.client.get_catalog().feature_views))
        self.assert_clean_stop(b2)
        self.assert_clean_stop(a)

    def test_read_your_writes_over_http_headers(self):
        import http.client
        a = self.node(self.urls)
        b = self.node(self.urls)

        def post(node, path, body, headers):
            conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=30)
            hdrs = {"Content-Type": "application/json"}
            hdrs.update(headers)
            conn.request("POST", path, body=json.dumps(body), headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            conn.close()
            return resp, raw

        body = {"feature_view_name": "driver_stats@v1",
                "df": {"driver_id": [77], "trips": [7]}}
        resp, raw = post(a, "/write-to-online-store", body, {"fstore-request-id": "http-1"})
        self.assertEqual(resp.status, 200, raw)
        seq = resp.getheader("fstore-sequence")
        self.assertIsNotNone(seq)
        again, _ = post(b, "/write-to-online-store", body, {"fstore-request-id": "http-1"})
        self.assertEqual(again.getheader("fstore-sequence"), seq, "applied once")
        resp, raw = post(b, "/get-online-features",
                         {"features": ["driver_stats@v1:trips"], "entities": {"driver_id": [77]}},
                         {"fstore-min-seq": seq})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(json.loads(raw)["results"][1]["values"], [7])
        resp, raw = post(b, "/get-online-features",
                         {"features": ["driver_stats@v1:trips"], "entities": {"driver_id": [77]}},
                         {"fstore-min-seq": str(int(seq) + 1000)})
        self.assertEqual(resp.status, 503)
        self.assertIn("replica behind", json.loads(json.loads(raw))["message"])
        self.assert_clean_stop(a)
        self.assert_clean_stop(b)

    def test_a_stream_with_another_configuration_is_a_startup_error(self):
        a = self.node(self.urls)
        b = Server(catalog=CATALOG, args=["--replication", self.urls, "--stream-replicas", "3"])
        self.addCleanup(b.cleanup)
        b.spawn()
        self.assertNotEqual(b.proc.wait(60), 0)
        self.assertIn("--stream-replicas", b.log())
        self.assert_clean_stop(a)


class TlsNatsTest(ReplicationCase):
    """TLS to NATS: a nats-server that takes TLS only and requires a client certificate from
    the test's CA (--tlsverify). Nodes given --replication-tls-ca/-cert/-key replicate through
    it; a node without its certificate, or trusting another CA, is refused at start, saying why."""

    def setUp(self):
        if shutil.which("openssl") is None:
            self.skipTest("openssl is not installed")
        from test_tls import make_ca, make_cert
        self.d = tempfile.mkdtemp(prefix="fstore-nats-tls-")
        self.addCleanup(shutil.rmtree, self.d, True)
        make_ca(self.d, "ca")
        make_ca(self.d, "other")
        make_cert(self.d, "ca", "nats", "serverAuth", 1)
        make_cert(self.d, "ca", "node", "clientAuth", 2)
        p = lambda name: os.path.join(self.d, name)
        self.nats = NatsServer("tls1", self.d, extra=[
            "--tls", "--tlscert", p("nats.pem"), "--tlskey", p("nats.key"), "--tlsverify",
            "--tlscacert", p("ca.pem")])
        self.addCleanup(self.nats.stop, signal.SIGKILL)
        self.nats.start()
        self.tls = ["--replication-tls-ca", p("ca.pem"), "--replication-tls-cert", p("node.pem"),
                    "--replication-tls-key", p("node.key")]

    def test_nodes_replicate_over_tls_with_client_certificates(self):
        a = self.node(self.nats.url(), extra=self.tls)
        b = self.node(self.nats.url(), extra=self.tls)
        resp = write(a, [1, 2], 7)
        self.assertGreater(resp.sequence, 0)
        self.assertEqual(read_trips(b, [1, 2], metadata=[("fstore-min-seq", str(resp.sequence))]),
                         [7, 7])
        self.assertTrue(status(b).connected)
        self.assert_clean_stop(a)
        self.assert_clean_stop(b)

    def test_rotated_certificates_are_taken_without_a_restart_and_bad_ones_kept_out(self):
        # A nats-server trusting both CAs for client certificates; the node's certificate files
        # are rotated from the first CA's pair to the second's under a steady write load, then
        # the server is restarted trusting the second CA alone: the node reconnects only if it
        # took the new pair (cnats would otherwise reconnect with the old one, refused).
        from test_tls import make_ca, make_cert
        p = lambda name: os.path.join(self.d, name)
        make_ca(self.d, "ca2")
        make_cert(self.d, "ca2", "node2", "clientAuth", 3)
        with open(p("both.pem"), "wb") as f:
            for ca in ("ca.pem", "ca2.pem"):
                with open(p(ca), "rb") as src:
                    f.write(src.read())
        server_tls = ["--tls", "--tlscert", p("nats.pem"), "--tlskey", p("nats.key"),
                      "--tlsverify"]
        nats = NatsServer("tls2", self.d, extra=server_tls + ["--tlscacert", p("both.pem")])
        self.addCleanup(nats.stop, signal.SIGKILL)
        nats.start()
        live = os.path.join(self.d, "live")
        os.mkdir(live)

        def put_pair(name):
            # As the kubelet renews a secret: whole files renamed into place.
            for ext in ("key", "pem"):
                shutil.copyfile(p(name + "." + ext), os.path.join(live, "tmp"))
                os.replace(os.path.join(live, "tmp"), os.path.join(live, "node." + ext))
        put_pair("node")
        a = self.node(nats.url(), extra=[
            "--replication-tls-ca", p("ca.pem"), "--replication-tls-cert",
            os.path.join(live, "node.pem"), "--replication-tls-key",
            os.path.join(live, "node.key")])
        self.assertGreater(write(a, [1], 1).sequence, 0)

        # A certificate file that does not load: rejected, the connection goes on.
        with open(os.path.join(live, "tmp"), "w") as f:
            f.write("not a certificate\n")
        os.replace(os.path.join(live, "tmp"), os.path.join(live, "node.pem"))
        a.send(signal.SIGHUP)
        [rej] = a.wait_event("nats_tls_reload_rejected", timeout=30)
        self.assertIn("--replication-tls-cert", rej["error"])
        self.assertGreater(write(a, [2], 2).sequence, 0)

        # The second CA's pair, under load: no write fails while the connection is replaced.
        stop, failures, done = threading.Event(), [], []

        slowest = [0.0]

        def load():
            i = 0
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    done.append(write(a, [100 + i % 50], i, timeout=10).sequence)
                except grpc.RpcError as e:
                    failures.append(e.details())
                slowest[0] = max(slowest[0], time.monotonic() - t0)
                i += 1
        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(0.5)
            put_pair("node2")
            a.wait_event("nats_tls_reloaded", timeout=30)
            n = len(done)
            deadline = time.monotonic() + 30
            while len(done) < n + 20 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            t.join(60)
        self.assertEqual(failures, [])
        self.assertGreaterEqual(len(done), n + 20, "writes go on over the new connection")
        self.assertEqual(done, sorted(done))
        # Each acknowledged after its own apply: the consumer moved with the connection at once
        # (not after the watchdog's 3 s stall check, nor a write's 20 s publish timeout).
        self.assertLess(slowest[0], 2.5)
        reasons = [e["reason"] for e in a.events("replica_resubscribed")]
        self.assertIn("the TLS files changed", reasons)
        self.assertNotIn("nothing delivered while the stream has more", reasons)

        # The server now trusts the second CA alone: the node's reconnects carry the new pair.
        nats.stop()
        nats.extra = server_tls + ["--tlscacert", p("ca2.pem")]
        nats.start()
        resp = write_when_back(a, [3], 3)
        md = [("fstore-min-seq", str(resp.sequence))]
        self.assertEqual(read_trips(a, [1, 2, 3], md), [1, 2, 3])
        self.assertTrue(status(a).connected)
        self.assert_clean_stop(a)

    def test_new_files_the_servers_refuse_keep_the_old_connection_and_are_tried_again(self):
        # The node's files become a pair from a CA the server does not trust: the new connection
        # is refused, the old one goes on. Once the server trusts that CA too, a SIGHUP tries the
        # same files again (no change to them) and they are taken.
        from test_tls import make_cert
        p = lambda name: os.path.join(self.d, name)
        make_cert(self.d, "other", "stranger", "clientAuth", 4)
        live = os.path.join(self.d, "live")
        os.mkdir(live)
        for ext in ("key", "pem"):
            shutil.copyfile(p("node." + ext), os.path.join(live, "node." + ext))
        a = self.node(self.nats.url(), extra=[
            "--replication-tls-ca", p("ca.pem"), "--replication-tls-cert",
            os.path.join(live, "node.pem"), "--replication-tls-key",
            os.path.join(live, "node.key")])
        self.assertGreater(write(a, [1], 1).sequence, 0)
        for ext in ("key", "pem"):
            shutil.copyfile(p("stranger." + ext), os.path.join(live, "tmp"))
            os.replace(os.path.join(live, "tmp"), os.path.join(live, "node." + ext))
        a.send(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while not [e for e in a.events("nats_tls_reload_rejected")
                   if "tried again in 30 s" in e["note"]]:
            self.assertLess(time.monotonic(), deadline, a.log()[-3000:])
            time.sleep(0.1)
        self.assertGreater(write(a, [2], 2).sequence, 0, "the old connection goes on")
        self.assertFalse(a.events("nats_tls_reloaded"))
        self.assertGreaterEqual(
            a.metric('fstore_replication_tls_reloads_total{result="rejected"}'), 1)
        self.assertEqual(a.metric('fstore_replication_tls_reloads_total{result="applied"}'), 0)
        with open(p("both.pem"), "wb") as f:
            for ca in ("ca.pem", "other.pem"):
                with open(p(ca), "rb") as src:
                    f.write(src.read())
        self.nats.stop()
        self.nats.extra = ["--tls", "--tlscert", p("nats.pem"), "--tlskey", p("nats.key"),
                           "--tlsverify", "--tlscacert", p("both.pem")]
        self.nats.start()
        a.send(signal.SIGHUP)
        # Within 10 s: the SIGHUP's retry, not the one 30 s after the refusal.
        a.wait_event("nats_tls_reloaded", timeout=10)
        self.assertEqual(a.metric('fstore_replication_tls_reloads_total{result="applied"}'), 1)
        resp = write_when_back(a, [3], 3)
        md = [("fstore-min-seq", str(resp.sequence))]
        self.assertEqual(read_trips(a, [1, 2, 3], md), [1, 2, 3])
        self.assert_clean_stop(a)

    def refused(self, extra, *fragments):
        n = self.node(self.nats.url(), extra=list(extra) + ["--connect-timeout-ms", "3000"],
                      start=False)
        n.spawn()
        try:
            rc = n.proc.wait(60)
        except subprocess.TimeoutExpired:
            n.proc.kill()
            raise AssertionError("a node that cannot reach NATS kept running:\n" + n.log())
        self.assertEqual(rc, 1, n.log()[-3000:])
        for f in fragments:
            self.assertIn(f, n.log())
        self.assertIsNone(SANITIZER_RE.search(n.log()), n.log()[-3000:])

    def test_without_its_certificate_or_with_another_ca_a_node_is_refused_saying_why(self):
        p = lambda name: os.path.join(self.d, name)
        # No client certificate: the server ends the handshake.
        self.refused(["--replication-tls-ca", p("ca.pem")], "no NATS server answered",
                     "(TLS: do the servers take TLS")
        # A CA that did not sign the server's certificate: this node ends it.
        self.refused(["--replication-tls-ca", p("other.pem"), "--replication-tls-cert",
                      p("node.pem"), "--replication-tls-key", p("node.key")],
                     "no NATS server answered")
        # Plain NATS against a TLS-only server.
        self.refused([], "no NATS server answered", "(TLS: do the servers take TLS")
        # Files that are not there, or a certificate without its key: named at once.
        self.refused(["--replication-tls-ca", p("missing.pem")], "--replication-tls-ca",
                     "missing.pem")
        self.refused(["--replication-tls-cert", p("node.pem")],
                     "--replication-tls-cert and --replication-tls-key go together")


if __name__ == "__main__":
    unittest.main()

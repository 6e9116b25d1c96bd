# tests/e2e/test_offline.py - offline serving end to end: insert_batch, load_batch, the
# point-in-time join streamed over gRPC, the product's own client snippet, and their bounds.
"""A `serve --history` node with the example catalog (its `offline:` views driver_trips and
my_feature), called with Python grpcio and the Python client, checked against timelines written
by the test and against a brute-force point-in-time join of the same rows."""
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import grpc

from fstore.v1 import fstore_pb2, fstore_pb2_grpc
from h2_client import H2Grpc
from harness import FSTORE, SOURCE_DIR, Server, ServerTestCase

CATALOG = os.path.join(SOURCE_DIR, "examples", "catalog")
CLIENTS = os.path.join(SOURCE_DIR, "clients", "python")
T0 = 1764590400  # 2025-12-01T12:00:00Z
DAY = 86400


def ts(seconds):
    from google.protobuf.timestamp_pb2 import Timestamp
    t = Timestamp()
    t.seconds = int(seconds // 1)
    t.nanos = int(round((seconds - int(seconds // 1)) * 1e6)) * 1000
    return t


def value(v):
    kind = v.WhichOneof("val")
    return None if kind in (None, "null_val") else getattr(v, kind)


PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE = 1, 2, 3, 4


class OfflineTest(ServerTestCase):
    catalog = CATALOG
    server_args = ("--history", "--max-history-rows", "50000", "--grpc-max-send-ms", "2000",
                   "--write-workers", "2")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stub = fstore_pb2_grpc.OnlineFeatureServiceStub(cls.client.channel)

    # -- helpers ----------------------------------------------------------------------------

    def insert(self, ids, trips, times, to=fstore_pb2.WRITE_TARGET_OFFLINE):
        rq = fstore_pb2.WriteFeaturesRequest(feature_view="driver_trips", to=to)
        rq.columns["driver_id"].val.add().int64_val = 0
        del rq.columns["driver_id"].val[:]
        for i in ids:
            rq.columns["driver_id"].val.add().int64_val = i
        for x in trips:
            rq.columns["trips_last_hour"].val.add().int64_val = x
        rq.event_timestamps.extend(ts(t) for t in times)
        return self.stub.WriteFeatures(rq, timeout=30)

    def historical(self, ids, times, extra=None, per_message=0, features=("driver_trips:trips_last_hour",),
                   service=None, full=False):
        rq = fstore_pb2.GetHistoricalFeaturesRequest(rows_per_message=per_message,
                                                     full_feature_names=full)
        if service:
            rq.feature_service = service
        else:
            rq.features.val.extend(features)
        for i in ids:
            rq.entities["driver_id"].val.add().int64_val = i
        for name, vals in (extra or {}).items():
            for x in vals:
                rq.entities[name].val.add().string_val = x
        rq.event_timestamps.extend(ts(t) for t in times)
        return list(self.stub.GetHistoricalFeatures(rq, timeout=60))

    @staticmethod
    def columns(messages):
        """{name: [(value, status, event seconds)]} over every message, in order."""
        out = {}
        for m in messages:
            names = list(m.metadata.feature_names.val)
            for name, vec in zip(names, m.results):
                col = out.setdefault(name, [])
                for k, v in enumerate(vec.values):
                    t = vec.event_timestamps[k] if k < len(vec.event_timestamps) else None
                    col.append((value(v), vec.statuses[k], t.seconds if t else None))
        return out

    # -- tests ------------------------------------------------------------------------------

    def test_point_in_time_join_on_a_hand_made_timeline(self):
        base = T0 + 10 * DAY
        # Driver 7001: trips 1 at base, 2 at base+100 (history only), 4 at base+300 (online).
        self.insert([7001, 7001], [1, 2], [base, base + 100])
        self.insert([7001], [4], [base + 300], to=fstore_pb2.WRITE_TARGET_ONLINE)
        times = [base - 1, base, base + 99, base + 100, base + 300, base + 300 + DAY,
                 base + 300 + DAY + 1]
        msgs = self.historical([7001] * len(times), times, extra={"label": list("abcdefg")})
        cols = self.columns(msgs)
        # The entity table's columns in the order they came (a map's order is the client's).
        names = list(msgs[0].metadata.feature_names.val)
        self.assertEqual(sorted(names[:2]), ["driver_id", "label"])
        self.assertEqual(names[2:], ["event_timestamp", "trips_last_hour"])
        got = [(v, st) for v, st, _ in cols["trips_last_hour"]]
        self.assertEqual(got, [(None, NOT_FOUND), (1, PRESENT), (1, PRESENT), (2, PRESENT),
                               (4, PRESENT), (4, PRESENT), (None, OUTSIDE_MAX_AGE)])
        self.assertEqual([e for _, _, e in cols["trips_last_hour"]][1:5],
                         [base, base, base + 100, base + 300])
        # The entity table comes back as given, with the times.
        self.assertEqual([v for v, _, _ in cols["label"]], list("abcdefg"))
        self.assertEqual([v for v, _, _ in cols["event_timestamp"]], times)
        # The online row: only the ONLINE write (history-only rows never go online).
        r = self.client.get_online_features(features=["driver_trips:trips_last_hour"],
                                            entities={"driver_id": [7001]})
        self.assertEqual(r["trips_last_hour"], [4])

    def test_a_delete_hides_older_rows_from_later_times(self):
        base = int(time.time()) - 1000
        self.insert([7101], [5], [base], to=fstore_pb2.WRITE_TARGET_ONLINE)
        self.assertEqual(self.client.delete_entities("driver_trips", {"driver_id": [7101]}), 1)
        now = time.time() + 1
        cols = self.columns(self.historical([7101, 7101], [base + 10, now]))
        self.assertEqual([(v, st) for v, st, _ in cols["trips_last_hour"]],
                         [(5, PRESENT), (None, NOT_FOUND)])

    def test_several_views_with_their_own_ttls(self):
        # my_feature is entityless (no TTL): one row for everyone; driver_trips has a 1d TTL.
        self.client.insert_batch("my_feature", timestamp=T0 + 20 * DAY,
                                 data={"x": [1.5], "y": [2.5]})
        self.insert([7201], [9], [T0 + 20 * DAY])
        at = T0 + 22 * DAY
        cols = self.columns(self.historical(
            [7201, 7201], [T0 + 20 * DAY + 5, at],
            features=("driver_trips:trips_last_hour", "my_feature:x", "my_feature:y")))
        self.assertEqual([v for v, _, _ in cols["trips_last_hour"]], [9, None])
        self.assertEqual([v for v, _, _ in cols["x"]], [1.5, 1.5], "no TTL: still there")
        self.assertEqual([v for v, _, _ in cols["y"]], [2.5, 2.5])

    def test_against_a_brute_force_join_streamed_in_small_messages(self):
        rnd = random.Random(5)
        base = T0 + 40 * DAY
        rows = []  # (id, trips, time)
        for i in range(600):
            rows.append((8000 + rnd.randrange(30), rnd.randrange(100), base + rnd.randrange(3 * DAY)))
        # One insert per entity in time order (ties resolved by the later write, as the store).
        for r in rows:
            self.insert([r[0]], [r[1]], [r[2]])
        queries = [(8000 + rnd.randrange(32), base + rnd.randrange(-DAY, 4 * DAY)) for _ in range(2500)]
        msgs = self.historical([q[0] for q in queries], [q[1] for q in queries], per_message=97)
        self.assertEqual(len(msgs), (2500 + 96) // 97)
        got = self.columns(msgs)["trips_last_hour"]
        for k, (ident, at) in enumerate(queries):
            best = None
            for i, (rid, trips, t) in enumerate(rows):
                if rid == ident and t <= at and (best is None or t >= best[1]):
                    best = (trips, t)
            if best is None:
                want = (None, NOT_FOUND)
            elif best[1] < at - DAY:
                want = (None, OUTSIDE_MAX_AGE)
            else:
                want = (best[0], PRESENT)
            self.assertEqual(got[k][:2], want, "row %d: id %d at %d" % (k, ident, at))

    def test_an_entityless_view_joins_by_time_alone(self):
        sys.path.insert(0, CLIENTS)
        import feature_store_api
        client = feature_store_api.FeatureStoreClient(self.server.target)
        self.addCleanup(client.close)
        base = T0 + 90 * DAY
        client.insert_batch("my_feature", timestamps=[base, base + DAY],
                            data={"x": [1.0, 2.0], "y": [3.0, 4.0]})
        table = {"event_timestamp": [base + 1, base + DAY + 1, base - 1]}
        cols = client.get_historical_features(table, features=["my_feature:x"], as_frame=False)
        self.assertEqual(cols["x"], [1.0, 2.0, None])
        # The same from the command line, on the data directory.
        path = os.path.join(self.server.data_dir, "..", "entityless-%d.csv" % os.getpid())
        with open(path, "w") as f:
            f.write("event_timestamp\n%d\n\r\n%d\n%d\n" % (base + 1, base + DAY + 1, base - 1))
        self.addCleanup(os.unlink, path)
        out = subprocess.run([FSTORE, "history", "--data-dir", self.server.data_dir,
                              "--features", "my_feature:x", path],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(),
                         ["event_timestamp,x", "%d,1" % (base + 1), "%d,2" % (base + DAY + 1),
                          "%d," % (base - 1)])
        # A bad row is named by its line (the blank one counted).
        with open(path, "w") as f:
            f.write("event_timestamp\n%d\n\nsoon\n" % base)
        out = subprocess.run([FSTORE, "history", "--data-dir", self.server.data_dir,
                              "--features", "my_feature:x", path],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1)
        self.assertIn("line 4: event_timestamp 'soon' is not a time", out.stderr)

    def test_the_cli_streams_jsonl_across_chunks_with_extra_columns(self):
        # 25 rows in chunks of 4: every chunk boundary crossed, rows in order, extra columns
        # carried through, a feature as of each row's own time.
        base = T0 + 95 * DAY
        ids = list(range(9500, 9505))
        self.insert(ids, [1, 2, 3, 4, 5], [base] * 5)
        self.insert(ids, [10, 20, 30, 40, 50], [base + 100] * 5)
        path = os.path.join(self.server.data_dir, "..", "jsonl-%d.csv" % os.getpid())
        self.addCleanup(os.unlink, path)
        rows = [(ids[k % 5], base + (150 if k % 2 else 50), "r%d" % k) for k in range(25)]
        with open(path, "w") as f:
            f.write("driver_id,event_timestamp,label\n")
            for ident, t, label in rows:
                f.write("%d,%d,%s\n" % (ident, t, label))
        out = subprocess.run([FSTORE, "history", "--data-dir", self.server.data_dir,
                              "--features", "driver_trips:trips_last_hour", "--format", "jsonl",
                              "--chunk-rows", "4", path],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        got = [json.loads(line) for line in out.stdout.splitlines()]
        self.assertEqual(len(got), 25)
        for (ident, t, label), g in zip(rows, got):
            self.assertEqual((g["driver_id"], g["label"]), (ident, label))
            k = ids.index(ident)
            want = (k + 1) * 10 if t == base + 150 else k + 1
            self.assertEqual(g["trips_last_hour"], want, g)

    def test_feast_http_push_to_offline_writes_the_history_only(self):
        base = T0 + 70 * DAY
        body = {"push_source_name": "driver_trips_push", "to": "offline",
                "df": {"driver_id": [9300], "trips_last_hour": [12],
                       "event_timestamp": [base]}}
        req = urllib.request.Request("http://%s/push" % self.server.http,
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            self.assertEqual(resp.status, 200)
        cols = self.columns(self.historical([9300], [base + 1]))
        self.assertEqual(cols["trips_last_hour"][0][:2], (12, PRESENT))
        r = self.client.get_online_features(features=["driver_trips:trips_last_hour"],
                                            entities={"driver_id": [9300]})
        self.assertEqual(r.statuses["trips_last_hour"], ["NOT_FOUND"])

    def test_load_batch_pages_through_a_view_as_of_a_time(self):
        base = T0 + 60 * DAY
        ids = list(range(9000, 9007))
        self.insert(ids, [i - 9000 for i in ids], [base] * len(ids))
        self.insert([9003], [33], [base + 50])
        seen, token, pages = {}, b"", 0
        while True:
            rq = fstore_pb2.LoadBatchRequest(feature_view="driver_trips", limit=3,
                                             page_token=token)
            rq.timestamp.CopyFrom(ts(base + 10))
            resp = self.stub.LoadBatch(rq, timeout=30)
            names = list(resp.rows.metadata.feature_names.val)
            self.assertEqual(names, ["driver_id", "trips_last_hour"])
            keys = [value(v) for v in resp.rows.results[0].values]
            vals = [value(v) for v in resp.rows.results[1].values]
            seen.update((k, v) for k, v in zip(keys, vals) if 9000 <= k < 9010)
            pages += 1
            token = resp.next_page_token
            if not token:
                break
        self.assertEqual(seen, {i: i - 9000 for i in ids}, "as of base+10: 9003's later row not yet")
        self.assertGreaterEqual(pages, 3)
        # A page token from elsewhere is refused; one of another version of the view too (the
        # request's "driver_trips" could mean another version by the next page).
        rq = fstore_pb2.LoadBatchRequest(feature_view="driver_trips", page_token=b"\x01\x02")
        self.assertRpcError(lambda: self.stub.LoadBatch(rq, timeout=10),
                            grpc.StatusCode.INVALID_ARGUMENT, "bad page token")
        key = (9000 ^ (1 << 63)).to_bytes(8, "big")
        rq = fstore_pb2.LoadBatchRequest(feature_view="driver_trips",
                                         page_token=b"\x00\x00\x00\x02" + key)
        self.assertRpcError(lambda: self.stub.LoadBatch(rq, timeout=10),
                            grpc.StatusCode.FAILED_PRECONDITION, "pages through 'driver_trips@v2'")
        rq.page_token = b"\x00\x00\x00\x01" + key
        resp = self.stub.LoadBatch(rq, timeout=10)
        self.assertNotIn(9000, [value(v) for v in resp.rows.results[0].values],
                         "the page starts after the token's entity")

    def test_the_products_snippet_runs_as_written(self):
        env = dict(os.environ, FSTORE_ADDRESS=self.server.target)
        env["PYTHONPATH"] = os.pathsep.join([CLIENTS, env.get("PYTHONPATH", "")])
        snippet = (
            "from feature_store_api import FeatureStoreClient\n"
            "TIMESTAMP = '2026-01-05T10:00:00Z'\n"
            "client = FeatureStoreClient()\n"
            "client.insert_batch('my_feature', timestamp=TIMESTAMP, data={'x': [1.0, 2.0], 'y': [3.0, 4.0]})\n"
            "batch = client.load_batch('my_feature', timestamp=TIMESTAMP, limit=100)\n"
            "print(list(batch['x']), list(batch['y']))\n")
        out = subprocess.run([sys.executable, "-c", snippet], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        # Entityless: one row; the two rows at one time are one entry (the later one wins).
        self.assertEqual(out.stdout.strip(), "[2.0] [4.0]")

    def test_python_client_get_historical_features(self):
        sys.path.insert(0, CLIENTS)
        import feature_store_api
        client = feature_store_api.FeatureStoreClient(self.server.target)
        self.addCleanup(client.close)
        base = T0 + 80 * DAY
        client.insert_batch("driver_trips", timestamps=[base, base + 60],
                            data={"driver_id": [9100, 9100], "trips_last_hour": [1, 2]})
        when = [datetime.datetime.fromtimestamp(base + 30, datetime.timezone.utc),
                datetime.datetime.fromtimestamp(base + 90, datetime.timezone.utc)]
        table = {"driver_id": [9100, 9100], "event_timestamp": when, "label": [0, 1]}
        cols = client.get_historical_features(table, features=["driver_trips:trips_last_hour"],
                                              as_frame=False, rows_per_call=1)
        self.assertEqual(cols["trips_last_hour"], [1, 2])
        self.assertEqual(cols["label"], [0, 1])
        self.assertEqual(cols["event_timestamp"], when)
        try:
            import pandas
        except ImportError:
            self.skipTest("pandas is not installed (python3-pandas): DataFrame path not run")
        frame = client.get_historical_features(pandas.DataFrame(table),
                                               features=["driver_trips:trips_last_hour"])
        self.assertEqual(sorted(frame.columns[:2]), ["driver_id", "label"])
        self.assertEqual(list(frame.columns[2:]), ["event_timestamp", "trips_last_hour"])
        self.assertEqual(list(frame["trips_last_hour"]), [1, 2])

    def test_bad_requests_name_what_is_wrong(self):
        rq = fstore_pb2.GetHistoricalFeaturesRequest()
        rq.features.val.append("driver_hourly_stats:conv_rate")
        rq.entities["driver_id"].val.add().int64_val = 1001
        rq.event_timestamps.append(ts(T0))
        self.assertRpcError(lambda: list(self.stub.GetHistoricalFeatures(rq, timeout=10)),
                            grpc.StatusCode.INVALID_ARGUMENT, "driver_hourly_stats",
                            "keeps no offline history")
        rq = fstore_pb2.GetHistoricalFeaturesRequest()
        rq.features.val.append("driver_trips:trips_last_hour")
        rq.entities["driver_id"].val.add().int64_val = 1001
        self.assertRpcError(lambda: list(self.stub.GetHistoricalFeatures(rq, timeout=10)),
                            grpc.StatusCode.INVALID_ARGUMENT, "event_timestamps has 0 entries")
        rq.event_timestamps.append(ts(T0))
        rq.features.val.append("driver_trips:nope")
        self.assertRpcError(lambda: list(self.stub.GetHistoricalFeatures(rq, timeout=10)),
                            grpc.StatusCode.NOT_FOUND, "nope")
        # --max-history-rows (50000 here) and --max-entities per message.
        big = fstore_pb2.GetHistoricalFeaturesRequest()
        big.features.val.append("driver_trips:trips_last_hour")
        for _ in range(50001):
            big.entities["driver_id"].val.add().int64_val = 1
        big.event_timestamps.extend([ts(T0)] * 50001)
        self.assertRpcError(lambda: list(self.stub.GetHistoricalFeatures(big, timeout=30)),
                            grpc.StatusCode.INVALID_ARGUMENT, "--max-history-rows")
        rq.features.val.pop()
        rq.rows_per_message = 100000
        self.assertRpcError(lambda: list(self.stub.GetHistoricalFeatures(rq, timeout=10)),
                            grpc.StatusCode.INVALID_ARGUMENT, "--max-entities")
        # insert_batch to a view without history.
        w = fstore_pb2.WriteFeaturesRequest(feature_view="driver_hourly_stats",
                                            to=fstore_pb2.WRITE_TARGET_OFFLINE)
        w.columns["driver_id"].val.add().int64_val = 1
        self.assertRpcError(lambda: self.stub.WriteFeatures(w, timeout=10),
                            grpc.StatusCode.INVALID_ARGUMENT, "keeps no offline history")

    def test_a_client_that_never_reads_a_stream_loses_its_slot_not_the_server(self):
        # A stream holds a write worker's slot (two workers here, one slot each) until its end.
        # Two streams from a client whose window stays 0 take both; --grpc-max-send-ms (2 s
        # here) cancels them, so another client's stream is served within seconds, and writes
        # (their own slots) are served meanwhile.
        rq = fstore_pb2.GetHistoricalFeaturesRequest(rows_per_message=10)
        rq.features.val.append("driver_trips:trips_last_hour")
        for i in range(100):
            rq.entities["driver_id"].val.add().int64_val = i
        rq.event_timestamps.extend([ts(T0)] * 100)
        body = rq.SerializeToString()
        series = ('grpc_server_started_total{grpc_method="GetHistoricalFeatures",'
                  'grpc_service="fstore.v1.OnlineFeatureService",grpc_type="server_stream"}')
        base = self.server.metric(series)
        c = H2Grpc(self.server.port, window=0)
        self.addCleanup(c.close)
        c.pump(lambda: c.remote_max_streams is not None, timeout=5)
        sids = [c.call("/fstore.v1.OnlineFeatureService/GetHistoricalFeatures", body)
                for _ in range(2)]
        # Both slots are held by the stalled streams before anyone else asks.
        self.server.wait_metric(series, base + 2)
        t0 = time.monotonic()
        self.insert([7999], [1], [T0])
        self.assertLess(time.monotonic() - t0, 2.0, "writes keep their own slots")
        msgs = list(self.stub.GetHistoricalFeatures(rq, timeout=20))
        self.assertEqual(sum(len(m.results[0].values) for m in msgs), 100)
        self.assertLess(time.monotonic() - t0, 15.0)
        c.pump(lambda: all(c.streams[s]["ended"] or c.streams[s]["reset"] for s in sids),
               timeout=10)
        self.assertIn("reply_not_taken", self.server.log())


class StreamReloadTest(unittest.TestCase):
    """A catalog reload between two messages of a stream ends it, rather than changing what its
    columns mean halfway."""

    def test_a_reload_mid_stream_ends_it_with_failed_precondition(self):
        tmp = tempfile.mkdtemp(prefix="fstore-offline-reload-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cat = os.path.join(tmp, "catalog")
        shutil.copytree(CATALOG, cat)
        server = Server(catalog=cat, args=["--history", "--max-message-bytes", "67108864",
                                           "--max-history-rows", "200000",
                                           "--catalog-watch-ms", "0"])
        self.addCleanup(server.cleanup)
        server.start()
        stub = fstore_pb2_grpc.OnlineFeatureServiceStub(server.client.channel)
        # 100k rows in 100 messages of ~200 KB: far more than the connection's windows, so the
        # server is still building messages when the catalog changes.
        rq = fstore_pb2.GetHistoricalFeaturesRequest(rows_per_message=1000)
        rq.features.val.append("driver_trips:trips_last_hour")
        ids = rq.entities["driver_id"].val
        pads = rq.entities["pad"].val
        for i in range(100000):
            ids.add().int64_val = i
            pads.add().string_val = "x" * 200
        rq.event_timestamps.extend([ts(T0)] * 100000)
        stream = stub.GetHistoricalFeatures(rq, timeout=120)
        next(stream)
        with open(os.path.join(cat, "offline.yaml"), "a") as f:
            f.write("  - name: extra_view\n    features: [{name: z, dtype: INT64}]\n")
        server.send(signal.SIGHUP)
        server.wait_event("catalog_reloaded")
        with self.assertRaises(grpc.RpcError) as cm:
            for _ in stream:
                pass
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION,
                         cm.exception.details())
        self.assertIn("the catalog changed during the stream", cm.exception.details())
        self.assertEqual(server.stop(), 0)


class SmallEntityLimitTest(ServerTestCase):
    """--max-entities below the join's default message size: a call that leaves
    rows_per_message unset streams messages of --max-entities rows (it was refused)."""
    catalog = CATALOG
    server_args = ("--history", "--max-entities", "5")

    def test_the_default_message_size_stays_within_the_limit(self):
        stub = fstore_pb2_grpc.OnlineFeatureServiceStub(self.client.channel)
        ids = list(range(8101, 8113))
        # online_and_offline: the online row and the history, as Feast's push names it.
        for i in range(0, len(ids), 5):
            self.client.insert_batch("driver_trips", timestamp=T0, to="online_and_offline",
                                     data={"driver_id": ids[i:i + 5],
                                           "trips_last_hour": [x - 8100 for x in ids[i:i + 5]]})
        rq = fstore_pb2.GetHistoricalFeaturesRequest()
        rq.features.val.append("driver_trips:trips_last_hour")
        for i in ids:
            rq.entities["driver_id"].val.add().int64_val = i
            rq.event_timestamps.append(ts(T0 + 60))
        msgs = list(stub.GetHistoricalFeatures(rq, timeout=30))
        self.assertEqual([len(m.results[0].values) for m in msgs], [5, 5, 2])
        got = []
        for m in msgs:
            names = list(m.metadata.feature_names.val)
            got += [v.int64_val for v in m.results[names.index("trips_last_hour")].values]
        self.assertEqual(got, [x - 8100 for x in ids])
        rq.rows_per_message = 6
        self.assertRpcError(lambda: list(stub.GetHistoricalFeatures(rq, timeout=10)),
                            grpc.StatusCode.INVALID_ARGUMENT, "rows_per_message 6",
                            "--max-entities")
        online = self.client.get_online_features(features=["driver_trips:trips_last_hour"],
                                                 entities={"driver_id": ids[:3]})
        self.assertEqual(online["trips_last_hour"], [1, 2, 3])


class NoHistoryTest(ServerTestCase):
    """A serving replica without --history: offline calls say so; online serving is unchanged."""
    catalog = CATALOG

    def test_offline_calls_are_refused_naming_the_flag(self):
        stub = fstore_pb2_grpc.OnlineFeatureServiceStub(self.client.channel)
        rq = fstore_pb2.GetHistoricalFeaturesRequest()
        rq.features.val.append("driver_trips:trips_last_hour")
        rq.entities["driver_id"].val.add().int64_val = 1
        rq.event_timestamps.append(ts(T0))
        self.assertRpcError(lambda: list(stub.GetHistoricalFeatures(rq, timeout=10)),
                            grpc.StatusCode.UNIMPLEMENTED, "--history")
        self.assertRpcError(
            lambda: stub.LoadBatch(fstore_pb2.LoadBatchRequest(feature_view="driver_trips"),
                                   timeout=10),
            grpc.StatusCode.UNIMPLEMENTED, "--history")
        self.assertRpcError(
            lambda: self.client.insert_batch("driver_trips", timestamp=T0,
                                             data={"driver_id": [1], "trips_last_hour": [1]}),
            grpc.StatusCode.UNIMPLEMENTED, "--history")
        # Online writes to the same view work as ever.
        self.assertEqual(self.client.write_features(
            "driver_trips", {"driver_id": [1], "trips_last_hour": [3]})[0], 1)


if __name__ == "__main__":
    unittest.main()

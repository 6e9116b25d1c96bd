# tests/e2e/test_cdc.py - `fstore cdc` into a real PostgreSQL started by the test: a follower
# killed mid-stream resumes with no row missing or doubled, every type arrives as written, the
# table plan refuses what would break, and the README's point-in-time SQL gives what
# GetHistoricalFeatures gives.
import datetime
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from fstore.v1 import fstore_pb2, fstore_pb2_grpc
from harness import FSTORE, SOURCE_DIR, Server
from pg import Postgres
from test_readme import block

CATALOG = os.path.join(SOURCE_DIR, "examples", "catalog")
HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86400


def ts(seconds):
    from google.protobuf.timestamp_pb2 import Timestamp
    t = Timestamp()
    t.seconds = int(seconds)
    return t


def utc(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


class CdcTest(unittest.TestCase):
    """PostgreSQL comes with scripts/install-deps.sh: a machine without it fails here."""

    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres().start()
        cls.addClassCleanup(cls.pg.stop)
        cls.server = Server(catalog=CATALOG, args=["--history"])
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.stub = fstore_pb2_grpc.OnlineFeatureServiceStub(cls.server.client.channel)

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        report = cls.server.sanitizer_report()
        assert report is None, "sanitizer report from fstore:\n" + report
        assert rc == 0, "fstore exited with %s" % rc

    def terminate_others(self):
        """Ends every other session of the cluster (they hold locks until PostgreSQL notices
        their client is gone), and waits until they are."""
        self.pg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        deadline = time.monotonic() + 30
        while int(self.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                              "'client backend' AND pid <> pg_backend_pid()")[0][0]) > 0:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)

    def cdc(self, *args, data_dir=None, check=True):
        out = subprocess.run([FSTORE, "cdc", "--data-dir", data_dir or self.server.data_dir,
                              "--to", self.pg.url] + list(args),
                             capture_output=True, text=True, timeout=120)
        if check:
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out

    def insert(self, rows, to=fstore_pb2.WRITE_TARGET_OFFLINE):
        rq = fstore_pb2.WriteFeaturesRequest(feature_view="driver_trips", to=to)
        for ident, trips, t in rows:
            rq.columns["driver_id"].val.add().int64_val = ident
            rq.columns["trips_last_hour"].val.add().int64_val = trips
            rq.event_timestamps.append(ts(t))
        return self.stub.WriteFeatures(rq, timeout=60)

    def test_1_a_follower_killed_mid_stream_resumes_with_nothing_missing_or_doubled(self):
        rnd = random.Random(3)
        want = {}
        rows = []
        for i in range(30000):
            ident, t = 100 + rnd.randrange(500), T0 + rnd.randrange(30 * DAY)
            rows.append((ident, rnd.randrange(1000), t))
        for start in range(0, len(rows), 5000):
            self.insert(rows[start:start + 5000])
        for ident, trips, t in rows:
            want[(ident, t)] = trips  # a later write of the same (entity, time) wins
        # Small batches. After some have committed, another session locks the position table:
        # the follower's next batch then waits inside its transaction (its rows COPYed and
        # upserted, its position not yet written), and is killed there.
        p = subprocess.Popen([FSTORE, "cdc", "--data-dir", self.server.data_dir, "--to",
                              self.pg.url, "--batch-rows", "300", "--poll-ms", "50"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        copied = 0
        while time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                copied = int(self.pg.sql("SELECT count(*) FROM driver_trips_v1")[0][0])
            except subprocess.CalledProcessError:
                continue  # the table is not there yet
            if copied > 1000:
                break
        locker = subprocess.Popen(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres",
             "-c", "BEGIN; LOCK TABLE fstore_cdc_positions IN ACCESS EXCLUSIVE MODE; "
                   "SELECT pg_sleep(60);"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        waited = False
        while time.monotonic() < deadline and not waited:
            time.sleep(0.05)
            waited = int(self.pg.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO fstore_cdc_positions%'")[0][0]) > 0
        self.assertTrue(waited, "the follower never waited on the position table")
        p.send_signal(signal.SIGKILL)
        p.communicate()
        locker.kill()
        locker.wait()
        # PostgreSQL notices a dead client only when it next talks to it: end both sessions
        # (the killed follower's rolls back) rather than wait for them.
        self.terminate_others()
        committed = int(self.pg.sql("SELECT count(*) FROM driver_trips_v1")[0][0])
        pos = int(self.pg.sql("SELECT position FROM fstore_cdc_positions")[0][0])
        self.assertEqual(committed, len({(i, t) for i, _, t in rows[:pos]}))
        self.assertLess(committed, len(want), "the kill came too late to test anything")
        out = self.cdc("--once")
        self.assertIn("cdc: done", out.stdout)
        got = {(int(i), int(float(e))): int(t) for i, e, t in self.pg.sql(
            "SELECT driver_id, extract(epoch FROM event_timestamp), trips_last_hour "
            "FROM driver_trips_v1 WHERE driver_id BETWEEN 100 AND 599")}
        self.assertEqual(len(got), len(want))
        self.assertEqual(got, want)
        # The position is recorded, and a second pass has nothing to copy.
        pos = self.pg.sql("SELECT position FROM fstore_cdc_positions WHERE source = 'fstore'")
        self.assertEqual(len(pos), 1)
        self.assertGreater(int(pos[0][0]), 0)
        self.assertIn("done, 0 rows", self.cdc("--once").stdout)

    def test_2_deletes_and_later_writes_follow(self):
        base = T0 + 40 * DAY
        # Two writes of one (entity, time) in one batch: one row, the later write's.
        self.insert([(701, 1, base), (701, 2, base)])
        self.insert([(701, 3, base)])
        self.insert([(700, 1, base)], to=fstore_pb2.WRITE_TARGET_ONLINE)
        self.server.client.delete_entities("driver_trips", {"driver_id": [700]})
        self.cdc("--once")
        rows = self.pg.sql("SELECT deleted, trips_last_hour FROM driver_trips_v1 "
                           "WHERE driver_id = 700 ORDER BY event_timestamp")
        self.assertEqual(rows, [["f", "1"], ["t", None]])
        self.assertEqual(self.pg.sql("SELECT trips_last_hour FROM driver_trips_v1 "
                                     "WHERE driver_id = 701"), [["3"]])
        # ... and the position of the last of its three changes: the one just before 700's
        # first (the changes were numbered in the order written).
        p701 = int(self.pg.sql("SELECT fstore_position FROM driver_trips_v1 "
                               "WHERE driver_id = 701")[0][0])
        p700 = int(self.pg.sql("SELECT min(fstore_position) FROM driver_trips_v1 "
                               "WHERE driver_id = 700")[0][0])
        self.assertEqual(p701, p700 - 1)

    def test_3_the_readmes_point_in_time_sql_matches_get_historical_features(self):
        base = T0 + 50 * DAY
        rnd = random.Random(9)
        self.insert([(800 + rnd.randrange(20), rnd.randrange(100), base + rnd.randrange(3 * DAY))
                     for _ in range(400)])
        self.server.client.delete_entities("driver_trips", {"driver_id": [801]})
        self.cdc("--once")
        table = [(800 + rnd.randrange(22), base + rnd.randrange(-DAY, 5 * DAY))
                 for _ in range(300)]
        table.append((801, int(time.time()) + 5))  # after 801's delete
        self.pg.sql("DROP TABLE IF EXISTS entity_df; "
                    "CREATE TABLE entity_df (driver_id bigint, event_timestamp timestamptz); "
                    "INSERT INTO entity_df VALUES " +
                    ", ".join("(%d, to_timestamp(%d))" % r for r in table))
        lang, body = block("pit-sql")
        self.assertEqual(lang, "sql")
        rows = self.pg.sql("\n".join(body))
        sql = {}
        for ident, at, trips in rows:
            sql.setdefault((int(ident), int(float(at))), []).append(
                None if trips is None else int(trips))
        rq = fstore_pb2.GetHistoricalFeaturesRequest()
        rq.features.val.append("driver_trips:trips_last_hour")
        for ident, at in table:
            rq.entities["driver_id"].val.add().int64_val = ident
            rq.event_timestamps.append(ts(at))
        grpc_vals = []
        for m in self.stub.GetHistoricalFeatures(rq, timeout=60):
            names = list(m.metadata.feature_names.val)
            vec = m.results[names.index("trips_last_hour")]
            for v in vec.values:
                grpc_vals.append(v.int64_val if v.WhichOneof("val") == "int64_val" else None)
        self.assertEqual(len(grpc_vals), len(table))
        present = 0
        for (ident, at), want in zip(table, grpc_vals):
            self.assertEqual(sql[(ident, at)][0], want, "driver %d at %d" % (ident, at))
            present += want is not None
        self.assertGreater(present, 50)
        self.assertIsNone(grpc_vals[-1], "deleted by then")

    def test_4_the_table_plan_adds_columns_and_refuses_what_would_break(self):
        self.cdc("--once")
        self.pg.sql("ALTER TABLE driver_trips_v1 DROP COLUMN trips_last_hour")
        out = self.cdc("--plan")
        self.assertIn("~ driver_trips_v1: add column trips_last_hour bigint", out.stdout)
        self.cdc("--once")  # adds it back, last in the table: copies must name their columns
        self.insert([(900, 42, T0 + 60 * DAY)])
        self.cdc("--once")
        self.assertEqual(self.pg.sql("SELECT trips_last_hour, extract(epoch FROM event_timestamp) "
                                     "FROM driver_trips_v1 WHERE driver_id = 900"),
                         [["42", "%d.000000" % (T0 + 60 * DAY)]])
        self.pg.sql("ALTER TABLE driver_trips_v1 ALTER COLUMN trips_last_hour TYPE text")
        out = self.cdc("--once", check=False)
        self.assertEqual(out.returncode, 1)
        self.assertIn("column trips_last_hour is text there, the catalog wants bigint",
                      out.stdout)
        self.assertIn("breaking", out.stderr)
        self.pg.sql("ALTER TABLE driver_trips_v1 ALTER COLUMN trips_last_hour TYPE bigint "
                    "USING trips_last_hour::bigint")
        # Two followers with one source: the second is refused while the first holds it.
        holder = subprocess.Popen(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres",
             "-c", "SELECT pg_advisory_lock(hashtext('fstore_cdc:fstore')); SELECT pg_sleep(60);"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        deadline = time.monotonic() + 30
        while int(self.pg.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0]) == 0:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        out = self.cdc("--once", check=False)
        self.assertEqual(out.returncode, 1)
        self.assertIn("another follower with source 'fstore'", out.stderr)
        holder.kill()
        self.terminate_others()

    def test_5_every_type_arrives_as_written(self):
        server = Server(catalog=os.path.join(HERE, "cdc_catalog.yaml"), args=["--history"])
        self.addCleanup(server.cleanup)
        server.start()
        stub = fstore_pb2_grpc.OnlineFeatureServiceStub(server.client.channel)
        rq = fstore_pb2.WriteFeaturesRequest(feature_view="types", to=fstore_pb2.WRITE_TARGET_OFFLINE)
        c = rq.columns
        c["city"].val.add().string_val = "Zürich\t\"quoted\"\\"
        c["zone"].val.add().int32_val = -7
        c["i64"].val.add().int64_val = -(2 ** 63)
        c["i32"].val.add().int32_val = 2 ** 31 - 1
        c["f32"].val.add().float_val = 0.1
        c["f64"].val.add().double_val = float("nan")
        c["flag"].val.add().bool_val = True
        c["label"].val.add().null_val = 0  # an explicit null
        c["raw"].val.add().bytes_val = b"\x00\xff\\"
        c["seen"].val.add().unix_timestamp_val = T0
        c["i64s"].val.add().int64_list_val.val.extend([1, -2])
        c["f64s"].val.add().double_list_val.val.extend([0.5, -1e-9])
        c["labels"].val.add().string_list_val.val.extend(["a,b", 'q"\\', ""])
        c["raws"].val.add().bytes_list_val.val.extend([b"\x01\x02", b""])
        c["flags"].val.add().bool_list_val.val.extend([True, False])
        rq.event_timestamps.append(ts(T0))
        stub.WriteFeatures(rq, timeout=30)
        # Another data directory: its own position (--source), or it would start at the first's.
        self.cdc("--once", "--source", "types", data_dir=server.data_dir)
        rows = self.pg.sql(
            "SELECT city, zone, i64, i32, f32, f64, flag, label, encode(raw, 'hex'), "
            "extract(epoch FROM seen), i64s, f64s, array_to_json(labels), "
            "array_to_json(ARRAY(SELECT encode(x, 'hex') FROM unnest(raws) x)), flags, deleted "
            "FROM types_v1")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0], [
            "Zürich\t\"quoted\"\\", "-7", str(-(2 ** 63)), str(2 ** 31 - 1), "0.1", "NaN", "t",
            None, "00ff5c", "%d.000000" % T0, "{1,-2}", "{0.5,-1e-09}",
            '["a,b","q\\"\\\\",""]', '["0102",""]', "{t,f}", "f"])
        # A second row: a string with a line break, an empty one, a large double.
        rq2 = fstore_pb2.WriteFeaturesRequest(feature_view="types",
                                              to=fstore_pb2.WRITE_TARGET_OFFLINE)
        rq2.columns["city"].val.add().string_val = ""
        rq2.columns["zone"].val.add().int32_val = 0
        rq2.columns["label"].val.add().string_val = "line\nbreak, comma"
        rq2.columns["f64"].val.add().double_val = 1e300
        rq2.event_timestamps.append(ts(T0))
        stub.WriteFeatures(rq2, timeout=30)
        self.cdc("--once", "--source", "types", data_dir=server.data_dir)
        self.assertEqual(self.pg.sql("SELECT city, label, f64, i64 FROM types_v1 WHERE zone = 0"),
                         [["", "line\nbreak, comma", "1e+300", None]])
        server.stop()

    def test_6_a_running_follower_follows_a_catalog_change(self):
        tmp = tempfile.mkdtemp(prefix="fstore-cdc-cat-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cat = os.path.join(tmp, "catalog.yaml")
        base = ("project: p\nentities: [{name: d, join_keys: [{name: id, type: INT64}]}]\n"
                "feature_views:\n  - name: live\n    entities: [d]\n"
                "    offline: {retention: 0}\n    features:\n      - {name: a, dtype: INT64}\n")
        with open(cat, "w") as f:
            f.write(base)
        server = Server(catalog=cat, args=["--history", "--catalog-watch-ms", "0"])
        self.addCleanup(server.cleanup)
        server.start()
        server.client.write_features("live", {"id": [1], "a": [10]}, event_timestamps=[T0])
        p = subprocess.Popen([FSTORE, "cdc", "--data-dir", server.data_dir, "--to", self.pg.url,
                              "--source", "live", "--poll-ms", "50"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(p.kill)

        def wait_rows(query, want):
            deadline = time.monotonic() + 30
            while True:
                try:
                    if self.pg.sql(query) == want:
                        return
                except subprocess.CalledProcessError:
                    pass
                self.assertLess(time.monotonic(), deadline, "never: %s" % want)
                time.sleep(0.05)

        wait_rows("SELECT id, a FROM live_v1", [["1", "10"]])
        # A feature appended to the same version (a safe change), reloaded on SIGHUP.
        with open(cat, "w") as f:
            f.write(base + "      - {name: b, dtype: STRING}\n")
        server.send(signal.SIGHUP)
        server.wait_event("catalog_reloaded")
        server.client.write_features("live", {"id": [2], "a": [20], "b": ["x"]},
                                     event_timestamps=[T0 + 1])
        wait_rows("SELECT id, a, b FROM live_v1 ORDER BY id", [["1", "10", None], ["2", "20", "x"]])
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("add column b text", out)
        server.stop()


    def test_8_an_ingest_into_the_served_directory_and_the_server_number_changes_apart(self):
        # Two processes write one data directory (the server, and fstore ingest --data-dir):
        # each numbers its change-feed entries from the counter in the file, never from a copy
        # of its own, so neither puts entries over the other's and CDC sees every row.
        base = T0 + 70 * DAY
        self.cdc("--once")
        self.insert([(901, 1, base)])
        tmp = tempfile.mkdtemp(prefix="fstore-e2e-cdc-ingest-")
        self.addCleanup(shutil.rmtree, tmp, True)
        rows = os.path.join(tmp, "rows.csv")
        with open(rows, "w") as f:
            f.write("driver_id,trips_last_hour,event_timestamp\n")
            for k in range(3):
                f.write("%d,%d,%d\n" % (902 + k, 10 + k, base + 60))
        out = subprocess.run([FSTORE, "ingest", "--data-dir", self.server.data_dir, "--view",
                              "driver_trips", "--to", "offline", rows],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.insert([(905, 5, base + 120)])
        self.insert([(906, 6, base + 180)])
        self.cdc("--once")
        got = sorted((int(i), int(t)) for i, t in self.pg.sql(
            "SELECT driver_id, trips_last_hour FROM driver_trips_v1 "
            "WHERE driver_id BETWEEN 901 AND 906"))
        self.assertEqual(got, [(901, 1), (902, 10), (903, 11), (904, 12), (905, 5), (906, 6)])

    def test_7_a_follower_of_the_stream_needs_no_serving_node_with_history(self):
        # One nats-server, one serving node without history taking writes; the follower keeps
        # its own history replica of the log, and its positions are the stream's sequences.
        from test_replication import NatsCluster
        nats = NatsCluster(1)
        self.addCleanup(nats.cleanup)
        nats.start()
        node = Server(catalog=CATALOG, args=["--replication", nats.urls()])
        self.addCleanup(node.cleanup)
        node.start()
        stub = fstore_pb2_grpc.OnlineFeatureServiceStub(node.client.channel)
        seqs = []
        for i, to in enumerate((fstore_pb2.WRITE_TARGET_ONLINE, fstore_pb2.WRITE_TARGET_OFFLINE)):
            rq = fstore_pb2.WriteFeaturesRequest(feature_view="driver_trips", to=to)
            for k in range(3):
                rq.columns["driver_id"].val.add().int64_val = 5000 + k
                rq.columns["trips_last_hour"].val.add().int64_val = 10 * i + k
                rq.event_timestamps.append(ts(T0 + 70 * DAY + i))
            seqs.append(stub.WriteFeatures(rq, timeout=30).sequence)
        replica = tempfile.mkdtemp(prefix="fstore-cdc-replica-")
        self.addCleanup(shutil.rmtree, replica, True)
        out = subprocess.run([FSTORE, "cdc", "--replication", nats.urls(), "--catalog", CATALOG,
                              "--data-dir", replica, "--to", self.pg.url, "--source", "stream",
                              "--once"], capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        rows = self.pg.sql("SELECT driver_id, trips_last_hour, fstore_position, "
                           "fstore_position_index FROM driver_trips_v1 WHERE driver_id >= 5000 "
                           "AND driver_id < 5003 ORDER BY event_timestamp, driver_id")
        self.assertEqual(rows, [[str(5000 + k), str(k), str(seqs[0]), str(k)] for k in range(3)] +
                         [[str(5000 + k), str(10 + k), str(seqs[1]), str(k)] for k in range(3)])
        pos = self.pg.sql("SELECT position FROM fstore_cdc_positions WHERE source = 'stream'")
        self.assertEqual(pos, [[str(seqs[1])]])
        node.stop()


if __name__ == "__main__":
    unittest.main()

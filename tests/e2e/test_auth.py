# tests/e2e/test_auth.py - bearer tokens and scopes on every method, gRPC and HTTP alike.
"""--tokens-file: a file of SHA-256 hashes with scopes. Every gRPC method and HTTP route needs
its scope (reads read, writes and deletes write, the catalog, replication status and snapshots
admin); health checks, /ping and /metrics stay open for probes. Missing or unknown tokens are
UNAUTHENTICATED / 401, a missing scope PERMISSION_DENIED / 403 naming the principal and the
scope, in Feast's error body over HTTP; tokens never reach a message or a log line; every write
and delete leaves an audit line."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
import unittest

import grpc

from fstore.v1 import fstore_pb2, fstore_pb2_grpc
from fstore_client import FeatureStoreClient
from harness import Server
import jwt_tool

TOKENS = {"reader": "r-7f3a-secret", "writer": "w-91bc-secret", "ops": "a-c0de-secret"}
SCOPES = {"reader": "read", "writer": "read,write", "ops": "admin"}


def http_post(server, path, body, token=None):
    """(status, body) of a JSON POST to server's HTTP listener, with a bearer token or none."""
    req = urllib.request.Request("http://%s%s" % (server.http, path),
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="fstore-auth-")
        cls.addClassCleanup(shutil.rmtree, cls.d, True)
        path = os.path.join(cls.d, "tokens")
        with open(path, "w") as f:
            f.write("# principals of the test\n")
            for name, token in TOKENS.items():
                f.write("%s %s %s\n" % (name, hashlib.sha256(token.encode()).hexdigest(),
                                         SCOPES[name]))
        cls.server = Server(args=["--tokens-file", path])
        cls.addClassCleanup(cls.server.cleanup)
        # The harness waits for SERVING through Health/Check, which needs no token.
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        log = cls.server.log()
        assert cls.server.stop() == 0, log[-2000:]
        assert cls.server.sanitizer_report() is None

    def client(self, who):
        md = [] if who is None else [("authorization", "Bearer " + TOKENS.get(who, who))]
        ch = grpc.insecure_channel(self.server.target)
        self.addCleanup(ch.close)
        stub = fstore_pb2_grpc.OnlineFeatureServiceStub(ch)
        return stub, md

    def code(self, fn):
        try:
            fn()
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()

    # Every gRPC method the server serves and the scope it needs (BeginSnapshot, admin like the
    # other snapshot methods, is left out: an allowed call would make a snapshot).
    METHODS = {
        "/feast.serving.ServingService/GetOnlineFeatures": "read",
        "/fstore.v1.OnlineFeatureService/GetOnlineFeatures": "read",
        "/feast.serving.ServingService/GetFeastServingInfo": "read",
        "/tensorflow.serving.PredictionService/Predict": "read",
        "/fstore.v1.OnlineFeatureService/LoadBatch": "read",
        "/fstore.v1.OnlineFeatureService/WriteFeatures": "write",
        "/fstore.v1.OnlineFeatureService/DeleteEntities": "write",
        "/fstore.v1.OnlineFeatureService/GetCatalog": "admin",
        "/fstore.v1.OnlineFeatureService/GetReplicationStatus": "admin",
        "/fstore.v1.OnlineFeatureService/ReadSnapshot": "admin",
        "/fstore.v1.OnlineFeatureService/EndSnapshot": "admin",
        "/fstore.v1.OnlineFeatureService/CollectGarbage": "admin",
        "/grpc.health.v1.Health/Check": None,
    }
    HAS = {"reader": {"read"}, "writer": {"read", "write"}, "ops": {"read", "write", "admin"}}

    def call(self, path, who):
        """The status of path called with an empty request as who (None: no token)."""
        ch = grpc.insecure_channel(self.server.target)
        self.addCleanup(ch.close)
        md = [] if who is None else [("authorization", "Bearer " + TOKENS.get(who, who))]
        try:
            ch.unary_unary(path)(b"", metadata=md, timeout=10)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()

    def test_begin_snapshot_needs_admin(self):
        # Only the refusals: an allowed call would make a snapshot.
        for who in ("reader", "writer", None, "not-a-token"):
            with self.subTest(who=who):
                code, details = self.call("/fstore.v1.OnlineFeatureService/BeginSnapshot", who)
                self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED if who in self.HAS
                                 else grpc.StatusCode.UNAUTHENTICATED, details)

    def test_the_streamed_history_join_needs_read(self):
        # Server-streaming: called as a stream (the table above calls unary methods).
        denied = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
        path = "/fstore.v1.OnlineFeatureService/GetHistoricalFeatures"
        for who in ("reader", "ops", None, "not-a-token"):
            with self.subTest(who=who):
                ch = grpc.insecure_channel(self.server.target)
                self.addCleanup(ch.close)
                md = [] if who is None else [("authorization", "Bearer " + TOKENS.get(who, who))]
                try:
                    list(ch.unary_stream(path)(b"", metadata=md, timeout=10))
                    code = grpc.StatusCode.OK
                except grpc.RpcError as e:
                    code = e.code()
                if who in self.HAS:
                    self.assertNotIn(code, denied)
                else:
                    self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)

    def test_one_authorization_entry_of_text(self):
        ch = grpc.insecure_channel(self.server.target)
        self.addCleanup(ch.close)
        two = [("authorization", "Bearer " + TOKENS["ops"]),
               ("authorization", "Bearer " + TOKENS["reader"])]
        with self.assertRaises(grpc.RpcError) as cm:
            ch.unary_unary("/fstore.v1.OnlineFeatureService/GetCatalog")(
                b"", metadata=two, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_every_method_needs_its_scope(self):
        denied = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
        for path, scope in self.METHODS.items():
            for who in ("reader", "writer", "ops", None, "not-a-token"):
                with self.subTest(method=path, who=who):
                    code, details = self.call(path, who)
                    if scope is None or (who in self.HAS and scope in self.HAS[who]):
                        self.assertNotIn(code, denied, details)
                    elif who in self.HAS:
                        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, details)
                        self.assertIn("'%s' lacks the '%s' scope" % (who, scope), details)
                    else:
                        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, details)
                        self.assertNotIn("not-a-token", details)

    def test_probes_stay_open(self):
        self.assertEqual(FeatureStoreClient(self.server.target).health(), "SERVING")
        for path in ("/health", "/ping", "/metrics"):
            with urllib.request.urlopen("http://%s%s" % (self.server.http, path),
                                        timeout=10) as r:
                self.assertEqual(r.status, 200)

    def http(self, path, body, token=None):
        return http_post(self.server, path, body, token)

    def test_http_routes_answer_401_and_403_as_feast_does(self):
        read = {"features": ["driver_stats@v1:trips"], "entities": {"driver_id": [1]}}
        write = {"feature_view_name": "driver_stats@v1",
                 "df": {"driver_id": [5], "trips": [5]}}
        status, raw = self.http("/get-online-features", read)
        self.assertEqual(status, 401)
        err = json.loads(json.loads(raw))
        self.assertEqual(err["class"], "FeastPermissionError")
        self.assertIn("Bearer", err["message"])
        self.assertEqual(self.http("/get-online-features", read, TOKENS["reader"])[0], 200)
        status, raw = self.http("/write-to-online-store", write, TOKENS["reader"])
        self.assertEqual(status, 403)
        self.assertIn("'reader' lacks the 'write' scope", json.loads(json.loads(raw))["message"])
        self.assertEqual(self.http("/write-to-online-store", write, TOKENS["writer"])[0], 200)
        status, _ = self.http("/write-to-online-store", write, "wrong")
        self.assertEqual(status, 401)
        # Every other route that reads or writes.
        push = {"push_source_name": "none", "df": {"driver_id": [1]}, "to": "online"}
        routes = [("/push", push, "write"),
                  ("/invocations", {"instances": [1]}, "read"),
                  ("/v1/models/m:predict", {"instances": [1]}, "read")]
        for path, body, scope in routes:
            with self.subTest(path=path):
                self.assertEqual(self.http(path, body)[0], 401)
                status, raw = self.http(path, body, TOKENS["reader"])
                if scope == "write":
                    self.assertEqual(status, 403, raw)
                else:
                    self.assertNotIn(status, (401, 403), raw)
                self.assertNotIn(self.http(path, body, TOKENS["writer"])[0], (401, 403))
        req = urllib.request.Request("http://%s/v1/models/m" % self.server.http)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(cm.exception.code, 401)

    def test_no_body_is_buffered_for_a_caller_without_the_scope(self):
        import socket
        with socket.create_connection(("127.0.0.1", self.server.http_port), timeout=10) as s:
            s.sendall(b"POST /write-to-online-store HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 4000000\r\n\r\n")
            data = s.recv(65536)
        self.assertTrue(data.startswith(b"HTTP/1.1 401"), data[:200])

    def test_writes_are_audited_and_tokens_never_logged(self):
        stub, md = self.client("writer")
        req = fstore_pb2.WriteFeaturesRequest(feature_view="driver_stats@v1")
        req.columns["driver_id"].val.add().int64_val = 9
        req.columns["trips"].val.add().int64_val = 9
        stub.WriteFeatures(req, metadata=md, timeout=10)
        stub.DeleteEntities(fstore_pb2.DeleteEntitiesRequest(
            feature_view="driver_stats@v1",
            entities={"driver_id": req.columns["driver_id"]}), metadata=md, timeout=10)
        # CollectGarbage (which deletes rows) and a whole-store snapshot are said too.
        ops, ops_md = self.client("ops")
        ops.CollectGarbage(fstore_pb2.CollectGarbageRequest(), metadata=ops_md, timeout=30)
        snap = ops.BeginSnapshot(fstore_pb2.BeginSnapshotRequest(), metadata=ops_md, timeout=30)
        ops.EndSnapshot(fstore_pb2.EndSnapshotRequest(snapshot_id=snap.snapshot_id),
                        metadata=ops_md, timeout=30)
        audits = self.server.events("audit")
        self.assertTrue(any(a["principal"] == "ops" and a["op"] == "collect_garbage" and
                            a["result"] == "ok" for a in audits), audits)
        self.assertTrue(any(a["principal"] == "ops" and a["op"] == "snapshot" and
                            a["count"] == snap.size_bytes for a in audits), audits)
        self.assertTrue(any(a["principal"] == "writer" and a["op"] == "write" and
                            a["view"] == "driver_stats" and a["rows"] == 1 and
                            a["result"] == "ok" for a in audits), audits)
        self.assertTrue(any(a["principal"] == "writer" and a["op"] == "delete"
                            for a in audits), audits)
        log = self.server.log()
        for token in list(TOKENS.values()) + ["not-a-token", "wrong"]:
            self.assertNotIn(token, log)



class TokenRotation(unittest.TestCase):
    """SIGHUP reads --tokens-file again: a rotated token works at once on gRPC and HTTP, the old
    one is refused, and a file that does not load keeps the principals the server had."""

    def write(self, lines):
        with open(self.path, "w") as f:
            for name, token, scopes in lines:
                f.write("%s %s %s\n" % (name, hashlib.sha256(token.encode()).hexdigest(), scopes))

    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="fstore-rotate-")
        self.addCleanup(shutil.rmtree, self.d, True)
        self.path = os.path.join(self.d, "tokens")
        self.write([("alice", "alice-old", "read")])
        self.server = Server(args=["--tokens-file", self.path])
        self.addCleanup(self.server.cleanup)
        self.server.start()
        self.ch = grpc.insecure_channel(self.server.target)
        self.addCleanup(self.ch.close)
        self.stub = fstore_pb2_grpc.OnlineFeatureServiceStub(self.ch)

    def tearDown(self):
        assert self.server.stop() == 0, self.server.log()[-2000:]
        assert self.server.sanitizer_report() is None

    def grpc_code(self, token):
        req = fstore_pb2.GetCatalogRequest()
        try:
            self.stub.GetCatalog(req, metadata=[("authorization", "Bearer " + token)], timeout=30)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            # GetCatalog needs admin: a known token without it is PERMISSION_DENIED
            return e.code()

    def http_code(self, token):
        req = urllib.request.Request("http://%s/get-online-features" % self.server.http,
                                     data=json.dumps({"features": ["driver_stats:conv_rate"],
                                                      "entities": {"driver_id": [1]}}).encode(),
                                     headers={"Authorization": "Bearer " + token}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    def test_sighup_rotates_tokens_and_a_bad_file_keeps_the_old_ones(self):
        self.assertEqual(self.grpc_code("alice-old"), grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(self.http_code("alice-old"), 200)
        self.write([("alice", "alice-new", "read"), ("ops", "ops-token", "admin")])
        self.server.send(signal.SIGHUP)
        self.server.wait_event("tokens_reloaded")
        self.assertEqual(self.grpc_code("alice-old"), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.http_code("alice-old"), 401)
        self.assertEqual(self.http_code("alice-new"), 200)
        self.assertEqual(self.grpc_code("ops-token"), grpc.StatusCode.OK)
        # a broken file: logged, and the principals stay as they were
        with open(self.path, "w") as f:
            f.write("mallory not-a-hash admin\n")
        self.server.send(signal.SIGHUP)
        ev = self.server.wait_event("tokens_reload_rejected")[0]
        self.assertIn(":1:", ev["error"])
        self.assertEqual(self.grpc_code("ops-token"), grpc.StatusCode.OK)
        self.assertEqual(self.http_code("alice-new"), 200)
        self.assertNotIn("alice-new", self.server.log())


class LimitedScopes(unittest.TestCase):
    """Scopes limited to named views, feature services and models: a principal reads, writes
    and predicts with those alone, over gRPC and HTTP, and is refused PERMISSION_DENIED / 403
    naming the resource before anything is read; the Python client sends its token."""
    LIMITED = {
        # the ranking service: one feature service, one model, writes to one view
        "ranker": ("k-5e11-secret", "read:service/scoring,read:model/zone,write:view/zone_stats"),
        # an analyst of drivers: every feature of one view, nothing else
        "analyst": ("n-2b7d-secret", "read:view/driver_stats"),
        "ops": ("o-77aa-secret", "admin"),
    }

    @classmethod
    def setUpClass(cls):
        from test_predict import render_catalog
        cls.d = tempfile.mkdtemp(prefix="fstore-auth-limited-")
        cls.addClassCleanup(shutil.rmtree, cls.d, True)
        cat_dir, catalog = render_catalog(1, 1)
        cls.addClassCleanup(shutil.rmtree, cat_dir, True)
        path = os.path.join(cls.d, "tokens")
        with open(path, "w") as f:
            for name, (token, scopes) in cls.LIMITED.items():
                f.write("%s %s %s\n" % (name, hashlib.sha256(token.encode()).hexdigest(), scopes))
        # One worker: a list asked twice meets the worker's cache of resolved lists.
        cls.server = Server(catalog=catalog, args=["--tokens-file", path, "--workers", "1"])
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        with FeatureStoreClient(cls.server.target, token=cls.LIMITED["ops"][0]) as c:
            c.write_features("driver_stats", {"driver_id": [1, 2], "conv_rate": [0.5, 0.25],
                                              "acc_rate": [0.75, 0.5], "trips": [3, 4]})
            c.write_features("customer_stats", {"customer_id": ["c1"], "spend": [9.5]})
            c.write_features("zone_stats", {"zone_id": [7], "surge": [1.5]})

    @classmethod
    def tearDownClass(cls):
        log = cls.server.log()
        assert cls.server.stop() == 0, log[-2000:]
        assert cls.server.sanitizer_report() is None

    def client(self, who):
        c = FeatureStoreClient(self.server.target, token=self.LIMITED[who][0])
        self.addCleanup(c.close)
        return c

    def denied(self, fn, *fragments):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED,
                         cm.exception.details())
        for f in fragments:
            self.assertIn(f, cm.exception.details())

    def test_reads_of_granted_views_and_services_only(self):
        a = self.client("analyst")
        r = a.get_online_features(features=["driver_stats:conv_rate", "driver_stats:trips"],
                                  entities={"driver_id": [1, 2]})
        self.assertEqual(r["trips"], [3, 4])
        r = a.get_online_features(feature_service="driver_all", entities={"driver_id": [1]})
        self.assertEqual(r.statuses["conv_rate"], ["PRESENT"], "every view of it granted")
        self.denied(lambda: a.get_online_features(
            features=["driver_stats:trips", "customer_stats:spend"],
            entities={"driver_id": [1], "customer_id": ["c1"]}),
            "principal 'analyst' may not read feature view 'customer_stats'")
        self.denied(lambda: a.get_online_features(
            feature_service="driver_customer", entities={"driver_id": [1], "customer_id": ["c1"]}),
            "may not read feature service 'driver_customer'")
        # The same list asked again (the worker's cache of resolved lists) is refused again.
        self.denied(lambda: a.get_online_features(
            features=["driver_stats:trips", "customer_stats:spend"],
            entities={"driver_id": [1], "customer_id": ["c1"]}), "customer_stats")
        rk = self.client("ranker")
        r = rk.get_online_features(feature_service="scoring", entities={"driver_id": [2]})
        self.assertEqual(r["trips"], [4])
        self.denied(lambda: rk.get_online_features(features=["driver_stats:trips"],
                                                   entities={"driver_id": [2]}),
                    "'ranker' may not read feature view 'driver_stats'")
        self.denied(lambda: rk.get_online_features(feature_service="driver_all",
                                                   entities={"driver_id": [2]}),
                    "may not read feature service 'driver_all'")

    def test_writes_to_granted_views_only_and_no_write_scope_is_refused_at_the_headers(self):
        rk = self.client("ranker")
        # No admin scope, so no catalog to type values from: the caller names the types.
        self.assertEqual(rk.write_features("zone_stats", {"zone_id": [8], "surge": [2.0]},
                                           dtypes={"zone_id": "INT32", "surge": "FLOAT"}), (1, 0))
        self.denied(lambda: rk.write_features("driver_stats", {"driver_id": [9], "trips": [1]}),
                    "'ranker' may not write feature view 'driver_stats'")
        self.denied(lambda: rk.delete_entities("driver_stats", {"driver_id": [1]}),
                    "may not write feature view 'driver_stats'")
        self.denied(lambda: self.client("analyst").write_features(
            "driver_stats", {"driver_id": [9], "trips": [1]}), "lacks the 'write' scope")
        self.denied(lambda: self.client("analyst").get_catalog(), "lacks the 'admin' scope")
        r = self.client("ops").get_online_features(features=["driver_stats:trips"],
                                                   entities={"driver_id": [9]})
        self.assertEqual(r.statuses["trips"], ["NOT_FOUND"], "nothing refused was written")

    def test_predict_of_granted_models_only(self):
        from test_predict import predict_request
        from upstream_model_server import make_tensor
        from tensorflow_serving.apis import prediction_service_pb2_grpc
        ch = grpc.insecure_channel(self.server.target)
        self.addCleanup(ch.close)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)

        def predict(who, model, inputs):
            md = [("authorization", "Bearer " + self.LIMITED[who][0])]
            return stub.Predict(predict_request(model, inputs), metadata=md, timeout=10)

        resp = predict("ranker", "zone", {"zone": make_tensor("DT_INT32", [7])})
        self.assertIn("surge", resp.outputs)
        self.denied(lambda: predict("ranker", "driver_features",
                                    {"driver_id": make_tensor("DT_INT64", [1])}),
                    "'ranker' may not read model 'driver_features'")
        self.denied(lambda: predict("analyst", "zone", {"zone": make_tensor("DT_INT32", [7])}),
                    "'analyst' may not read model 'zone'")

    def http(self, path, body, who):
        return http_post(self.server, path, body, self.LIMITED[who][0])

    def test_http_routes_check_the_same_grants(self):
        ok = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1]}}
        status, raw = self.http("/get-online-features", ok, "analyst")
        self.assertEqual(status, 200, raw)
        bad = {"features": ["customer_stats:spend"], "entities": {"customer_id": ["c1"]}}
        status, raw = self.http("/get-online-features", bad, "analyst")
        self.assertEqual(status, 403, raw)
        err = json.loads(json.loads(raw))
        self.assertEqual(err["class"], "FeastPermissionError")
        self.assertIn("may not read feature view 'customer_stats'", err["message"])
        status, raw = self.http("/write-to-online-store",
                                {"feature_view_name": "zone_stats",
                                 "df": {"zone_id": [9], "surge": [1.25]}}, "ranker")
        self.assertEqual(status, 200, raw)
        status, raw = self.http("/write-to-online-store",
                                {"feature_view_name": "customer_stats",
                                 "df": {"customer_id": ["c9"], "spend": [1.0]}}, "ranker")
        self.assertEqual(status, 403, raw)
        status, raw = self.http("/v1/models/zone:predict", {"instances": [{"zone": 7}]}, "ranker")
        self.assertEqual(status, 200, raw)
        status, raw = self.http("/v1/models/pair:predict",
                                {"instances": [{"driver": 1, "customer": "c1"}]}, "ranker")
        self.assertEqual(status, 403, raw)
        self.assertIn(b"may not read model 'pair'", raw)

    def test_offline_reads_and_unknown_names_tell_a_limited_principal_nothing(self):
        a = self.client("analyst")
        self.denied(lambda: a.load_batch("customer_stats"),
                    "'analyst' may not read feature view 'customer_stats'")
        self.denied(lambda: a.get_historical_features(
            {"customer_id": ["c1"], "event_timestamp": [1700000000]},
            features=["customer_stats:spend"]), "may not read feature view 'customer_stats'")
        # Names it was not given are not listed to it, nor told apart from missing ones.
        for fn in (lambda: a.get_online_features(features=["secret_view:x"],
                                                 entities={"driver_id": [1]}),
                   lambda: a.load_batch("secret_view")):
            with self.assertRaises(grpc.RpcError) as cm:
                fn()
            self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
            self.assertIn("or it does not exist", cm.exception.details())
            self.assertNotIn("driver_stats", cm.exception.details())
        status, raw = self.http("/v1/models/nope:predict", {"instances": [{"zone": 7}]}, "ranker")
        self.assertEqual(status, 403, raw)
        self.assertNotIn(b"driver_features", raw, "no list of the bindings")

    def test_model_routes_over_http_check_the_grant_before_the_binding(self):
        req = urllib.request.Request("http://%s/v1/models/pair" % self.server.http,
                                     headers={"Authorization": "Bearer " +
                                              self.LIMITED["ranker"][0]})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(cm.exception.code, 403)
        req = urllib.request.Request("http://%s/v1/models/zone" % self.server.http,
                                     headers={"Authorization": "Bearer " +
                                              self.LIMITED["ranker"][0]})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
        for ctype, body in (("application/json", b'{"instances": [{"driver": 1, "customer": "c1"}]}'),
                            ("text/csv", b"1,c1\n")):
            req = urllib.request.Request(
                "http://%s/invocations" % self.server.http, data=body, method="POST",
                headers={"Content-Type": ctype, "Accept": ctype,
                         "X-Amzn-SageMaker-Custom-Attributes": "model=pair",
                         "Authorization": "Bearer " + self.LIMITED["ranker"][0]})
            with self.subTest(ctype=ctype):
                with self.assertRaises(urllib.error.HTTPError) as cm:
                    urllib.request.urlopen(req, timeout=10)
                self.assertEqual(cm.exception.code, 403)
                self.assertIn(b"may not read model 'pair'", cm.exception.read())


if __name__ == "__main__":
    unittest.main()


class Jwt(unittest.TestCase):
    """--jwks-file: bearer JWTs (a Kubernetes projected service-account token, an identity
    provider's access token) signed by the JWKS's keys, for --jwt-issuer and --jwt-audience; the
    subject's scopes are its jwt: line of the tokens file. Tokens made by PyJWT."""
    ISS = "https://kubernetes.default.svc.cluster.local"
    SA = "system:serviceaccount:ml:trainer"

    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="fstore-jwt-")
        cls.addClassCleanup(shutil.rmtree, cls.d, True)
        cls.jwks = jwt_tool.make_keys(cls.d)
        cls.tokens = os.path.join(cls.d, "tokens")
        with open(cls.tokens, "w") as f:
            f.write("trainer jwt:%s read,write\n" % cls.SA)
            f.write("dashboards jwt:dashboards read\n")
            f.write("reader %s read\n" % hashlib.sha256(b"r-7f3a-secret").hexdigest())
        cls.server = Server(args=["--tokens-file", cls.tokens, "--jwks-file", cls.jwks,
                                  "--jwt-issuer", cls.ISS, "--jwt-audience", "fstore"])
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        log = cls.server.log()
        assert cls.server.stop() == 0, log[-2000:]
        assert cls.server.sanitizer_report() is None

    def token(self, sub=SA, alg="RS256", kid="rsa1", **claims):
        c = {"iss": self.ISS, "aud": ["fstore"], "exp": "+600", "iat": "-5", "sub": sub}
        c.update(claims)
        return jwt_tool.sign(self.d, alg, kid, c)

    def write(self, token):
        ch = grpc.insecure_channel(self.server.target)
        self.addCleanup(ch.close)
        stub = fstore_pb2_grpc.OnlineFeatureServiceStub(ch)
        req = fstore_pb2.WriteFeaturesRequest(feature_view="driver_stats@v1")
        req.columns["driver_id"].val.add().int64_val = 41
        req.columns["trips"].val.add().int64_val = 7
        try:
            stub.WriteFeatures(req, metadata=[("authorization", "Bearer " + token)], timeout=10)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()

    def test_a_service_account_token_writes_with_its_subjects_scopes(self):
        tok = self.token()
        self.assertEqual(self.write(tok), (grpc.StatusCode.OK, ""))
        # Again: answered from what the first call verified.
        self.assertEqual(self.write(tok)[0], grpc.StatusCode.OK)
        self.assertEqual(self.write(self.token(alg="ES256", kid="ec1"))[0], grpc.StatusCode.OK)
        audits = self.server.events("audit")
        self.assertTrue(any(a["principal"] == "trainer" and a["op"] == "write" for a in audits),
                        audits)
        # The read-only subject: refused naming it; a subject with no line: refused naming it.
        code, msg = self.write(self.token(sub="dashboards"))
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("'dashboards' lacks the 'write' scope", msg)
        code, msg = self.write(self.token(sub="system:serviceaccount:ml:other"))
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("subject 'system:serviceaccount:ml:other' holds no scope", msg)
        # Hashed tokens still work beside JWTs.
        status, _ = http_post(self.server, "/get-online-features",
                              {"features": ["driver_stats@v1:trips"],
                               "entities": {"driver_id": [41]}}, "r-7f3a-secret")
        self.assertEqual(status, 200)
        self.assertNotIn(tok, self.server.log())

    def test_forged_expired_and_foreign_tokens_are_unauthenticated_naming_why(self):
        cases = [
            (self.token(alg="none"), "algorithm 'none' is not accepted"),
            (self.token(alg="HS256-pub"), "algorithm 'HS256' is not accepted"),
            (self.token(exp="-300"), "expired"),
            (self.token(aud="other-service"), "audience does not hold 'fstore'"),
            (self.token(iss="https://evil.example"), "issuer is not"),
            (self.token(kid="gone"), "key 'gone' is not in the JWKS file"),
            (self.token()[:-4] + "AAAA", "signature does not verify"),
        ]
        for tok, why in cases:
            with self.subTest(why=why):
                code, msg = self.write(tok)
                self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, msg)
                self.assertIn(why, msg)
                # HTTP: 401 in Feast's error body, the same words.
                status, body = http_post(self.server, "/write-to-online-store", {
                    "feature_view_name": "driver_stats@v1",
                    "df": {"driver_id": [41], "trips": [1],
                           "event_timestamp": ["2026-01-01T00:00:00Z"]}}, tok)
                self.assertEqual(status, 401, body)
                self.assertIn(why, body.decode())
        log = self.server.log()
        for tok, _ in cases:
            self.assertNotIn(tok.split(".")[2] or tok, log)


class JwtRotation(unittest.TestCase):
    """SIGHUP reads the JWKS file again: tokens of a key taken out are refused at once (even one
    the server verified before), and a JWKS that does not load keeps the keys in use."""

    def test_sighup_rotates_the_signing_keys(self):
        d = tempfile.mkdtemp(prefix="fstore-jwtrot-")
        self.addCleanup(shutil.rmtree, d, True)
        old = os.path.join(d, "old")
        os.mkdir(old)
        jwks = jwt_tool.make_keys(old)
        tokens = os.path.join(d, "tokens")
        with open(tokens, "w") as f:
            f.write("ops jwt:ops admin\n")
        s = Server(args=["--tokens-file", tokens, "--jwks-file", jwks, "--jwt-issuer", "iss",
                         "--jwt-audience", "fstore"])
        self.addCleanup(s.cleanup)
        s.start()
        ch = grpc.insecure_channel(s.target)
        self.addCleanup(ch.close)
        stub = fstore_pb2_grpc.OnlineFeatureServiceStub(ch)

        def catalog(token):
            try:
                stub.GetCatalog(fstore_pb2.GetCatalogRequest(),
                                metadata=[("authorization", "Bearer " + token)], timeout=10)
                return grpc.StatusCode.OK
            except grpc.RpcError as e:
                return e.code()

        claims = {"iss": "iss", "aud": "fstore", "exp": "+600", "sub": "ops"}
        old_tok = jwt_tool.sign(old, "RS256", "rsa1", claims)
        self.assertEqual(catalog(old_tok), grpc.StatusCode.OK)
        # New keys (same kids), the file replaced: the old token no longer verifies.
        new = os.path.join(d, "new")
        os.mkdir(new)
        shutil.copy(jwt_tool.make_keys(new), jwks)
        s.send(signal.SIGHUP)
        s.wait_event("tokens_reloaded")
        self.assertEqual(catalog(old_tok), grpc.StatusCode.UNAUTHENTICATED)
        new_tok = jwt_tool.sign(new, "ES256", "ec1", claims)
        self.assertEqual(catalog(new_tok), grpc.StatusCode.OK)
        with open(jwks, "w") as f:
            f.write("{}")
        s.send(signal.SIGHUP)
        ev = s.wait_event("tokens_reload_rejected")[0]
        self.assertIn("not a JWKS", ev["error"])
        self.assertEqual(catalog(new_tok), grpc.StatusCode.OK)
        self.assertEqual(s.stop(), 0, s.log()[-2000:])
        self.assertIsNone(s.sanitizer_report())

    def test_bad_jwt_flags_stop_the_start(self):
        d = tempfile.mkdtemp(prefix="fstore-jwtbad-")
        self.addCleanup(shutil.rmtree, d, True)
        jwks = jwt_tool.make_keys(d)
        tokens = os.path.join(d, "tokens")
        with open(tokens, "w") as f:
            f.write("ops jwt:ops admin\n")
        bad = os.path.join(d, "bad.json")
        with open(bad, "w") as f:
            f.write('{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "k"}]}')
        for args, want in (
                (["--jwks-file", jwks, "--jwt-issuer", "i", "--jwt-audience", "a"],
                 "--jwks-file needs --tokens-file"),
                (["--tokens-file", tokens, "--jwt-issuer", "i"], "need --jwks-file"),
                (["--tokens-file", tokens, "--jwks-file", jwks, "--jwt-issuer", "i"],
                 "--jwt-audience"),
                (["--tokens-file", tokens, "--jwks-file", bad, "--jwt-issuer", "i",
                  "--jwt-audience", "a"], "key 0 (RSA k): not a usable public key")):
            with self.subTest(args=args):
                s = Server(args=args)
                self.addCleanup(s.cleanup)
                p = subprocess.run(s.command(), capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(want, p.stderr)

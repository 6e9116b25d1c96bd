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
import tempfile
import urllib.error
import urllib.request
import unittest

import grpc

from fstore.v1 import fstore_pb2, fstore_pb2_grpc
from fstore_client import FeatureStoreClient
from harness import Server

TOKENS = {"reader": "r-7f3a-secret", "writer": "w-91bc-secret", "ops": "a-c0de-secret"}
SCOPES = {"reader": "read", "writer": "read,write", "ops": "admin"}


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
        req = urllib.request.Request("http://%s%s" % (self.server.http, path),
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        if token is not None:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

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
        audits = self.server.events("audit")
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


if __name__ == "__main__":
    unittest.main()

# tests/e2e/test_http.py - the HTTP front door of the real binary: Feast, SageMaker, TF Serving.
"""Every route and its errors, with Python's http.client (keep-alive), raw sockets (pipelining)
and curl. Feast's own feature-server test requests (feast-dev/feast
sdk/python/tests/unit/test_feature_server.py: get_online_features_body, push_body,
test_push_and_get) are replayed against a catalog equivalent to their example repository, and
errors are parsed the way Feast's client parses them (rest_error_handler: the body is a JSON
string holding {"module", "class", "message"})."""
import base64
import csv
import gzip
import io
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from grpc_health.v1 import health_pb2
from harness import E2E_DIR, FSTORE, SANITIZER_RE, ServerTestCase, free_port

CATALOG = os.path.join(E2E_DIR, "http_catalog.yaml")


class HttpCase(ServerTestCase):
    catalog = CATALOG
    server_args = ["--max-entities", "50", "--max-features", "20", "--max-write-rows", "100",
                   "--max-message-bytes", "65536", "--sagemaker-model", "ranker",
                   "--log-requests"]

    def request(self, method, path, body=None, headers=None, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=30)
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        if own:
            conn.close()
        return resp, raw

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def feast_error(self, raw):
        """What Feast's client does with an error body."""
        detail = json.loads(raw)
        self.assertIsInstance(detail, str, raw)
        err = json.loads(detail)
        self.assertEqual(err["module"], "feast.errors")
        return err["class"], err["message"]

    def gof(self, body, **kw):
        resp, raw = self.post("/get-online-features", body, **kw)
        return resp, raw

    def columns(self, raw):
        doc = json.loads(raw)
        names = doc["metadata"]["feature_names"]
        self.assertEqual(len(names), len(doc["results"]))
        return {n: r for n, r in zip(names, doc["results"])}


class FeastHttpTest(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.client
        c.write_features("driver_hourly_stats",
                         {"driver_id": [1001, 1002], "conv_rate": [0.5, 0.25],
                          "acc_rate": [0.1, 0.9], "avg_daily_trips": [10, 20]},
                         event_timestamps=[1700000000.5, 1700000001])
        c.write_features("customer_profile",
                         {"customer_id": ["c1"], "age": [41], "tags": [["a", "b\"q"]],
                          "scores": [[1.5, -2.0]], "avatar": [b"\x00\x01\x02\x03"],
                          "vip": [True], "big": [9223372036854775807], "seen": [1700000000]})

    def test_health_and_unknown_routes(self):
        resp, raw = self.request("GET", "/health")
        self.assertEqual((resp.status, raw), (200, b""))
        resp, raw = self.request("GET", "/nowhere")
        self.assertEqual(resp.status, 404)
        self.assertEqual(json.loads(raw), {"detail": "Not Found"})
        resp, raw = self.request("GET", "/get-online-features")
        self.assertEqual(resp.status, 405)
        self.assertEqual(json.loads(raw), {"detail": "Method Not Allowed"})
        self.assertEqual(resp.getheader("Allow"), "POST")
        resp, raw = self.request("POST", "/health")
        self.assertEqual((resp.status, resp.getheader("Allow")), (405, "GET"))

    def test_bodies_go_gzip_to_clients_that_take_it(self):
        big = {"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"],
               "entities": {"driver_id": [1001, 1002] + list(range(1, 49))}}
        resp, plain = self.gof(big)  # http.client says Accept-Encoding: identity
        self.assertEqual(resp.status, 200, plain)
        self.assertIsNone(resp.getheader("Content-Encoding"))
        self.assertGreater(len(plain), 1024)
        self.assertEqual(resp.getheader("Vary"), "Accept-Encoding")
        for ae, gz in (("gzip", True), ("gzip, deflate", True), ("*", True),
                       ("deflate, gzip;q=0.5", True), ("GZIP", True), ("gzip;q=0", False),
                       ("*;q=0", False), ("br", False), ("identity", False)):
            with self.subTest(accept_encoding=ae):
                resp, raw = self.gof(big, headers={"Accept-Encoding": ae})
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.getheader("Content-Encoding"), "gzip" if gz else None)
                self.assertEqual(resp.getheader("Vary"), "Accept-Encoding")
                self.assertEqual(gzip.decompress(raw) if gz else raw, plain)
                if gz:
                    self.assertLess(len(raw), len(plain) // 3)
        # A small body goes plain whatever the client takes.
        resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate"],
                              "entities": {"driver_id": [1001]}},
                             headers={"Accept-Encoding": "gzip"})
        self.assertEqual((resp.status, resp.getheader("Content-Encoding")), (200, None))
        self.assertLess(len(raw), 1024)
        json.loads(raw)
        # curl --compressed asks for it and reads it back.
        p = subprocess.run(["curl", "-sS", "--compressed", "-D", "-", "-X", "POST",
                            "-H", "Content-Type: application/json", "-d", json.dumps(big),
                            "http://%s/get-online-features" % self.server.http],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        head, _, body = p.stdout.partition(b"\r\n\r\n")
        self.assertIn(b"content-encoding: gzip", head.lower())
        self.assertEqual(body, plain)

    def test_log_requests_logs_every_http_request_without_its_path_or_body(self):
        resp, _ = self.request("GET", "/nowhere-secret-path?token=hunter2")
        self.assertEqual(resp.status, 404)
        resp, raw = self.gof({"features": ["no_such_secret_view:f"],
                              "entities": {"driver_id": [1001]}})
        self.assertEqual(resp.status, 404, raw)
        want = [("GET", "other", 404), ("POST", "/get-online-features", 404)]
        deadline = time.monotonic() + 10
        while True:
            got = [(e["method"], e["route"], e["status"]) for e in self.server.events("http_request")]
            if all(w in got for w in want) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for w in want:
            self.assertIn(w, got)
        log = self.server.log()
        for secret in ("nowhere-secret-path", "hunter2", "no_such_secret_view"):
            self.assertNotIn(secret, log)
        e = [e for e in self.server.events("http_request") if e["status"] == 404][0]
        self.assertEqual(e["level"], "warn")
        self.assertGreater(e["response_bytes"], 0)
        self.assertGreaterEqual(e["us"], 0)

    def test_columnar_response_join_keys_first_then_features(self):
        resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate",
                                           "driver_hourly_stats:avg_daily_trips"],
                              "entities": {"driver_id": [1001, 1002, 9999]}})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        doc = json.loads(raw)
        self.assertEqual(list(doc), ["results", "metadata"])
        self.assertEqual(doc["metadata"]["feature_names"],
                         ["driver_id", "conv_rate", "avg_daily_trips"])
        cols = self.columns(raw)
        self.assertEqual(cols["driver_id"]["values"], [1001, 1002, 9999])
        self.assertEqual(cols["driver_id"]["statuses"], ["PRESENT"] * 3)
        self.assertEqual(cols["driver_id"]["event_timestamps"], ["1970-01-01T00:00:00Z"] * 3)
        self.assertEqual(cols["conv_rate"]["values"], [0.5, 0.25, None])
        self.assertEqual(cols["conv_rate"]["statuses"], ["PRESENT", "PRESENT", "NOT_FOUND"])
        self.assertEqual(cols["conv_rate"]["event_timestamps"],
                         ["2023-11-14T22:13:20.500Z", "2023-11-14T22:13:21Z",
                          "1970-01-01T00:00:00Z"])
        self.assertEqual(cols["avg_daily_trips"]["values"], [10, 20, None])

    def test_feature_service_and_full_feature_names(self):
        resp, raw = self.gof({"feature_service": "driver_activity", "full_feature_names": True,
                              "features": ["ignored:x"], "entities": {"driver_id": [1002]}})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(json.loads(raw)["metadata"]["feature_names"],
                         ["driver_id", "driver_hourly_stats__conv_rate",
                          "driver_hourly_stats__avg_daily_trips"])

    def test_every_value_type_renders_as_feast_does(self):
        resp, raw = self.gof({"features": ["customer_profile:" + f for f in
                                           ("age", "tags", "scores", "avatar", "vip", "big",
                                            "seen")],
                              "entities": {"customer_id": ["c1"]}})
        self.assertEqual(resp.status, 200, raw)
        cols = self.columns(raw)
        self.assertEqual(cols["age"]["values"], [41])
        self.assertEqual(cols["tags"]["values"], [["a", "b\"q"]])
        self.assertEqual(cols["scores"]["values"], [[1.5, -2.0]])
        self.assertEqual(cols["avatar"]["values"], [base64.b64encode(b"\x00\x01\x02\x03").decode()])
        self.assertEqual(cols["vip"]["values"], [True])
        self.assertEqual(cols["big"]["values"], [9223372036854775807])
        self.assertIn(b"9223372036854775807", raw, "int64 is a number, not a string")
        self.assertEqual(cols["seen"]["values"], [1700000000])

    def test_errors_carry_feast_classes_and_status_codes(self):
        resp, raw = self.gof({"features": ["nope:x"], "entities": {"driver_id": [1]}})
        self.assertEqual(resp.status, 404)
        cls, msg = self.feast_error(raw)
        self.assertEqual(cls, "FeatureViewNotFoundException")
        self.assertIn("nope", msg)
        resp, raw = self.gof({"feature_service": "nope", "entities": {"driver_id": [1]}})
        self.assertEqual(resp.status, 404)
        self.assertEqual(self.feast_error(raw)[0], "FeatureServiceNotFoundException")
        resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate"]})
        self.assertEqual(resp.status, 422)
        self.assertIn("entities", self.feast_error(raw)[1])
        resp, raw = self.post("/get-online-features", b"{not json")
        self.assertEqual(resp.status, 422)
        self.assertIn("not JSON", self.feast_error(raw)[1])
        resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate"],
                              "entities": {"driver_id": list(range(51))}})
        self.assertEqual(resp.status, 422)
        self.assertIn("--max-entities", self.feast_error(raw)[1])
        resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate"] * 21,
                              "entities": {"driver_id": [1]}})
        self.assertEqual(resp.status, 422)
        self.assertIn("--max-features", self.feast_error(raw)[1])
        resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate"],
                              "entities": {"driver_id": [1, 2], "other": [1]}})
        self.assertEqual(resp.status, 422)

    def test_both_decoders_answer_alike(self):
        # The usual body is decoded by http/feast_json.c, one with an escape in a key by
        # jansson's path (the same strings): the same answer, successes and errors alike.
        def both(body):
            plain = json.dumps(body)
            self.assertIn('"entities"', plain)
            escaped = plain.replace('"entities"', '"\\u0065ntities"', 1)
            a, ra = self.gof(plain)
            b, rb = self.gof(escaped)
            self.assertEqual((a.status, ra), (b.status, rb), body)
            return a.status, ra
        ok = {"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"],
              "entities": {"driver_id": [1001, 1002, 99]}, "full_feature_names": True}
        status, raw = both(ok)
        self.assertEqual(status, 200)
        self.assertEqual(len(self.columns(raw)), 3)
        both({"feature_service": "driver_activity", "entities": {"driver_id": [1001]}})
        for bad in ({"features": ["driver_hourly_stats:conv_rate"] * 21,
                     "entities": {"driver_id": [1]}},
                    {"features": ["driver_hourly_stats:nope"], "entities": {"driver_id": [1]}},
                    {"features": ["nope:x"], "entities": {"driver_id": [1]}},
                    {"feature_service": "nope", "entities": {"driver_id": [1]}},
                    {"features": ["driver_hourly_stats:conv_rate"],
                     "entities": {"driver_id": list(range(51))}},
                    {"features": ["driver_hourly_stats:conv_rate"],
                     "entities": {"driver_id": [1, 2], "other": [1]}},
                    {"features": ["driver_hourly_stats:conv_rate"], "entities": {}},
                    {"features": [], "entities": {"driver_id": [1]}},
                    {"entities": {"driver_id": [1]}},
                    {"features": ["driver_hourly_stats:conv_rate"],
                     "entities": {"driver_id": ["x"]}}):
            status, raw = both(bad)
            self.assertGreaterEqual(status, 400, bad)

    def test_a_body_over_the_limit_is_refused_from_its_length(self):
        resp, raw = self.post("/get-online-features", b"x" * 70000)
        self.assertEqual(resp.status, 413)
        self.assertIn("--max-message-bytes", self.feast_error(raw)[1])
        # Refused from its headers: the answer comes before a byte of the body is sent.
        with socket.create_connection(("127.0.0.1", self.server.http_port), timeout=10) as s:
            s.sendall(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
            data = s.recv(65536)
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])
        # A chunked body (no length) is cut off once it passes the limit.
        with socket.create_connection(("127.0.0.1", self.server.http_port), timeout=10) as s:
            s.sendall(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            for _ in range(5):
                s.sendall(b"4000\r\n" + b"x" * 0x4000 + b"\r\n")
            s.sendall(b"0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])

    def test_a_body_too_dense_to_parse_is_413_and_a_dense_legit_one_parses(self):
        # 60 KB of empty objects would take about 4 MB as a tree (32x its size is the bound).
        body = b'{"features": [], "entities": {"driver_id": [' + b",".join([b"{}"] * 20000) + b"]}}"
        self.assertLess(len(body), 65536)
        resp, raw = self.post("/get-online-features", body)
        self.assertEqual(resp.status, 413, raw)
        self.assertIn("too dense", self.feast_error(raw)[1])
        # As many small whole numbers (about 20x as a tree) parse, and meet the entity limit.
        body = b'{"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [' + \
            b",".join([b"1"] * 30000) + b"]}}"
        resp, raw = self.post("/get-online-features", body)
        self.assertEqual(resp.status, 422, raw)
        self.assertIn("--max-entities", self.feast_error(raw)[1])
        # The server is fine afterwards.
        resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate"],
                              "entities": {"driver_id": [1001]}})
        self.assertEqual(self.columns(raw)["conv_rate"]["values"], [0.5])

    def test_keep_alive_and_pipelining(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=30)
        for _ in range(20):
            resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate"],
                                  "entities": {"driver_id": [1001]}}, conn=conn)
            self.assertEqual(resp.status, 200)
        conn.close()
        body = json.dumps({"features": ["driver_hourly_stats:conv_rate"],
                           "entities": {"driver_id": [1002]}}).encode()
        one = (b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
               b"\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
        with socket.create_connection(("127.0.0.1", self.server.http_port), timeout=30) as s:
            s.sendall(one * 3 + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 4, data[:500])
        self.assertEqual(data.count(b'"values":[0.25]'), 3)

    def test_write_to_online_store_as_feasts_remote_client_sends_it(self):
        body = {"feature_view_name": "driver_hourly_stats",
                "df": {"driver_id": [2001, 2002], "conv_rate": [0.125, 0.75],
                       "event_timestamp": ["2024-05-01T12:00:00.123456", "2024-05-01T12:00:00"],
                       "created": [None, None]},
                "allow_registry_cache": False}
        resp, raw = self.post("/write-to-online-store", body)
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(raw, b"null")
        self.assertEqual(resp.getheader("fstore-rows-written"), "2")
        resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate"],
                              "entities": {"driver_id": [2001, 2002]}})
        cols = self.columns(raw)
        self.assertEqual(cols["conv_rate"]["values"], [0.125, 0.75])
        self.assertEqual(cols["conv_rate"]["event_timestamps"],
                         ["2024-05-01T12:00:00.123456Z", "2024-05-01T12:00:00Z"])

    def test_write_errors_name_the_view_column_and_row(self):
        resp, raw = self.post("/write-to-online-store",
                              {"feature_view_name": "nope", "df": {"driver_id": [1]}})
        self.assertEqual(resp.status, 404)
        cls, msg = self.feast_error(raw)
        # As Feast's write_to_online_store() raises it (get_feature_view()).
        self.assertEqual(cls, "FeatureViewNotFoundException")
        self.assertEqual(msg, "Feature view nope does not exist in project http_e2e")
        resp, raw = self.post("/write-to-online-store",
                              {"feature_view_name": "driver_hourly_stats",
                               "df": {"driver_id": [1, 2], "conv_rate": [0.5, 1.5]}})
        self.assertEqual(resp.status, 422)
        msg = self.feast_error(raw)[1]
        self.assertIn("row 1", msg)
        self.assertIn("conv_rate", msg)
        resp, raw = self.post("/write-to-online-store",
                              {"feature_view_name": "driver_hourly_stats",
                               "df": {"driver_id": [1], "avg_daily_trips": ["ten"]}})
        self.assertEqual(resp.status, 422)
        self.assertIn("avg_daily_trips", self.feast_error(raw)[1])
        resp, raw = self.post("/write-to-online-store",
                              {"feature_view_name": "driver_hourly_stats",
                               "df": {"driver_id": list(range(101))}})
        self.assertEqual(resp.status, 422)
        self.assertIn("--max-write-rows", self.feast_error(raw)[1])
        for t in (1e300, -1e300, 9.3e12):
            resp, raw = self.post("/write-to-online-store",
                                  {"feature_view_name": "driver_hourly_stats",
                                   "df": {"driver_id": [1], "conv_rate": [0.5],
                                          "event_timestamp": [t]}})
            self.assertEqual(resp.status, 422, raw)
            self.assertIn("row 0", self.feast_error(raw)[1])
            self.assertIn("out of range", self.feast_error(raw)[1])
        # Nothing of a refused write was stored.
        resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate"],
                              "entities": {"driver_id": [1]}})
        self.assertEqual(self.columns(raw)["conv_rate"]["statuses"], ["NOT_FOUND"])


class JsonDecoderSwitchTest(HttpCase):
    """--http-json-decoder jansson: every read body goes to jansson, with the same answers (the
    fuzzer compares the two on every input; here the switch is taken and a bad value refused)."""
    server_args = HttpCase.server_args + ["--http-json-decoder", "jansson"]

    def test_reads_answer_through_jansson_alone(self):
        self.client.write_features("driver_hourly_stats",
                                   {"driver_id": [7001], "conv_rate": [0.5], "acc_rate": [0.25],
                                    "avg_daily_trips": [3]}, event_timestamps=[1700000000])
        body = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [7001]}}
        resp, raw = self.gof(body)
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(self.columns(raw)["conv_rate"]["values"], [0.5])
        resp, raw = self.gof({"features": ["driver_hourly_stats:conv_rate"] * 21,
                              "entities": {"driver_id": [1]}})
        self.assertEqual(resp.status, 422)
        self.assertIn("features requested, over --max-features", self.feast_error(raw)[1])

    def test_a_value_it_does_not_know_is_refused(self):
        out = subprocess.run([FSTORE, "serve", "--catalog", CATALOG, "--http-json-decoder",
                              "simdjson"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("fast|jansson", out.stderr)


class FeastReplayTest(HttpCase):
    """Feast's own feature-server tests, rewritten against fstore."""

    def test_push_and_get(self):
        # feast test_feature_server.py::push_body / get_online_features_body, test_push_and_get
        push_body = {"push_source_name": "driver_locations_push",
                     "df": {"driver_lat": [42.0], "driver_long": ["42.0"], "driver_id": [123],
                            "event_timestamp": ["2024-05-01 12:00:00.123456+00:00"],
                            "created_timestamp": ["2024-05-01 12:00:00.123456+00:00"]},
                     "to": "online"}
        resp, raw = self.post("/push", push_body)
        self.assertEqual(resp.status, 200, raw)
        # Feast's handler returns None, which FastAPI answers as JSON null.
        self.assertEqual(raw, b"null")
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        body = {"features": ["pushed_driver_locations:driver_lat",
                             "pushed_driver_locations:driver_long"],
                "entities": {"driver_id": [123]}}
        resp, raw = self.gof(body)
        self.assertEqual(resp.status, 200, raw)
        parsed = json.loads(raw)
        names = parsed["metadata"]["feature_names"]
        self.assertEqual(parsed["results"][names.index("driver_lat")]["values"][0], 42.0)
        self.assertEqual(parsed["results"][names.index("driver_long")]["values"][0], "42.0")
        # The push wrote every view the source feeds.
        resp, raw = self.gof({"features": ["driver_location_history:driver_lat"],
                              "entities": {"driver_id": [123]}})
        self.assertEqual(self.columns(raw)["driver_lat"]["values"], [42.0])

    def test_push_to_an_unknown_source_is_422(self):
        resp, raw = self.post("/push", {"push_source_name": "nope", "df": {"driver_id": [1]}})
        self.assertEqual(resp.status, 422)
        cls, msg = self.feast_error(raw)
        self.assertEqual(cls, "PushSourceNotFoundException")
        self.assertEqual(msg, "Unable to find push source 'nope'.")
        # A view with no push source has none by the name "": it is not written.
        resp, raw = self.post("/push", {"push_source_name": "", "df": {"driver_id": [1]}})
        self.assertEqual(resp.status, 422, raw)
        self.assertEqual(self.feast_error(raw), ("PushSourceNotFoundException",
                                                 "Unable to find push source ''."))
        # The offline store is the history of a node started with --history (test_offline.py);
        # this one keeps none.
        resp, raw = self.post("/push", {"push_source_name": "driver_locations_push",
                                        "df": {"driver_id": [1]}, "to": "offline"})
        self.assertEqual(resp.status, 501)
        self.assertIn("--history", self.feast_error(raw)[1])
        resp, raw = self.post("/push", {"push_source_name": "driver_locations_push",
                                        "df": {"driver_id": [1]}, "to": "elsewhere"})
        self.assertEqual(resp.status, 500)
        # Feast's ValueError: 500, the message alone as a JSON string.
        self.assertEqual(json.loads(raw), "elsewhere is not a supported push format. Please "
                         "specify one of these ['online', 'offline', 'online_and_offline'].")

    def test_curl_as_the_docs_show(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        out = subprocess.run(
            ["curl", "-sS", "-X", "POST", "http://%s/get-online-features" % self.server.http,
             "-d", '{"features":["driver_hourly_stats:conv_rate"],"entities":{"driver_id":[1]}}'],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["metadata"]["feature_names"],
                         ["driver_id", "conv_rate"])


class TfServingRestTest(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client.write_features("driver_hourly_stats",
                                  {"driver_id": [7, 8], "conv_rate": [0.5, 0.25],
                                   "acc_rate": [1.0, 2.5], "avg_daily_trips": [3, 4]})

    def test_predict_rows_and_columns(self):
        # Without a version: the binding's highest (2, driver_activity).
        resp, raw = self.post("/v1/models/ranker:predict", {"instances": [7, 8, 99]})
        self.assertEqual(resp.status, 200, raw)
        doc = json.loads(raw)
        self.assertEqual(doc["predictions"][0], {"conv_rate": 0.5, "avg_daily_trips": 3})
        self.assertEqual(doc["predictions"][2], {"conv_rate": 0.0, "avg_daily_trips": 0})
        self.assertIn(b'"avg_daily_trips": 0', raw)
        self.assertIn(b'"conv_rate": 0.0', raw, "TF Serving writes whole floats with .0")
        resp, raw = self.post("/v1/models/ranker/versions/1:predict",
                              {"signature_name": "serving_default",
                               "inputs": {"driver_id": [8]}})
        self.assertEqual(json.loads(raw), {"outputs": {"conv_rate": [0.25], "acc_rate": [2.5]}})
        resp, raw = self.post("/v1/models/ranker/labels/canary:predict",
                              {"instances": [{"driver_id": 7}]})
        self.assertEqual(json.loads(raw)["predictions"],
                         [{"conv_rate": 0.5, "avg_daily_trips": 3}])

    def test_model_status(self):
        resp, raw = self.request("GET", "/v1/models/ranker")
        self.assertEqual(resp.status, 200)
        self.assertEqual([s["version"] for s in json.loads(raw)["model_version_status"]],
                         ["2", "1"])
        self.assertEqual(json.loads(raw)["model_version_status"][0]["state"], "AVAILABLE")
        resp, raw = self.request("GET", "/v1/models/nope")
        self.assertEqual(resp.status, 404)
        self.assertEqual(json.loads(raw), {"error": "Could not find any versions of model nope"})

    def test_errors_as_tf_serving_words_them(self):
        resp, raw = self.post("/v1/models/ranker:predict", {})
        self.assertEqual(resp.status, 400)
        self.assertEqual(json.loads(raw)["error"], "Missing 'inputs' or 'instances' key")
        resp, raw = self.post("/v1/models/ranker:predict", {"instances": [1], "inputs": [1]})
        self.assertEqual(resp.status, 400)
        resp, raw = self.post("/v1/models/nope:predict", {"instances": [1]})
        self.assertEqual(resp.status, 404)
        resp, raw = self.post("/v1/models/ranker:predict", {"instances": ["x"]})
        self.assertEqual(resp.status, 400)
        resp, raw = self.post("/v1/models/ranker:classify", {"examples": []})
        self.assertEqual(resp.status, 501)


class SageMakerEnvironmentTest(unittest.TestCase):
    """What SageMaker's container contract sets: SAGEMAKER_BIND_TO_PORT picks the HTTP port
    (no --http-listen given), FSTORE_SAGEMAKER_MODEL the binding of /invocations."""

    def test_the_port_and_the_model_come_from_the_environment(self):
        d = tempfile.mkdtemp(prefix="fstore-e2e-sm-")
        self.addCleanup(shutil.rmtree, d, True)
        port = free_port()
        env = dict(os.environ, SAGEMAKER_BIND_TO_PORT=str(port), FSTORE_SAGEMAKER_MODEL="ranker")
        env.pop("FSTORE_HTTP_LISTEN", None)
        p = subprocess.Popen([FSTORE, "serve", "--catalog", CATALOG, "--data-dir", d, "--listen",
                              "127.0.0.1:%d" % free_port()], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        self.addCleanup(p.kill)
        deadline = time.monotonic() + 60
        status = None
        while status != 200:
            self.assertIsNone(p.poll(), "fstore exited")
            self.assertLess(time.monotonic(), deadline)
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/ping" % port, timeout=5) as r:
                    status = r.status
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/invocations", json.dumps({"instances": [{"driver_id": 1}]}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        self.assertEqual(resp.status, 200, body)
        # ranker@v2 (its highest version) appends driver_activity's features, zero when missing.
        self.assertEqual(body["instances"][0]["driver_id"], 1)
        self.assertIn("conv_rate", body["instances"][0])
        p.terminate()
        out, _ = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, out[-2000:])
        self.assertIsNone(SANITIZER_RE.search(out), out[-3000:])


class SageMakerTest(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client.write_features("driver_hourly_stats",
                                  {"driver_id": [7], "conv_rate": [0.5], "acc_rate": [1.25],
                                   "avg_daily_trips": [3]})

    def test_ping(self):
        resp, raw = self.request("GET", "/ping")
        self.assertEqual((resp.status, raw), (200, b""))

    def test_json_rows_come_back_with_the_features_appended(self):
        # --sagemaker-model ranker: its highest version (2).
        resp, raw = self.post("/invocations", {"instances": [{"driver_id": 7, "x": "keep"}]})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(json.loads(raw), {"instances": [{"driver_id": 7, "x": "keep",
                                                          "conv_rate": 0.5,
                                                          "avg_daily_trips": 3}]})
        resp, raw = self.post("/invocations", {"inputs": {"driver_id": [7]}},
                              headers={"X-Amzn-SageMaker-Custom-Attributes":
                                       "model=ranker,version=1"})
        self.assertEqual(json.loads(raw), {"inputs": {"driver_id": [7], "conv_rate": [0.5],
                                                      "acc_rate": [1.25]}})

    def test_csv_rows(self):
        resp, raw = self.post("/invocations", b"7,a\n8,b\n",
                              headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(resp.getheader("Content-Type"), "text/csv")
        self.assertEqual(raw.decode().splitlines(), ["7,a,0.5,3", "8,b,0.0,0"])

    def sm(self, model, body, csv=False):
        hdrs = {"X-Amzn-SageMaker-Custom-Attributes": "model=" + model}
        if csv:
            hdrs.update({"Content-Type": "text/csv", "Accept": "text/csv"})
        return self.post("/invocations", body, headers=hdrs)

    def test_a_binding_without_entity_inputs_gives_every_row_its_one_row(self):
        self.client.write_features("market", {"surge": [1.5]})
        resp, raw = self.sm("market_model", {"instances": [{"a": 1}, {"a": 2}, {}]})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(json.loads(raw), {"instances": [{"a": 1, "surge": 1.5},
                                                         {"a": 2, "surge": 1.5},
                                                         {"surge": 1.5}]})
        resp, raw = self.sm("market_model", b"x\ny,z\n", csv=True)
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(raw.decode().splitlines(), ["x,1.5", "y,z,1.5"])
        # A bare value feeds no input of a binding without one.
        resp, raw = self.sm("market_model", {"instances": [1, 2]})
        self.assertEqual(resp.status, 400, raw)
        self.assertIn("instances[0]", json.loads(raw)["error"])
        resp, raw = self.post("/v1/models/market_model:predict", {"instances": [{}, {}]})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(json.loads(raw)["predictions"], [1.5])

    def test_two_entity_inputs_need_named_values_and_whole_csv_lines(self):
        for path in ("/invocations", "/v1/models/pair_model:predict"):
            resp, raw = self.post(path, {"instances": [7]},
                                  headers={"X-Amzn-SageMaker-Custom-Attributes":
                                           "model=pair_model"})
            self.assertEqual(resp.status, 400, raw)
            self.assertIn("2 entity inputs", json.loads(raw)["error"])
        for body in (b"7\n", b"7,\n", b"7,c1\n8\n", b",\n"):
            with self.subTest(body=body):
                resp, raw = self.sm("pair_model", body, csv=True)
                self.assertEqual(resp.status, 400, raw)
                self.assertIn("want the 2 entity inputs", json.loads(raw)["error"])
        resp, raw = self.sm("pair_model", b"7,c1\n", csv=True)
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(raw.decode().splitlines(), ["7,c1,0.5,0"])

    def test_csv_cells_are_text_bytes_base64_and_keys_typed_by_their_join_key(self):
        self.client.write_features("customer_profile",
                                   {"customer_id": ["0042"], "age": [41],
                                    "tags": [["a", 'b"q,']], "avatar": [b"\x00\x01\xff"]})
        resp, raw = self.sm("customer_model", b"0042,z\n", csv=True)
        self.assertEqual(resp.status, 200, raw)
        rows = list(csv.reader(io.StringIO(raw.decode())))
        self.assertEqual(rows[0][:3], ["0042", "z", "41"])
        self.assertEqual(json.loads(rows[0][3]), ["a", 'b"q,'])
        self.assertEqual(base64.b64decode(rows[0][4]), b"\x00\x01\xff")

    def test_csv_bodies_are_rfc_4180(self):
        # Quoted keys are unquoted before they are looked up; quoted commas, quotes and line
        # breaks stay inside their field; CRLF line ends; each record comes back as sent.
        self.client.write_features("customer_profile", {"customer_id": ["0042", "a,b"],
                                                        "age": [41, 7]})
        body = b'"0042","z, with a comma"\r\n"a,b","two\nlines, and ""quotes"""\r\n'
        resp, raw = self.sm("customer_model", body, csv=True)
        self.assertEqual(resp.status, 200, raw)
        rows = list(csv.reader(io.StringIO(raw.decode(), newline="")))
        self.assertEqual([r[:3] for r in rows], [["0042", "z, with a comma", "41"],
                                                 ["a,b", 'two\nlines, and "quotes"', "7"]])
        self.assertTrue(raw.startswith(b'"0042","z, with a comma",41,'), raw)
        resp, raw = self.sm("customer_model", b'0042,x\n"0042,y\n', csv=True)
        self.assertEqual(resp.status, 400, raw)
        self.assertIn("line 2: unterminated or misplaced quote", json.loads(raw)["error"])

    def test_accept_lists_and_wildcards_are_read_as_http_says(self):
        body = {"instances": [{"driver_id": 7}]}
        for accept in ("text/csv, application/json", "application/*", "*/*;q=0.1",
                       "Application/JSON; charset=utf-8"):
            with self.subTest(accept=accept):
                resp, raw = self.post("/invocations", body, headers={"Accept": accept})
                self.assertEqual(resp.status, 200, raw)
                self.assertEqual(json.loads(raw)["instances"][0]["conv_rate"], 0.5)
        for accept in ("application/json;q=0, text/csv", "application/jsonlines",
                       "*/*, application/json;q=0", "application/*;Q=0, */*"):
            with self.subTest(accept=accept):
                resp, raw = self.post("/invocations", body, headers={"Accept": accept})
                self.assertEqual(resp.status, 406, raw)
        resp, raw = self.post("/invocations", b'{"instances": [{"driver_id": 7}]}',
                              headers={"Content-Type": "application/jsonlines"})
        self.assertEqual(resp.status, 415, raw)

    def test_media_type_errors_are_json_and_name_the_type(self):
        resp, raw = self.post("/invocations", b"a",
                              headers={"Content-Type": 'text/x"evil\\'})
        self.assertEqual(resp.status, 415)
        self.assertIn('text/x"evil\\', json.loads(raw)["error"])
        resp, raw = self.post("/invocations", {"instances": [7]},
                              headers={"Accept": "text/csv"})
        self.assertEqual(resp.status, 406, raw)
        self.assertIn("Accept application/json", json.loads(raw)["error"])
        resp, raw = self.post("/invocations", {"instances": [7]},
                              headers={"Accept": "image/png"})
        self.assertEqual(resp.status, 406, raw)

    def test_errors(self):
        resp, raw = self.post("/invocations", b"a=b",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(resp.status, 415)
        resp, raw = self.post("/invocations", {"instances": [7]},
                              headers={"X-Amzn-SageMaker-Custom-Attributes": "model=nope"})
        self.assertEqual(resp.status, 404)
        self.assertIn("nope", json.loads(raw)["error"])
        resp, raw = self.post("/invocations", {"rows": []})
        self.assertEqual(resp.status, 400)


class HttpStopUnderWritesTest(unittest.TestCase):
    """SIGTERM while HTTP writes are in flight (each waits suspended for its group commit): the
    server exits cleanly (libmicrohttpd must not stop with a connection suspended) and every
    write it acknowledged is there after a restart."""

    def test_stop_under_http_write_load_loses_no_acknowledged_write(self):
        from harness import Server
        server = Server(catalog=CATALOG, args=["--sync", "full", "--shutdown-grace-ms", "300"])
        self.addCleanup(server.cleanup)
        server.start()
        acked, errors = [], []
        lock = threading.Lock()

        def writer(base):
            conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
            for i in range(100000):
                key = base * 1000000 + i
                body = json.dumps({"feature_view_name": "driver_hourly_stats",
                                   "df": {"driver_id": [key], "avg_daily_trips": [key]}})
                try:
                    conn.request("POST", "/write-to-online-store", body=body,
                                 headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                except (OSError, http.client.HTTPException):
                    return
                with lock:
                    (acked if resp.status == 200 else errors).append((key, resp.status))

        threads = [threading.Thread(target=writer, args=(b,)) for b in range(1, 9)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        rc = server.stop()
        for t in threads:
            t.join(30)
        self.assertEqual(rc, 0, server.log()[-3000:])
        self.assertIsNone(server.sanitizer_report())
        self.assertNotIn("suspended connections", server.log())
        self.assertGreater(len(acked), 200)
        for key, status in errors:
            self.assertEqual(status, 503, "refused while stopping, nothing else")
        # Every acknowledged write is there after a restart.
        again = Server(catalog=CATALOG, data_dir=server.data_dir)
        self.addCleanup(again.cleanup)
        again.start()
        keys = [k for k, _ in acked]
        got = {}
        for i in range(0, len(keys), 40):
            chunk = keys[i:i + 40]
            conn = http.client.HTTPConnection("127.0.0.1", again.http_port, timeout=30)
            conn.request("POST", "/get-online-features",
                         body=json.dumps({"features": ["driver_hourly_stats:avg_daily_trips"],
                                          "entities": {"driver_id": chunk}}),
                         headers={"Content-Type": "application/json"})
            doc = json.loads(conn.getresponse().read())
            conn.close()
            got.update(zip(chunk, doc["results"][1]["values"]))
        self.assertEqual([k for k in keys if got.get(k) != k], [])
        self.assertEqual(again.stop(), 0)


class HttpWriteBoundTest(unittest.TestCase):
    """--http-max-writes: writes whose bodies trickle in hold their slot from their headers;
    past the bound a write is refused at its headers (429 naming the flag) while reads go on,
    and a slot freed is taken again."""

    def test_writes_past_the_bound_are_refused_at_their_headers(self):
        from harness import Server
        server = Server(catalog=CATALOG, args=["--http-max-writes", "2"])
        self.addCleanup(server.cleanup)
        server.start()
        body = json.dumps({"feature_view_name": "driver_hourly_stats",
                           "df": {"driver_id": [7], "avg_daily_trips": [7]}}).encode()
        head = (b"POST /write-to-online-store HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        # Two writers send their headers and half a body, and stall.
        slow = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
            s.sendall(head + body[:10])
            slow.append(s)

        def post(path, payload):
            conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
            conn.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
            conn.close()
            return resp.status, raw

        # Once both stalled writers hold their slots (/metrics counts them).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with urllib.request.urlopen("http://%s/metrics" % server.http, timeout=10) as r:
                if re.search(r"^http_writes_in_flight 2$", r.read().decode(), re.M):
                    break
            time.sleep(0.02)
        status, raw = post("/write-to-online-store", body)
        self.assertEqual(status, 429, raw)
        self.assertIn(b"--http-max-writes", raw)
        # Reads are not writes: served.
        status, raw = post("/get-online-features", json.dumps(
            {"features": ["driver_hourly_stats:avg_daily_trips"], "entities": {"driver_id": [7]}}))
        self.assertEqual(status, 200, raw)
        # One stalled writer finishes its body: its write is answered and its slot freed.
        slow[0].sendall(body[10:])
        self.assertTrue(slow[0].recv(65536).startswith(b"HTTP/1.1 200"))
        slow[0].close()
        slow[1].close()  # the other gives up: its slot is freed with the connection
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, raw = post("/write-to-online-store", body)
            if status == 200:
                break
            time.sleep(0.1)
        self.assertEqual(status, 200, raw)
        self.assertEqual(server.stop(), 0, server.log()[-2000:])
        self.assertIsNone(server.sanitizer_report())


class HttpCompressionOffTest(unittest.TestCase):
    """--http-response-compression off: plain bodies, whatever Accept-Encoding says."""

    def test_bodies_stay_plain(self):
        from harness import Server
        server = Server(catalog=CATALOG, args=["--http-response-compression", "off"])
        self.addCleanup(server.cleanup)
        server.start()
        conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
        self.addCleanup(conn.close)
        body = {"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"],
                "entities": {"driver_id": list(range(1, 101))}}
        conn.request("POST", "/get-online-features", body=json.dumps(body),
                     headers={"Content-Type": "application/json", "Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        raw = resp.read()
        self.assertEqual(resp.status, 200, raw)
        self.assertGreater(len(raw), 1024)
        self.assertIsNone(resp.getheader("Content-Encoding"))
        self.assertIsNone(resp.getheader("Vary"))
        self.assertEqual(len(json.loads(raw)["results"]), 3)
        self.assertEqual(server.stop(), 0, server.log()[-3000:])
        self.assertIsNone(server.sanitizer_report())


class MetricsTest(HttpCase):
    """/metrics as promtool checks it, and as a real Prometheus scrapes and queries it."""

    def metrics(self):
        resp, raw = self.request("GET", "/metrics")
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/plain; version=0.0.4"))
        return raw.decode()

    def value(self, text, series):
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        self.fail("no series %s in /metrics" % series)

    def test_the_exposition_passes_promtool_and_counts_what_happened(self):
        before = self.metrics()
        for _ in range(3):
            self.gof({"features": ["driver_hourly_stats:conv_rate"],
                      "entities": {"driver_id": [1, 2]}})
        self.client.get_online_features(["driver_hourly_stats:conv_rate"],
                                        entities={"driver_id": [5]})
        self.post("/write-to-online-store",
                  {"feature_view_name": "driver_hourly_stats",
                   "df": {"driver_id": [1], "conv_rate": [7.0]}})  # refused: max 1
        # The newest event: an hour ahead (within --max-future-skew), a whole second.
        newest = int(time.time()) + 3600
        self.post("/write-to-online-store",
                  {"feature_view_name": "driver_hourly_stats",
                   "df": {"driver_id": [3], "conv_rate": [0.5],
                          "event_timestamp": [time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                            time.gmtime(newest))]}})
        text = self.metrics()
        promtool = shutil.which("promtool")
        if promtool:
            out = subprocess.run([promtool, "check", "metrics"], input=text,
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        gof = 'http_requests_total{route="/get-online-features",code="200"}'
        self.assertEqual(self.value(text, gof) - self.value(before, gof), 3)
        started = 'http_requests_started_total{route="/get-online-features"}'
        self.assertEqual(self.value(text, started) - self.value(before, started), 3)
        # Codes one by one: the refused write is 422, not one of "4xx".
        refused = 'http_requests_total{route="/write-to-online-store",code="422"}'
        self.assertEqual(self.value(text, refused) - self.value(before, refused), 1)
        for code in ("404", "429", "503", "other"):
            self.value(text, 'http_requests_total{route="/push",code="%s"}' % code)
        ok = ('grpc_server_handled_total{grpc_code="OK",grpc_method="GetOnlineFeatures",'
              'grpc_service="feast.serving.ServingService",grpc_type="unary"}')
        self.assertGreaterEqual(self.value(text, ok) - self.value(before, ok), 1)
        read = 'fstore_rows_read_total{view="driver_hourly_stats",version="1"}'
        self.assertEqual(self.value(text, read) - self.value(before, read), 7)
        self.assertEqual(self.value(
            text, 'fstore_writes_rejected_total{view="driver_hourly_stats",version="1"}'), 1)
        self.assertEqual(self.value(
            text, 'fstore_view_newest_event_seconds{view="driver_hourly_stats",version="1"}'),
            float(newest))
        self.assertEqual(self.value(text, "fstore_up"), 1)
        # Health/Watch, a server stream: started, and Canceled when its client hangs up.
        watch = ('grpc_server_started_total{grpc_method="Watch",grpc_service="grpc.health.v1.Health"'
                 ',grpc_type="server_stream"}')
        cancelled = ('grpc_server_handled_total{grpc_code="Canceled",grpc_method="Watch",'
                     'grpc_service="grpc.health.v1.Health",grpc_type="server_stream"}')
        w0, c0 = self.value(text, watch), self.value(text, cancelled)
        stream = self.client.health_stub.Watch(health_pb2.HealthCheckRequest(), timeout=30)
        next(stream)
        stream.cancel()
        deadline = time.monotonic() + 10
        while self.value(self.metrics(), cancelled) != c0 + 1:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual(self.value(self.metrics(), watch), w0 + 1)
        self.assertGreater(self.value(text, "process_resident_memory_bytes"), 1e6)
        self.assertIn('fstore_catalog_info{project="http_e2e"', text)

    def test_a_real_prometheus_scrapes_and_queries_it(self):
        prom = shutil.which("prometheus")
        if prom is None:
            self.skipTest("prometheus is not installed (scripts/install-deps.sh installs it)")
        import tempfile
        import time
        import urllib.parse
        import urllib.request
        from harness import free_port
        work = tempfile.mkdtemp(prefix="fstore-prom-")
        self.addCleanup(shutil.rmtree, work, True)
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write("global: {scrape_interval: 1s}\nscrape_configs:\n"
                    "  - job_name: fstore\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % self.server.http_port)
        port = free_port()
        log = open(os.path.join(work, "prom.log"), "w")
        p = subprocess.Popen([prom, "--config.file", os.path.join(work, "prometheus.yml"),
                              "--storage.tsdb.path", os.path.join(work, "data"),
                              "--web.listen-address", "127.0.0.1:%d" % port],
                             stdout=log, stderr=log)
        self.addCleanup(log.close)
        self.addCleanup(p.wait)
        self.addCleanup(p.terminate)
        for _ in range(5):
            self.gof({"features": ["driver_hourly_stats:acc_rate"],
                      "entities": {"driver_id": [42]}})
        query = 'sum(http_requests_total{route="/get-online-features",code="200"})'
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(query))
        deadline = time.monotonic() + 60
        got = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    doc = json.loads(r.read())
                result = doc["data"]["result"]
                if result and float(result[0]["value"][1]) >= 5:
                    got = float(result[0]["value"][1])
                    break
            except OSError:
                pass
            time.sleep(0.5)
        self.assertIsNotNone(got, "Prometheus never saw the requests")
        self.assertGreaterEqual(got, 5)


if __name__ == "__main__":
    unittest.main()

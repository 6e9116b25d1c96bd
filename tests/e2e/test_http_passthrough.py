# tests/e2e/test_http_passthrough.py - Predict passthrough over HTTP: TF Serving REST, SageMaker.
"""A binding with an upstream answers over HTTP what TF Serving's REST API would answer for the
model server's tensors: JSON inputs become tensors (shape from the nesting, entity inputs typed
by their join key), the features join them, and the upstream's outputs come back as
"predictions" (rows) or "outputs" (columns), or as CSV lines for SageMaker."""
import base64
import http.client
import json
import shutil
import socket
import threading
import time
import unittest

from harness import Server, free_port
from test_predict import PredictServerTestCase, render_catalog, write_drivers
from upstream_model_server import UpstreamModelServer


def score(conv, acc, trips, bias=0.0):
    return 1.0 * conv + 2.0 * acc + 0.5 * trips + bias


# Drivers 1, 2 and 999 (absent: conv 0 under on_missing zero, acc and trips their defaults).
S1, S2, S999 = score(0.5, 0.75, 10), score(0.25, 0.5, 20), score(0.0, 0.25, 7)


class HttpMixin:
    def http(self, method, path, body=None, headers=None, port=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.server.http_port,
                                          timeout=timeout)
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        return resp, raw

    def predict(self, model, body, **kw):
        return self.http("POST", "/v1/models/%s:predict" % model, body, **kw)

    def assertError(self, resp, raw, status, *fragments):
        self.assertEqual(resp.status, status, raw)
        msg = json.loads(raw)["error"]
        for f in fragments:
            self.assertIn(f, msg)
        return msg


class HttpPassthrough(HttpMixin, PredictServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream_port = free_port()
        cls.upstream = UpstreamModelServer(cls.upstream_port).start()
        cls.addClassCleanup(cls.upstream.stop)
        super().setUpClass()
        write_drivers(cls.client)

    def setUp(self):
        self.upstream.reset()

    def test_rows_go_up_as_stacked_tensors_and_come_back_as_predictions(self):
        resp, raw = self.predict("scorer_rows", {"instances": [
            {"driver_id": 1, "bias": 100.0, "ctx": [1, 2]},
            {"driver_id": 2, "bias": 100.0, "ctx": [3, 4]}]})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        got = self.upstream.last_request()
        self.assertEqual(got["model"], "rowwise")
        self.assertEqual(got["dtypes"], {"driver_id": "DT_INT64", "bias": "DT_FLOAT",
                                         "ctx": "DT_INT64", "conv_rate": "DT_FLOAT",
                                         "acc_rate": "DT_DOUBLE", "trips": "DT_INT64"})
        self.assertEqual(got["shapes"]["ctx"], [2, 2])
        self.assertEqual(got["inputs"]["ctx"], [[1, 2], [3, 4]])
        self.assertEqual(got["inputs"]["driver_id"], [1, 2])
        self.assertEqual(got["inputs"]["trips"], [10, 20])
        preds = json.loads(raw)["predictions"]
        self.assertEqual(len(preds), 2)
        for p, s, trips in zip(preds, (S1 + 100, S2 + 100), (10, 20)):
            # Every output, sorted by name, one row each, as TF Serving writes them.
            self.assertEqual(list(p), ["count", "label_bytes", "pair", "score"])
            self.assertEqual(p["score"], s)
            self.assertEqual(p["count"], trips)
            self.assertEqual(p["pair"], [s, -s])
            self.assertEqual(base64.b64decode(p["label_bytes"]["b64"]), b"\xffL%d" % trips)

    def test_columns_go_up_as_given_and_come_back_as_outputs(self):
        resp, raw = self.predict("scorer", {"inputs": {"driver_id": [1, 2, 999],
                                                       "bias": [[0.5]]},
                                            "signature_name": "ignored"})
        self.assertEqual(resp.status, 200, raw)
        got = self.upstream.last_request()
        self.assertEqual(got["signature"], "score", "the binding's signature wins")
        self.assertEqual(got["shapes"]["bias"], [1, 1])
        self.assertEqual(got["inputs"]["conv_rate"], [0.5, 0.25, 0.0])
        out = json.loads(raw)["outputs"]
        self.assertEqual(sorted(out), ["echo", "received", "score"])
        self.assertEqual(out["score"], [S1 + 0.5, S2 + 0.5, S999 + 0.5])
        self.assertEqual(out["echo"], ["weighted_sum", "score"])
        self.assertEqual(out["received"],
                         ["acc_rate", "bias", "conv_rate", "driver_id", "trips"])

    def test_the_callers_signature_goes_through_and_entity_inputs_can_be_dropped(self):
        resp, raw = self.predict("scorer_lean", {"inputs": {"driver_id": [2]},
                                                 "signature_name": "callers_sig"})
        self.assertEqual(resp.status, 200, raw)
        got = self.upstream.last_request()
        self.assertEqual(got["signature"], "callers_sig")
        self.assertNotIn("driver_id", got["inputs"])
        self.assertEqual(json.loads(raw)["outputs"]["score"], [S2])

    def test_bare_rows_feed_the_one_entity_input(self):
        resp, raw = self.predict("scorer_rows", {"instances": [2, 1]})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(self.upstream.last_request()["inputs"]["driver_id"], [2, 1])
        self.assertEqual([p["score"] for p in json.loads(raw)["predictions"]], [S2, S1])

    def test_outputs_without_a_common_batch_cannot_be_rows(self):
        resp, raw = self.predict("scorer", {"instances": [{"driver_id": 1}]})
        self.assertError(resp, raw, 502, "different batch sizes", "send 'inputs'")

    def test_bad_inputs_are_refused_before_the_upstream(self):
        cases = [
            ({"inputs": {"driver_id": [1], "x": [[1, 2], [3]]}}, "input 'x' is ragged"),
            ({"inputs": {"driver_id": [1], "x": [1, "a"]}}, "input 'x' mixes value types"),
            ({"inputs": {"driver_id": [1], "x": [None]}}, "input 'x'"),
            ({"inputs": {"driver_id": [1], "trips": [5]}}, "'trips'"),
            ({"instances": [{"driver_id": 1, "x": 1}, {"driver_id": 2}]}, "instances[1]"),
            ({"inputs": {"driver_id": ["a"]}}, "driver_id"),
        ]
        for body, frag in cases:
            with self.subTest(body=body):
                resp, raw = self.predict("scorer", body)
                self.assertError(resp, raw, 400, frag)
        self.assertIsNone(self.upstream.last_request())

    def test_upstream_statuses_map_as_tf_serving_maps_them(self):
        for code, status in (("INVALID_ARGUMENT", 400), ("NOT_FOUND", 404),
                             ("RESOURCE_EXHAUSTED", 429), ("UNAUTHENTICATED", 401),
                             ("UNAVAILABLE", 503), ("INTERNAL", 500)):
            with self.subTest(code=code):
                resp, raw = self.predict("scorer_failing",
                                         {"inputs": {"driver_id": [1], "fail": [code]}})
                self.assertError(resp, raw, status, "upstream 127.0.0.1:%d" % self.upstream_port,
                                 "model 'failing'", "model says no")

    def test_an_unreachable_upstream_is_503_and_a_slow_one_504(self):
        t0 = time.monotonic()
        resp, raw = self.predict("scorer_down", {"inputs": {"driver_id": [1]}})
        self.assertError(resp, raw, 503, "cannot reach")
        resp, raw = self.predict("scorer_slow", {"inputs": {"driver_id": [1]}})
        self.assertError(resp, raw, 504, "timeout_ms")
        self.assertLess(time.monotonic() - t0, 20)
        self.assertTrue(self.upstream.wait_event("cancelled"))

    def test_sagemaker_json_rows_answer_the_models_predictions(self):
        resp, raw = self.http("POST", "/invocations", {"instances": [{"driver_id": 1}]},
                              headers={"X-Amzn-SageMaker-Custom-Attributes": "model=scorer_rows",
                                       "Accept": "application/json"})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(json.loads(raw)["predictions"][0]["score"], S1)

    def test_sagemaker_csv_answers_a_line_of_output_values_per_row(self):
        resp, raw = self.http("POST", "/invocations", "1\n2\n",
                              headers={"Content-Type": "text/csv", "Accept": "text/csv",
                                       "X-Amzn-SageMaker-Custom-Attributes": "model=scorer_rows"})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(resp.getheader("Content-Type"), "text/csv")
        lines = raw.decode().splitlines()
        self.assertEqual(len(lines), 2)
        # count, label_bytes (base64), pair (two cells), score
        for line, s, trips in zip(lines, (S1, S2), (10, 20)):
            cells = line.split(",")
            self.assertEqual(int(cells[0]), trips)
            self.assertEqual(base64.b64decode(cells[1]), b"\xffL%d" % trips)
            self.assertEqual([float(c) for c in cells[2:]], [s, -s, s])

    def odd(self, kind, output="rows", **kw):
        body = ({"instances": [{"driver_id": 1, "kind": kind}]} if output == "rows"
                else {"inputs": {"driver_id": [1], "kind": [kind]}})
        return self.predict("scorer_odd", body, **kw)

    def test_unsigned_outputs_come_from_their_own_fields(self):
        resp, raw = self.odd("unsigned", output="columns")
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(json.loads(raw), {"outputs": {"u32": [4000000000, 7],
                                                       "u64": [2 ** 64 - 1, 8]}})

    def test_an_answer_that_cannot_fit_is_refused_before_it_is_written(self):
        for kind in ("huge", "empty_rows"):
            for output in ("rows", "columns"):
                with self.subTest(kind=kind, output=output):
                    t0 = time.monotonic()
                    resp, raw = self.odd(kind, output=output)
                    self.assertError(resp, raw, 502, "over --max-response-bytes")
                    self.assertLess(time.monotonic() - t0, 10)
        resp, raw = self.predict("scorer_rows", {"instances": [1]})
        self.assertEqual(resp.status, 200, raw)

    def test_csv_string_outputs_are_text_cells(self):
        resp, raw = self.http("POST", "/invocations", "1\n",
                              headers={"Content-Type": "text/csv", "Accept": "text/csv",
                                       "X-Amzn-SageMaker-Custom-Attributes": "model=scorer_odd"})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(raw.decode().splitlines(), ['"a,b"', '"say ""hi"""'])
        resp, raw = self.http("POST", "/invocations", {"inputs": {"driver_id": [1],
                                                                  "kind": ["text"]}},
                              headers={"X-Amzn-SageMaker-Custom-Attributes": "model=scorer_odd",
                                       "Accept": "application/json"})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(json.loads(raw), {"outputs": ["a,b", 'say "hi"']})

    def test_bare_values_need_one_entity_input(self):
        for body in ({"instances": [1]}, {"inputs": [1]}):
            with self.subTest(body=body):
                resp, raw = self.predict("scorer_pair", body)
                self.assertError(resp, raw, 400, "entity input")
        self.assertIsNone(self.upstream.last_request())
        resp, raw = self.predict("scorer_pair",
                                 {"inputs": {"driver": [1], "customer": ["c5"]}})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(json.loads(raw)["outputs"]["score"], [S1])

    def test_features_only_bindings_are_unchanged(self):
        resp, raw = self.predict("driver_features", {"instances": [1]})
        self.assertEqual(resp.status, 200, raw)
        self.assertIsNone(self.upstream.last_request())


class HttpPassthroughBounds(HttpMixin, unittest.TestCase):
    """--http-upstream-timeout-ms bounds a passthrough whose binding has no timeout; stopping the
    server cancels those in flight and answers them."""

    def setUp(self):
        self.upstream_port = free_port()
        self.upstream = UpstreamModelServer(self.upstream_port).start()
        self.addCleanup(self.upstream.stop)
        catalog_dir, catalog = render_catalog(self.upstream_port, free_port())
        self.addCleanup(shutil.rmtree, catalog_dir, True)
        self.server = Server(catalog=catalog, args=["--http-upstream-timeout-ms", "700",
                                                    "--shutdown-grace-ms", "500"])
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def test_the_http_upstream_timeout_ends_a_slow_call(self):
        t0 = time.monotonic()
        resp, raw = self.predict("scorer_unbounded", {"inputs": {"driver_id": [1]}})
        self.assertError(resp, raw, 504, "model 'slow'", "caller's deadline")
        self.assertLess(time.monotonic() - t0, 5, "the model would take 10 s")
        self.assertTrue(self.upstream.wait_event("cancelled"))
        rc = self.server.stop()
        self.assertEqual(rc, 0, self.server.log())
        self.assertIsNone(self.server.sanitizer_report())

    def test_passthroughs_in_flight_are_bounded(self):
        server = self.server
        server.stop()
        self.server = Server(catalog=server.catalog, args=["--http-max-passthroughs", "2"])
        self.addCleanup(self.server.cleanup)
        self.server.start()
        results = []
        self.addCleanup(self.upstream.release)

        def call():  # held by the model server until the test releases it
            resp, raw = self.predict("scorer_held", {"inputs": {"driver_id": [1]}})
            results.append(resp.status)

        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(self.upstream.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        t0 = time.monotonic()
        resp, raw = self.predict("scorer", {"inputs": {"driver_id": [1]}})
        self.assertError(resp, raw, 503, "--http-max-passthroughs")
        self.assertLess(time.monotonic() - t0, 2, "refused at once, not queued")
        self.assertEqual(len(self.upstream.requests), 2, "the third never reached the upstream")
        self.assertEqual(results, [], "a held call ended before its release")
        self.upstream.release()
        for t in threads:
            t.join(30)
        self.assertEqual(results, [200, 200])
        resp, raw = self.predict("scorer", {"inputs": {"driver_id": [1]}})
        self.assertEqual(resp.status, 200, raw)

    def metric(self, name):
        v = self.server.metric(name)
        self.assertIsNotNone(v, name)
        return int(v)

    def test_a_client_that_hangs_up_cancels_its_passthrough_and_frees_its_slot(self):
        server = self.server
        server.stop()
        self.server = Server(catalog=server.catalog, args=["--http-max-passthroughs", "1"])
        self.addCleanup(self.server.cleanup)
        self.server.start()
        body = json.dumps({"inputs": {"driver_id": [1], "sleep_ms": [30000]}}).encode()
        # Twice: the watcher goes on after its first hang-up.
        for n in (1, 2):
            self.upstream.reset()
            s = socket.create_connection(("127.0.0.1", self.server.http_port), timeout=30)
            s.sendall(b"POST /v1/models/scorer:predict HTTP/1.1\r\nHost: t\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
            deadline = time.monotonic() + 30
            while not self.upstream.requests and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual(len(self.upstream.requests), 1, "the call never reached the model")
            self.assertEqual(self.metric("http_passthroughs_in_flight"), 1)
            # The model would take 30 s; the slot is taken meanwhile.
            resp, raw = self.predict("scorer", {"inputs": {"driver_id": [1]}})
            self.assertError(resp, raw, 503, "--http-max-passthroughs")
            s.close()
            self.assertTrue(self.upstream.wait_event("cancelled", timeout=10),
                            "the hang-up never reached the model server")
            deadline = time.monotonic() + 10
            while (self.metric("http_passthroughs_in_flight") != 0
                   and time.monotonic() < deadline):
                time.sleep(0.02)
            self.assertEqual(self.metric("http_passthroughs_abandoned_total"), n)
            resp, raw = self.predict("scorer", {"inputs": {"driver_id": [1]}})
            self.assertEqual(resp.status, 200, raw)
        rc = self.server.stop()
        self.assertEqual(rc, 0, self.server.log()[-3000:])
        self.assertIsNone(self.server.sanitizer_report())

    def test_stop_cancels_passthroughs_in_flight_and_answers_them(self):
        # The binding has no timeout and --http-upstream-timeout-ms is 700 ms: sleep_ms keeps the
        # upstream busy for longer only through scorer (timeout_ms 30 s) with its own sleep.
        results = []

        def call():
            try:
                resp, raw = self.predict("scorer", {"inputs": {"driver_id": [1],
                                                               "sleep_ms": [20000]}},
                                         port=self.server.http_port)
                results.append(resp.status)
            except (OSError, http.client.HTTPException) as e:
                results.append(repr(e))

        server = self.server
        # A fresh server whose HTTP bound is long, so only the stop can end the calls.
        server.stop()
        self.server = Server(catalog=server.catalog, args=["--shutdown-grace-ms", "500"])
        self.addCleanup(self.server.cleanup)
        self.server.start()
        threads = [threading.Thread(target=call) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(self.upstream.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(self.upstream.requests), 3, "the calls never reached the upstream")
        t0 = time.monotonic()
        rc = self.server.stop()
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(rc, 0, self.server.log())
        self.assertIsNone(self.server.sanitizer_report())
        for t in threads:
            t.join(30)
        self.assertEqual(len(results), 3)
        for r in results:
            self.assertEqual(r, 503, "a stopped passthrough is answered (unavailable: try "
                                     "another node), not dropped")
        self.assertTrue(self.upstream.wait_event("cancelled", timeout=10))


if __name__ == "__main__":
    unittest.main()

# tests/e2e/test_predict_upstream.py - Predict passthrough: enriched inputs, failures, deadlines.
import shutil
import time
import unittest

import grpc

from harness import Server, free_port
from tensorflow_serving.apis import prediction_service_pb2_grpc
from test_predict import PredictServerTestCase, predict_request, render_catalog, write_drivers
from upstream_model_server import UpstreamModelServer, make_tensor, tensor_rows


def weighted(conv, acc, trips, bias=0.0):
    return 1.0 * conv + 2.0 * acc + 0.5 * trips + bias


class PredictUpstream(PredictServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream_port = free_port()
        cls.upstream = UpstreamModelServer(cls.upstream_port).start()
        cls.addClassCleanup(cls.upstream.stop)
        super().setUpClass()
        write_drivers(cls.client)

    def setUp(self):
        self.upstream.reset()

    def test_upstream_gets_enriched_inputs_and_client_gets_its_output(self):
        resp = self.predict("scorer", {"driver_id": make_tensor("DT_INT64", [1, 2, 999]),
                                       "bias": make_tensor("DT_DOUBLE", [100.0])})
        got = self.upstream.last_request()
        self.assertEqual(got["model"], "weighted_sum")
        self.assertEqual(got["signature"], "score")
        self.assertEqual(sorted(got["inputs"]),
                         ["acc_rate", "bias", "conv_rate", "driver_id", "trips"])
        self.assertEqual(got["inputs"]["driver_id"], [1, 2, 999])
        self.assertEqual(got["inputs"]["conv_rate"], [0.5, 0.25, 0.0])  # on_missing: zero
        self.assertEqual(got["inputs"]["acc_rate"], [0.75, 0.5, 0.25])   # default 0.25
        self.assertEqual(got["inputs"]["trips"], [10, 20, 7])            # default 7
        self.assertEqual(got["dtypes"], {"driver_id": "DT_INT64", "bias": "DT_DOUBLE",
                                         "conv_rate": "DT_FLOAT", "acc_rate": "DT_DOUBLE",
                                         "trips": "DT_INT64"})
        self.assertEqual(got["shapes"]["conv_rate"], [3])
        # The upstream's response comes back as it sent it.
        self.assertEqual(resp.model_spec.name, "weighted_sum")
        self.assertEqual(resp.model_spec.version.value, 42)
        self.assertEqual(tensor_rows(resp.outputs["score"]),
                         [weighted(0.5, 0.75, 10, 100), weighted(0.25, 0.5, 20, 100),
                          weighted(0.0, 0.25, 7, 100)])
        self.assertEqual(tensor_rows(resp.outputs["echo"]), [b"weighted_sum", b"score"])

    def test_entity_inputs_can_be_dropped_and_signature_passes_through(self):
        resp = self.predict("scorer_lean", {"driver_id": make_tensor("DT_INT64", [1])},
                            signature="callers_sig", output_filter=["score", "received"])
        self.assertEqual(sorted(resp.outputs), ["received", "score"])
        self.assertEqual(tensor_rows(resp.outputs["received"]),
                         [b"acc_rate", b"conv_rate", b"trips"])
        got = self.upstream.last_request()
        self.assertEqual(got["signature"], "callers_sig")  # the binding names none
        self.assertEqual(got["output_filter"], ["score", "received"])

    def test_an_input_named_like_a_feature_is_refused(self):
        self.assertRpcError(
            lambda: self.predict("scorer", {"driver_id": make_tensor("DT_INT64", [1]),
                                            "trips": make_tensor("DT_INT64", [5])}),
            grpc.StatusCode.INVALID_ARGUMENT, "'trips'", "scoring")

    def test_feature_errors_stop_before_the_upstream(self):
        n = len(self.upstream.requests)
        self.assertRpcError(lambda: self.predict("scorer", {}),
                            grpc.StatusCode.INVALID_ARGUMENT, "entity input 'driver_id'")
        self.assertEqual(len(self.upstream.requests), n)

    def test_upstream_error_statuses_come_back_with_their_code(self):
        for code in ("INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION",
                     "RESOURCE_EXHAUSTED", "INTERNAL", "UNAUTHENTICATED", "UNAVAILABLE"):
            with self.subTest(code=code):
                self.assertRpcError(
                    lambda: self.predict("scorer_failing",
                                         {"driver_id": make_tensor("DT_INT64", [1]),
                                          "fail": make_tensor("DT_STRING", [code])}),
                    getattr(grpc.StatusCode, code), "upstream 127.0.0.1:%d" % self.upstream_port,
                    "model 'failing'", "model says no")

    def test_upstream_down_is_unavailable(self):
        t0 = time.monotonic()
        self.assertRpcError(
            lambda: self.predict("scorer_down", {"driver_id": make_tensor("DT_INT64", [1])}),
            grpc.StatusCode.UNAVAILABLE, "upstream 127.0.0.1:", "cannot reach")
        self.assertLess(time.monotonic() - t0, 20)

    def test_upstream_slower_than_the_binding_timeout_is_deadline_exceeded(self):
        t0 = time.monotonic()
        self.assertRpcError(
            lambda: self.predict("scorer_slow", {"driver_id": make_tensor("DT_INT64", [1])}),
            grpc.StatusCode.DEADLINE_EXCEEDED, "upstream", "model 'slow'", "timeout_ms")
        self.assertLess(time.monotonic() - t0, 8.0)  # the upstream would take 10 s
        self.assertTrue(self.upstream.wait_event("cancelled"),
                        "the upstream call was not cancelled at the deadline")

    def test_callers_deadline_propagates_to_the_upstream(self):
        t0 = time.monotonic()
        self.assertRpcError(
            lambda: self.predict("scorer", {"driver_id": make_tensor("DT_INT64", [1]),
                                            "sleep_ms": make_tensor("DT_INT64", [25000])},
                                 timeout=3.0),
            grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertIsNotNone(self.upstream.last_request(), "the call never reached the upstream")
        # The binding allows 30 s and the upstream would sleep 25 s: only the caller's 3 s
        # deadline, carried by fstore's call, can have stopped it.
        self.assertTrue(self.upstream.wait_event("cancelled", timeout=15),
                        "the caller's deadline did not reach the upstream")
        self.assertLess(time.monotonic() - t0, 20.0)

    def test_cancellation_propagates_to_the_upstream(self):
        fut = self.stub.Predict.future(
            predict_request("scorer", {"driver_id": make_tensor("DT_INT64", [1]),
                                       "sleep_ms": make_tensor("DT_INT64", [20000])}),
            timeout=60)
        deadline = time.monotonic() + 30
        while self.upstream.last_request() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIsNotNone(self.upstream.last_request(), "the call never reached the upstream")
        fut.cancel()
        self.assertTrue(self.upstream.wait_event("cancelled", timeout=10),
                        "cancelling the Predict call did not cancel the upstream call")

    def test_upstream_restart_is_picked_up_by_the_long_lived_channel(self):
        inputs = {"driver_id": make_tensor("DT_INT64", [1])}
        self.predict("scorer", inputs)
        self.upstream.stop()
        try:
            self.assertRpcError(lambda: self.predict("scorer", inputs),
                                grpc.StatusCode.UNAVAILABLE, "upstream")
        finally:
            type(self).upstream = UpstreamModelServer(self.upstream_port).start()
            self.addClassCleanup(type(self).upstream.stop)
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = self.predict("scorer", inputs)
                break
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.assertEqual(tensor_rows(resp.outputs["score"]), [weighted(0.5, 0.75, 10)])


class PredictShutdown(unittest.TestCase):
    """Stopping fstore with passthroughs in flight: they end, the upstream hears of it, and the
    server exits cleanly once its grace period is over."""

    def test_stop_with_passthroughs_in_flight(self):
        upstream_port = free_port()
        upstream = UpstreamModelServer(upstream_port).start()
        self.addCleanup(upstream.stop)
        catalog_dir, catalog = render_catalog(upstream_port, free_port())
        self.addCleanup(shutil.rmtree, catalog_dir, True)
        server = Server(catalog=catalog, args=["--shutdown-grace-ms", "500"])
        self.addCleanup(server.cleanup)
        server.start()
        channel = grpc.insecure_channel(server.target)
        self.addCleanup(channel.close)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        req = predict_request("scorer", {"driver_id": make_tensor("DT_INT64", [1]),
                                         "sleep_ms": make_tensor("DT_INT64", [25000])})
        futs = [stub.Predict.future(req, timeout=60) for _ in range(4)]
        deadline = time.monotonic() + 30
        while len(upstream.requests) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(upstream.requests), 4, "the calls never reached the upstream")

        rc = server.stop()
        report = server.sanitizer_report()
        self.assertIsNone(report, "sanitizer report from fstore:\n%s" % report)
        self.assertEqual(rc, 0, server.log())
        for f in futs:
            with self.assertRaises(grpc.RpcError):
                f.result(timeout=30)
        self.assertTrue(upstream.wait_event("cancelled", timeout=10),
                        "stopping fstore did not cancel the upstream calls")


if __name__ == "__main__":
    unittest.main()

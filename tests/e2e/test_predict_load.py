# tests/e2e/test_predict_load.py - Predict (both modes) beside GetOnlineFeatures load, no failures.
import threading
import time
import unittest

from harness import free_port
from test_predict import PredictServerTestCase, predict_request, write_drivers
from upstream_model_server import UpstreamModelServer, make_tensor, tensor_rows

SLOW_CALLS = 20    # passthroughs the upstream holds (model `held`) until the load is over
RUN_SECONDS = 3.0  # mixed load duration


class PredictUnderLoad(PredictServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream_port = free_port()
        cls.upstream = UpstreamModelServer(cls.upstream_port, workers=SLOW_CALLS + 16).start()
        cls.addClassCleanup(cls.upstream.stop)
        super().setUpClass()
        write_drivers(cls.client)

    def gof(self):
        r = self.client.get_online_features(features=["driver_stats:conv_rate",
                                                      "driver_stats:trips"],
                                            entities={"driver_id": [1, 2]})
        self.assertEqual(r["trips"], [10, 20])

    def features_only(self):
        resp = self.predict("driver_features", {"driver_id": make_tensor("DT_INT64", [1, 2])},
                            version=1, output_filter=["trips", "embedding"])
        self.assertEqual(tensor_rows(resp.outputs["trips"]), [10, 20])

    def passthrough(self):
        resp = self.predict("scorer", {"driver_id": make_tensor("DT_INT64", [1, 2])})
        self.assertEqual(tensor_rows(resp.outputs["score"]),
                         [1.0 * 0.5 + 2.0 * 0.75 + 0.5 * 10, 1.0 * 0.25 + 2.0 * 0.5 + 0.5 * 20])

    def test_mixed_load_with_slow_passthroughs_in_flight(self):
        # Park passthroughs in the upstream first: they hold Predict slots, never threads,
        # and stay parked until the upstream releases them at the end.
        self.addCleanup(self.upstream.release)
        slow_req = predict_request("scorer_held", {"driver_id": make_tensor("DT_INT64", [1])})
        slow = [self.stub.Predict.future(slow_req, timeout=120) for _ in range(SLOW_CALLS)]
        deadline = time.monotonic() + 60
        while len(self.upstream.requests) < SLOW_CALLS and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(self.upstream.requests), SLOW_CALLS,
                         "the slow passthroughs did not all reach the upstream")

        # Reads while every slow call is parked: none waits for them.
        for _ in range(10):
            self.gof()
        self.assertFalse(any(f.done() for f in slow), "a parked passthrough ended early")

        # Then mixed load from several threads, still with the slow calls in flight.
        failures = []
        counts = {}
        stop = time.monotonic() + RUN_SECONDS

        def loop(name, fn):
            n = 0
            try:
                while time.monotonic() < stop:
                    fn()
                    n += 1
            except Exception as e:  # noqa: BLE001 - every failure is reported below
                failures.append("%s: %r" % (name, e))
            counts[name] = counts.get(name, 0) + n

        threads = [threading.Thread(target=loop, args=("gof%d" % i, self.gof)) for i in range(3)]
        threads += [threading.Thread(target=loop, args=("features%d" % i, self.features_only))
                    for i in range(2)]
        threads += [threading.Thread(target=loop, args=("passthrough%d" % i, self.passthrough))
                    for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(failures, [])
        for name, n in counts.items():
            self.assertGreater(n, 0, "%s made no calls" % name)

        self.assertFalse(any(f.done() for f in slow), "a parked passthrough ended early")
        self.upstream.release()
        for f in slow:
            resp = f.result(timeout=120)
            self.assertEqual(tensor_rows(resp.outputs["score"]), [0.5 + 1.5 + 5.0])


if __name__ == "__main__":
    unittest.main()

# tests/e2e/test_predict.py - Predict without an upstream: feature tensors, dtypes, shapes, errors.
import math
import os
import shutil
import signal
import tempfile
import unittest

import grpc

from harness import E2E_DIR, Server, ServerTestCase, free_port
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from upstream_model_server import make_tensor, tensor_rows, tensor_shape

PREDICT_TEMPLATE = os.path.join(E2E_DIR, "predict_catalog.yaml")


def render_catalog(upstream_port, dead_port):
    """The Predict catalog with its ports filled in, in a new temporary directory."""
    with open(PREDICT_TEMPLATE) as f:
        text = f.read()
    text = text.replace("@UPSTREAM_PORT@", str(upstream_port))
    text = text.replace("@DEAD_PORT@", str(dead_port))
    d = tempfile.mkdtemp(prefix="fstore-predict-")
    path = os.path.join(d, "catalog.yaml")
    with open(path, "w") as f:
        f.write(text)
    return d, path


def predict_request(model, inputs, version=None, label=None, output_filter=(), signature=""):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    req.model_spec.signature_name = signature
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
    for name, t in inputs.items():
        req.inputs[name].CopyFrom(t)
    req.output_filter.extend(output_filter)
    return req


def dt(t):
    from tensorflow.core.framework import types_pb2
    return types_pb2.DataType.Name(t.dtype)


class PredictServerTestCase(ServerTestCase):
    """A server with the Predict catalog; upstream_port is where passthrough bindings point."""

    upstream_port = None

    @classmethod
    def setUpClass(cls):
        if cls.upstream_port is None:
            cls.upstream_port = free_port()
        cls.catalog_dir, cls.catalog = render_catalog(cls.upstream_port, free_port())
        cls.addClassCleanup(shutil.rmtree, cls.catalog_dir, True)
        super().setUpClass()
        cls.predict_channel = grpc.insecure_channel(cls.server.target)
        cls.addClassCleanup(cls.predict_channel.close)
        cls.stub = prediction_service_pb2_grpc.PredictionServiceStub(cls.predict_channel)

    def predict(self, *args, timeout=30, **kwargs):
        return self.stub.Predict(predict_request(*args, **kwargs), timeout=timeout)


DRIVERS = {
    1: {"conv_rate": 0.5, "acc_rate": 0.75, "trips": 10, "rank": -3, "label": "gold",
        "avatar": b"\x00\xff", "active": True, "last_seen": 1700000000,
        "embedding": [1.5, -2.0], "history": [1, 2, 3], "tags": ["a", "b"],
        "weights": [0.25, 0.5], "flags": [True, False], "codes": [7]},
    2: {"conv_rate": 0.25, "acc_rate": 0.5, "trips": 20, "rank": 4, "label": "silver",
        "avatar": b"", "active": False, "last_seen": 1700000100,
        "embedding": [3.0, 4.0], "history": [4, 5, 6], "tags": ["c", "d"],
        "weights": [1.0, 2.0], "flags": [False, True], "codes": [8]},
    # Only some features: the rest are null (acc_rate, trips and label take their defaults).
    3: {"conv_rate": 0.125, "rank": 5, "avatar": b"x", "active": True, "last_seen": 5,
        "embedding": [0.0, 1.0], "history": [9, 9, 9], "tags": ["e", "f"],
        "weights": [3.0, 4.0], "flags": [True, True], "codes": [9]},
    # A list of another length than the others: a batch with 1 and 4 is ragged.
    4: {"conv_rate": 1.0, "rank": 1, "avatar": b"y", "active": False, "last_seen": 6,
        "embedding": [1.0, 2.0, 3.0], "history": [1, 2, 3], "tags": ["g", "h"],
        "weights": [5.0, 6.0], "flags": [False, False], "codes": [1]},
}
FEATURES = ["conv_rate", "acc_rate", "trips", "rank", "label", "avatar", "active", "last_seen",
            "embedding", "history", "tags", "weights", "flags", "codes"]


def write_drivers(client):
    cols = {"driver_id": list(DRIVERS)}
    for f in FEATURES:
        cols[f] = [DRIVERS[d].get(f) for d in DRIVERS]
    client.write_features("driver_stats", cols)
    client.write_features("customer_stats", {"customer_id": ["c1", "c2"], "trips": [100, 200],
                                             "spend": [9.5, None]})
    client.write_features("zone_stats", {"zone_id": [1], "surge": [1.5]})


class PredictFeatures(PredictServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        write_drivers(cls.client)

    def test_every_dtype_and_shape(self):
        resp = self.predict("driver_features", {"driver_id": make_tensor("DT_INT64", [1, 2])},
                            version=1)
        out = resp.outputs
        self.assertEqual(sorted(out), sorted(FEATURES))
        want = {
            "conv_rate": ("DT_FLOAT", [2]), "acc_rate": ("DT_DOUBLE", [2]),
            "trips": ("DT_INT64", [2]), "rank": ("DT_INT32", [2]),
            "label": ("DT_STRING", [2]), "avatar": ("DT_STRING", [2]),
            "active": ("DT_BOOL", [2]), "last_seen": ("DT_INT64", [2]),
            "embedding": ("DT_FLOAT", [2, 2]), "history": ("DT_INT64", [2, 3]),
            "tags": ("DT_STRING", [2, 2]), "weights": ("DT_DOUBLE", [2, 2]),
            "flags": ("DT_BOOL", [2, 2]), "codes": ("DT_INT32", [2, 1]),
        }
        for name, (dtype, shape) in want.items():
            with self.subTest(feature=name):
                self.assertEqual(dt(out[name]), dtype)
                self.assertEqual(tensor_shape(out[name]), shape)
                rows = tensor_rows(out[name])
                expect = [DRIVERS[1][name], DRIVERS[2][name]]
                if dtype == "DT_STRING":
                    expect = [[s.encode() for s in e] if isinstance(e, list)
                              else (e.encode() if isinstance(e, str) else e) for e in expect]
                if dtype == "DT_FLOAT":
                    rows = [[round(x, 6) for x in r] if isinstance(r, list) else round(r, 6)
                            for r in rows]
                self.assertEqual(rows, expect)

    def test_model_spec_is_echoed_with_the_resolved_version(self):
        inputs = {"driver_id": make_tensor("DT_INT64", [1])}
        resp = self.predict("driver_features", inputs, signature="serving_default")
        self.assertEqual(resp.model_spec.name, "driver_features")
        self.assertEqual(resp.model_spec.version.value, 2)  # the highest
        self.assertEqual(resp.model_spec.signature_name, "serving_default")
        self.assertEqual(self.predict("driver_features", inputs, label="lenient")
                         .model_spec.version.value, 2)
        self.assertEqual(self.predict("driver_features", inputs, version=1)
                         .model_spec.version.value, 1)

    def test_missing_values_take_defaults(self):
        resp = self.predict("driver_features", {"driver_id": make_tensor("DT_INT64", [3])},
                            version=1, output_filter=["acc_rate", "trips", "label", "conv_rate"])
        self.assertEqual(tensor_rows(resp.outputs["acc_rate"]), [0.25])
        self.assertEqual(tensor_rows(resp.outputs["trips"]), [7])
        self.assertEqual(tensor_rows(resp.outputs["label"]), [b"none"])
        self.assertEqual(tensor_rows(resp.outputs["conv_rate"]), [0.125])

    def test_missing_value_without_default_names_entity_and_feature(self):
        self.assertRpcError(
            lambda: self.predict("driver_features",
                                 {"driver_id": make_tensor("DT_INT64", [1, 999])}, version=1),
            grpc.StatusCode.NOT_FOUND, "driver_id=999", "driver_stats@v1:conv_rate",
            "no default")

    def test_on_missing_zero_fills_zeros_of_the_batch_width(self):
        resp = self.predict("driver_features", {"driver_id": make_tensor("DT_INT64", [999, 1])},
                            label="lenient")
        out = resp.outputs
        self.assertEqual(tensor_rows(out["conv_rate"]), [0.0, 0.5])
        self.assertEqual(tensor_rows(out["rank"]), [0, -3])
        self.assertEqual(tensor_rows(out["avatar"]), [b"", b"\x00\xff"])
        self.assertEqual(tensor_rows(out["active"]), [False, True])
        self.assertEqual(tensor_rows(out["trips"]), [7, 10])  # a default beats zero
        self.assertEqual(tensor_rows(out["embedding"]), [[0.0, 0.0], [1.5, -2.0]])
        self.assertEqual(tensor_rows(out["tags"]), [[b"", b""], [b"a", b"b"]])
        # Nothing in the batch has a value: lists are [batch, 0].
        only_missing = self.predict("driver_features",
                                    {"driver_id": make_tensor("DT_INT64", [998, 999])},
                                    label="lenient", output_filter=["history"])
        self.assertEqual(tensor_shape(only_missing.outputs["history"]), [2, 0])

    def test_ragged_lists_are_refused(self):
        self.assertRpcError(
            lambda: self.predict("driver_features", {"driver_id": make_tensor("DT_INT64", [1, 4])},
                                 version=1, output_filter=["embedding"]),
            grpc.StatusCode.INVALID_ARGUMENT, "driver_id=4", "embedding", "ragged list",
            "3 items", "row 0 has 2")
        # One at a time, each is fine.
        resp = self.predict("driver_features", {"driver_id": make_tensor("DT_INT64", [4])},
                            version=1, output_filter=["embedding"])
        self.assertEqual(tensor_shape(resp.outputs["embedding"]), [1, 3])

    def test_output_filter(self):
        resp = self.predict("driver_features", {"driver_id": make_tensor("DT_INT64", [1])},
                            version=1, output_filter=["trips", "tags"])
        self.assertEqual(sorted(resp.outputs), ["tags", "trips"])
        self.assertRpcError(
            lambda: self.predict("driver_features", {"driver_id": make_tensor("DT_INT64", [1])},
                                 version=1, output_filter=["trips", "nope"]),
            grpc.StatusCode.INVALID_ARGUMENT, "'nope'", "conv_rate")

    def test_entity_input_encodings(self):
        want = [0.5, 0.25]
        cases = {
            "int64 [batch]": make_tensor("DT_INT64", [1, 2]),
            "int64 [batch, 1]": make_tensor("DT_INT64", [1, 2], shape=[2, 1]),
            "int32": make_tensor("DT_INT32", [1, 2]),
            "int64 tensor_content": make_tensor("DT_INT64", [1, 2], content=True),
            "int32 tensor_content": make_tensor("DT_INT32", [1, 2], shape=[2, 1], content=True),
        }
        for name, t in cases.items():
            with self.subTest(encoding=name):
                resp = self.predict("driver_features", {"driver_id": t}, version=1,
                                    output_filter=["conv_rate"])
                self.assertEqual(tensor_rows(resp.outputs["conv_rate"]), want)
        # Unpacked repeated int64 on the wire: field 10, one varint per element.
        t = make_tensor("DT_INT64", [], shape=[2])
        raw = t.SerializeToString() + bytes([0x50, 1, 0x50, 2])
        from tensorflow.core.framework import tensor_pb2
        unpacked = tensor_pb2.TensorProto.FromString(raw)
        resp = self.predict("driver_features", {"driver_id": unpacked}, version=1,
                            output_filter=["conv_rate"])
        self.assertEqual(tensor_rows(resp.outputs["conv_rate"]), want)

    def test_string_and_int32_join_keys_and_colliding_names(self):
        resp = self.predict("pair", {"driver": make_tensor("DT_INT64", [1, 2]),
                                     "customer": make_tensor("DT_STRING", ["c1", "c2"])})
        out = resp.outputs
        # Only the colliding name is qualified.
        self.assertEqual(sorted(out), ["conv_rate", "customer_stats__trips",
                                       "driver_stats__trips", "spend"])
        self.assertEqual(tensor_rows(out["driver_stats__trips"]), [10, 20])
        self.assertEqual(tensor_rows(out["customer_stats__trips"]), [100, 200])
        self.assertEqual(tensor_rows(out["spend"]), [9.5, 0.0])
        zone = self.predict("zone", {"zone": make_tensor("DT_INT64", [1, 2], shape=[2, 1])})
        self.assertEqual(tensor_rows(zone.outputs["surge"]), [1.5, 1.0])

    def test_empty_batch(self):
        resp = self.predict("driver_features", {"driver_id": make_tensor("DT_INT64", [])},
                            version=1, output_filter=["conv_rate", "embedding"])
        self.assertEqual(tensor_shape(resp.outputs["conv_rate"]), [0])
        self.assertEqual(tensor_shape(resp.outputs["embedding"]), [0, 0])

    def test_unknown_model_names_what_exists(self):
        for kw in ({}, {"version": 9}, {"label": "nope"}):
            with self.subTest(**kw):
                name = "driver_features" if kw else "nope"
                self.assertRpcError(
                    lambda: self.predict(name, {"driver_id": make_tensor("DT_INT64", [1])}, **kw),
                    grpc.StatusCode.NOT_FOUND, "not found", "driver_features@v1",
                    "driver_features@v2 (label 'lenient')", "scorer@v1")

    def test_bad_entity_inputs(self):
        ids = make_tensor("DT_INT64", [1, 2])
        cases = [
            ({}, "needs entity input 'driver_id'"),
            ({"driver_id": make_tensor("DT_FLOAT", [1.0])}, "DT_FLOAT", "DT_INT64 or DT_INT32"),
            ({"driver_id": make_tensor("DT_INT64", [1, 2], shape=[1, 2])}, "[1, 2]"),
            ({"driver_id": make_tensor("DT_INT64", [1], shape=[])}, "scalar"),
            ({"driver_id": make_tensor("DT_INT64", [1, 2], shape=[3])}, "2 values",
             "batch of 3"),
            ({"driver_id": make_tensor("DT_STRING", ["1"])}, "DT_STRING"),
        ]
        for inputs, *frags in cases:
            with self.subTest(frags=frags):
                self.assertRpcError(lambda: self.predict("driver_features", inputs, version=1),
                                    grpc.StatusCode.INVALID_ARGUMENT, *frags)
        self.assertRpcError(
            lambda: self.predict("pair", {"driver": ids,
                                          "customer": make_tensor("DT_STRING", ["c1"])}),
            grpc.StatusCode.INVALID_ARGUMENT, "batch size", "2", "1")
        self.assertRpcError(lambda: self.predict("", {"driver_id": ids}),
                            grpc.StatusCode.INVALID_ARGUMENT, "model_spec.name")

    def test_strings_with_a_nul_byte_are_refused_not_cut_short(self):
        # protobuf-c hands strings over NUL-terminated: unchecked, "driver_id\0x" would match
        # the entity input driver_id and "driver_features\0x" the model driver_features.
        ids = make_tensor("DT_INT64", [1, 2])
        for model, inputs in (("driver_features", {"driver_id\0x": ids}),
                              ("driver_features\0x", {"driver_id": ids})):
            with self.subTest(model=model, inputs=list(inputs)):
                self.assertRpcError(lambda: self.predict(model, inputs, version=1),
                                    grpc.StatusCode.INVALID_ARGUMENT, "malformed PredictRequest",
                                    "NUL")

    def test_unsupported_dtype_is_refused_by_name(self):
        from tensorflow.core.framework import tensor_pb2, types_pb2
        half = tensor_pb2.TensorProto(dtype=types_pb2.DT_HALF, half_val=[0x3c00])
        half.tensor_shape.dim.add(size=1)
        self.assertRpcError(
            lambda: self.predict("driver_features", {"driver_id": half}, version=1),
            grpc.StatusCode.INVALID_ARGUMENT, "DT_HALF")

    def test_float_values_are_exact(self):
        resp = self.predict("driver_features", {"driver_id": make_tensor("DT_INT64", [2])},
                            version=1, output_filter=["weights", "acc_rate"])
        self.assertEqual(tensor_rows(resp.outputs["weights"]), [[1.0, 2.0]])
        self.assertTrue(math.isclose(tensor_rows(resp.outputs["acc_rate"])[0], 0.5))


ZONE_EXTRA = """
  - name: zone_extra
    version: 1
    entities: [zone]
    ttl: 0
    features:
      - {name: surge, dtype: FLOAT, default: 2.0}
"""


class PredictReload(unittest.TestCase):
    """Output names are computed once per catalog and worker: a reload must change them."""

    def test_a_reload_that_changes_a_service_changes_its_output_names(self):
        d, path = render_catalog(free_port(), free_port())
        self.addCleanup(shutil.rmtree, d, True)
        # One read worker: its cache has seen the old catalog when the new one arrives.
        s = Server(catalog=path, args=["--workers", "1"])
        self.addCleanup(s.cleanup)
        s.start()
        s.client.write_features("zone_stats", {"zone_id": [1], "surge": [1.5]})
        channel = grpc.insecure_channel(s.target)
        self.addCleanup(channel.close)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        def zone():
            req = predict_request("zone", {"zone": make_tensor("DT_INT64", [1])})
            return stub.Predict(req, timeout=30).outputs

        for _ in range(3):
            self.assertEqual(sorted(zone()), ["surge"])
        with open(path) as f:
            text = f.read()
        text = text.replace("feature_services:", ZONE_EXTRA.strip("\n") + "\nfeature_services:", 1)
        text = text.replace('features: ["zone_stats:surge"]',
                            'features: ["zone_stats:surge", "zone_extra:surge"]', 1)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        s.send(signal.SIGHUP)
        s.wait_event("catalog_reloaded", 1)
        out = zone()
        self.assertEqual(sorted(out), ["zone_extra__surge", "zone_stats__surge"])
        self.assertEqual(tensor_rows(out["zone_stats__surge"]), [1.5])
        self.assertEqual(tensor_rows(out["zone_extra__surge"]), [2.0])
        report = s.sanitizer_report()
        self.assertIsNone(report, report)
        self.assertEqual(s.stop(), 0, s.log())


if __name__ == "__main__":
    unittest.main()

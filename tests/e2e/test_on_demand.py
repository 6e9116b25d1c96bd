# tests/e2e/test_on_demand.py - on-demand features end to end: Feast gRPC, HTTP and Predict.
"""The example catalog's `transformed_conv_rate` (Feast's own demo, as expressions) read through
every front door with request data, against the example rows, and the errors a client meets."""
import json
import os
import struct
import subprocess
import tempfile
import shutil
import unittest
import urllib.error
import urllib.request

import grpc

from feast.serving import ServingService_pb2, ServingService_pb2_grpc
from feast.types import Value_pb2
from fstore.v1 import fstore_pb2, fstore_pb2_grpc
from harness import FSTORE, SOURCE_DIR, Server
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from upstream_model_server import make_tensor, tensor_rows

CATALOG = os.path.join(SOURCE_DIR, "examples", "catalog")
DATA = os.path.join(SOURCE_DIR, "examples", "data", "driver_hourly_stats@v1.csv")


def f32(x):
    """x as the FLOAT it is stored as."""
    return struct.unpack("f", struct.pack("f", x))[0]


def example_rows():
    rows = {}
    with open(DATA) as f:
        header = f.readline().strip().split(",")
        for line in f:
            cells = dict(zip(header, line.strip().split(",")))
            rows[int(cells["driver_id"])] = cells
    return rows


def value(v):
    kind = v.WhichOneof("val")
    return None if kind in (None, "null_val") else getattr(v, kind)


PRESENT, NULL_VALUE, NOT_FOUND = 1, 2, 3


class OnDemandTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.data_dir = tempfile.mkdtemp(prefix="fstore-odfv-")
        cls.addClassCleanup(shutil.rmtree, cls.data_dir, True)
        for cmd in (["apply", "--catalog", CATALOG],
                    ["ingest", "--view", "driver_hourly_stats@v1", DATA]):
            subprocess.run([FSTORE] + cmd[:1] + ["--data-dir", cls.data_dir] + cmd[1:],
                           check=True, capture_output=True)
        cls.server = Server(catalog=CATALOG, data_dir=cls.data_dir)
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.channel = grpc.insecure_channel(cls.server.target)
        cls.addClassCleanup(cls.channel.close)
        cls.feast = ServingService_pb2_grpc.ServingServiceStub(cls.channel)
        cls.fstore = fstore_pb2_grpc.OnlineFeatureServiceStub(cls.channel)
        cls.predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel)
        cls.rows = example_rows()

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        report = cls.server.sanitizer_report()
        assert report is None, "sanitizer report from fstore:\n" + report
        assert rc == 0, "fstore exited with %s" % rc

    def read(self, features, ids, request=None, full=False, service=None):
        rq = ServingService_pb2.GetOnlineFeaturesRequest()
        if service:
            rq.feature_service = service
        else:
            rq.features.val.extend(features)
        rq.full_feature_names = full
        rq.entities["driver_id"].val.extend(Value_pb2.Value(int64_val=i) for i in ids)
        for name, vals in (request or {}).items():
            rq.request_context[name].val.extend(vals)
        return self.feast.GetOnlineFeatures(rq, timeout=30)

    def ints(self, *xs):
        return [Value_pb2.Value(int64_val=x) for x in xs]

    def test_feast_demo_through_feast_grpc(self):
        ids = [1001, 1002, 424242]
        r = self.read(["transformed_conv_rate:conv_rate_plus_val1",
                       "transformed_conv_rate:conv_rate_plus_val2"], ids,
                      {"val_to_add": self.ints(1, 2, 3), "val_to_add_2": self.ints(10, 20, 30)})
        self.assertEqual(list(r.metadata.feature_names.val),
                         ["driver_id", "conv_rate_plus_val1", "conv_rate_plus_val2"])
        plus1, plus2 = r.results[1], r.results[2]
        for row, (i, add1, add2) in enumerate(zip(ids[:2], (1, 2), (10, 20))):
            conv = f32(float(self.rows[i]["conv_rate"]))
            self.assertEqual(plus1.statuses[row], PRESENT)
            self.assertEqual(value(plus1.values[row]), conv + add1)
            self.assertEqual(value(plus2.values[row]), conv + add2)
            self.assertGreater(plus1.event_timestamps[row].seconds, 0)
        # no row for the driver: the input's status, no value
        self.assertEqual(plus1.statuses[2], NOT_FOUND)
        self.assertIsNone(value(plus1.values[2]))

    def test_nulls_are_handled_where_the_expression_says(self):
        # trips_per_rated_day = coalesce(avg_daily_trips, 0) * clamp(acc_rate, 0, 1)
        r = self.read(["transformed_conv_rate:trips_per_rated_day",
                       "transformed_conv_rate:stats_age_s",
                       "driver_hourly_stats:acc_rate"], [1001, 424242],
                      {"val_to_add": self.ints(0, 0), "val_to_add_2": self.ints(0, 0)})
        trips, age, acc = r.results[1], r.results[2], r.results[3]
        row = self.rows[1001]
        want = float(int(row["avg_daily_trips"])) * f32(float(row["acc_rate"]))
        self.assertAlmostEqual(value(trips.values[0]), want, places=9)
        self.assertEqual(value(acc.values[0]), f32(float(row["acc_rate"])))
        self.assertGreaterEqual(value(age.values[0]), 0)
        self.assertLess(value(age.values[0]), 3600)
        self.assertEqual(trips.statuses[1], NOT_FOUND)
        self.assertEqual(age.statuses[1], NOT_FOUND)

    def test_a_feature_service_and_full_names(self):
        r = self.read(None, [1002], {"val_to_add": self.ints(5), "val_to_add_2": self.ints(6)},
                      full=True, service="driver_conversion")
        names = list(r.metadata.feature_names.val)
        self.assertEqual(names[:3], ["driver_id", "driver_hourly_stats__conv_rate",
                                     "transformed_conv_rate__conv_rate_plus_val1"])
        conv = value(r.results[1].values[0])
        self.assertEqual(value(r.results[2].values[0]), conv + 5)
        self.assertEqual(value(r.results[3].values[0]), conv + 6)

    def test_request_data_mistakes_are_invalid_argument_naming_the_field(self):
        feats = ["transformed_conv_rate:conv_rate_plus_val1"]
        # only the fields the requested features read are needed
        r = self.read(feats, [1001], {"val_to_add": self.ints(1)})
        self.assertEqual(r.results[1].statuses[0], PRESENT)
        with self.assertRaises(grpc.RpcError) as cm:
            self.read(feats + ["transformed_conv_rate:conv_rate_plus_val2"], [1001],
                      {"val_to_add": self.ints(1)})
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("missing request field 'val_to_add_2'", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            self.read(feats, [1001, 1002], {"val_to_add": [Value_pb2.Value(int64_val=1),
                                                           Value_pb2.Value(string_val="x")],
                                            "val_to_add_2": self.ints(1, 2)})
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("request field 'val_to_add', row 1: want INT64, got STRING",
                      cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            self.read(feats, [1001, 1002], {"val_to_add": self.ints(1),
                                            "val_to_add_2": self.ints(1)})
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("request field 'val_to_add' has 1 rows; the entities have 2",
                      cm.exception.details())
        # the server is unharmed
        r = self.read(feats, [1001], {"val_to_add": self.ints(1), "val_to_add_2": self.ints(1)})
        self.assertEqual(r.results[1].statuses[0], PRESENT)

    def test_an_on_demand_view_is_never_written(self):
        client = self.server.client
        with self.assertRaises(grpc.RpcError) as cm:
            client.write_features("transformed_conv_rate", {"driver_id": [1],
                                                            "conv_rate_plus_val1": [1.0]})
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("is an on-demand feature view", cm.exception.details())
        body = json.dumps({"feature_view_name": "transformed_conv_rate",
                           "df": {"driver_id": [1], "conv_rate_plus_val1": [1.0]}}).encode()
        req = urllib.request.Request("http://%s/write-to-online-store" % self.server.http,
                                     data=body, method="POST")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=30)
        self.assertIn(b"is an on-demand feature view", cm.exception.read())

    def test_http_request_context(self):
        body = json.dumps({"features": ["transformed_conv_rate:conv_rate_plus_val1"],
                           "entities": {"driver_id": [1001, 1003]},
                           "request_context": {"val_to_add": [1, 2],
                                               "val_to_add_2": [0, 0]}}).encode()
        req = urllib.request.Request("http://%s/get-online-features" % self.server.http,
                                     data=body, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            out = json.load(resp)
        col = out["results"][1]
        for row, (i, add) in enumerate(((1001, 1), (1003, 2))):
            self.assertEqual(col["statuses"][row], "PRESENT")
            self.assertAlmostEqual(col["values"][row],
                                   f32(float(self.rows[i]["conv_rate"])) + add, places=12)
        body = json.dumps({"features": ["transformed_conv_rate:conv_rate_plus_val1"],
                           "entities": {"driver_id": [1001]}}).encode()
        req = urllib.request.Request("http://%s/get-online-features" % self.server.http,
                                     data=body, method="POST")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=30)
        self.assertEqual(cm.exception.code, 422)  # the front door's status for a bad request
        self.assertIn(b"missing request field", cm.exception.read())

    def test_predict_reads_request_fields_from_inputs(self):
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "conversion_model"
        req.inputs["driver_id"].CopyFrom(make_tensor("DT_INT64", [1001, 1002]))
        req.inputs["val_to_add"].CopyFrom(make_tensor("DT_INT64", [1, 2]))
        req.inputs["val_to_add_2"].CopyFrom(make_tensor("DT_INT32", [3, 4]))
        resp = self.predict_stub.Predict(req, timeout=30)
        conv = tensor_rows(resp.outputs["conv_rate"])
        plus1 = tensor_rows(resp.outputs["conv_rate_plus_val1"])
        plus2 = tensor_rows(resp.outputs["conv_rate_plus_val2"])
        self.assertEqual(plus1, [conv[0] + 1, conv[1] + 2])
        self.assertEqual(plus2, [conv[0] + 3, conv[1] + 4])
        # a missing request input names it
        del req.inputs["val_to_add_2"]
        with self.assertRaises(grpc.RpcError) as cm:
            self.predict_stub.Predict(req, timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("needs request input 'val_to_add_2'", cm.exception.details())
        # TF Serving REST, instances with the request fields beside the entity
        body = json.dumps({"instances": [{"driver_id": 1001, "val_to_add": 1,
                                          "val_to_add_2": 2}]}).encode()
        r = urllib.request.Request("http://%s/v1/models/conversion_model:predict"
                                   % self.server.http, data=body, method="POST")
        with urllib.request.urlopen(r, timeout=30) as resp:
            out = json.load(resp)
        pred = out["predictions"][0]
        self.assertAlmostEqual(pred["conv_rate_plus_val1"], pred["conv_rate"] + 1, places=6)
        self.assertAlmostEqual(pred["conv_rate_plus_val2"], pred["conv_rate"] + 2, places=6)

    def test_fstore_get_reads_on_demand_features_with_request_data(self):
        cmd = [FSTORE, "get", "--data-dir", self.data_dir, "--json",
               "--features", "transformed_conv_rate:conv_rate_plus_val1,driver_hourly_stats:conv_rate",
               "--entity", "driver_id=1001"]
        out = subprocess.run(cmd + ["--request", "val_to_add=1000,val_to_add_2=0"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        feats = json.loads(out.stdout)["rows"][0]["features"]
        got = feats["transformed_conv_rate:conv_rate_plus_val1"]
        self.assertEqual(got["status"], "PRESENT")
        self.assertEqual(got["value"], feats["driver_hourly_stats:conv_rate"]["value"] + 1000)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1)
        self.assertIn("missing request field 'val_to_add'", out.stderr)
        out = subprocess.run(cmd + ["--request", "val_to_add=lots"], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 1)
        self.assertIn("request field val_to_add:", out.stderr)

    def test_get_catalog_returns_the_expressions(self):
        cat = self.fstore.GetCatalog(fstore_pb2.GetCatalogRequest(), timeout=30)
        views = {v.name: v for v in cat.on_demand_feature_views}
        odfv = views["transformed_conv_rate"]
        self.assertTrue(odfv.on_demand)
        self.assertEqual(list(odfv.sources), ["driver_hourly_stats@v1", "vals_to_add"])
        exprs = {f.name: f.expression for f in odfv.features}
        self.assertEqual(exprs["conv_rate_plus_val1"],
                         "driver_hourly_stats.conv_rate + vals_to_add.val_to_add")
        self.assertEqual([j.name for j in odfv.join_keys], ["driver_id"])
        reqs = {r.name: [f.name for f in r.fields] for r in cat.request_sources}
        self.assertEqual(reqs, {"vals_to_add": ["val_to_add", "val_to_add_2"]})
        self.assertIn("on_demand_feature_views:", cat.yaml)
        # stored views do not list it
        self.assertNotIn("transformed_conv_rate", [v.name for v in cat.feature_views])



TYPES_CATALOG = """
project: od
entities: [{name: user, join_keys: [{name: user_id, type: INT64}]}]
feature_views:
  - name: stats
    entities: [user]
    features:
      - {name: clicks, dtype: INT64}
      - {name: score, dtype: DOUBLE}
      - {name: tags, dtype: STRING_LIST}
request_sources:
  - name: req
    schema:
      - {name: weight, dtype: DOUBLE}
      - {name: flag, dtype: BOOL}
      - {name: scale, dtype: FLOAT}
      - {name: label, dtype: STRING}
      - {name: tok, dtype: BYTES}
on_demand_feature_views:
  - name: calc
    sources: [stats, req]
    features:
      - {name: weighted, dtype: DOUBLE, expression: 'coalesce(score, 0) * weight'}
      - {name: capped, dtype: INT64, expression: 'clicks * 10', validation: {max: 100}, default: -1}
      - {name: flagged, dtype: BOOL, expression: 'flag and clicks > 0'}
      - {name: scaled, dtype: DOUBLE, expression: 'double(scale) * 2'}
      - {name: n_tags, dtype: INT64, expression: 'len(tags)'}
  - name: pure
    sources: [req]
    features:
      - {name: greeting, dtype: STRING, expression: "concat('hi ', label)"}
      - {name: tok_len, dtype: INT64, expression: 'length(tok)'}
feature_services:
  - {name: calc_svc, features: ['calc:*']}
models:
  - name: calc_model
    version: 1
    feature_service: calc_svc
    entity_inputs: {user_id: user_id}
    on_missing: error
"""


class OnDemandTypesTest(unittest.TestCase):
    """Request data of every scalar type, through the Python client, Predict (typed tensors and
    tensor_content) and HTTP; a view of request data alone; computed values that break a rule."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="fstore-odfv-types-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.catalog = os.path.join(cls.dir, "catalog.yaml")
        with open(cls.catalog, "w") as f:
            f.write(TYPES_CATALOG)
        cls.server = Server(catalog=cls.catalog)
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.client = cls.server.client
        cls.client.write_features("stats", {"user_id": [1, 2], "clicks": [5, 20],
                                            "score": [2.0, None], "tags": [["a", "b"], []]})
        cls.channel = grpc.insecure_channel(cls.server.target)
        cls.addClassCleanup(cls.channel.close)
        cls.predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        report = cls.server.sanitizer_report()
        assert report is None, "sanitizer report from fstore:\n" + report
        assert rc == 0, "fstore exited with %s" % rc

    def test_python_client_request_context_and_handled_nulls(self):
        r = self.client.get_online_features(
            features=["calc:weighted", "calc:capped", "calc:flagged", "calc:scaled",
                      "calc:n_tags"],
            entities={"user_id": [1, 2, 3]},
            request_context={"weight": [0.5, 0.5, 0.5], "flag": [True, True, True],
                             "scale": [0.25, 0.25, 0.25], "label": ["x", "y", "z"]})
        # coalesce handles the missing score (user 2 has none, user 3 no row): PRESENT 0.0
        self.assertEqual(r["weighted"], [1.0, 0.0, 0.0])
        self.assertEqual(r.statuses["weighted"], ["PRESENT", "PRESENT", "PRESENT"])
        # 20 * 10 breaks max 100: INVALID with no value; no row: NOT_FOUND
        self.assertEqual(r["capped"], [50, None, None])
        self.assertEqual(r.statuses["capped"], ["PRESENT", "INVALID", "NOT_FOUND"])
        self.assertEqual(r["flagged"], [True, True, None])
        self.assertEqual(r["scaled"], [0.5, 0.5, 0.5])
        self.assertEqual(r["n_tags"], [2, 0, None])

    def test_a_view_of_request_data_alone_has_as_many_rows_as_the_request(self):
        r = self.client.get_online_features(features=["pure:greeting"], entities={},
                                            request_context={"label": ["a", "b"]})
        self.assertEqual(r["greeting"], ["hi a", "hi b"])

    def test_predict_takes_typed_tensors_and_tensor_content(self):
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "calc_model"
        req.inputs["user_id"].CopyFrom(make_tensor("DT_INT64", [1, 2]))
        req.inputs["weight"].CopyFrom(make_tensor("DT_DOUBLE", [2.0, 4.0], content=True))
        req.inputs["flag"].CopyFrom(make_tensor("DT_BOOL", [True, False]))
        req.inputs["scale"].CopyFrom(make_tensor("DT_FLOAT", [1.5, 2.5]))
        req.inputs["label"].CopyFrom(make_tensor("DT_STRING", ["p", "q"]))
        resp = self.predict_stub.Predict(req, timeout=30)
        self.assertEqual(tensor_rows(resp.outputs["weighted"]), [4.0, 0.0])
        # user 2's computed value breaks its rule: the default, as for a missing value
        self.assertEqual(tensor_rows(resp.outputs["capped"]), [50, -1])
        self.assertEqual(tensor_rows(resp.outputs["flagged"]), [True, False])
        self.assertEqual(tensor_rows(resp.outputs["scaled"]), [3.0, 5.0])
        # only what the selected outputs read is needed
        req.output_filter.append("n_tags")
        for name in ("weight", "flag", "scale", "label"):
            del req.inputs[name]
        resp = self.predict_stub.Predict(req, timeout=30)
        self.assertEqual(tensor_rows(resp.outputs["n_tags"]), [2, 0])
        # a request input of a type its field does not take
        req.ClearField("output_filter")
        req.inputs["weight"].CopyFrom(make_tensor("DT_STRING", ["x", "y"]))
        with self.assertRaises(grpc.RpcError) as cm:
            self.predict_stub.Predict(req, timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_http_request_data_of_the_wrong_type_is_422_naming_the_field(self):
        body = json.dumps({"features": ["calc:weighted"], "entities": {"user_id": [1]},
                           "request_context": {"weight": ["heavy"]}}).encode()
        req = urllib.request.Request("http://%s/get-online-features" % self.server.http,
                                     data=body, method="POST")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=30)
        self.assertEqual(cm.exception.code, 422)
        self.assertIn(b"weight", cm.exception.read())

    def test_http_request_data_among_the_entities_is_typed_as_its_field(self):
        # as Feast's SDK sends it: the same meaning as in request_context (BYTES from base64)
        for where in ("request_context", "entities"):
            body = {"features": ["pure:tok_len"], "entities": {}}
            body[where] = {"tok": ["AAEC"]}
            req = urllib.request.Request("http://%s/get-online-features" % self.server.http,
                                         data=json.dumps(body).encode(), method="POST")
            with urllib.request.urlopen(req, timeout=30) as resp:
                out = json.load(resp)
            col = out["results"][-1]
            self.assertEqual(col["values"], [3], where)

    def test_ingest_refuses_an_on_demand_view(self):
        csv = os.path.join(self.dir, "calc.csv")
        with open(csv, "w") as f:
            f.write("user_id,weighted\n1,2.0\n")
        out = subprocess.run([FSTORE, "ingest", "--target", self.server.target, "--view", "calc",
                              csv], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("is an on-demand feature view", out.stderr)


if __name__ == "__main__":
    unittest.main()

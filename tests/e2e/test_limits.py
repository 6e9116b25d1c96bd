# tests/e2e/test_limits.py - limits on request shape and response size, and ambiguous names.
import os
import shutil
import tempfile
import unittest

import grpc

from harness import ServerTestCase
from feast.serving import ServingService_pb2 as serving_pb2
from fstore.v1 import fstore_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from upstream_model_server import make_tensor

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
LIMIT = 16384
BLOB = 1000  # bytes per stored value: 20 rows of them are over LIMIT, 5 are not

# `wide` only makes the catalog (and so GetCatalog's response) larger than LIMIT.
CATALOG = """\
project: limits
entities:
  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}
  - {name: customer, join_keys: [{name: customer_id, type: STRING}]}
feature_views:
  - name: blobs
    version: 1
    entities: [driver]
    ttl: 0
    features:
      - {name: blob, dtype: BYTES}
      - {name: customer_id, dtype: STRING}
  - name: customers
    version: 1
    entities: [customer]
    ttl: 0
    features:
      - {name: score, dtype: DOUBLE}
  - name: wide
    version: 1
    entities: [driver]
    ttl: 0
    features:
%s
feature_services:
  - {name: blob_service, features: ["blobs:blob"]}
models:
  - name: blobs
    version: 1
    feature_service: blob_service
    entity_inputs: {driver_id: driver_id}
""" % "\n".join("      - {name: feature_number_%04d, dtype: INT64}" % i for i in range(600))


class Limits(ServerTestCase):
    server_args = ["--max-response-bytes", str(LIMIT), "--max-entities", "100"]

    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(prefix="fstore-limits-")
        cls.addClassCleanup(shutil.rmtree, d, True)
        cls.catalog = os.path.join(d, "catalog.yaml")
        with open(cls.catalog, "w") as f:
            f.write(CATALOG)
        super().setUpClass()
        # Typed by hand: the client's write_features() types values from GetCatalog, whose
        # response is over this server's limit.
        req = fstore_pb2.WriteFeaturesRequest(feature_view="blobs")
        for i in range(20):
            req.columns["driver_id"].val.add().int64_val = i
            req.columns["blob"].val.add().bytes_val = b"b" * BLOB
            req.columns["customer_id"].val.add().string_val = "c%d" % i
        cls.client.fstore.WriteFeatures(req, timeout=30)

    def read(self, rows, **kw):
        return self.client.get_online_features(features=["blobs:blob"],
                                               entities={"driver_id": list(range(rows))}, **kw)

    def predict(self, rows):
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "blobs"
        req.inputs["driver_id"].CopyFrom(make_tensor("DT_INT64", list(range(rows))))
        stub = prediction_service_pb2_grpc.PredictionServiceStub(self.client.channel)
        return stub.Predict(req, timeout=30)

    def test_a_read_response_over_the_limit_is_refused_before_it_is_built(self):
        self.assertEqual(self.read(5)["blob"], [b"b" * BLOB] * 5)
        self.assertRpcError(lambda: self.read(20), EXHAUSTED, "response would be",
                            "the limit is %d (--max-response-bytes)" % LIMIT)

    def test_a_predict_response_over_the_limit_is_refused(self):
        self.assertEqual(len(self.predict(5).outputs["blob"].string_val), 5)
        self.assertRpcError(lambda: self.predict(20), EXHAUSTED, "response would be",
                            "--max-response-bytes")

    def test_get_catalog_over_the_limit_is_refused(self):
        self.assertRpcError(lambda: self.client.get_catalog(), EXHAUSTED, "response would be",
                            "--max-response-bytes")

    def test_entity_columns_are_capped_before_their_values_are_read(self):
        req = serving_pb2.GetOnlineFeaturesRequest()
        req.features.val.append("blobs:blob")
        for i in range(257):
            req.entities["k%d" % i].val.add().int64_val = 1
        self.assertRpcError(lambda: self.client.serving.GetOnlineFeatures(req, timeout=30),
                            INVALID, "257 entity columns", "the limit is 256")

    def test_write_columns_are_capped_by_the_view(self):
        req = fstore_pb2.WriteFeaturesRequest(feature_view="blobs")
        for name in ("driver_id", "blob", "customer_id", "extra"):
            req.columns[name].val.add().int64_val = 1
        self.assertRpcError(lambda: self.client.fstore.WriteFeatures(req, timeout=30), INVALID,
                            "4 write columns", "the limit is 3",
                            "join keys and features of feature view 'blobs@v1'")

    def test_a_feature_named_like_an_entity_column_needs_full_feature_names(self):
        kw = dict(features=["blobs:customer_id", "customers:score"],
                  entities={"driver_id": [1], "customer_id": ["c1"]})
        self.assertRpcError(lambda: self.client.get_online_features(**kw), INVALID,
                            "feature 'customer_id'", "entity column 'customer_id'",
                            "full_feature_names")
        r = self.client.get_online_features(full_feature_names=True, **kw)
        self.assertEqual(r["customer_id"], ["c1"])
        self.assertEqual(r["blobs__customer_id"], ["c1"])

BOUNDARY_CATALOG = """\
project: boundaries
entities:
  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}
feature_views:
  - name: stats
    version: 1
    entities: [driver]
    ttl: 0
    features:
      - {name: a, dtype: INT64}
      - {name: b, dtype: INT64}
      - {name: c, dtype: INT64}
  - name: archive
    version: 1
    entities: [driver]
    ttl: 0
    online: false
    features:
      - {name: a, dtype: INT64}
feature_services:
  - {name: two, features: ["stats:a", "stats:b"]}
  - {name: three, features: ["stats:a", "stats:b", "stats:c"]}
models:
  - {name: two, version: 1, feature_service: two, entity_inputs: {driver_id: driver_id},
     on_missing: zero}
  - {name: three, version: 1, feature_service: three, entity_inputs: {driver_id: driver_id},
     on_missing: zero}
"""


class Boundaries(ServerTestCase):
    """Every request limit at N (accepted) and N + 1 (refused, naming its flag), on every method
    that has it; and a write to a view that is not online refused."""
    server_args = ["--max-entities", "3", "--max-features", "2", "--max-write-rows", "3"]

    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(prefix="fstore-boundaries-")
        cls.addClassCleanup(shutil.rmtree, d, True)
        cls.catalog = os.path.join(d, "catalog.yaml")
        with open(cls.catalog, "w") as f:
            f.write(BOUNDARY_CATALOG)
        super().setUpClass()

    def gof(self, n_entities, features=None, service=None):
        return self.client.get_online_features(
            features=features, feature_service=service,
            entities={"driver_id": list(range(n_entities))})

    def predict(self, model, rows):
        req = predict_pb2.PredictRequest()
        req.model_spec.name = model
        req.inputs["driver_id"].CopyFrom(make_tensor("DT_INT64", list(range(rows))))
        stub = prediction_service_pb2_grpc.PredictionServiceStub(self.client.channel)
        return stub.Predict(req, timeout=30)

    def test_max_features_on_lists_services_and_predict(self):
        self.assertEqual(len(self.gof(1, features=["stats:a", "stats:b"])), 3)
        self.assertRpcError(lambda: self.gof(1, features=["stats:a", "stats:b", "stats:c"]),
                            INVALID, "--max-features")
        self.assertEqual(len(self.gof(1, service="two")), 3)
        self.assertRpcError(lambda: self.gof(1, service="three"), INVALID, "--max-features")
        self.assertEqual(len(self.predict("two", 1).outputs), 2)
        self.assertRpcError(lambda: self.predict("three", 1), INVALID, "--max-features")

    def test_max_entities_on_reads_and_predict(self):
        self.assertEqual(self.gof(3, features=["stats:a"])["driver_id"], [0, 1, 2])
        self.assertRpcError(lambda: self.gof(4, features=["stats:a"]), INVALID,
                            "--max-entities")
        self.assertEqual(len(self.gof(3, service="two")["a"]), 3)
        self.assertRpcError(lambda: self.gof(4, service="two"), INVALID, "--max-entities")
        self.assertEqual(list(self.predict("two", 3).outputs["a"].tensor_shape.dim)[0].size, 3)
        self.assertRpcError(lambda: self.predict("two", 4), INVALID, "--max-entities")

    def test_max_write_rows_on_writes_and_deletes(self):
        c = self.client
        self.assertEqual(c.write_features("stats", {"driver_id": [1, 2, 3], "a": [1, 2, 3]}),
                         (3, 0))
        self.assertRpcError(lambda: c.write_features("stats", {"driver_id": [1, 2, 3, 4],
                                                               "a": [1, 2, 3, 4]}),
                            INVALID, "--max-write-rows")
        self.assertRpcError(lambda: c.delete_entities("stats", {"driver_id": [1, 2, 3, 4]}),
                            INVALID, "--max-write-rows")
        c.delete_entities("stats", {"driver_id": [1, 2, 3]})
        self.assertEqual(self.gof(3, features=["stats:a"]).statuses["a"][1], "NOT_FOUND")

    def test_a_read_of_a_view_that_is_not_online_is_refused_on_both_paths(self):
        for feast_path in (True, False):
            self.assertRpcError(
                lambda: self.client.get_online_features(
                    features=["stats:a", "archive:a"], entities={"driver_id": [1]},
                    feast_path=feast_path),
                INVALID, "archive@v1", "not online")

    def test_a_write_to_a_view_that_is_not_online_is_refused(self):
        self.assertRpcError(
            lambda: self.client.write_features("archive", {"driver_id": [1], "a": [1]}),
            INVALID, "archive", "not online")


if __name__ == "__main__":
    unittest.main()

# tests/e2e/test_errors.py - every error class: its gRPC status and a message naming the problem.
import time
import unittest

import grpc

from harness import ServerTestCase
from feast.serving import ServingService_pb2 as serving_pb2
from feast.types import Value_pb2 as value_pb2
from fstore.v1 import fstore_pb2

NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT


class Errors(ServerTestCase):
    # Small limits so that going over them is cheap.
    server_args = ["--max-entities", "5", "--max-features", "3", "--max-write-rows", "4",
                   "--max-message-bytes", "65536"]

    def get(self, **kw):
        return lambda: self.client.get_online_features(**kw)

    def test_unknown_names_are_not_found_and_named(self):
        ents = {"driver_id": [1]}
        self.assertRpcError(self.get(features=["driver_stats@v1:nope"], entities=ents),
                            NOT_FOUND, "'nope'", "driver_stats@v1")
        self.assertRpcError(self.get(features=["ghost:x"], entities=ents), NOT_FOUND, "'ghost'")
        self.assertRpcError(self.get(features=["driver_stats@v9:trips"], entities=ents),
                            NOT_FOUND, "driver_stats@v9")
        self.assertRpcError(self.get(feature_service="nope_svc", entities=ents), NOT_FOUND,
                            "'nope_svc'")
        self.assertRpcError(lambda: self.client.write_features("ghost", {"driver_id": [1]}),
                            NOT_FOUND, "'ghost'")

    def test_a_deadline_hours_or_days_away_is_kept_not_overflowed(self):
        # The deadline was once taken as int32 milliseconds times 1000: past 35 minutes it
        # overflowed (UBSan stopped the server; a release build answered DEADLINE_EXCEEDED).
        req = self.client.online_request(features=["driver_stats:conv_rate"],
                                         entities={"driver_id": [1]})
        for timeout in (2200.0, 3600.0, 10 * 86400.0, 400 * 86400.0):
            resp = self.client.serving.GetOnlineFeatures(req, timeout=timeout)
            self.assertEqual(len(resp.results), 2, timeout)
        self.assertEqual(self.client.health(), "SERVING")

    def test_unknown_methods_are_unimplemented_at_once(self):
        # Without an answer a call to a method fstore does not serve would hang until the
        # caller's deadline; a 20 s deadline and a 10 s budget tell the two apart.
        with grpc.insecure_channel(self.server.target) as ch:
            for path in ("/feast.serving.ServingService/GetOnlineFeaturesRange",
                         "/no.such.Service/Method"):
                call = ch.unary_unary(path, request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)
                started = time.monotonic()
                with self.assertRaises(grpc.RpcError) as cm:
                    call(b"", timeout=20)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
                self.assertIn(path, cm.exception.details())
                self.assertLess(time.monotonic() - started, 10)
        # The server goes on serving after them.
        self.assertEqual(self.client.health(), "SERVING")

    def test_malformed_requests_are_invalid_argument(self):
        ents = {"driver_id": [1]}
        self.assertRpcError(self.get(features=["no_colon"], entities=ents), INVALID,
                            "no_colon", "view:feature")
        self.assertRpcError(self.get(features=[], entities=ents), INVALID, "no features")
        self.assertRpcError(self.get(features=["driver_stats@v1:trips"],
                                     entities={"customer_id": ["a"]}),
                            INVALID, "missing join key 'driver_id'")
        # Both ways round, in both wire orders: a shorter column after a longer one must be
        # caught as well as a longer one after a shorter. Python's protobuf writes a map in its
        # own (hash-seeded) order, so each order is put on the wire here: serialized messages
        # concatenated merge, their map entries in the order written.
        path = "/feast.serving.ServingService/GetOnlineFeatures"
        call = self.client.channel.unary_unary(path)
        for a, b in ((("driver_id", [1, 2]), ("customer_id", ["a"])),
                     (("driver_id", [1]), ("customer_id", ["a", "b"]))):
            for first, second in ((a, b), (b, a)):
                head = self.client.online_request(features=["driver_stats@v1:trips"],
                                                  entities=dict([first]))
                tail = serving_pb2.GetOnlineFeaturesRequest()
                tail.entities[second[0]].val.extend(
                    value_pb2.Value(int64_val=x) if isinstance(x, int)
                    else value_pb2.Value(string_val=x) for x in second[1])
                raw = head.SerializeToString() + tail.SerializeToString()
                self.assertRpcError(lambda: call(raw, timeout=30), INVALID, "different lengths",
                                    "'%s'" % first[0], "'%s'" % second[0])
        self.assertRpcError(self.get(features=["driver_stats@v1:trips"],
                                     entities={"driver_id": ["not-a-number"]}),
                            INVALID, "row 0", "driver_id INT64")
        self.assertRpcError(self.get(features=["driver_stats@v1:conv_rate",
                                               "driver_stats@v2:conv_rate"], entities=ents),
                            INVALID, "'conv_rate'", "full_feature_names")
        self.assertRpcError(lambda: self.client.serving.GetOnlineFeatures(
            serving_pb2.GetOnlineFeaturesRequest(), timeout=30), INVALID, "no features")

    def test_newer_feast_value_types_are_refused(self):
        req = serving_pb2.GetOnlineFeaturesRequest()
        req.features.val.append("driver_stats@v1:trips")
        # Field 20: a Feast type newer than fstore's (a map, say), as a client would send it.
        newer = value_pb2.Value.FromString(b"\xa2\x01\x00")
        req.entities["driver_id"].val.append(newer)
        self.assertIn(b"\xa2\x01\x00", req.SerializeToString())
        self.assertRpcError(lambda: self.client.serving.GetOnlineFeatures(req, timeout=30),
                            INVALID, "field 20")

    def test_wrong_types_and_broken_rules_on_write_name_row_feature_and_rule(self):
        w = self.client.write_features
        self.assertRpcError(lambda: w("driver_stats@v1", {"driver_id": [1, 2],
                                                          "trips": [5, -1]}),
                            INVALID, "row 1", "trips", "min")
        self.assertRpcError(lambda: w("driver_stats@v2", {"driver_id": [1],
                                                          "label": ["platinum"]}),
                            INVALID, "row 0", "label")
        self.assertRpcError(lambda: w("customer_profile", {"customer_id": ["a"], "age": [None]}),
                            INVALID, "row 0", "age", "not_null")
        # A STRING where the view wants INT64: typed by hand, as a careless client would.
        req = fstore_pb2.WriteFeaturesRequest(feature_view="driver_stats@v1")
        req.columns["driver_id"].val.add().int64_val = 1
        req.columns["trips"].val.add().string_val = "many"
        self.assertRpcError(lambda: self.client.fstore.WriteFeatures(req, timeout=30), INVALID,
                            "row 0", "trips", "STRING")
        self.assertRpcError(lambda: w("driver_stats@v1", {"driver_id": [1], "bogus": [1]}),
                            INVALID, "'bogus'")
        self.assertRpcError(lambda: w("driver_stats@v1", {"trips": [1]}), INVALID,
                            "missing join key column 'driver_id'")
        for cols in ({"driver_id": [1, 2], "trips": [1]}, {"driver_id": [1], "trips": [1, 2]}):
            self.assertRpcError(lambda: w("driver_stats@v1", cols), INVALID, "different lengths")
        self.assertRpcError(lambda: w("driver_stats@v1", {"driver_id": [1], "trips": [1]},
                                      event_timestamps=[1, 2]),
                            INVALID, "event_timestamps")
        # Nothing of a failed batch is written.
        r = self.client.get_online_features(features=["driver_stats@v1:trips"],
                                            entities={"driver_id": [1, 2]})
        self.assertEqual(r.statuses["trips"], ["NOT_FOUND", "NOT_FOUND"])

    def test_limits_name_their_flag(self):
        self.assertRpcError(self.get(features=["driver_stats@v1:trips"],
                                     entities={"driver_id": list(range(6))}),
                            INVALID, "--max-entities", "5")
        self.assertRpcError(self.get(features=["driver_stats@v1:trips"] * 2 +
                                     ["driver_stats@v1:conv_rate"] * 2,
                                     entities={"driver_id": [1]}),
                            INVALID, "--max-features")
        self.assertRpcError(lambda: self.client.write_features(
            "driver_stats@v1", {"driver_id": list(range(5)), "trips": [1] * 5}),
            INVALID, "--max-write-rows")
        big = ["x" * 1000] * 100
        self.assertRpcError(lambda: self.client.write_features(
            "customer_profile", {"customer_id": ["a"], "tags": [big]}),
            grpc.StatusCode.RESOURCE_EXHAUSTED, "--max-message-bytes")
        self.assertRpcError(self.get(features=["driver_stats@v1:trips"],
                                     entities={"driver_id": ["k" * 600]}),
                            INVALID)

    def test_entity_keys_longer_than_the_store_allows(self):
        self.assertRpcError(self.get(features=["customer_profile:age"],
                                     entities={"customer_id": ["k" * 600]}),
                            INVALID, "511")


if __name__ == "__main__":
    unittest.main()

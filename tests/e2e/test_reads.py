# tests/e2e/test_reads.py - GetOnlineFeatures semantics on both service paths, health, catalog.
import time
import unittest

import grpc

from harness import ServerTestCase
from feast.serving import ServingService_pb2 as serving_pb2
from feast.serving import ServingService_pb2_grpc as serving_grpc
from feast.types import Value_pb2 as value_pb2
from fstore.v1 import fstore_pb2
from fstore.v1 import fstore_pb2_grpc
from fstore_client import to_value, from_value


class Reads(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.client
        now = time.time()
        cls.now = now
        c.write_features("driver_stats@v1", {
            "driver_id": [1001, 1002, 1003],
            "conv_rate": [0.5, 0.25, None],
            "trips": [10, 20, 30],
        }, event_timestamps=[now - 5, now - 5, now - 5])
        c.write_features("driver_stats@v2", {
            "driver_id": [1001],
            "conv_rate": [0.75],
            "label": ["gold"],
        })
        c.write_features("customer_profile", {
            "customer_id": ["alice", "bob"],
            "age": [31, 42],
            "tags": [["a", "b"], []],
            "scores": [[1.5, 2.5], [0.5]],
            "avatar": [b"\x00\x01\xff", b""],
            "vip": [True, False],
        })
        # Written long ago for a 2 s TTL: OUTSIDE_MAX_AGE.
        c.write_features("short_lived", {"driver_id": [1001], "ping": [7]},
                         event_timestamps=[now - 3600])
        c.write_features("global_stats", {"total_drivers": [3]})

    def both_paths(self):
        ch = self.client.channel
        return [("feast", serving_grpc.ServingServiceStub(ch)),
                ("fstore", fstore_pb2_grpc.OnlineFeatureServiceStub(ch))]

    def test_every_status_on_both_service_paths(self):
        req = self.client.online_request(
            features=["driver_stats@v1:conv_rate", "driver_stats@v1:trips",
                      "short_lived:ping"],
            entities={"driver_id": [1001, 1003, 9999]})
        for name, stub in self.both_paths():
            with self.subTest(path=name):
                resp = stub.GetOnlineFeatures(req, timeout=30)
                names = list(resp.metadata.feature_names.val)
                self.assertEqual(names, ["driver_id", "conv_rate", "trips", "ping"])
                ids, conv, trips, ping = resp.results
                self.assertEqual([from_value(v) for v in ids.values], [1001, 1003, 9999])
                self.assertEqual(list(ids.statuses), [serving_pb2.PRESENT] * 3)
                self.assertAlmostEqual(conv.values[0].float_val, 0.5)
                self.assertEqual(list(conv.statuses),
                                 [serving_pb2.PRESENT, serving_pb2.NULL_VALUE,
                                  serving_pb2.NOT_FOUND])
                self.assertEqual(trips.values[1].int64_val, 30)
                self.assertEqual(list(ping.statuses),
                                 [serving_pb2.OUTSIDE_MAX_AGE, serving_pb2.NOT_FOUND,
                                  serving_pb2.NOT_FOUND])
                self.assertEqual(ping.values[0].int64_val, 7, "an expired value still comes back")
                # Event timestamps: the row's, to the microsecond; zero when not found.
                ts = conv.event_timestamps[0]
                self.assertAlmostEqual(ts.seconds + ts.nanos / 1e9, self.now - 5, delta=0.001)
                self.assertEqual(conv.event_timestamps[2].seconds, 0)
                self.assertTrue(resp.status)

    def test_versions_side_by_side_with_full_feature_names(self):
        r = self.client.get_online_features(
            features=["driver_stats@v1:conv_rate", "driver_stats@v2:conv_rate",
                      "driver_stats:label"],
            entities={"driver_id": [1001]}, full_feature_names=True, include_metadata=True)
        self.assertEqual(list(r), ["driver_id", "driver_stats@v1__conv_rate",
                                   "driver_stats@v2__conv_rate", "driver_stats__label"])
        self.assertAlmostEqual(r["driver_stats@v1__conv_rate"][0], 0.5)
        self.assertEqual(r["driver_stats@v2__conv_rate"], [0.75])
        self.assertEqual(r["driver_stats__label"], ["gold"])
        self.assertEqual(r.feature_view_metadata, [("driver_stats", 1), ("driver_stats", 2)])

    def test_feature_services(self):
        r = self.client.get_online_features(feature_service="driver_service",
                                            entities={"driver_id": [1002]})
        self.assertEqual(list(r), ["driver_id", "conv_rate", "trips"])
        self.assertEqual(r["trips"], [20])
        r = self.client.get_online_features(feature_service="driver_service_v2",
                                            entities={"driver_id": [1001]},
                                            full_feature_names=True)
        # v2 is the default version, so its full names carry no @v2.
        self.assertEqual(list(r), ["driver_id", "driver_stats__conv_rate",
                                   "driver_stats__label"])
        self.assertEqual(r["driver_stats__label"], ["gold"])

    def test_every_value_type_round_trips(self):
        r = self.client.get_online_features(
            features=["customer_profile:age", "customer_profile:tags",
                      "customer_profile:scores", "customer_profile:avatar",
                      "customer_profile:vip"],
            entities={"customer_id": ["alice", "bob"]})
        self.assertEqual(r["age"], [31, 42])
        self.assertEqual(r["tags"], [["a", "b"], []])
        self.assertEqual(r["scores"], [[1.5, 2.5], [0.5]])
        self.assertEqual(r["avatar"], [b"\x00\x01\xff", b""])
        self.assertEqual(r["vip"], [True, False])
        self.assertEqual(r.statuses["vip"], ["PRESENT", "PRESENT"])

    def test_concatenated_messages_read_as_protobuf_merges_them(self):
        # Two serialized messages concatenated are one message, merged (protobuf's own rule):
        # a oneof member given twice, as the feature list is, holds both lists, and a list
        # Value given twice holds every element. protobuf-c alone kept only the last
        # occurrence of a oneof member. Python's protobuf is the reference here.
        head = self.client.online_request(features=["driver_stats@v1:conv_rate"],
                                          entities={"driver_id": [1001, 1002]})
        tail = self.client.online_request(features=["driver_stats@v1:trips"])
        raw = head.SerializeToString() + tail.SerializeToString()
        merged = serving_pb2.GetOnlineFeaturesRequest.FromString(raw)
        self.assertEqual(list(merged.features.val),
                         ["driver_stats@v1:conv_rate", "driver_stats@v1:trips"])
        for name, path in (("feast", "/feast.serving.ServingService/GetOnlineFeatures"),
                           ("fstore", "/fstore.v1.OnlineFeatureService/GetOnlineFeatures")):
            with self.subTest(path=name):
                call = self.client.channel.unary_unary(path)
                got = serving_pb2.GetOnlineFeaturesResponse.FromString(call(raw, timeout=30))
                want = serving_pb2.GetOnlineFeaturesResponse.FromString(
                    call(merged.SerializeToString(), timeout=30))
                self.assertEqual(list(got.metadata.feature_names.val),
                                 ["driver_id", "conv_rate", "trips"])
                self.assertEqual(got, want)
        # A feature service after the lists clears them; a list after the service, the service.
        svc = serving_pb2.GetOnlineFeaturesRequest(feature_service="driver_service")
        call = self.client.channel.unary_unary("/feast.serving.ServingService/GetOnlineFeatures")
        for parts in ((head, tail, svc), (svc, head, tail), (head, svc, tail)):
            raw = b"".join(m.SerializeToString() for m in parts)
            merged = serving_pb2.GetOnlineFeaturesRequest.FromString(raw)
            got = serving_pb2.GetOnlineFeaturesResponse.FromString(call(raw, timeout=30))
            want = serving_pb2.GetOnlineFeaturesResponse.FromString(
                call(merged.SerializeToString(), timeout=30))
            self.assertEqual(got, want, [m.WhichOneof("kind") for m in parts])

        # A write whose STRING_LIST value comes in two occurrences inside one Value.
        def field(number, payload):
            n, out = len(payload), bytearray([number << 3 | 2])
            while n >= 0x80:
                out.append(n & 0x7F | 0x80)
                n >>= 7
            out.append(n)
            return bytes(out) + payload
        value = (value_pb2.Value(string_list_val=value_pb2.StringList(val=["x", "y"]))
                 .SerializeToString() +
                 value_pb2.Value(string_list_val=value_pb2.StringList(val=["z"]))
                 .SerializeToString())
        tags = field(2, field(1, b"tags") + field(2, field(1, value)))  # columns {"tags": [value]}
        base = fstore_pb2.WriteFeaturesRequest(feature_view="customer_profile")
        base.columns["customer_id"].val.add().string_val = "carol"
        base.columns["age"].val.add().int32_val = 7
        raw = base.SerializeToString() + tags
        self.assertEqual(list(fstore_pb2.WriteFeaturesRequest.FromString(raw)
                              .columns["tags"].val[0].string_list_val.val), ["x", "y", "z"])
        write = self.client.channel.unary_unary("/fstore.v1.OnlineFeatureService/WriteFeatures")
        write(raw, timeout=30)
        r = self.client.get_online_features(features=["customer_profile:tags"],
                                            entities={"customer_id": ["carol"]})
        self.assertEqual(r["tags"], [["x", "y", "z"]])

    def test_entityless_views_answer_every_row(self):
        r = self.client.get_online_features(features=["global_stats:total_drivers",
                                                      "driver_stats@v1:trips"],
                                            entities={"driver_id": [1001, 1002]})
        self.assertEqual(r["total_drivers"], [3, 3])
        self.assertEqual(r["trips"], [10, 20])
        r = self.client.get_online_features(features=["global_stats:total_drivers"])
        self.assertEqual(r["total_drivers"], [3])

    def test_int32_join_key_values_find_int64_entities(self):
        req = serving_pb2.GetOnlineFeaturesRequest()
        req.features.val.append("driver_stats@v1:trips")
        req.entities["driver_id"].val.append(to_value(1001, "INT32"))
        resp = self.client.serving.GetOnlineFeatures(req, timeout=30)
        self.assertEqual(resp.results[1].values[0].int64_val, 10)

    def test_serving_info_health_and_catalog(self):
        self.assertEqual(self.client.serving_info(), "0.1.0")
        self.assertEqual(self.client.health(), "SERVING")
        self.assertEqual(self.client.health("feast.serving.ServingService"), "SERVING")
        self.assertRpcError(lambda: self.client.health("no.such.Service"),
                            grpc.StatusCode.NOT_FOUND, "no.such.Service")
        cat = self.client.get_catalog()
        self.assertEqual(cat.project, "e2e")
        views = {(v.name, v.version): v for v in cat.feature_views}
        self.assertIn(("driver_stats", 2), views)
        trips = [f for f in views[("driver_stats", 1)].features if f.name == "trips"][0]
        self.assertTrue(trips.validation.has_max)
        self.assertEqual(trips.validation.max, 100000)
        svc = {s.name: list(s.features) for s in cat.feature_services}
        self.assertEqual(svc["driver_service"],
                         ["driver_stats@v1:conv_rate", "driver_stats@v1:trips"])
        self.assertIn("driver_stats", cat.yaml)

    def test_health_watch_streams_serving(self):
        from grpc_health.v1 import health_pb2
        stream = self.client.health_stub.Watch(health_pb2.HealthCheckRequest(service=""),
                                               timeout=30)
        first = next(stream)
        self.assertEqual(first.status, health_pb2.HealthCheckResponse.SERVING)
        stream.cancel()

    def test_many_entities_and_features_in_one_request(self):
        ids = list(range(2000, 2500))
        self.client.write_features("driver_stats@v1", {
            "driver_id": ids, "trips": [i % 1000 for i in ids]})
        feats = ["driver_stats@v1:trips", "driver_stats@v1:conv_rate", "global_stats:total_drivers"]
        r = self.client.get_online_features(features=feats, entities={"driver_id": ids})
        self.assertEqual(r["trips"], [i % 1000 for i in ids])
        self.assertEqual(r.statuses["conv_rate"], ["NULL_VALUE"] * len(ids))


class CachedFeatureLists(ServerTestCase):
    """One read worker, so every request meets the same feature-list cache: what a request asks
    for (names, list or service, decoder path) must come out the same on a hit as on a miss."""
    server_args = ("--workers", "1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client.write_features("driver_stats@v1", {
            "driver_id": [1001], "conv_rate": [0.5], "trips": [10]})

    LIST = ["driver_stats@v1:conv_rate", "driver_stats@v1:trips"]

    def test_the_naming_flag_is_part_of_what_is_cached(self):
        short = ["driver_id", "conv_rate", "trips"]
        full = ["driver_id", "driver_stats@v1__conv_rate", "driver_stats@v1__trips"]
        for flag in (False, True, False, True):
            with self.subTest(full_feature_names=flag):
                r = self.client.get_online_features(features=self.LIST,
                                                    entities={"driver_id": [1001]},
                                                    full_feature_names=flag)
                self.assertEqual(list(r), full if flag else short)
                self.assertEqual(r[full[2] if flag else "trips"], [10])

    def test_include_metadata_follows_each_request(self):
        for meta in (True, False, True):
            with self.subTest(include_metadata=meta):
                r = self.client.get_online_features(features=self.LIST,
                                                    entities={"driver_id": [1001]},
                                                    include_metadata=meta)
                self.assertEqual(r.feature_view_metadata,
                                 [("driver_stats", 1)] if meta else [])

    def test_a_list_and_a_service_with_the_same_bytes_are_not_confused(self):
        # features=["driver_service"] is a list holding one bad reference; the service of that
        # name is fine. Each answer must stay what it is whatever came before it.
        for _ in range(2):
            self.assertRpcError(lambda: self.client.get_online_features(
                features=["driver_service"], entities={"driver_id": [1001]}),
                grpc.StatusCode.INVALID_ARGUMENT, "driver_service")
            r = self.client.get_online_features(feature_service="driver_service",
                                                entities={"driver_id": [1001]})
            self.assertEqual(list(r), ["driver_id", "conv_rate", "trips"])

    def test_both_decoders_share_the_list_and_answer_alike(self):
        # A DOUBLE entity value takes the request through protobuf-c instead of the hand decoder.
        for extra in (False, True, False):
            with self.subTest(protobuf_c=extra):
                ents = {"driver_id": [1001]}
                if extra:
                    ents["unused"] = [0.5]
                r = self.client.get_online_features(features=self.LIST, entities=ents)
                self.assertEqual(list(r)[-2:], ["conv_rate", "trips"])
                self.assertEqual(r["trips"], [10])


if __name__ == "__main__":
    unittest.main()

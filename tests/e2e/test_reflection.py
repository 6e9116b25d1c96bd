# tests/e2e/test_reflection.py - gRPC server reflection (v1 and v1alpha) of the real binary.
"""A small reflection client on Debian's grpcio (grpcurl is not packaged): it lists the
services, fetches the files that define them with their imports, builds a descriptor pool from
them and describes services and messages, as `grpcurl list` and `grpcurl describe` do."""
import time
import unittest

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

from grpc_reflection.v1 import reflection_pb2 as v1
from grpc_reflection.v1 import reflection_pb2_grpc as v1_grpc
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc
from harness import ServerTestCase

SERVICES = {"feast.serving.ServingService", "fstore.v1.OnlineFeatureService",
            "tensorflow.serving.PredictionService", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}


class ReflectionTest(ServerTestCase):
    def ask(self, requests, alpha=False):
        with grpc.insecure_channel(self.server.target) as ch:
            mod = v1alpha_grpc if alpha else v1_grpc
            stub = mod.ServerReflectionStub(ch)
            return list(stub.ServerReflectionInfo(iter(requests), timeout=30))

    def pool_for(self, symbol, alpha=False):
        pb = v1alpha if alpha else v1
        (resp,) = self.ask([pb.ServerReflectionRequest(file_containing_symbol=symbol)], alpha)
        self.assertEqual(resp.WhichOneof("message_response"), "file_descriptor_response")
        pool = descriptor_pool.DescriptorPool()
        protos = [descriptor_pb2.FileDescriptorProto.FromString(b)
                  for b in resp.file_descriptor_response.file_descriptor_proto]
        # Imports come first: the pool can add them in order.
        for fd in protos:
            pool.Add(fd)
        return pool

    def test_list_services_on_both_paths(self):
        for alpha in (False, True):
            pb = v1alpha if alpha else v1
            svc = "grpc.reflection.%s.ServerReflection" % ("v1alpha" if alpha else "v1")
            done = ('grpc_server_handled_total{grpc_code="OK",grpc_method="ServerReflectionInfo",'
                    'grpc_service="%s",grpc_type="bidi_stream"}' % svc)
            before = self.server.metric(done)
            (resp,) = self.ask([pb.ServerReflectionRequest(list_services="")], alpha)
            self.assertEqual({s.name for s in resp.list_services_response.service}, SERVICES)
            # The stream is counted as the unary methods are (its series exist at zero).
            deadline = time.monotonic() + 10
            while self.server.metric(done) != before + 1:
                self.assertLess(time.monotonic(), deadline, done)
                time.sleep(0.05)

    def test_describe_every_service_and_its_messages(self):
        for name in SERVICES:
            pool = self.pool_for(name)
            svc = pool.FindServiceByName(name)
            self.assertGreater(len(svc.methods), 0, name)
            for m in svc.methods:
                self.assertTrue(m.input_type.full_name)
        pool = self.pool_for("fstore.v1.OnlineFeatureService")
        msg = pool.FindMessageTypeByName("fstore.v1.WriteFeaturesResponse")
        self.assertEqual(msg.fields_by_name["sequence"].number, 3)
        svc = pool.FindServiceByName("fstore.v1.OnlineFeatureService")
        self.assertIn("GetReplicationStatus", [m.name for m in svc.methods])
        pool = self.pool_for("feast.serving.ServingService", alpha=True)
        req = pool.FindMessageTypeByName("feast.serving.GetOnlineFeaturesRequest")
        self.assertIn("entities", req.fields_by_name)

    def test_symbols_and_files(self):
        reqs = [v1.ServerReflectionRequest(file_containing_symbol="feast.types.Value"),
                v1.ServerReflectionRequest(
                    file_containing_symbol="fstore.v1.OnlineFeatureService.WriteFeatures"),
                v1.ServerReflectionRequest(file_by_filename="fstore/v1/fstore.proto"),
                v1.ServerReflectionRequest(file_containing_symbol="no.such.Thing"),
                v1.ServerReflectionRequest(file_by_filename="nope.proto"),
                v1.ServerReflectionRequest(all_extension_numbers_of_type="feast.types.Value")]
        resp = self.ask(reqs)
        self.assertEqual(len(resp), len(reqs), "one answer per request, in order")
        names = [descriptor_pb2.FileDescriptorProto.FromString(b).name
                 for b in resp[0].file_descriptor_response.file_descriptor_proto]
        self.assertEqual(names[-1], "feast/types/Value.proto")
        names = [descriptor_pb2.FileDescriptorProto.FromString(b).name
                 for b in resp[2].file_descriptor_response.file_descriptor_proto]
        self.assertEqual(names[-1], "fstore/v1/fstore.proto")
        self.assertIn("google/protobuf/timestamp.proto", names)
        for r in (resp[3], resp[4]):
            self.assertEqual(r.WhichOneof("message_response"), "error_response")
            self.assertEqual(r.error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0])
        self.assertEqual(resp[5].all_extension_numbers_response.base_type_name,
                         "feast.types.Value")
        self.assertEqual(resp[1].original_request.file_containing_symbol,
                         "fstore.v1.OnlineFeatureService.WriteFeatures")


if __name__ == "__main__":
    unittest.main()

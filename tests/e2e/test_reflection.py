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


class ReflectionBoundsTest(ServerTestCase):
    """Reflection streams last as long as their clients keep them: at most
    --grpc-max-reflection-streams are open (more are refused at once), one that waits longer
    than --grpc-reflection-idle-s for its next request is ended, and so is one whose answer is
    not taken within --grpc-max-send-ms; each frees its place."""
    server_args = ["--grpc-max-reflection-streams", "4", "--grpc-reflection-idle-s", "5",
                   "--grpc-max-send-ms", "1000"]
    PATH = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"

    def status(self, c, sid):
        st = c.streams[sid]
        md = dict(st["headers"])
        md.update(st["trailers"])
        return md.get("grpc-status"), md.get("grpc-message", "")

    def list_ok(self, within=5.0):
        """A real client's list_services answered, within a few seconds (a place freed by a
        stream just ended is taken again once gRPC has completed its close)."""
        deadline = time.monotonic() + within
        while True:
            try:
                (resp,) = ReflectionTest.ask(self, [v1.ServerReflectionRequest(list_services="")])
                return {s.name for s in resp.list_services_response.service} == SERVICES
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, e.details())
                self.assertLess(time.monotonic(), deadline, "no place came free")
                time.sleep(0.1)

    def setUp(self):
        self.assertTrue(self.list_ok(), "every place is free before each test")

    def test_streams_past_the_bound_are_refused_and_idle_ones_ended(self):
        from h2_client import H2Grpc
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        # Four streams that never send a request hold every place ...
        idle = [c.start(self.PATH) for _ in range(4)]
        c.flush()
        c.pump(lambda: all(c.streams[s]["headers"] for s in idle), 5)
        # ... so a fifth is refused at once, naming the flag.
        fifth = c.start(self.PATH)
        c.flush()
        t0 = time.monotonic()
        c.pump(lambda: c.streams[fifth]["ended"], 5)
        self.assertLess(time.monotonic() - t0, 2)
        code, msg = self.status(c, fifth)
        self.assertEqual(code, "8", msg)  # RESOURCE_EXHAUSTED
        self.assertIn("--grpc-max-reflection-streams", msg)
        # After 5 s without a request the four are ended, and a real client is answered.
        c.pump(lambda: all(c.streams[s]["ended"] for s in idle), 10)
        for s in idle:
            code, msg = self.status(c, s)
            self.assertEqual(code, "8", msg)
            self.assertIn("idle", msg)
        self.assertTrue(self.list_ok())

    def test_an_answer_never_taken_ends_its_stream(self):
        from h2_client import H2Grpc, frame
        before = self.server.metric("fstore_grpc_replies_not_taken_total")
        c = H2Grpc(self.server.port, window=0)
        self.addCleanup(c.close)
        c.pump(lambda: c.remote_max_streams is not None, timeout=5)
        ask = v1.ServerReflectionRequest(
            file_containing_symbol="feast.serving.ServingService").SerializeToString()
        sids = []
        for _ in range(4):
            sid = c.start(self.PATH)
            c.send(sid, frame(ask), end=False)
            sids.append(sid)
        c.pump(lambda: all(c.streams[s]["ended"] for s in sids), 10)
        self.assertEqual([s for s in sids if not c.streams[s]["ended"]], [])
        for s in sids:
            code, msg = self.status(c, s)
            if code is not None:  # a reset stream carries no status
                self.assertEqual(code, "8", msg)
                self.assertIn("--grpc-max-send-ms", msg)
        self.assertGreaterEqual(self.server.metric("fstore_grpc_replies_not_taken_total"),
                                before + 4)
        self.assertTrue(self.list_ok())


class ReflectionDrainTest(unittest.TestCase):
    """A reflection stream waiting for a request that never comes (an idle grpcurl or evans
    session) does not hold a stop: it ends UNAVAILABLE at once, the client then closes its
    connection, and the server stops well within its shutdown grace (20 s here)."""

    def test_an_open_stream_ends_at_the_stop(self):
        import queue
        import signal
        from harness import Server
        server = Server(args=["--shutdown-grace-ms", "20000", "--grpc-reflection-idle-s", "0"])
        self.addCleanup(server.cleanup)
        server.start()
        ch = grpc.insecure_channel(server.target)
        self.addCleanup(ch.close)
        hold = queue.Queue()
        self.addCleanup(hold.put, None)

        def requests():
            yield v1.ServerReflectionRequest(list_services="")
            hold.get()  # the next request never comes

        stream = v1_grpc.ServerReflectionStub(ch).ServerReflectionInfo(requests(), timeout=60)
        self.assertEqual({s.name for s in next(stream).list_services_response.service}, SERVICES)
        t0 = time.monotonic()
        server.send(signal.SIGTERM)
        with self.assertRaises(grpc.RpcError) as e:
            next(stream)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE, e.exception.details())
        self.assertEqual(server.proc.wait(15), 0, server.log()[-3000:])
        self.assertLess(time.monotonic() - t0, 10, "the stop waited for the stream")
        self.assertNotIn("cancelling_calls", server.log())
        self.assertIsNone(server.sanitizer_report())

if __name__ == "__main__":
    unittest.main()

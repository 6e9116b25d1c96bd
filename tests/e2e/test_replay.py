# tests/e2e/test_replay.py - the recorded wire corpus, replayed byte for byte.
"""The corpus (replay/corpus.jsonl.gz, made by replay/make_corpus.py) holds 467 calls of
GetOnlineFeatures (both paths), Predict, WriteFeatures, DeleteEntities and GetCatalog, each with
the status, message and response bytes an earlier binary gave (call 278, a feature list given
twice, re-recorded when such lists came to be merged as protobuf merges them). They are sent
again, in order, to a fresh server over the same catalog, and every answer must be the same to
the byte: the test that a refactoring did not change what clients see.
"""
import base64
import gzip
import json
import os
import unittest

import grpc

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "replay", "corpus.jsonl.gz")


class ReplayTest(harness.ServerTestCase):
    catalog = os.path.join(HERE, "replay", "catalog.yaml")

    def test_every_recorded_call_gets_the_same_answer_byte_for_byte(self):
        ch = grpc.insecure_channel(self.server.target, options=[
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
        self.addCleanup(ch.close)
        with gzip.open(CORPUS, "rt") as f:
            calls = [json.loads(line) for line in f]
        self.assertGreater(len(calls), 400)
        methods = {c["method"].rsplit("/", 1)[1] for c in calls}
        self.assertEqual(methods, {"GetOnlineFeatures", "Predict", "WriteFeatures",
                                   "DeleteEntities", "GetCatalog"})
        mismatches = []
        for i, c in enumerate(calls):
            fn = ch.unary_unary(c["method"], request_serializer=None, response_deserializer=None)
            body = base64.b64decode(c["request"])
            try:
                resp, call = fn.with_call(body, timeout=30)
                got = (call.code().name, call.details() or "", resp)
            except grpc.RpcError as e:
                got = (e.code().name, e.details() or "", b"")
            want = (c["code"], c["details"], base64.b64decode(c["response"]))
            if got != want:
                mismatches.append("call %d %s: want %s %r (%d bytes), got %s %r (%d bytes)" % (
                    i, c["method"], want[0], want[1][:200], len(want[2]), got[0], got[1][:200],
                    len(got[2])))
        self.assertEqual(mismatches, [], "\n".join(mismatches[:20]))


if __name__ == "__main__":
    unittest.main()

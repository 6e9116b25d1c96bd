# tests/e2e/test_hostile.py - one hostile client against the real binary: what it can hold.
"""The attacks of issue #14 that gRPC's own knobs answer, each against a real server on
127.0.0.1 with raw HTTP/2 frames (python3-h2) where grpcio will not misbehave on request:
compressed request frames (and a bomb), a stream flood on one connection, a client that never
reads its replies, connections that must rebalance, a rapid-reset flood (gRPC 1.51 cannot refuse
one: the test shows it drained and its memory returned; see the README's "Hostile clients"), and
HTTP connections held idle or opened too fast. Each asserts that the
server stays up, that another client is served within its deadline, and that the server's RSS
stays under a stated bound."""
import gzip
import os
import select
import socket
import struct
import threading
import time
import unittest
import urllib.request
import zlib

import grpc
import hpack

from feast.serving import ServingService_pb2 as serving_pb2
from fstore_client import FeatureStoreClient
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from h2_client import H2Grpc
from harness import Server

HEALTH = "/grpc.health.v1.Health/Check"
HEALTH_REQ = health_pb2.HealthCheckRequest(service="").SerializeToString()
WATCH = "/grpc.health.v1.Health/Watch"
FEAST_GET = "/feast.serving.ServingService/GetOnlineFeatures"
UNCOMPRESS = {"gzip": gzip.decompress, "deflate": zlib.decompress}


def read_request(n):
    """A GetOnlineFeatures request for drivers 1..n (a reply of ~40 bytes per driver)."""
    req = serving_pb2.GetOnlineFeaturesRequest()
    req.features.val.extend(["driver_stats@v1:trips", "driver_stats@v1:conv_rate"])
    req.entities["driver_id"].val.add().int64_val = 1
    del req.entities["driver_id"].val[:]
    for i in range(1, n + 1):
        req.entities["driver_id"].val.add().int64_val = i
    return req.SerializeToString()


def reply_frame(c, sid):
    """(compressed flag, grpc-encoding header or None, message bytes as sent) of stream sid's
    one reply message."""
    st = c.streams[sid]
    c.pump(lambda: st["ended"], 10)
    data = st["data"]
    assert len(data) >= 5, "no reply message: %r" % (st,)
    flag, n = struct.unpack(">BI", data[:5])
    return flag, st["headers"].get("grpc-encoding"), data[5:5 + n]


def rss_mb(pid, field="VmRSS"):
    """The process's resident memory now (VmRSS), or its peak so far (VmHWM), in MB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def raw_frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


class HostileCase(unittest.TestCase):
    args = []

    def setUp(self):
        self.server = Server(args=self.args)
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def tearDown(self):
        rc = self.server.stop()
        self.assertEqual(rc, 0, self.server.log()[-3000:])
        self.assertIsNone(self.server.sanitizer_report())

    def assert_bomb_refused(self, c):
        """128 MB of gzip in under 1 MB: RESOURCE_EXHAUSTED, and the server's peak memory grows
        by far less than the bomb (at most --max-message-bytes is ever inflated)."""
        bomb = gzip.compress(b"\x0a\x80\x80\x80\x40" + b"a" * (128 << 20))
        self.assertLess(len(bomb), 1 << 20)
        before = rss_mb(self.server.proc.pid, "VmHWM")
        sid = c.call(HEALTH, bomb, encoding="gzip", compressed=True)
        status, msg, _ = c.result(sid, timeout=30)
        self.assertEqual(status, grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], msg)
        self.assertIn("decompresses to over --max-message-bytes", msg)
        self.assertLess(rss_mb(self.server.proc.pid, "VmHWM") - before, 64)

    def written(self, n):
        """Drivers 1..n in driver_stats@v1."""
        ch = grpc.insecure_channel(self.server.target)
        self.addCleanup(ch.close)
        FeatureStoreClient(channel=ch).write_features(
            "driver_stats@v1", {"driver_id": list(range(1, n + 1)),
                                "trips": list(range(1, n + 1)),
                                "conv_rate": [0.5] * n})

    def other_client_ok(self, deadline=3.0):
        """A well-behaved client's Health/Check, within its deadline."""
        ch = grpc.insecure_channel(self.server.target)
        try:
            c = FeatureStoreClient(channel=ch, timeout=deadline)
            return c.health() == "SERVING"
        finally:
            ch.close()


class Compression(HostileCase):
    def test_gzip_and_deflate_requests_are_read(self):
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        for enc, body in (("gzip", gzip.compress(HEALTH_REQ)),
                          ("deflate", zlib.compress(HEALTH_REQ))):
            sid = c.call(HEALTH, body, encoding=enc, compressed=True)
            status, msg, resp = c.result(sid)
            self.assertEqual(status, 0, msg)
            self.assertEqual(health_pb2.HealthCheckResponse.FromString(resp).status,
                             health_pb2.HealthCheckResponse.SERVING)
        # grpcio with compression on, on a request large enough to be worth compressing.
        ch = grpc.insecure_channel(self.server.target, compression=grpc.Compression.Gzip)
        self.addCleanup(ch.close)
        client = FeatureStoreClient(channel=ch)
        client.write_features("driver_stats@v1", {"driver_id": list(range(1, 201)),
                                                  "trips": list(range(1, 201))})
        got = client.get_online_features(features=["driver_stats@v1:trips"],
                                         entities={"driver_id": list(range(1, 201))})
        self.assertEqual(got["trips"], list(range(1, 201)))

    def test_replies_come_compressed_as_the_request_came(self):
        """A request sent gzip (deflate) gets its reply gzip (deflate), marked so in its frame
        and in grpc-encoding, and it is the plain reply's message; a plain request, or a reply
        under 512 bytes, comes plain."""
        self.written(300)
        req = read_request(300)
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        flag, enc, plain = reply_frame(c, c.call(FEAST_GET, req))
        self.assertEqual((flag, enc), (0, None))
        want = serving_pb2.GetOnlineFeaturesResponse.FromString(plain)
        self.assertEqual(len(want.results), 3)  # the join key's column, then the features
        for name, squeeze in (("gzip", gzip.compress), ("deflate", zlib.compress)):
            flag, enc, body = reply_frame(c, c.call(FEAST_GET, squeeze(req), encoding=name,
                                                    compressed=True))
            self.assertEqual((flag, enc), (1, name))
            self.assertLess(len(body), len(plain) // 2)
            got = serving_pb2.GetOnlineFeaturesResponse.FromString(UNCOMPRESS[name](body))
            # The same values and statuses (event times are the rows', so equal too).
            self.assertEqual(got, want)
        # A reply under 512 bytes is not worth compressing: plain, though the header says gzip
        # (its frame's flag says which).
        flag, enc, body = reply_frame(c, c.call(FEAST_GET, gzip.compress(read_request(6)),
                                                encoding="gzip", compressed=True))
        self.assertEqual((flag, enc), (0, "gzip"))
        self.assertLess(len(body), 512)
        self.assertLess(len(gzip.compress(body)), len(body), "one that would shrink")
        self.assertEqual(len(serving_pb2.GetOnlineFeaturesResponse.FromString(body).results), 3)
        # grpcio with compression on reads its compressed replies (and grpc-js, test_c_client
        # and the clients' own suites, read plain ones).
        ch = grpc.insecure_channel(self.server.target, compression=grpc.Compression.Deflate)
        self.addCleanup(ch.close)
        got = FeatureStoreClient(channel=ch).get_online_features(
            features=["driver_stats@v1:trips"], entities={"driver_id": list(range(1, 301))})
        self.assertEqual(got["trips"], list(range(1, 301)))

    def test_a_gzip_bomb_and_a_corrupt_stream_are_refused(self):
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        self.assert_bomb_refused(c)
        sid = c.call(HEALTH, gzip.compress(HEALTH_REQ)[:-6], encoding="gzip", compressed=True)
        status, msg, _ = c.result(sid)
        self.assertEqual(status, grpc.StatusCode.INVALID_ARGUMENT.value[0], msg)
        self.assertIn("corrupt gzip", msg)
        self.assertTrue(self.other_client_ok())


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


class MergeFlood(unittest.TestCase):
    """A message field given twice is merged before protobuf-c reads the request (as every
    official runtime merges it); requests made of nothing but such fields, 4 MiB of them, cost
    about what a plain request of that size costs, never memory per merged message. Each kind
    runs on a fresh server whose peak memory is compared with a plain request's on another (ASan's
    quarantine kept small, so the peak is live memory)."""

    def peak_growth(self, body):
        """(status, seconds, peak RSS growth in MB) of body sent to a fresh server."""
        asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        server = Server(env={"ASAN_OPTIONS": asan + ":quarantine_size_mb=4"})
        self.addCleanup(server.cleanup)
        server.start()
        ch = grpc.insecure_channel(server.target,
                                   options=[("grpc.max_send_message_length", 8 << 20)])
        self.addCleanup(ch.close)
        call = ch.unary_unary(FEAST_GET, request_serializer=None, response_deserializer=None)
        before = rss_mb(server.proc.pid, "VmHWM")
        t0 = time.monotonic()
        try:
            call(body, timeout=30)
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
        took = time.monotonic() - t0
        grown = rss_mb(server.proc.pid, "VmHWM") - before
        self.assertEqual(FeatureStoreClient(channel=ch, timeout=5).health(), "SERVING")
        self.assertEqual(server.stop(), 0, server.log()[-3000:])
        self.assertIsNone(server.sanitizer_report())
        return code, took, grown

    def test_requests_of_repeated_fields_cost_what_plain_ones_do(self):
        def entities(values):  # one map entry: driver_id -> RepeatedValue{values}
            entry = b"\x0a\x09driver_id" + b"\x12" + varint(len(values)) + values
            return b"\x1a" + varint(len(entry)) + entry
        features = b"\x12\x17\x0a\x15driver_stats@v1:trips"
        # The baseline: 650,000 Values, each an int64 list (one field, nothing to merge).
        plain = features + entities(b"\x0a\x04\x72\x02\x08\x01" * 650000)
        # 650,000 Values, each an int64 list given twice (each Value its own merge); one Value
        # whose list is given 2,000,000 times; the feature list given 160,000 times.
        attacks = {
            "many": features + entities(b"\x0a\x04\x72\x00\x72\x00" * 650000),
            "one": features + entities(b"\x0a" + varint(4000000) + b"\x72\x00" * 2000000),
            "lists": features * 160000 + entities(b"\x0a\x02\x20\x01"),
        }
        code, took0, grown0 = self.peak_growth(plain)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)  # a list for an INT64 key
        for name, body in attacks.items():
            self.assertLess(len(body), 4 << 20)
            code, took, grown = self.peak_growth(body)
            # Refused for what the merged request says (a list for an INT64 key, too many
            # entities or features).
            self.assertIn(code, (grpc.StatusCode.INVALID_ARGUMENT,
                                 grpc.StatusCode.RESOURCE_EXHAUSTED), name)
            self.assertLess(grown, 2 * grown0 + 32, "%s: %.0f MB, plain %.0f MB"
                            % (name, grown, grown0))
            self.assertLess(took, 5 * took0 + 2, "%s: %.2f s, plain %.2f s" % (name, took, took0))


class CompressionOff(HostileCase):
    """--grpc-response-compression off: compressed requests are read, replies go plain."""
    args = ["--grpc-response-compression", "off"]

    def test_replies_go_plain(self):
        self.written(300)
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        flag, enc, body = reply_frame(c, c.call(FEAST_GET, gzip.compress(read_request(300)),
                                                encoding="gzip", compressed=True))
        self.assertEqual((flag, enc), (0, None))
        self.assertEqual(len(serving_pb2.GetOnlineFeaturesResponse.FromString(body).results), 3)


class WatchBounds(HostileCase):
    """Health/Watch streams live as long as their clients want: at most --grpc-max-watches are
    open (more are refused at once, RESOURCE_EXHAUSTED), and one whose client stops reading is
    ended after --grpc-max-send-ms, so stalled watchers cannot keep the others out."""
    args = ["--grpc-max-watches", "40", "--grpc-max-send-ms", "1000"]

    def watch_ok(self):
        """A well-behaved watcher's first message (SERVING) within 3 s; False when it is
        refused for want of a place."""
        ch = grpc.insecure_channel(self.server.target)
        try:
            stream = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(),
                                                          timeout=3)
            first = next(stream)
            stream.cancel()
            return first.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError as e:
            self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, e.details())
            return False
        finally:
            ch.close()

    def test_watchers_past_the_bound_are_refused_and_memory_stays_bounded(self):
        before = rss_mb(self.server.proc.pid)
        conns = []
        for _ in range(3):
            c = H2Grpc(self.server.port)
            self.addCleanup(c.close)
            conns.append((c, [c.call(WATCH, HEALTH_REQ, end=True) for _ in range(30)]))
        opened = refused = 0
        t0 = time.monotonic()
        for c, sids in conns:
            c.pump(lambda: all(c.streams[s]["data"] or c.streams[s]["ended"] for s in sids), 10)
            for s in sids:
                st = c.streams[s]
                if st["ended"]:
                    md = dict(st["headers"])
                    md.update(st["trailers"])
                    self.assertEqual(md.get("grpc-status"), "8", md)  # RESOURCE_EXHAUSTED
                    self.assertIn("--grpc-max-watches", md.get("grpc-message", ""))
                    refused += 1
                elif st["data"]:
                    opened += 1
        self.assertEqual((opened, refused), (40, 50))
        self.assertLess(time.monotonic() - t0, 5, "refused at once, not left waiting")
        self.assertTrue(self.other_client_ok())
        self.assertLess(rss_mb(self.server.proc.pid) - before, 64)
        # One closes: a new watcher gets its place.
        c, sids = conns[0]
        open_sids = [s for s in sids if not c.streams[s]["ended"]]
        c.conn.reset_stream(open_sids[0])
        c.flush()
        deadline = time.monotonic() + 5
        while not self.watch_ok():
            self.assertLess(time.monotonic(), deadline, "no watch slot came free")
            time.sleep(0.1)
        series = ('grpc_server_handled_total{grpc_code="ResourceExhausted",grpc_method="Watch",'
                  'grpc_service="grpc.health.v1.Health",grpc_type="server_stream"}')
        self.assertGreaterEqual(self.server.metric(series), 50)

    def test_watchers_that_never_read_are_ended_and_free_their_places(self):
        # 40 watchers whose window stays at 0: each first update stays unsent.
        c = H2Grpc(self.server.port, window=0)
        self.addCleanup(c.close)
        c.pump(lambda: c.remote_max_streams is not None, timeout=5)
        sids = [c.call(WATCH, HEALTH_REQ) for _ in range(40)]
        # A 41st at once, while the bound is full: refused with headers and a status only,
        # which the closed window does not hold back.
        extra = c.call(WATCH, HEALTH_REQ)
        c.pump(lambda: c.streams[extra]["ended"], 5)
        md = dict(c.streams[extra]["headers"])
        md.update(c.streams[extra]["trailers"])
        self.assertEqual(md.get("grpc-status"), "8", md)
        # After --grpc-max-send-ms (1 s) the stalled ones are ended and counted ...
        c.pump(lambda: all(c.streams[s]["ended"] for s in sids), 10)
        self.assertEqual([s for s in sids if not c.streams[s]["ended"]], [])
        self.assertGreaterEqual(self.server.metric("fstore_grpc_replies_not_taken_total"), 40)
        self.assertIn("reply_not_taken", self.server.log())
        # ... and a well-behaved watcher is served.
        self.assertTrue(self.watch_ok())


class StreamFlood(HostileCase):
    args = ["--grpc-max-streams", "100", "--grpc-max-memory", str(128 << 20)]

    def flood(self, n, reset):
        """n streams on one connection, HEADERS only (or each reset at once), as fast as the
        socket takes them; returns what the server answered."""
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        c.pump(lambda: c.remote_max_streams is not None, timeout=5)
        enc = hpack.Encoder()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", HEALTH),
                   (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
                   ("te", "trailers")]
        batch = []
        sent = 0
        try:
            for i in range(n):
                sid = 2 * i + 1
                batch.append(raw_frame(0x1, 0x4, sid, enc.encode(headers)))
                if reset:
                    batch.append(raw_frame(0x3, 0, sid, struct.pack(">I", 0x8)))
                if len(batch) >= 512:
                    c.sock.sendall(b"".join(batch))
                    sent += len(batch)
                    batch = []
            c.sock.sendall(b"".join(batch))
        except OSError:
            pass  # the server closed the connection: fine
        return c

    def check_bounded(self, reset):
        pid = self.server.proc.pid
        before = rss_mb(pid)
        peak = [before]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mb(pid))
                time.sleep(0.05)

        t = threading.Thread(target=watch)
        t.start()
        try:
            c = self.flood(60000, reset)
            self.assertTrue(self.other_client_ok(), "another client is served during the flood")
            answers = read_frames(c.sock, 2.0)
        finally:
            stop.set()
            t.join()
        self.assertLess(peak[0] - before, 200, "RSS grew %.0f MB" % (peak[0] - before))
        self.assertTrue(self.other_client_ok())
        return c, answers

    def test_streams_past_the_limit_are_refused_and_memory_stays_bounded(self):
        c, answers = self.check_bounded(reset=False)
        self.assertEqual(c.remote_max_streams, 100, "the limit is advertised")
        # The flood's streams are answered (a status, RST_STREAM) or the connection is closed
        # (GOAWAY): none is left holding anything.
        ended = set(sid for ftype, sid, _ in answers if ftype in (0x1, 0x3) and sid > 0)
        goaway = any(ftype == 0x7 for ftype, _, _ in answers)
        self.assertTrue(len(ended) > 0 or goaway or c.closed, answers[:10])


RELEASE_FSTORE = os.path.join(os.environ.get("FSTORE_SOURCE_DIR", "."), "build", "release",
                              "fstore")


@unittest.skipUnless(os.path.exists(RELEASE_FSTORE),
                     "no release build (build/release/fstore): ASan's allocator keeps freed "
                     "memory in its quarantine, so RSS is measured on the release binary")
class LargeBodies(unittest.TestCase):
    """Attack 4: bodies far over --max-message-bytes, several at once. gRPC 1.51 takes a message
    in whole before fstore sees its length; what bounds them all together is gRPC's resource
    quota (--grpc-max-memory): past it gRPC resets the streams it is reading. The release
    binary: RSS is the allocator's."""

    def test_huge_bodies_at_once_cost_at_most_the_grpc_memory_quota(self):
        server = Server(args=["--grpc-max-memory", str(64 << 20)])
        server.command = lambda: [RELEASE_FSTORE] + Server.command(server)[1:]
        self.addCleanup(server.cleanup)
        server.start()
        self.server = server
        before = rss_mb(server.proc.pid, "VmHWM")
        body = b"\x0a\x80\x80\x80\x60" + b"x" * (150 << 20)
        codes = []

        def send():
            ch = grpc.insecure_channel(server.target,
                                       options=[("grpc.max_send_message_length", -1)])
            try:
                ch.unary_unary("/feast.serving.ServingService/GetOnlineFeatures")(body,
                                                                                  timeout=60)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as e:
                codes.append(e.code())
            finally:
                ch.close()
        threads = [threading.Thread(target=send) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertEqual(codes, [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3)
        # 450 MB sent; the peak grew by the quota and change (without it: ~400 MB).
        grew = rss_mb(server.proc.pid, "VmHWM") - before
        self.assertLess(grew, 160, "the peak grew %.0f MB" % grew)
        self.assertTrue(HostileCase.other_client_ok(self, deadline=10.0))
        self.assertEqual(server.stop(), 0, server.log()[-2000:])


@unittest.skipUnless(os.path.exists(RELEASE_FSTORE),
                     "no release build (build/release/fstore): ASan's allocator keeps freed "
                     "memory in its quarantine, so RSS is measured on the release binary")
class RapidReset(unittest.TestCase):
    """HTTP/2 rapid reset (CVE-2023-44487) on one connection: gRPC 1.51 queues a call for every
    stream it resets and has no knob to refuse them, so the memory peaks with the flood. What
    fstore does: its handlers drain the queue (other clients are served meanwhile), and the
    control thread gives the memory back to the kernel afterwards (base_heap_trim), so the
    process does not stay at the peak. The release binary: RSS is the allocator's."""

    def test_a_reset_flood_is_drained_and_its_memory_returned(self):
        server = Server(args=["--grpc-max-streams", "100"])
        server.command = lambda: [RELEASE_FSTORE] + Server.command(server)[1:]
        self.addCleanup(server.cleanup)
        server.start()
        self.server = server
        before = rss_mb(server.proc.pid)
        c = StreamFlood.flood(self, 60000, reset=True)
        self.assertTrue(HostileCase.other_client_ok(self, deadline=10.0),
                        "another client is served during the flood")
        # Every reset stream reached a handler (and was let go).
        series = ('grpc_server_started_total{grpc_method="Check",'
                  'grpc_service="grpc.health.v1.Health",grpc_type="unary"}')
        server.wait_metric(series, 60000, timeout=60)
        # Within a few control-loop ticks the flood's memory is the kernel's again: at most
        # twice the trim's 64 MiB threshold over the start (gRPC keeps some buffers it grew),
        # against the flood's ~650 MB, which glibc kept for good before the trim.
        deadline = time.monotonic() + 30
        while rss_mb(server.proc.pid) - before > 128 and time.monotonic() < deadline:
            time.sleep(0.25)
        self.assertLess(rss_mb(server.proc.pid) - before, 128,
                        "RSS stayed %.0f MB over its start" % (rss_mb(server.proc.pid) - before))
        self.assertTrue(server.events("heap_returned"))
        c.close()
        self.assertEqual(server.stop(), 0, server.log()[-2000:])


class NeverReads(HostileCase):
    """A client whose flow-control window stays at 0 leaves its replies unsent; each holds a
    call slot until --grpc-max-send-ms cancels it, so other clients keep being served."""
    args = ["--grpc-max-send-ms", "1000"]

    def stall(self, n):
        c = H2Grpc(self.server.port, window=0)
        self.addCleanup(c.close)
        c.pump(lambda: c.remote_max_streams is not None, timeout=5)
        return c, [c.call(HEALTH, HEALTH_REQ) for _ in range(n)]

    def test_a_client_that_never_reads_cannot_starve_health_checks(self):
        # 90 calls, under the 100 streams a connection may have: with 4 Health slots (2 read
        # workers x 2) and no bound, every other client's Health/Check would wait forever.
        series = ('grpc_server_started_total{grpc_method="Check",'
                  'grpc_service="grpc.health.v1.Health",grpc_type="unary"}')
        base = self.server.metric(series)
        c, sids = self.stall(90)
        # Every Health slot holds a stalled call (its reply unsent) before the others ask.
        self.server.wait_metric(series, base + 4)
        for _ in range(10):
            t0 = time.monotonic()
            self.assertTrue(self.other_client_ok(deadline=3.0))
            self.assertLess(time.monotonic() - t0, 3.0)
        # The stalled calls ended (cancelled, or refused at once as the connection's), and
        # the cancellations were counted and logged.
        c.pump(lambda: all(c.streams[s]["ended"] for s in sids), timeout=10)
        self.assertEqual([s for s in sids if not c.streams[s]["ended"]], [])
        refused = [s for s in sids
                   if "left a reply untaken" in
                   (c.streams[s]["trailers"].get("grpc-message", "") +
                    c.streams[s]["headers"].get("grpc-message", ""))]
        self.assertGreater(len(refused), 0)
        self.assertIn("reply_not_taken", self.server.log())
        with urllib.request.urlopen("http://%s/metrics" % self.server.http, timeout=10) as r:
            text = r.read().decode()
        taken = [l for l in text.splitlines() if l.startswith("fstore_grpc_replies_not_taken_total ")]
        self.assertEqual(len(taken), 1)
        self.assertGreaterEqual(float(taken[0].split()[1]), 4)


class PingFlood(HostileCase):
    """Keepalive enforcement: HTTP/2 PINGs closer than --grpc-min-ping-interval-ms (5 minutes
    by default) are strikes; the third closes the connection with GOAWAY ENHANCE_YOUR_CALM
    "too_many_pings"."""

    @staticmethod
    def ping(c, n, every=0.05):
        """Sends up to n PINGs, every `every` seconds; returns how many went before a close."""
        sent = 0
        while sent < n and not c.closed:
            c.conn.ping(b"%08d" % sent)
            c.flush()
            sent += 1
            c.pump(lambda: False, timeout=every)
        c.pump(lambda: c.closed, timeout=3)
        return sent

    def test_a_ping_flood_is_closed_and_others_are_served(self):
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        sent = self.ping(c, 50)
        self.assertTrue(c.closed)
        self.assertLess(sent, 10)
        self.assertEqual((int(c.goaway[0]), c.goaway[1]), (11, b"too_many_pings"))
        self.assertTrue(self.other_client_ok())


class PingsAllowed(HostileCase):
    """A client whose keepalive is more frequent than gRPC's default is allowed with the flag."""
    args = ["--grpc-min-ping-interval-ms", "10"]

    def test_pings_within_the_interval_are_answered(self):
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        self.assertEqual(PingFlood.ping(c, 20), 20)
        self.assertFalse(c.closed)


class Rebalance(HostileCase):
    """--grpc-max-connection-age-s: connections get GOAWAY and clients reconnect, without a
    failed call."""
    args = ["--grpc-max-connection-age-s", "1", "--grpc-max-connection-age-grace-s", "1"]

    def test_old_connections_get_goaway_and_calls_keep_working(self):
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        t0 = time.monotonic()
        c.pump(lambda: False, timeout=6)
        self.assertTrue(c.closed, "GOAWAY (and close) after the connection's age")
        self.assertLess(time.monotonic() - t0, 6)
        ch = grpc.insecure_channel(self.server.target)
        self.addCleanup(ch.close)
        client = FeatureStoreClient(channel=ch, timeout=5)
        end = time.monotonic() + 3.5
        n = 0
        while time.monotonic() < end:
            self.assertEqual(client.health(), "SERVING")
            n += 1
            time.sleep(0.02)
        self.assertGreater(n, 20)


class IdleLimit(HostileCase):
    """--grpc-max-connection-idle-s (like the age) needs gRPC's full filter stack, whose own
    decompression must stay bounded by --max-message-bytes."""
    args = ["--grpc-max-connection-idle-s", "60"]

    def test_the_full_stack_still_bounds_decompression(self):
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        sid = c.call(HEALTH, gzip.compress(HEALTH_REQ), encoding="gzip", compressed=True)
        self.assertEqual(c.result(sid)[0], 0)
        self.assert_bomb_refused(c)  # gRPC's own decompression would inflate all of it first

    def test_the_full_stack_sends_compressed_replies_too(self):
        ch = grpc.insecure_channel(self.server.target)
        self.addCleanup(ch.close)
        FeatureStoreClient(channel=ch).write_features(
            "driver_stats@v1", {"driver_id": list(range(1, 101)), "trips": list(range(1, 101))})
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        flag, enc, body = reply_frame(c, c.call(FEAST_GET, gzip.compress(read_request(100)),
                                                encoding="gzip", compressed=True))
        self.assertEqual((flag, enc), (1, "gzip"))
        got = serving_pb2.GetOnlineFeaturesResponse.FromString(gzip.decompress(body))
        self.assertEqual([v.int64_val for v in got.results[1].values], list(range(1, 101)))


def closed_after(sock, limit):
    """Reads (and drops) what the server sends until it closes: the seconds that took, or None
    when it was still open after limit seconds."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(1 << 16):
            pass
    except socket.timeout:
        return None
    return time.monotonic() - t0


class SilentConnections(HostileCase):
    """A client that connects and never finishes the HTTP/2 handshake (never sends the
    preface) holds a connection only --grpc-handshake-timeout-ms long (gRPC's own default is
    two minutes); one that does is served on the same port meanwhile."""
    args = ["--grpc-handshake-timeout-ms", "1000"]

    def test_a_connection_that_never_speaks_is_closed_after_the_handshake_timeout(self):
        socks = [socket.create_connection(("127.0.0.1", self.server.port)) for _ in range(20)]
        for s in socks:
            self.addCleanup(s.close)
        self.assertTrue(self.other_client_ok(), "a real client was not served")
        for s in socks:
            took = closed_after(s, 30)
            self.assertIsNotNone(took, "a silent connection outlived the handshake timeout")
            self.assertLess(took, 5, "closed by the default (10 s), not the flag's 1 s")
        # A client that speaks keeps its connection past the timeout.
        c = H2Grpc(self.server.port)
        self.addCleanup(c.close)
        sid = c.call(HEALTH, HEALTH_REQ)
        self.assertEqual(c.result(sid)[0], 0)
        time.sleep(1.5)  # past the timeout: what is asserted is that nothing happens
        sid = c.call(HEALTH, HEALTH_REQ)
        self.assertEqual(c.result(sid)[0], 0, "a connection that finished its handshake was cut")



class SilentConnectionsDefault(HostileCase):
    def test_by_default_a_silent_connection_goes_after_ten_seconds_not_two_minutes(self):
        s = socket.create_connection(("127.0.0.1", self.server.port))
        self.addCleanup(s.close)
        took = closed_after(s, 60)
        self.assertIsNotNone(took, "still open after a minute")
        self.assertGreater(took, 9)  # the server's timer: never early


def read_frames(sock, seconds):
    """Raw frames (type, stream, payload) the server sends within seconds, or until it closes."""
    data = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            chunk = sock.recv(1 << 20)
        except (socket.timeout, OSError):
            break
        if not chunk:
            break
        data += chunk
    frames = []
    i = 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big")
        ftype = data[i + 3]
        sid = struct.unpack(">I", data[i + 5:i + 9])[0] & 0x7FFFFFFF
        frames.append((ftype, sid, data[i + 9:i + 9 + n]))
        i += 9 + n
    return frames




def http_get_on(sock, path="/health"):
    """GET path on an open socket; the response's status line, or None when the server closed
    the connection without answering."""
    try:
        sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    return data.split(b"\r\n", 1)[0] if data else None


def closed_by_server(sock, timeout):
    """Whether the server closes sock (EOF or a reset) within timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


class HttpConnections(HostileCase):
    """--http-max-connections and --http-idle-timeout-s: connections that say nothing (or stop
    mid-request) hold a connection slot until the idle timeout closes them; past the bound a
    connection waits in the kernel's accept queue, unread, and the gRPC port does not notice."""
    args = ["--http-max-connections", "16", "--http-idle-timeout-s", "2"]

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.server.http_port), timeout=10)
        self.addCleanup(s.close)
        return s

    def held(self):
        """The HTTP connections the server holds open (accepted, established)."""
        pid = self.server.proc.pid
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        n = 0
        with open("/proc/%d/net/tcp" % pid) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                port = int(cols[1].split(":")[1], 16)
                if port == self.server.http_port and cols[3] == "01" and cols[9] in inodes:
                    n += 1
        return n

    def test_idle_connections_are_bounded_and_closed(self):
        # 40 connections that say nothing, and 8 that stop in the middle of a request line.
        idle = [self.connect() for _ in range(40)]
        partial = [self.connect() for _ in range(8)]
        for s in partial:
            s.sendall(b"GET /hea")
        deadline = time.monotonic() + 10
        while self.held() < 16 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.held(), 16)
        # One more is not answered, nor closed: it waits in the accept queue.
        waiting = self.connect()
        waiting.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        waiting.settimeout(1.0)
        with self.assertRaises(socket.timeout):
            waiting.recv(1)
        self.assertTrue(self.other_client_ok(), "gRPC is served meanwhile")
        # The idle timeout (2 s, checked at libmicrohttpd's tick) closes the held ones, partial
        # requests included; those waiting are taken in turn and closed likewise.
        t0 = time.monotonic()
        closed = 0
        while closed < 16 and time.monotonic() - t0 < 10:
            readable, _, _ = select.select(idle + partial, [], [], 0.5)
            for s in readable:
                if closed_by_server(s, 1):
                    closed += 1
                    (idle if s in idle else partial).remove(s)
        self.assertGreaterEqual(closed, 16, "idle connections were left open")
        self.assertLessEqual(self.held(), 16)
        # Clients that give up free their slots at once.
        for s in idle + partial:
            s.close()
        self.assertEqual(http_get_on(self.connect()), b"HTTP/1.1 200 OK")


class HttpConnectionRate(HostileCase):
    """--http-connection-rate: one client address opening connections as fast as it can gets
    a second's worth (the burst) and then the rate; the rest are closed at accept, before any
    TLS handshake could cost the server a key exchange, counted, and logged once a minute."""
    args = ["--http-connection-rate", "40"]

    def test_connections_past_the_rate_are_closed_at_accept(self):
        time.sleep(1.1)  # the bucket full (it fills from the first connection anyway)
        served = refused = 0
        t0 = time.monotonic()
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", self.server.http_port), timeout=10)
            status = http_get_on(s)
            s.close()
            if status == b"HTTP/1.1 200 OK":
                served += 1
            else:
                self.assertIsNone(status)
                refused += 1
        elapsed = time.monotonic() - t0
        # The burst (40) plus 40 a second while the loop ran, and a little slack for timing.
        self.assertLessEqual(served, 40 + 40 * elapsed + 5, (served, elapsed))
        self.assertGreaterEqual(served, 40)
        self.assertGreater(refused, 0)
        self.assertTrue(self.other_client_ok(), "gRPC is not rate limited by HTTP's bound")
        # A second later the address is served again (the scrape below is a connection too).
        time.sleep(1.1)
        s = socket.create_connection(("127.0.0.1", self.server.http_port), timeout=10)
        self.addCleanup(s.close)
        self.assertEqual(http_get_on(s), b"HTTP/1.1 200 OK")
        self.assertGreaterEqual(self.server.metric("http_connections_rate_limited_total"),
                                refused)
        self.assertEqual(len(self.server.events("connection_rate_exceeded")), 1)


class HttpConnectionRateOff(HostileCase):
    """--http-connection-rate 0: no bound (behind a proxy whose clients share its address)."""
    args = ["--http-connection-rate", "0"]

    def test_every_connection_is_served(self):
        n = 4000
        t0 = time.monotonic()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.server.http_port), timeout=10)
            self.assertEqual(http_get_on(s), b"HTTP/1.1 200 OK")
            s.close()
        elapsed = time.monotonic() - t0
        self.assertEqual(self.server.metric("http_connections_rate_limited_total"), 0)
        # Only meaningful if the default (1000 a second, a second's worth at once) would have
        # refused some of them.
        if n <= 1000 + 1000 * elapsed:
            self.skipTest("%d connections took %.1f s: too slow to tell 0 from the default"
                          % (n, elapsed))


if __name__ == "__main__":
    unittest.main()

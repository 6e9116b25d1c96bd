#!/usr/bin/env bash
# scripts/soak.sh - the soak run (#14; not in CI: ten minutes): one `fstore serve` of the ASan
# build under mixed load for --duration seconds, and what must hold at the end:
#   - readers (GetOnlineFeatures, Feast's path), a writer (WriteFeatures, online and history),
#     an offline client (GetHistoricalFeatures streams, LoadBatch) and an HTTP client
#     (/get-online-features) see no error at all;
#   - every 5 s the catalog changes (a description) and the server gets SIGHUP;
#   - hostile clients all along, whose errors are expected: HTTP/2 connections that never read
#     (window 0) holding streams open, requests over --max-message-bytes, garbage on the port,
#     connections opened and dropped;
#   - the server's own memory (RssAnon: not the store's mapped file, which grows with the data)
#     is flat: the highest sample of the last third within 15% of the middle third's median
#     (after the first third's warm-up);
#   - it stops cleanly on SIGTERM (exit 0) with no sanitizer report.
#
#   bash scripts/soak.sh                    # ten minutes, building the asan preset first
#   bash scripts/soak.sh --duration 60 --no-build
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DURATION=600 BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) echo "usage: scripts/soak.sh [--duration S] [--no-build]" >&2; exit 2 ;;
  esac
  shift
done
if [ "$BUILD" = 1 ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j"$(nproc)" >/dev/null
fi
export FSTORE_BINARY_DIR=$root/build/asan FSTORE_SOURCE_DIR=$root
export PYTHONPATH=$root/build/asan/python:$root/clients/python:$root/tests/e2e
exec /usr/bin/python3 - "$DURATION" <<'PY'
import json, os, random, shutil, signal, socket, statistics, sys, tempfile, threading, time
import urllib.request

import grpc
from fstore.v1 import fstore_pb2, fstore_pb2_grpc
from harness import SOURCE_DIR, Server
from h2_client import H2Grpc

duration = float(sys.argv[1])
tmp = tempfile.mkdtemp(prefix="fstore-soak-")
cat = os.path.join(tmp, "catalog")
shutil.copytree(os.path.join(SOURCE_DIR, "examples", "catalog"), cat)
server = Server(catalog=cat, args=["--history", "--grpc-max-send-ms", "2000",
                                   "--catalog-watch-ms", "0"])
server.start()
pid = server.proc.pid
stop = threading.Event()
errors = {}          # worker -> [messages]: must stay empty for the well-behaved ones
calls = {}
lock = threading.Lock()


def note(worker, err=None):
    with lock:
        calls[worker] = calls.get(worker, 0) + 1
        if err is not None:
            errors.setdefault(worker, []).append(str(err)[:300])


def reader():
    c = server.client
    while not stop.is_set():
        ids = [1001 + random.randrange(5) for _ in range(random.choice((1, 10, 100)))]
        try:
            c.get_online_features(features=["driver_hourly_stats:conv_rate",
                                            "driver_hourly_stats:acc_rate"],
                                  entities={"driver_id": ids})
            note("reader")
        except grpc.RpcError as e:
            note("reader", "%s %s" % (e.code(), e.details()))


def writer():
    c = server.client
    t = int(time.time()) - 3600
    while not stop.is_set():
        t += 1
        ids = random.sample(range(1, 100000), 50)
        try:
            c.write_features("driver_trips", {"driver_id": ids,
                                              "trips_last_hour": [i % 50 for i in ids]},
                             event_timestamps=[t] * len(ids))
            note("writer")
        except grpc.RpcError as e:
            note("writer", "%s %s" % (e.code(), e.details()))


def offline():
    c = server.client
    stub = fstore_pb2_grpc.OnlineFeatureServiceStub(c.channel)
    while not stop.is_set():
        now = int(time.time())
        table = {"driver_id": random.sample(range(1, 100000), 500),
                 "event_timestamp": [now - random.randrange(3600)] * 500}
        try:
            c.get_historical_features(table, features=["driver_trips:trips_last_hour"],
                                      as_frame=False, timeout=60)
            stub.LoadBatch(fstore_pb2.LoadBatchRequest(feature_view="driver_trips", limit=100),
                           timeout=30)
            note("offline")
        except grpc.RpcError as e:
            # A reload between two messages of a stream ends it (documented); nothing else may.
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION and "catalog changed" in (e.details() or ""):
                note("offline")
            else:
                note("offline", "%s %s" % (e.code(), e.details()))


def http():
    body = json.dumps({"features": ["driver_hourly_stats:conv_rate"],
                       "entities": {"driver_id": [1001, 1002]}}).encode()
    while not stop.is_set():
        req = urllib.request.Request("http://%s/get-online-features" % server.http, data=body,
                                     method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
            note("http")
        except Exception as e:  # noqa: BLE001 - every failure counts
            note("http", e)


def reloader():
    n = 0
    while not stop.wait(5):
        n += 1
        path = os.path.join(cat, "offline.yaml")
        with open(path) as f:
            text = f.read()
        text = text.replace("Two example features with their history.",
                            "Two example features with their history (%d)." % n, 1) \
            if n == 1 else text.replace("(%d)." % (n - 1), "(%d)." % n, 1)
        with open(path, "w") as f:
            f.write(text)
        server.send(signal.SIGHUP)
        note("reloads")


def hostile():
    while not stop.is_set():
        kind = random.randrange(4)
        try:
            if kind == 0:  # never reads: streams held until --grpc-max-send-ms cancels them
                c = H2Grpc(server.port, window=0)
                c.pump(lambda: c.remote_max_streams is not None, timeout=5)
                for _ in range(20):
                    c.call("/grpc.health.v1.Health/Check", b"")
                c.pump(lambda: False, timeout=3)
                c.close()
            elif kind == 1:  # over --max-message-bytes
                ch = grpc.insecure_channel(server.target,
                                           options=[("grpc.max_send_message_length", 64 << 20)])
                stub = fstore_pb2_grpc.OnlineFeatureServiceStub(ch)
                rq = fstore_pb2.WriteFeaturesRequest(feature_view="driver_trips")
                rq.columns["driver_id"].val.add().string_val = "x" * (5 << 20)
                try:
                    stub.WriteFeatures(rq, timeout=10)
                except grpc.RpcError:
                    pass
                ch.close()
            elif kind == 2:  # garbage on the port
                with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                    s.sendall(os.urandom(4096))
                    time.sleep(0.2)
            else:  # connections opened and dropped
                for _ in range(50):
                    socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
            note("hostile")
        except OSError:
            note("hostile")


def rss_mb():
    """The server's own memory (RssAnon): not the store's file, which the kernel maps as the
    data grows and may take back."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


threads = [threading.Thread(target=f, daemon=True)
           for f in (reader, reader, writer, offline, http, reloader, hostile)]
for t in threads:
    t.start()
samples = []
t0 = time.monotonic()
while time.monotonic() - t0 < duration:
    time.sleep(5)
    samples.append(rss_mb())
    print("soak: %4.0f s  RssAnon %.0f MB  calls %s" % (time.monotonic() - t0, samples[-1],
                                                    dict(sorted(calls.items()))), flush=True)
stop.set()
for t in threads:
    t.join(timeout=60)
rc = server.stop()
report = server.sanitizer_report()
third = max(1, len(samples) // 3)
middle = statistics.median(samples[third:2 * third] or samples)
last = max(samples[2 * third:] or samples)
ok = True
bad = {w: e for w, e in errors.items() if w != "hostile"}
if bad:
    ok = False
    for w, es in bad.items():
        print("soak: FAIL %s: %d errors, first: %s" % (w, len(es), es[0]))
if last > middle * 1.15:
    ok = False
    print("soak: FAIL RSS grew: %.0f MB in the last third against %.0f MB before" % (last, middle))
if report:
    ok = False
    print("soak: FAIL sanitizer report:\n" + report)
if rc != 0:
    ok = False
    print("soak: FAIL fstore exited with %s" % rc)
print("soak: %s after %.0f s: RSS %.0f MB (middle third's median) -> %.0f MB (last third's "
      "highest); calls %s" % ("ok" if ok else "FAILED", duration, middle, last,
                              dict(sorted(calls.items()))))
server.cleanup()
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(0 if ok else 1)
PY

# tests/e2e/replay/make_corpus.py - build and record the wire replay corpus.
"""Usage: /usr/bin/python3 make_corpus.py FSTORE_BINARY OUT.jsonl

Generates a fixed sequence of GetOnlineFeatures (Feast's and fstore's paths), Predict,
WriteFeatures, DeleteEntities and GetCatalog requests (seeded, so the same every time), sends
them one at a time to FSTORE_BINARY serving catalog.yaml beside this file on a fresh data
directory, and writes one JSON line per call: the method, the request bytes and what came back
(status code, message and response bytes, base64). tests/e2e/test_replay.py sends the same
bytes to the binary under test and requires the same answers, byte for byte.

Re-record only when a change of behaviour is intended, and say so in the commit: the corpus is
what "the wire output did not change" is checked against.
"""
import base64
import json
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import grpc  # noqa: E402

from feast.serving import ServingService_pb2 as sv  # noqa: E402
from feast.types import Value_pb2 as vp  # noqa: E402
from fstore.v1 import fstore_pb2 as fs  # noqa: E402
from tensorflow.core.framework import tensor_pb2, types_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402

FEAST_GET = "/feast.serving.ServingService/GetOnlineFeatures"
FSTORE_GET = "/fstore.v1.OnlineFeatureService/GetOnlineFeatures"
WRITE = "/fstore.v1.OnlineFeatureService/WriteFeatures"
DELETE = "/fstore.v1.OnlineFeatureService/DeleteEntities"
CATALOG = "/fstore.v1.OnlineFeatureService/GetCatalog"
PREDICT = "/tensorflow.serving.PredictionService/Predict"

BASE_TS = 1767225600  # 2026-01-01T00:00:00Z
OLD_TS = 978307200  # 2001-01-01: always past stale_stats' one-hour TTL

DRIVER_FEATURES = ["conv_rate", "acc_rate", "trips", "rank", "label", "avatar", "active",
                   "last_seen", "embedding", "history", "tags", "weights", "flags", "codes",
                   "stamps", "blobs"]


def val(kind, x):
    v = vp.Value()
    if x is None:
        v.null_val = vp.NULL
        return v
    if kind in ("FLOAT", "DOUBLE", "INT64", "INT32", "STRING", "BYTES", "BOOL",
                "UNIX_TIMESTAMP"):
        setattr(v, {"FLOAT": "float_val", "DOUBLE": "double_val", "INT64": "int64_val",
                    "INT32": "int32_val", "STRING": "string_val", "BYTES": "bytes_val",
                    "BOOL": "bool_val", "UNIX_TIMESTAMP": "unix_timestamp_val"}[kind], x)
        return v
    field = {"FLOAT_LIST": "float_list_val", "DOUBLE_LIST": "double_list_val",
             "INT64_LIST": "int64_list_val", "INT32_LIST": "int32_list_val",
             "STRING_LIST": "string_list_val", "BYTES_LIST": "bytes_list_val",
             "BOOL_LIST": "bool_list_val",
             "UNIX_TIMESTAMP_LIST": "unix_timestamp_list_val"}[kind]
    getattr(v, field).val.extend(x)
    return v


DRIVER_TYPES = {"conv_rate": "FLOAT", "acc_rate": "DOUBLE", "trips": "INT64", "rank": "INT32",
                "label": "STRING", "avatar": "BYTES", "active": "BOOL",
                "last_seen": "UNIX_TIMESTAMP", "embedding": "FLOAT_LIST",
                "history": "INT64_LIST", "tags": "STRING_LIST", "weights": "DOUBLE_LIST",
                "flags": "BOOL_LIST", "codes": "INT32_LIST", "stamps": "UNIX_TIMESTAMP_LIST",
                "blobs": "BYTES_LIST"}


def driver_value(r, name, width):
    kind = DRIVER_TYPES[name]
    if r.random() < 0.04:
        return None
    if kind == "FLOAT":
        return round(r.random(), 3)
    if kind == "DOUBLE":
        return r.random() * 100
    if kind == "INT64":
        return r.randrange(0, 5000)
    if kind == "INT32":
        return r.randrange(-50, 50)
    if kind == "STRING":
        return r.choice(["gold", "silver", "none"])
    if kind == "BYTES":
        return bytes(r.randrange(256) for _ in range(r.randrange(0, 6)))
    if kind == "BOOL":
        return r.random() < 0.5
    if kind == "UNIX_TIMESTAMP":
        return BASE_TS - r.randrange(0, 10 ** 6)
    if kind == "FLOAT_LIST":
        return [round(r.random(), 2) for _ in range(width)]
    if kind == "INT64_LIST":
        return [r.randrange(-10 ** 9, 10 ** 9) for _ in range(width)]
    if kind == "STRING_LIST":
        return ["t%d" % r.randrange(100) for _ in range(width)]
    if kind == "DOUBLE_LIST":
        return [r.random() for _ in range(width)]
    if kind == "BOOL_LIST":
        return [r.random() < 0.5 for _ in range(width)]
    if kind == "INT32_LIST":
        return [r.randrange(-1000, 1000) for _ in range(width)]
    if kind == "UNIX_TIMESTAMP_LIST":
        return [BASE_TS - r.randrange(10 ** 5) for _ in range(width)]
    return [bytes([r.randrange(256)]) * r.randrange(3) for _ in range(width)]


def write_req(view, cols, ts=None):
    rq = fs.WriteFeaturesRequest(feature_view=view)
    for name, (kind, values) in cols.items():
        rq.columns[name].val.extend([val(kind, x) for x in values])
    for t in ts or []:
        e = rq.event_timestamps.add()
        e.seconds, e.nanos = t
    return rq.SerializeToString(deterministic=True)


def delete_req(view, cols):
    rq = fs.DeleteEntitiesRequest(feature_view=view)
    for name, (kind, values) in cols.items():
        rq.entities[name].val.extend([val(kind, x) for x in values])
    return rq.SerializeToString(deterministic=True)


def get_req(features=None, service=None, entities=(), full=False, md=False, context=None):
    rq = sv.GetOnlineFeaturesRequest()
    if service is not None:
        rq.feature_service = service
    if features is not None:
        rq.features.val.extend(features)
    for name, kind, values in entities:
        rq.entities[name].val.extend([val(kind, x) for x in values])
    if full:
        rq.full_feature_names = True
    if md:
        rq.include_feature_view_version_metadata = True
    if context:
        for name, kind, values in context:
            rq.request_context[name].val.extend([val(kind, x) for x in values])
    return rq.SerializeToString(deterministic=True)


def tensor(dtype, values, shape=None, content=False):
    t = tensor_pb2.TensorProto(dtype=dtype)
    for d in (shape if shape is not None else [len(values)]):
        t.tensor_shape.dim.add(size=d)
    if content:
        fmt = "<%d%s" % (len(values), "q" if dtype == types_pb2.DT_INT64 else "i")
        t.tensor_content = struct.pack(fmt, *values)
    elif dtype == types_pb2.DT_INT64:
        t.int64_val.extend(values)
    elif dtype == types_pb2.DT_INT32:
        t.int_val.extend(values)
    elif dtype == types_pb2.DT_STRING:
        t.string_val.extend(values)
    elif dtype == types_pb2.DT_FLOAT:
        t.float_val.extend(values)
    return t


def predict_req(model, inputs, version=None, label=None, signature=None, output_filter=()):
    rq = predict_pb2.PredictRequest()
    if model is not None:
        rq.model_spec.name = model
    if version is not None:
        rq.model_spec.version.value = version
    if label is not None:
        rq.model_spec.version_label = label
    if signature is not None:
        rq.model_spec.signature_name = signature
    for name, t in inputs.items():
        rq.inputs[name].CopyFrom(t)
    rq.output_filter.extend(output_filter)
    return rq.SerializeToString(deterministic=True)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def corpus():
    """Yields (method, request bytes) in order."""
    r = random.Random(20261206)
    drivers = list(range(1001, 1081))
    customers = ["c%03d" % i for i in range(40)]

    # --- Writes: every type, nulls, explicit event times, stale rows, refusals. -------------
    for batch in range(10):
        ids = drivers[batch * 8:(batch + 1) * 8]
        # Lists of one width in most batches (Predict needs one width per batch), others after.
        width = 3 if batch < 8 else r.randrange(0, 5)
        names = DRIVER_FEATURES if batch < 6 else [n for n in DRIVER_FEATURES if r.random() < 0.8]
        cols = {"driver_id": ("INT64", ids)}
        for n in names:
            cols[n] = (DRIVER_TYPES[n], [driver_value(r, n, width) for _ in ids])
        # conv_rate must stay inside [0, 1]; label inside its allowed values.
        ts = [(BASE_TS + batch * 100 + i, (i * 137) % 1000 * 1000) for i in range(len(ids))]
        yield WRITE, write_req("driver_stats", cols, ts)
    # An older write of the same rows: stale.
    yield WRITE, write_req("driver_stats@v1", {"driver_id": ("INT64", drivers[:4]),
                                              "trips": ("INT64", [1, 2, 3, 4])},
                           [(BASE_TS - 10, 0)] * 4)
    # Same event time as a stored row: the later write wins.
    yield WRITE, write_req("driver_stats", {"driver_id": ("INT64", [drivers[8]]),
                                            "trips": ("INT64", [4242])}, [(BASE_TS + 100, 0)])
    # INT32 values for an INT64 join key and an INT64 feature.
    yield WRITE, write_req("driver_stats", {"driver_id": ("INT32", [1090]),
                                            "trips": ("INT32", [12])}, [(BASE_TS, 5000)])
    for i, code in enumerate(["abc", "x12", "zz9", "q"]):
        yield WRITE, write_req("driver_stats@v2", {"driver_id": ("INT64", [drivers[i]]),
                                                   "conv_rate": ("DOUBLE", [0.5 + i / 10]),
                                                   "code": ("STRING", [code])},
                               [(BASE_TS + i, 0)])
    yield WRITE, write_req("customer_stats", {
        "customer_id": ("STRING", customers),
        "trips": ("INT64", [r.randrange(100) for _ in customers]),
        "spend": ("DOUBLE", [r.random() * 50 for _ in customers])},
        [(BASE_TS + i, 0) for i in range(len(customers))])
    yield WRITE, write_req("pair_stats", {
        "driver_id": ("INT64", drivers[:10]), "customer_id": ("STRING", customers[:10]),
        "rides": ("INT64", list(range(10))), "note": ("STRING", ["n%d" % i for i in range(10)])},
        [(BASE_TS, 0)] * 10)
    yield WRITE, write_req("zone_stats", {"zone_id": ("INT32", [1, 2, 3, -7]),
                                          "surge": ("FLOAT", [1.5, None, 2.25, 0.5])},
                           [(BASE_TS, 0)] * 4)
    yield WRITE, write_req("device_stats", {"dev": ("BYTES", [b"\x00\x01", b"ab", b""]),
                                            "slot": ("INT32", [0, 1, 2]),
                                            "temp": ("DOUBLE", [36.6, -1.0, 0.0])},
                           [(BASE_TS, 0)] * 3)
    yield WRITE, write_req("stale_stats", {"driver_id": ("INT64", drivers[:5]),
                                           "pings": ("INT64", [1, 2, 3, 4, 5])},
                           [(OLD_TS, 0)] * 5)
    yield WRITE, write_req("global_stats", {"total_drivers": ("INT64", [80])}, [(BASE_TS, 0)])
    # Refusals: validation, shape, names, types, limits, timestamps.
    bad_writes = [
        write_req("driver_stats", {"driver_id": ("INT64", [1]), "conv_rate": ("FLOAT", [1.5])},
                  [(BASE_TS, 0)]),
        write_req("driver_stats", {"driver_id": ("INT64", [1]), "label": ("STRING", ["bronze"])},
                  [(BASE_TS, 0)]),
        write_req("driver_stats@v2", {"driver_id": ("INT64", [1]), "code": ("STRING", ["ABC"])},
                  [(BASE_TS, 0)]),
        write_req("driver_stats@v2", {"driver_id": ("INT64", [1]),
                                      "code": ("STRING", ["abcdefghijklm"])}, [(BASE_TS, 0)]),
        write_req("driver_stats", {"driver_id": ("INT64", [1]),
                                   "embedding": ("FLOAT_LIST", [[0.0] * 9])}, [(BASE_TS, 0)]),
        write_req("customer_stats", {"customer_id": ("STRING", ["x"]),
                                     "spend": ("DOUBLE", [None])}, [(BASE_TS, 0)]),
        write_req("driver_stats", {"driver_id": ("INT64", [1]), "nope": ("INT64", [1])}),
        write_req("driver_stats", {"trips": ("INT64", [1])}),
        write_req("driver_stats", {"driver_id": ("INT64", [1, 2]), "trips": ("INT64", [1])}),
        write_req("driver_stats", {"driver_id": ("STRING", ["1"]), "trips": ("INT64", [1])}),
        write_req("driver_stats", {"driver_id": ("INT64", [1]), "trips": ("STRING", ["x"])}),
        write_req("no_such_view", {"driver_id": ("INT64", [1])}),
        write_req("driver_stats@v9", {"driver_id": ("INT64", [1])}),
        write_req("driver_stats@vx", {"driver_id": ("INT64", [1])}),
        write_req("archive", {"driver_id": ("INT64", [1]), "old": ("INT64", [1])}),
        write_req("driver_stats", {"driver_id": ("INT64", [1]), "trips": ("INT64", [1])},
                  [(BASE_TS, 0), (BASE_TS, 0)]),
        write_req("driver_stats", {"driver_id": ("INT64", [1]), "trips": ("INT64", [1])},
                  [(BASE_TS, -1)]),
        write_req("driver_stats", {"driver_id": ("INT64", [1]), "trips": ("INT64", [1])},
                  [(253402300800, 0)]),
        write_req("driver_stats", {}),
        write_req("zone_stats", {"zone_id": ("INT64", [2 ** 40]), "surge": ("FLOAT", [1.0])},
                  [(BASE_TS, 0)]),
        write_req("device_stats", {"dev": ("BYTES", [b"x" * 600]), "slot": ("INT32", [1]),
                                   "temp": ("DOUBLE", [1.0])}, [(BASE_TS, 0)]),
        write_req("driver_stats", {"driver_id": ("INT64", list(range(10001))),
                                   "trips": ("INT64", [1] * 10001)}),
        write_req("driver_stats", {"driver_id": ("INT64", []), "trips": ("INT64", [])}),
    ]
    for b in bad_writes:
        yield WRITE, b
    # Strings that protobuf-c would cut or pass: a NUL inside, bad UTF-8.
    raw = fs.WriteFeaturesRequest(feature_view="driver_stats").SerializeToString(deterministic=True)
    yield WRITE, raw + b"\x1a\x00"
    yield WRITE, b"\x0a\x07driv\x00er"
    yield WRITE, b"\x0a\x02\xc3\x28"
    yield WRITE, b"\xff\xff"

    # --- Deletes. -------------------------------------------------------------------------
    yield DELETE, delete_req("driver_stats", {"driver_id": ("INT64", [drivers[-1], 999999])})
    yield DELETE, delete_req("pair_stats", {"driver_id": ("INT64", [drivers[9]]),
                                            "customer_id": ("STRING", [customers[9]])})
    yield DELETE, delete_req("driver_stats", {"driver_id": ("INT64", [1]),
                                              "trips": ("INT64", [1])})
    yield DELETE, delete_req("driver_stats", {"customer_id": ("STRING", ["x"])})
    yield DELETE, delete_req("nope", {"driver_id": ("INT64", [1])})

    # --- Reads: both paths, every shape, errors. ----------------------------------------------
    services = ["driver_all", "driver_v2", "mixed", "scoring", "zones"]
    lists = [
        ["driver_stats:conv_rate", "driver_stats:trips"],
        ["driver_stats@v1:" + n for n in DRIVER_FEATURES],
        ["driver_stats:conv_rate", "driver_stats@v2:conv_rate", "driver_stats@v2:code"],
        ["customer_stats:trips", "customer_stats:spend", "driver_stats:label"],
        ["pair_stats:rides", "pair_stats:note", "global_stats:total_drivers"],
        ["stale_stats:pings", "driver_stats:last_seen"],
        ["global_stats:total_drivers"],
        ["zone_stats:surge"],
        ["device_stats:temp"],
    ]
    for i in range(220):
        method = FEAST_GET if i % 2 == 0 else FSTORE_GET
        n = r.choice([1, 1, 1, 2, 3, 10, 25])
        ids = [r.choice(drivers + [5, 1090]) for _ in range(n)]
        cust = [r.choice(customers + ["zz"]) for _ in range(n)]
        zones = [r.choice([1, 2, 3, -7, 9]) for _ in range(n)]
        ents = [("driver_id", "INT64" if r.random() < 0.9 else "INT32", ids),
                ("customer_id", "STRING", cust), ("zone_id", "INT32", zones)]
        if r.random() < 0.1:
            ents.pop(r.randrange(3))  # a missing join key, now and then
        if r.random() < 0.3:
            r.shuffle(ents)
        full, md = r.random() < 0.3, r.random() < 0.3
        if r.random() < 0.5:
            svc = r.choice(services)
            yield method, get_req(service=svc, entities=ents, full=full or svc == "mixed",
                                  md=md)
        else:
            feats = list(r.choice(lists))
            if feats == ["device_stats:temp"]:
                ents = [("dev", "BYTES", [bytes([x % 3]) for x in ids]),
                        ("slot", "INT32", [x % 3 for x in ids])]
            if r.random() < 0.2:
                r.shuffle(feats)
            yield method, get_req(features=feats, entities=ents, full=full or any("@v2" in f for f in feats),
                                  md=md)
    yield FEAST_GET, get_req(features=["device_stats:temp"], entities=[
        ("dev", "BYTES", [b"\x00\x01", b"ab", b"", b"zz"]), ("slot", "INT32", [0, 1, 2, 2])])
    yield FEAST_GET, get_req(features=["global_stats:total_drivers"])
    yield FEAST_GET, get_req(service="mixed", entities=[("driver_id", "INT64", [1001])],
                             context=[("extra", "INT64", [1])])
    # The general path: request_context, a repeated feature list, a non-minimal varint.
    body = get_req(features=["driver_stats:trips"], entities=[("driver_id", "INT64", [1001])])
    yield FEAST_GET, body + get_req(features=["driver_stats:conv_rate"])
    yield FEAST_GET, b"\x20\x81\x00" + body
    yield FEAST_GET, get_req(features=["driver_stats:trips"], entities=[
        ("driver_id", "DOUBLE", [1.0])])
    yield FEAST_GET, get_req(features=["driver_stats:trips"], entities=[
        ("driver_id", "INT64", [1001]), ("customer_id", "STRING_LIST", [["a"]])])
    # Errors.
    bad_reads = [
        get_req(features=["driver_stats:nope"], entities=[("driver_id", "INT64", [1])]),
        get_req(features=["nope:x"], entities=[("driver_id", "INT64", [1])]),
        get_req(features=["driver_stats"], entities=[("driver_id", "INT64", [1])]),
        get_req(features=["driver_stats@v7:trips"], entities=[("driver_id", "INT64", [1])]),
        get_req(service="nope", entities=[("driver_id", "INT64", [1])]),
        get_req(entities=[("driver_id", "INT64", [1])]),
        get_req(features=[], entities=[("driver_id", "INT64", [1])]),
        get_req(features=["archive:old"], entities=[("driver_id", "INT64", [1])]),
        get_req(service="with_archive", entities=[("driver_id", "INT64", [1])]),
        get_req(features=["driver_stats:trips"], entities=[("customer_id", "STRING", ["c"])]),
        get_req(features=["driver_stats:trips"], entities=[("driver_id", "STRING", ["c"])]),
        get_req(features=["driver_stats:trips"], entities=[("driver_id", "INT64", [1, 2]),
                                                           ("customer_id", "STRING", ["c"])]),
        get_req(features=["driver_stats:trips", "driver_stats:trips"],
                entities=[("driver_id", "INT64", [1])]),
        get_req(features=["driver_stats:conv_rate", "driver_stats@v2:conv_rate"],
                entities=[("driver_id", "INT64", [1])]),
        get_req(features=["pair_stats:rides"], entities=[("driver_id", "INT64", [1]),
                                                         ("rides", "INT64", [1])]),
        get_req(features=["pair_stats:rides"], entities=[("driver_id", "INT64", [1]),
                                                         ("rides", "INT64", [1])], full=True),
        get_req(features=["driver_stats:trips"], entities=[("driver_id", "INT64", [1] * 1001)]),
        get_req(features=["driver_stats:trips"] * 1001, entities=[("driver_id", "INT64", [1])]),
        get_req(features=["driver_stats:trips"], entities=[("", "INT64", [1])]),
        get_req(features=["zone_stats:surge"], entities=[("zone_id", "INT64", [2 ** 40])]),
        get_req(features=["device_stats:temp"], entities=[("dev", "BYTES", [b"x" * 600]),
                                                          ("slot", "INT32", [1])]),
    ]
    for b in bad_reads:
        yield FEAST_GET, b
        yield FSTORE_GET, b
    yield FEAST_GET, b"\x12\x03\x0a\x01\xff"
    yield FEAST_GET, b"\x0a\x03ab\x00"
    yield FEAST_GET, b"\x12"

    # --- Predict. -------------------------------------------------------------------------
    i64, i32, st = types_pb2.DT_INT64, types_pb2.DT_INT32, types_pb2.DT_STRING
    for i in range(120):
        n = r.choice([1, 1, 2, 4, 16])
        ids = [r.choice(drivers[:48] + [5]) for _ in range(n)]
        kind = r.randrange(6)
        if kind == 0:
            yield PREDICT, predict_req("driver_features", {"driver_id": tensor(i64, ids)})
        elif kind == 1:
            yield PREDICT, predict_req("driver_features", {
                "driver_id": tensor(i64, ids, shape=[n, 1], content=r.random() < 0.5)},
                version=1, signature=r.choice([None, "serving_default"]))
        elif kind == 2:
            yield PREDICT, predict_req("driver_customer", {
                "driver": tensor(i32 if r.random() < 0.3 else i64, ids),
                "customer": tensor(st, [r.choice(customers).encode() for _ in ids]),
                "zone": tensor(i32, [r.choice([1, 2, 3, 9]) for _ in ids])})
        elif kind == 3:
            yield PREDICT, predict_req("scorer", {"driver_id": tensor(i64, ids)},
                                       label=r.choice([None, "stable"]),
                                       output_filter=r.choice([[], ["trips"],
                                                               ["acc_rate", "conv_rate"]]))
        elif kind == 4:
            yield PREDICT, predict_req("zones", {"zone_id": tensor(i32, [1, 2, 3, -7][:n])})
        else:
            yield PREDICT, predict_req("driver_features", {"driver_id": tensor(i64, ids)},
                                       output_filter=["trips", "embedding"])
    bad_predicts = [
        predict_req(None, {}),
        predict_req("nope", {}),
        predict_req("scorer", {"driver_id": tensor(i64, [1])}, version=7),
        predict_req("scorer", {"driver_id": tensor(i64, [1])}, label="canary"),
        predict_req("scorer", {}),
        predict_req("scorer", {"driver_id": tensor(st, [b"x"])}),
        predict_req("scorer", {"driver_id": tensor(types_pb2.DT_FLOAT, [1.0])}),
        predict_req("scorer", {"driver_id": tensor(i64, [1, 2], shape=[2, 2])}),
        predict_req("scorer", {"driver_id": tensor(i64, [1, 2], shape=[3])}),
        predict_req("scorer", {"driver_id": tensor(i64, [1], shape=[])}),
        predict_req("scorer", {"driver_id": tensor(i64, [1])}, output_filter=["nope"]),
        predict_req("driver_customer", {"driver": tensor(i64, [1, 2]),
                                        "customer": tensor(st, [b"a"]),
                                        "zone": tensor(i32, [1])}),
        predict_req("zones", {"zone_id": tensor(i64, [2 ** 40])}),
        predict_req("archived", {"driver_id": tensor(i64, [1])}),
        predict_req("driver_features", {"driver_id": tensor(i64, [5])}),
        predict_req("driver_features", {"driver_id": tensor(i64, drivers[:8])}),
        predict_req("scorer", {"driver_id": tensor(i64, [1] * 1001)}),
    ]
    for b in bad_predicts:
        yield PREDICT, b
    yield PREDICT, b"\x0a\x05\x0a\x03\xff\xfe\xfd"

    # --- The catalog, and a last read after everything. ---------------------------------------
    yield CATALOG, fs.GetCatalogRequest().SerializeToString(deterministic=True)
    yield FEAST_GET, get_req(service="driver_all", entities=[("driver_id", "INT64", drivers)])


def record(binary, out_path):
    import harness
    harness.FSTORE = binary
    srv = harness.Server(catalog=os.path.join(HERE, "catalog.yaml"))
    srv.start()
    try:
        ch = grpc.insecure_channel(srv.target, options=[
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
        n = 0
        with open(out_path, "w") as out:
            for method, body in corpus():
                code, details, resp = call(ch, method, body)
                out.write(json.dumps({"method": method,
                                      "request": base64.b64encode(body).decode(),
                                      "code": code, "details": details,
                                      "response": base64.b64encode(resp).decode()}) + "\n")
                n += 1
        ch.close()
        print("recorded %d calls into %s" % (n, out_path))
    finally:
        assert srv.stop() == 0
        srv.cleanup()


def call(ch, method, body):
    fn = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        resp, c = fn.with_call(body, timeout=30)
        return c.code().name, c.details() or "", resp
    except grpc.RpcError as e:
        return e.code().name, e.details() or "", b""


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    record(sys.argv[1], sys.argv[2])

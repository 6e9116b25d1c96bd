# tests/e2e/upstream_model_server.py - a tiny TF Serving stand-in for the passthrough tests.
"""An upstream model server: tensorflow.serving.PredictionService/Predict on 127.0.0.1.

Models, by model_spec.name:
  weighted_sum  score = 1*conv_rate + 2*acc_rate + 0.5*trips (+ bias when given), one DT_DOUBLE
                per row; also returns `received` (the input names it got, sorted) and `echo`
                (model name and signature name). An int64 `sleep_ms` input makes it wait first.
  rowwise       the same score, plus outputs of one row each per input row, of several types:
                `pair` DT_FLOAT [n, 2] in tensor_content (score, -score), `count` DT_INT32 [n]
                (trips), `label_bytes` DT_STRING [n] (b"\xffL" + trips).
  slow          waits 10 s (or until cancelled), then answers like weighted_sum.
  held          records the event "held", waits until release() (or until cancelled, or 60 s),
                then answers like weighted_sum: a call a test knows is in flight.
  failing       aborts with the status named by the string input `fail` (default INTERNAL).
  odd           answers outputs chosen by the string input `kind` (default "text"): "unsigned" (DT_UINT32 and
                DT_UINT64 in their own fields, [2] each, values 4000000000 and 2**64-1), "huge"
                (DT_FLOAT of shape [10**12] holding one value, which TF repeats), "empty_rows"
                (DT_INT32 of shape [10**15, 0]), "text" (DT_STRING [2] with a comma and a quote).

Every request is recorded (model, signature, inputs decoded to lists, shapes, dtypes), and so is
every call that the client cancelled or let expire while it waited, so tests can check what
fstore sent and that cancellation reached the upstream.

Used in-process by the tests (UpstreamModelServer().start()), or standalone:
    python3 upstream_model_server.py --port 8500
"""
import argparse
import struct
import sys
import threading
import time
from concurrent import futures

import grpc

from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

DT = types_pb2.DataType

# dtype -> (typed field, struct format for tensor_content)
_FIELDS = {
    DT.Value("DT_FLOAT"): ("float_val", "<f"),
    DT.Value("DT_DOUBLE"): ("double_val", "<d"),
    DT.Value("DT_INT32"): ("int_val", "<i"),
    DT.Value("DT_INT64"): ("int64_val", "<q"),
    DT.Value("DT_BOOL"): ("bool_val", "<?"),
    DT.Value("DT_STRING"): ("string_val", None),
}


def tensor_shape(t):
    return [d.size for d in t.tensor_shape.dim]


def tensor_values(t):
    """The values of t, flattened row-major, from its typed field or tensor_content."""
    field, fmt = _FIELDS[t.dtype]
    if t.tensor_content and fmt is not None:
        size = struct.calcsize(fmt)
        return [struct.unpack_from(fmt, t.tensor_content, i)[0]
                for i in range(0, len(t.tensor_content), size)]
    return list(getattr(t, field))


def tensor_rows(t):
    """Values grouped by row: a list for [n], a list of lists for [n, m]."""
    vals = tensor_values(t)
    shape = tensor_shape(t)
    if len(shape) == 2:
        w = shape[1]
        return [vals[i * w:(i + 1) * w] for i in range(shape[0])]
    return vals


def make_tensor(dtype, values, shape=None, content=False):
    """A TensorProto of dtype (a name such as "DT_INT64") holding values (flat)."""
    t = tensor_pb2.TensorProto(dtype=DT.Value(dtype))
    for s in (shape if shape is not None else [len(values)]):
        t.tensor_shape.dim.add(size=s)
    field, fmt = _FIELDS[t.dtype]
    if content:
        t.tensor_content = b"".join(struct.pack(fmt, v) for v in values)
    elif t.dtype == DT.Value("DT_STRING"):
        t.string_val.extend(v.encode() if isinstance(v, str) else v for v in values)
    else:
        getattr(t, field).extend(values)
    return t


class _Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, owner):
        self.owner = owner

    def _wait(self, context, ms):
        end = time.monotonic() + ms / 1000.0
        while time.monotonic() < end:
            if not context.is_active():
                self.owner._event("cancelled")
                return False
            time.sleep(0.01)
        return True

    def Predict(self, request, context):
        spec = request.model_spec
        inputs = {k: v for k, v in request.inputs.items()}
        self.owner._record({
            "model": spec.name,
            "signature": spec.signature_name,
            "inputs": {k: tensor_rows(v) for k, v in inputs.items()},
            "shapes": {k: tensor_shape(v) for k, v in inputs.items()},
            "dtypes": {k: DT.Name(v.dtype) for k, v in inputs.items()},
            "output_filter": list(request.output_filter),
        })
        if spec.name == "odd":
            kind = tensor_values(inputs["kind"])[0].decode() if "kind" in inputs else "text"
            return self._odd(spec, kind)
        if spec.name == "failing":
            code = "INTERNAL"
            if "fail" in inputs:
                code = tensor_values(inputs["fail"])[0].decode()
            context.abort(getattr(grpc.StatusCode, code), "model says no")
        if spec.name == "held":
            self.owner._event("held")
            end = time.monotonic() + 60
            while not self.owner.released.wait(0.01):
                if not context.is_active() or time.monotonic() > end:
                    self.owner._event("cancelled")
                    context.abort(grpc.StatusCode.CANCELLED, "cancelled while held")
        wait_ms = 10000 if spec.name == "slow" else 0
        if "sleep_ms" in inputs:
            wait_ms = tensor_values(inputs["sleep_ms"])[0]
        if wait_ms and not self._wait(context, wait_ms):
            context.abort(grpc.StatusCode.CANCELLED, "cancelled while waiting")
        for need in ("conv_rate", "acc_rate", "trips"):
            if need not in inputs:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "missing input " + need)
        conv = tensor_values(inputs["conv_rate"])
        acc = tensor_values(inputs["acc_rate"])
        trips = tensor_values(inputs["trips"])
        bias = tensor_values(inputs["bias"])[0] if "bias" in inputs else 0.0
        score = [1.0 * c + 2.0 * a + 0.5 * t + bias for c, a, t in zip(conv, acc, trips)]
        resp = predict_pb2.PredictResponse()
        resp.model_spec.name = spec.name
        resp.model_spec.signature_name = spec.signature_name
        resp.model_spec.version.value = 42
        if spec.name == "rowwise":
            outputs = {
                "score": make_tensor("DT_DOUBLE", score),
                "pair": make_tensor("DT_FLOAT", [v for x in score for v in (x, -x)],
                                    shape=[len(score), 2], content=True),
                "count": make_tensor("DT_INT32", [int(t) for t in trips]),
                "label_bytes": make_tensor("DT_STRING",
                                           [b"\xffL%d" % int(t) for t in trips]),
            }
        else:
            outputs = {
                "score": make_tensor("DT_DOUBLE", score),
                "received": make_tensor("DT_STRING", sorted(inputs)),
                "echo": make_tensor("DT_STRING", [spec.name, spec.signature_name]),
            }
        for name, t in outputs.items():
            if not request.output_filter or name in request.output_filter:
                resp.outputs[name].CopyFrom(t)
        return resp


    @staticmethod
    def _odd(spec, kind):
        resp = predict_pb2.PredictResponse()
        resp.model_spec.name = spec.name
        if kind == "unsigned":
            u32 = tensor_pb2.TensorProto(dtype=DT.Value("DT_UINT32"))
            u32.tensor_shape.dim.add(size=2)
            u32.uint32_val.extend([4000000000, 7])
            u64 = tensor_pb2.TensorProto(dtype=DT.Value("DT_UINT64"))
            u64.tensor_shape.dim.add(size=2)
            u64.uint64_val.extend([2 ** 64 - 1, 8])
            resp.outputs["u32"].CopyFrom(u32)
            resp.outputs["u64"].CopyFrom(u64)
        elif kind == "huge":
            t = tensor_pb2.TensorProto(dtype=DT.Value("DT_FLOAT"))
            t.tensor_shape.dim.add(size=10 ** 12)
            t.float_val.append(1.0)
            resp.outputs["big"].CopyFrom(t)
        elif kind == "empty_rows":
            t = tensor_pb2.TensorProto(dtype=DT.Value("DT_INT32"))
            t.tensor_shape.dim.add(size=10 ** 15)
            t.tensor_shape.dim.add(size=0)
            resp.outputs["rows"].CopyFrom(t)
        elif kind == "text":
            resp.outputs["text"].CopyFrom(make_tensor("DT_STRING", ['a,b', 'say "hi"']))
        return resp


class UpstreamModelServer:
    """Serves the models above on 127.0.0.1 (port 0 = a free one) until stop()."""

    def __init__(self, port=0, workers=16, credentials=None):
        self._lock = threading.Lock()
        self.released = threading.Event()  # lets the `held` model's calls go on
        self.requests = []
        self.events = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _Servicer(self), self._server)
        address = "127.0.0.1:%d" % port
        self.port = (self._server.add_secure_port(address, credentials) if credentials
                     else self._server.add_insecure_port(address))
        if self.port == 0:
            raise RuntimeError("cannot bind 127.0.0.1:%d" % port)

    def start(self):
        self._server.start()
        return self

    def stop(self):
        self._server.stop(grace=None).wait(10)

    def release(self):
        """Answers every call of the `held` model, now and from now on."""
        self.released.set()

    def reset(self):
        """Forgets recorded requests and events; the `held` model holds again."""
        self.released.clear()
        with self._lock:
            self.requests = []
            self.events = []

    def _record(self, r):
        with self._lock:
            self.requests.append(r)

    def _event(self, e):
        with self._lock:
            self.events.append(e)

    def last_request(self):
        with self._lock:
            return self.requests[-1] if self.requests else None

    def wait_event(self, name, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if name in self.events:
                    return True
            time.sleep(0.02)
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8500)
    args = ap.parse_args()
    srv = UpstreamModelServer(args.port).start()
    print("upstream model server on 127.0.0.1:%d" % srv.port, flush=True)
    try:
        srv._server.wait_for_termination()
    except KeyboardInterrupt:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

# clients/python/fstore_client.py - a small Python client for fstore (Debian's grpcio is enough).
"""FeatureStoreClient: reads, writes, deletes, catalog and health against `fstore serve`.

The generated stubs (feast/, fstore/, grpc_health/) come from the build tree: set FSTORE_PY_STUBS
to their directory, or put it on PYTHONPATH; otherwise build/*/python next to this checkout is
tried.

    from fstore_client import FeatureStoreClient
    c = FeatureStoreClient("127.0.0.1:6566")
    c.write_features("driver_stats", {"driver_id": [1001], "conv_rate": [0.5]})
    r = c.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [1001]})
    r["conv_rate"]            # [0.5]
    r.statuses["conv_rate"]   # ["PRESENT"]
"""
import glob
import os
import sys
import time


def _add_stub_path():
    env = os.environ.get("FSTORE_PY_STUBS")
    if env:
        if env not in sys.path:
            sys.path.insert(0, env)
        return
    try:
        import feast.types.Value_pb2  # noqa: F401  (already importable)
        return
    except ImportError:
        pass
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    for cand in sorted(glob.glob(os.path.join(root, "build", "*", "python"))):
        if os.path.isdir(os.path.join(cand, "feast")):
            sys.path.insert(0, cand)
            return


_add_stub_path()

import grpc  # noqa: E402
from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402

from feast.serving import ServingService_pb2 as serving_pb2  # noqa: E402
from feast.serving import ServingService_pb2_grpc as serving_grpc  # noqa: E402
from feast.types import Value_pb2 as value_pb2  # noqa: E402
from fstore.v1 import fstore_pb2, fstore_pb2_grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

FIELD_STATUS = {v: k for k, v in serving_pb2.FieldStatus.items()}
VALUE_TYPE = {v: k for k, v in value_pb2.ValueType.Enum.items()}

# dtype name -> (oneof field, list message or None)
_SCALAR_FIELD = {
    "BYTES": "bytes_val", "STRING": "string_val", "INT32": "int32_val", "INT64": "int64_val",
    "DOUBLE": "double_val", "FLOAT": "float_val", "BOOL": "bool_val",
    "UNIX_TIMESTAMP": "unix_timestamp_val",
}
_LIST_FIELD = {
    "BYTES_LIST": "bytes_list_val", "STRING_LIST": "string_list_val",
    "INT32_LIST": "int32_list_val", "INT64_LIST": "int64_list_val",
    "DOUBLE_LIST": "double_list_val", "FLOAT_LIST": "float_list_val",
    "BOOL_LIST": "bool_list_val", "UNIX_TIMESTAMP_LIST": "unix_timestamp_list_val",
}


def _infer_dtype(x):
    if isinstance(x, bool):
        return "BOOL"
    if isinstance(x, int):
        return "INT64"
    if isinstance(x, float):
        return "DOUBLE"
    if isinstance(x, str):
        return "STRING"
    if isinstance(x, (bytes, bytearray)):
        return "BYTES"
    if isinstance(x, (list, tuple)):
        for item in x:
            if item is not None:
                return _infer_dtype(item) + "_LIST"
        return "INT64_LIST"
    raise TypeError("cannot encode %r as a feast.types.Value" % (x,))


def to_value(x, dtype=None):
    """A Python value as a feast.types.Value; dtype (a Feast type name) picks the field."""
    if isinstance(x, value_pb2.Value):
        return x
    v = value_pb2.Value()
    if x is None:
        v.null_val = value_pb2.NULL
        return v
    dtype = dtype or _infer_dtype(x)
    if dtype in _SCALAR_FIELD:
        setattr(v, _SCALAR_FIELD[dtype], x)
    elif dtype in _LIST_FIELD:
        getattr(v, _LIST_FIELD[dtype]).val.extend(x)
    else:
        raise TypeError("unsupported dtype %s" % dtype)
    return v


def from_value(v):
    """A feast.types.Value as a Python value (None for null or unset)."""
    which = v.WhichOneof("val")
    if which is None or which == "null_val":
        return None
    if which.endswith("_list_val"):
        return list(getattr(v, which).val)
    return getattr(v, which)


class OnlineFeatures(dict):
    """Columns by name ({name: [value per entity row]}), plus statuses and event_timestamps
    ({name: [...]}, statuses as FieldStatus names) and the raw response."""

    def __init__(self, response):
        super().__init__()
        self.response = response
        self.statuses = {}
        self.event_timestamps = {}
        names = list(response.metadata.feature_names.val)
        for name, vec in zip(names, response.results):
            self[name] = [from_value(v) for v in vec.values]
            self.statuses[name] = [FIELD_STATUS.get(s, str(s)) for s in vec.statuses]
            self.event_timestamps[name] = [
                t.seconds + t.nanos / 1e9 for t in vec.event_timestamps]
        self.feature_view_metadata = [
            (m.name, m.version) for m in response.metadata.feature_view_metadata]


class FeatureStoreClient:
    def __init__(self, target="127.0.0.1:6566", timeout=10.0, channel=None):
        self.channel = channel or grpc.insecure_channel(target)
        self.timeout = timeout
        self.serving = serving_grpc.ServingServiceStub(self.channel)
        self.fstore = fstore_pb2_grpc.OnlineFeatureServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self._catalog = None

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def online_request(features=None, feature_service=None, entities=None,
                       full_feature_names=False, include_metadata=False, request_context=None):
        req = serving_pb2.GetOnlineFeaturesRequest(full_feature_names=full_feature_names)
        if feature_service is not None:
            req.feature_service = feature_service
        else:
            req.features.val.extend(features or [])
        for key, values in (entities or {}).items():
            req.entities[key].val.extend(to_value(x) for x in values)
        for key, values in (request_context or {}).items():
            req.request_context[key].val.extend(to_value(x) for x in values)
        req.include_feature_view_version_metadata = include_metadata
        return req

    def get_online_features(self, features=None, feature_service=None, entities=None,
                            full_feature_names=False, include_metadata=False, feast_path=True,
                            request_context=None):
        """Feast semantics: returns OnlineFeatures, a dict of columns (join keys first).
        request_context: {field: [value per entity row]}, the request data on-demand features
        read (Feast's request_context)."""
        req = self.online_request(features, feature_service, entities, full_feature_names,
                                  include_metadata, request_context)
        stub = self.serving if feast_path else self.fstore
        return OnlineFeatures(stub.GetOnlineFeatures(req, timeout=self.timeout))

    def get_catalog(self, refresh=True):
        if refresh or self._catalog is None:
            self._catalog = self.fstore.GetCatalog(fstore_pb2.GetCatalogRequest(),
                                                   timeout=self.timeout)
        return self._catalog

    def _dtypes(self, view):
        """{column: Feast dtype name} for a view reference, from the (cached) catalog; a view
        the cache does not know triggers one refresh (the server may have reloaded)."""
        name, _, ver = view.partition("@v")
        for refresh in (self._catalog is None, True):
            cat = self.get_catalog(refresh=refresh)
            for fv in cat.feature_views:
                if fv.name == name and ((ver and str(fv.version) == ver) or
                                        (not ver and fv.is_default)):
                    types = {jk.name: VALUE_TYPE[jk.dtype] for jk in fv.join_keys}
                    types.update({f.name: VALUE_TYPE[f.dtype] for f in fv.features})
                    return types
            if refresh:
                break
        return {}

    def write_request(self, view, columns, event_timestamps=None, dtypes=None):
        dtypes = dtypes or {}
        req = fstore_pb2.WriteFeaturesRequest(feature_view=view)
        for name, values in columns.items():
            req.columns[name].val.extend(to_value(x, dtypes.get(name)) for x in values)
        for ts in event_timestamps or []:
            t = Timestamp()
            if isinstance(ts, Timestamp):
                t.CopyFrom(ts)
            else:
                secs = float(ts)
                t.seconds = int(secs // 1)
                t.nanos = int(round((secs - t.seconds) * 1e9)) // 1000 * 1000
            req.event_timestamps.append(t)
        return req

    def write_features(self, view, columns, event_timestamps=None):
        """Upserts rows: columns = {join_key or feature: [value per row]}; event_timestamps are
        seconds since the epoch (floats) or Timestamps, one per row, or None for now. Values
        are typed from the catalog. Returns (rows_written, rows_stale)."""
        req = self.write_request(view, columns, event_timestamps, self._dtypes(view))
        resp = self.fstore.WriteFeatures(req, timeout=self.timeout)
        return resp.rows_written, resp.rows_stale

    def delete_entities(self, view, entities):
        req = fstore_pb2.DeleteEntitiesRequest(feature_view=view)
        dtypes = self._dtypes(view)
        for name, values in entities.items():
            req.entities[name].val.extend(to_value(x, dtypes.get(name)) for x in values)
        return self.fstore.DeleteEntities(req, timeout=self.timeout).rows_deleted

    def health(self, service=""):
        resp = self.health_stub.Check(health_pb2.HealthCheckRequest(service=service),
                                      timeout=self.timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def serving_info(self):
        return self.serving.GetFeastServingInfo(serving_pb2.GetFeastServingInfoRequest(),
                                                timeout=self.timeout).version

    def wait_serving(self, timeout=30.0):
        """Polls health until SERVING; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.health() == "SERVING":
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("fstore did not report SERVING within %.0fs" % timeout)
            time.sleep(0.1)

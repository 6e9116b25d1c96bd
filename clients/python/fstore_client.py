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

Offline serving (a server started with --history, views with `offline:` in the catalog):
insert_batch() writes rows with event times to the history, load_batch() reads a view as of a
time, get_historical_features() is Feast's point-in-time join of an entity table.
"""
import datetime
import glob
import importlib
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
        importlib.import_module("feast.types.Value_pb2")  # already importable
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


class Batch(dict):
    """Columns by name, with .statuses ({name: [FieldStatus name per row]})."""

    def __init__(self, columns):
        super().__init__(columns)
        self.statuses = dict(getattr(columns, "statuses", {}))
        self.next_page = None


def _write_target(to):
    if to in ("online", "online_and_offline"):
        return fstore_pb2.WRITE_TARGET_ONLINE
    if to == "offline":
        return fstore_pb2.WRITE_TARGET_OFFLINE
    raise ValueError("to: want 'online', 'offline' or 'online_and_offline', got %r" % (to,))


def _seconds(t):
    """Seconds since the epoch for a datetime (naive = UTC), a pandas Timestamp, a number or an
    ISO 8601 string."""
    if isinstance(t, (int, float)):
        return float(t)
    if isinstance(t, str):
        t = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
    if hasattr(t, "to_pydatetime"):
        t = t.to_pydatetime()
    if isinstance(t, datetime.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=datetime.timezone.utc)
        return t.timestamp()
    raise TypeError("not a time: %r" % (t,))


def _timestamp(t):
    """A Timestamp of t (see _seconds), to the microsecond the server keeps."""
    if isinstance(t, Timestamp):
        return t
    micros = int(round(_seconds(t) * 1e6))
    ts = Timestamp()
    ts.seconds, rest = divmod(micros, 1000000)  # floor: nanos never negative nor 10^9
    ts.nanos = rest * 1000
    return ts


def _columns(table):
    """{name: list} from a dict of columns or a pandas DataFrame."""
    # tolist(): Python's own ints, floats and bools, not numpy's scalars.
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return {str(c): table[c].tolist() for c in table.columns}
    return {k: v.tolist() if hasattr(v, "tolist") else list(v) for k, v in table.items()}


def _maybe_frame(batch, as_frame, attrs):
    if as_frame is False:
        return batch
    try:
        import pandas
    except ImportError:
        if as_frame:
            raise
        return batch
    frame = pandas.DataFrame(dict(batch))
    frame.attrs.update(attrs)
    frame.attrs["statuses"] = batch.statuses
    return frame


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer TOKEN` to every call (a server run with --tokens-file)."""

    def __init__(self, token):
        self.header = ("authorization", "Bearer " + token)

    def _details(self, d):
        md = list(d.metadata or []) + [self.header]
        return d._replace(metadata=md) if hasattr(d, "_replace") else _CallDetails(
            d.method, d.timeout, md, d.credentials, getattr(d, "wait_for_ready", None),
            getattr(d, "compression", None))

    def intercept_unary_unary(self, cont, d, request):
        return cont(self._details(d), request)

    def intercept_unary_stream(self, cont, d, request):
        return cont(self._details(d), request)

    def intercept_stream_unary(self, cont, d, requests):
        return cont(self._details(d), requests)

    def intercept_stream_stream(self, cont, d, requests):
        return cont(self._details(d), requests)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready, self.compression = (credentials, wait_for_ready,
                                                                   compression)


class FeatureStoreClient:
    def __init__(self, target="127.0.0.1:6566", timeout=10.0, channel=None, token=None):
        """target: the server's host:port (channel: a grpc channel of your own instead, e.g. a
        TLS one); token: a bearer token, sent with every call, for a server run with
        --tokens-file."""
        self.channel = channel or grpc.insecure_channel(target)
        self._own_channel = self.channel
        if token:
            self.channel = grpc.intercept_channel(self.channel, _BearerToken(token))
        self.timeout = timeout
        self.serving = serving_grpc.ServingServiceStub(self.channel)
        self.fstore = fstore_pb2_grpc.OnlineFeatureServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self._catalog = None
        self._catalog_denied = False

    def close(self):
        self._own_channel.close()

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
        if self._catalog_denied:
            return {}
        for refresh in (self._catalog is None, True):
            try:
                cat = self.get_catalog(refresh=refresh)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.PERMISSION_DENIED:
                    raise
                # A principal without the admin scope (--tokens-file): values are typed from
                # Python's types (or dtypes=), and the server checks them against the view's.
                self._catalog_denied = True
                return {}
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
            req.event_timestamps.append(_timestamp(ts))
        return req

    def write_features(self, view, columns, event_timestamps=None, to="online", dtypes=None):
        """Upserts rows: columns = {join_key or feature: [value per row]}; event_timestamps are
        seconds since the epoch, datetimes, ISO 8601 strings or Timestamps, one per row, or None
        for now. Values are typed from the catalog, or by dtypes ({column: Feast dtype name such
        as "FLOAT"}: a principal without the admin scope cannot read the catalog; columns it
        leaves out are typed from Python's types). to: "online" (and the history of a view that
        keeps one), "online_and_offline" (the same) or "offline" (the history only). Returns
        (rows_written, rows_stale)."""
        req = self.write_request(view, columns, event_timestamps,
                                 dtypes if dtypes is not None else self._dtypes(view))
        req.to = _write_target(to)
        resp = self.fstore.WriteFeatures(req, timeout=self.timeout)
        return resp.rows_written, resp.rows_stale

    # -- offline serving -------------------------------------------------------------------

    def insert_batch(self, view, timestamp=None, data=None, to="offline", timestamps=None):
        """Writes rows with their event times: data = {join key or feature: [value per row]},
        every row at `timestamp` (a datetime, seconds since the epoch, or an ISO 8601 string;
        None: now) or each at its own in `timestamps`. to: "offline" (the history only:
        backfills, late data), "online_and_offline" or "online" (the online row too, and the
        history of a view that keeps one). Returns (rows_written, rows_stale)."""
        data = data or {}
        n = max((len(v) for v in data.values()), default=0)
        if timestamps is None and timestamp is not None:
            timestamps = [timestamp] * n
        return self.write_features(view, data, timestamps, to=to)

    def load_batch(self, view, timestamp=None, limit=100, page=None, as_frame=None):
        """Each entity's latest row of a view at or before `timestamp` (None: now), within the
        view's TTL, in entity-key order: at most `limit` rows after the page token `page`.
        Returns a Batch (a dict of columns: join keys, then features, with .next_page, the
        token of the next page or None), or a pandas DataFrame (its .attrs["next_page"]) when
        pandas is installed and as_frame is not False."""
        req = fstore_pb2.LoadBatchRequest(feature_view=view, limit=limit)
        if timestamp is not None:
            req.timestamp.CopyFrom(_timestamp(timestamp))
        if page:
            req.page_token = page
        resp = self.fstore.LoadBatch(req, timeout=self.timeout)
        batch = Batch(OnlineFeatures(resp.rows))
        batch.next_page = resp.next_page_token or None
        return _maybe_frame(batch, as_frame, {"next_page": batch.next_page})

    def iter_historical_features(self, entity_df, features=None, feature_service=None,
                                 full_feature_names=False, timestamp_column="event_timestamp",
                                 rows_per_call=10000, rows_per_message=1000, timeout=None):
        """get_historical_features() a message at a time: yields OnlineFeatures of consecutive
        rows (the entity table's columns, event_timestamp, then the features), so that a large
        training set never sits in memory at once. The table goes in calls of rows_per_call
        rows (at most the server's --max-history-rows), each with the deadline timeout (None:
        none). Keep reading: a stream whose next message waits longer than the server's
        --grpc-max-send-ms is cancelled."""
        cols = _columns(entity_df)
        if timestamp_column not in cols:
            raise ValueError("the entity table needs a %r column" % timestamp_column)
        times = [_timestamp(t) for t in cols.pop(timestamp_column)]
        n = len(times)
        for start in range(0, n, rows_per_call):
            req = fstore_pb2.GetHistoricalFeaturesRequest(
                full_feature_names=full_feature_names, rows_per_message=rows_per_message)
            if feature_service is not None:
                req.feature_service = feature_service
            else:
                req.features.val.extend(features or [])
            end = min(n, start + rows_per_call)
            for name, values in cols.items():
                req.entities[name].val.extend(to_value(x) for x in values[start:end])
            req.event_timestamps.extend(times[start:end])
            for msg in self.fstore.GetHistoricalFeatures(req, timeout=timeout):
                yield OnlineFeatures(msg)

    def get_historical_features(self, entity_df, features=None, feature_service=None,
                                full_feature_names=False, timestamp_column="event_timestamp",
                                as_frame=None, rows_per_call=10000, timeout=None):
        """Feast's point-in-time join: for every row of entity_df (a dict of columns or a
        DataFrame with the join keys, `timestamp_column` and any other columns, which are
        carried through), each feature as of that row's time: the latest value at or before
        it, within the view's TTL, else None. Returns a Batch (a dict of columns with
        .statuses), or a pandas DataFrame when pandas is installed and as_frame is not False.
        timeout: each call's deadline in seconds (None: none; a training set takes as long as
        it takes)."""
        out = Batch({})
        for part in self.iter_historical_features(entity_df, features, feature_service,
                                                  full_feature_names, timestamp_column,
                                                  rows_per_call, timeout=timeout):
            for name, values in part.items():
                if name == "event_timestamp":
                    values = [datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
                              for t in part.event_timestamps[name]]
                out.setdefault(name, []).extend(values)
                out.statuses.setdefault(name, []).extend(part.statuses[name])
        return _maybe_frame(out, as_frame, {})

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

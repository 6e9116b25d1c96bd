# tests/e2e/h2_client.py - a raw HTTP/2 gRPC client (python3-h2) for what grpcio will not send.
"""Raw gRPC over HTTP/2, frame by frame: compressed request frames with chosen flags and
encodings, many streams on one connection, a client that never reads (window 0), resets.

    c = H2Grpc(port)
    sid = c.call("/grpc.health.v1.Health/Check", b"", encoding="gzip", compressed=True)
    status, message, body = c.result(sid)
"""
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


def frame(payload, compressed=False):
    """One gRPC length-prefixed message."""
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


class H2Grpc:
    def __init__(self, port, window=None, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        if window is not None:
            # A client that never reads: no room for the server's DATA.
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.streams = {}
        self.closed = False
        self.goaway = None  # (error code, debug data) of a GOAWAY received
        self.remote_max_streams = None

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def start(self, path, extra_headers=()):
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path),
                   (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
                   ("te", "trailers")] + list(extra_headers)
        self.conn.send_headers(sid, headers)
        self.streams[sid] = {"headers": {}, "data": b"", "trailers": {}, "ended": False,
                             "reset": None}
        return sid

    def call(self, path, body, encoding=None, compressed=False, end=True):
        extra = [("grpc-encoding", encoding)] if encoding else []
        sid = self.start(path, extra)
        self.send(sid, frame(body, compressed), end)
        return sid

    def send(self, sid, data, end=True, timeout=30.0):
        """data on stream sid, as flow control lets it through (waiting for WINDOW_UPDATEs)."""
        deadline = time.monotonic() + timeout
        while True:
            room = min(self.conn.local_flow_control_window(sid),
                       self.conn.max_outbound_frame_size, len(data))
            if room > 0 or not data:
                last = room == len(data)
                self.conn.send_data(sid, data[:room], end_stream=end and last)
                self.flush()
                data = data[room:]
                if last:
                    return
            else:
                before = self.conn.local_flow_control_window(sid)
                self.pump(lambda: self.conn.local_flow_control_window(sid) > before,
                          max(0.01, deadline - time.monotonic()))
                if time.monotonic() > deadline or self.closed:
                    raise TimeoutError("flow control window stayed closed")

    def pump(self, until, timeout=10.0):
        """Reads events until until() is true, the connection closes, or timeout."""
        end = time.monotonic() + timeout
        while not until() and not self.closed and time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                self.closed = True  # frames after a GOAWAY
                break
            for ev in events:
                self.on_event(ev)
            self.flush()

    def on_event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived) and st is not None:
            st["headers"] = dict((k.decode(), v.decode()) for k, v in ev.headers)
        elif isinstance(ev, h2.events.DataReceived) and st is not None:
            st["data"] += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived) and st is not None:
            st["trailers"] = dict((k.decode(), v.decode()) for k, v in ev.headers)
        elif isinstance(ev, h2.events.StreamEnded) and st is not None:
            st["ended"] = True
        elif isinstance(ev, h2.events.StreamReset) and st is not None:
            st["reset"] = ev.error_code
            st["ended"] = True
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            c = ev.changed_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
            if c is not None:
                self.remote_max_streams = c.new_value
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.closed = True
            self.goaway = (ev.error_code, ev.additional_data)

    def result(self, sid, timeout=10.0):
        """(grpc-status as int or None, grpc-message, the response's message bytes or None)."""
        st = self.streams[sid]
        self.pump(lambda: st["ended"], timeout)
        md = dict(st["headers"])
        md.update(st["trailers"])
        status = md.get("grpc-status")
        body = None
        if len(st["data"]) >= 5:
            n = struct.unpack(">I", st["data"][1:5])[0]
            body = st["data"][5:5 + n]
        return (int(status) if status is not None else None), md.get("grpc-message", ""), body

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

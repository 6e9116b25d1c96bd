# tests/e2e/harness.py - start the real fstore binary on 127.0.0.1, and always stop it.
"""Shared by every end-to-end suite.

The binary comes from $FSTORE_BINARY_DIR/fstore (set by ctest). Each server gets a free
port on 127.0.0.1 and, unless given one, a temporary data directory. Its stderr (the JSON log, and
under ASan any sanitizer report) goes to a file: a sanitizer report fails the test, and so does an
exit status other than 0 after SIGTERM.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import grpc

from fstore_client import FeatureStoreClient
from free_port import free_port  # noqa: F401 (tests import it from here)

SOURCE_DIR = os.environ.get("FSTORE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY_DIR = os.environ.get("FSTORE_BINARY_DIR") or os.path.join(SOURCE_DIR, "build", "asan")
FSTORE = os.path.join(BINARY_DIR, "fstore")
E2E_DIR = os.path.dirname(os.path.abspath(__file__))
CATALOG = os.path.join(E2E_DIR, "catalog.yaml")

SANITIZER_RE = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"SUMMARY: UndefinedBehaviorSanitizer|ThreadSanitizer")

# Generous: the test build runs under ASan on a loaded two-core machine.
START_TIMEOUT = 90.0
STOP_TIMEOUT = 90.0


class Server:
    """One `fstore serve` process."""

    def __init__(self, catalog=CATALOG, data_dir=None, args=(), port=None, env=None):
        self.catalog = catalog
        self.extra_env = dict(env or {})
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="fstore-e2e-")
        self.args = list(args)
        self.own_port = port is None
        self.port = port or free_port()
        self.target = "127.0.0.1:%d" % self.port
        self.http_port = free_port()
        self.http = "127.0.0.1:%d" % self.http_port
        self.proc = None
        self.log_file = None
        self.log_path = None
        self.client = None
        self.credentials = None  # grpc channel credentials for a TLS server (test_tls.py)

    def command(self):
        cmd = [FSTORE, "serve", "--listen", self.target, "--data-dir", self.data_dir,
               "--http-listen", self.http]
        if self.catalog:
            cmd += ["--catalog", self.catalog]
        return cmd + self.args

    def spawn(self):
        if self.log_file is not None:  # a start retried on new ports: its log goes too
            self.log_file.close()
            os.unlink(self.log_path)
        fd, self.log_path = tempfile.mkstemp(prefix="fstore-e2e-", suffix=".log")
        self.log_file = os.fdopen(fd, "w+b")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.update(self.extra_env)
        self.proc = subprocess.Popen(self.command(), stdout=self.log_file,
                                     stderr=subprocess.STDOUT, env=env)
        return self.proc

    def port_open(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def start(self):
        # Ports this harness picked are only probably free: another test can bind one between the
        # pick and the server's bind. Such a start is retried on new ports, never a given one.
        for attempt in range(3):
            try:
                return self._start()
            except AssertionError:
                if not (self.own_port and "address in use" in self.log()
                        and self.proc.poll() is not None) or attempt == 2:
                    raise
                self.port, self.http_port = free_port(), free_port()
                self.target = "127.0.0.1:%d" % self.port
                self.http = "127.0.0.1:%d" % self.http_port

    def _start(self):
        self.spawn()
        deadline = time.monotonic() + START_TIMEOUT
        # Wait for the listening socket before making a channel: a gRPC channel that met a
        # refused connection backs off for seconds before it tries again.
        while not self.port_open():
            if self.proc.poll() is not None:
                raise AssertionError("fstore exited with %s while starting:\n%s"
                                     % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("fstore did not listen in %.0fs:\n%s"
                                     % (START_TIMEOUT, self.log()))
            time.sleep(0.05)
        channel = (grpc.secure_channel(self.target, self.credentials)
                   if self.credentials is not None else None)
        self.client = FeatureStoreClient(self.target, timeout=30.0, channel=channel)
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("fstore exited with %s while starting:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                if self.client.health() == "SERVING":
                    return self
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("fstore did not report SERVING in %.0fs:\n%s"
                                     % (START_TIMEOUT, self.log()))
            time.sleep(0.1)

    def log(self):
        if self.log_path is None:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:  # a start retried on new ports (spawn()) replaced it just now
            return ""

    def events(self, name=None):
        out = []
        for line in self.log().splitlines():
            if not line.startswith("{"):
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if name is None or ev.get("event") == name:
                out.append(ev)
        return out

    def wait_event(self, name, count=1, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            evs = self.events(name)
            if len(evs) >= count:
                return evs
            time.sleep(0.05)
        raise AssertionError("no %d x '%s' in the log within %.0fs:\n%s"
                             % (count, name, timeout, self.log()))

    def metric(self, series):
        """One series of the server's /metrics (its name with its labels as exposed, e.g.
        'fstore_store_read_errors_total'), as a number; None when it is not there."""
        with urllib.request.urlopen("http://%s/metrics" % self.http, timeout=10) as r:
            text = r.read().decode()
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_metric(self, series, at_least, timeout=30.0):
        """Waits until the series reaches at_least; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.metric(series)
            if v is not None and v >= at_least:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("%s is %s, not >= %s within %.0fs"
                                     % (series, v, at_least, timeout))
            time.sleep(0.02)

    def send(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        """Stops the server; returns its exit status. Idempotent."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("fstore did not stop within %.0fs:\n%s"
                                     % (STOP_TIMEOUT, self.log()))
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def sanitizer_report(self):
        text = self.log()
        m = SANITIZER_RE.search(text)
        return text[max(0, m.start() - 200):] if m else None

    def cleanup(self):
        self.kill()
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
        if self.log_path is not None and os.path.exists(self.log_path):
            os.unlink(self.log_path)
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """One server for the whole class; stopped (and checked) once every test has run."""

    server_args = ()
    catalog = CATALOG

    @classmethod
    def setUpClass(cls):
        cls.server = Server(catalog=cls.catalog, args=cls.server_args)
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.client = cls.server.client

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        report = cls.server.sanitizer_report()
        if report or rc != 0:
            sys.stderr.write(cls.server.log())
        assert report is None, "sanitizer report from fstore:\n" + report
        assert rc == 0, "fstore exited with %s after SIGTERM" % rc

    def assertRpcError(self, fn, code, *fragments):
        """fn() must fail with gRPC status `code` and a message containing every fragment."""
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        err = cm.exception
        self.assertEqual(err.code(), code, "message: %s" % err.details())
        for frag in fragments:
            self.assertIn(frag, err.details() or "")
        return err

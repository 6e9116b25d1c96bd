# tests/e2e/test_tls.py - TLS and mTLS on gRPC and HTTPS, with certificates made by openssl here.
"""The real binary with --tls-cert/--tls-key (and --tls-client-ca, --tls-require-client-cert):
grpcio with the test CA gets answers and a plaintext client does not; mTLS refuses clients
without a certificate or with one from another CA; a certificate rotated on disk is served to
the next connection while calls keep succeeding; curl reaches the HTTP front door over HTTPS."""
import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

from fstore_client import FeatureStoreClient
from free_port import free_port
from harness import CATALOG, FSTORE, Server


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=" + name, cwd=d)


def make_cert(d, ca, name, usage, serial, days=2, san="", names="DNS:localhost,IP:127.0.0.1"):
    """A certificate for names (127.0.0.1 and localhost; and san's further names, e.g.
    ",URI:...") signed by ca, usage serverAuth or clientAuth; days -1 makes one that has
    expired."""
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s%s\nextendedKeyUsage=%s\n" % (names, san, usage))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-set_serial", str(serial), "-out", name + ".pem", "-days", str(days),
            "-extfile", name + ".ext", cwd=d)


def read(d, name):
    with open(os.path.join(d, name), "rb") as f:
        return f.read()


class TlsCase(unittest.TestCase):
    args = []

    @classmethod
    def setUpClass(cls):
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("openssl is not installed")
        cls.d = tempfile.mkdtemp(prefix="fstore-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.d, True)
        make_ca(cls.d, "ca")
        make_ca(cls.d, "other_ca")
        make_cert(cls.d, "ca", "server", "serverAuth", 1)
        make_cert(cls.d, "ca", "client", "clientAuth", 2)
        make_cert(cls.d, "other_ca", "stranger", "clientAuth", 3)
        make_cert(cls.d, "ca", "expired", "clientAuth", 4, days=-1)

    def setUp(self):
        # The server reads the files at these paths; tests may replace them.
        self.cert = os.path.join(self.d, "serving.pem")
        self.key = os.path.join(self.d, "serving.key")
        shutil.copy(os.path.join(self.d, "server.pem"), self.cert)
        shutil.copy(os.path.join(self.d, "server.key"), self.key)
        args = ["--tls-cert", self.cert, "--tls-key", self.key] + [
            a.replace("@D@", self.d) for a in self.args]
        self.server = Server(args=args)
        self.server.credentials = self.creds(client=("client" if self.mtls else None))
        self.addCleanup(self.server.cleanup)
        self.server.start()

    mtls = False

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0, self.server.log()[-2000:])
        self.assertIsNone(self.server.sanitizer_report())

    def creds(self, client=None):
        kw = {}
        if client is not None:
            kw = {"private_key": read(self.d, client + ".key"),
                  "certificate_chain": read(self.d, client + ".pem")}
        return grpc.ssl_channel_credentials(root_certificates=read(self.d, "ca.pem"), **kw)

    def health(self, creds, timeout=5):
        ch = (grpc.secure_channel(self.server.target, creds) if creds is not None
              else grpc.insecure_channel(self.server.target))
        try:
            return FeatureStoreClient(channel=ch, timeout=timeout).health()
        finally:
            ch.close()


class Tls(TlsCase):
    def test_a_tls_client_is_served_and_a_plaintext_one_is_not(self):
        self.assertEqual(self.health(self.creds()), "SERVING")
        with self.assertRaises(grpc.RpcError) as cm:
            self.health(None, timeout=2)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # Reads and writes go through the same TLS channel.
        c = self.server.client
        c.write_features("driver_stats@v1", {"driver_id": [1], "trips": [3]})
        self.assertEqual(c.get_online_features(features=["driver_stats@v1:trips"],
                                               entities={"driver_id": [1]})["trips"], [3])

    def test_https_on_the_http_front_door(self):
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                            os.path.join(self.d, "ca.pem"),
                            "https://127.0.0.1:%d/health" % self.server.http_port],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout, "200", p.stderr)
        p = subprocess.run(["curl", "-sS", "http://127.0.0.1:%d/health" % self.server.http_port],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0, "plain HTTP is not served")

    def test_a_rotated_certificate_is_served_without_a_restart_or_a_failed_call(self):
        make_cert(self.d, "ca", "server2", "serverAuth", 42)
        failures, calls = [], [0]
        stop = threading.Event()

        ctx = ssl.create_default_context(cafile=os.path.join(self.d, "ca.pem"))

        def load():
            while not stop.is_set():
                try:
                    # A new channel each time: a new connection, a new handshake; gRPC and
                    # HTTPS in turn.
                    self.assertEqual(self.health(self.creds()), "SERVING")
                    conn = http.client.HTTPSConnection("localhost", self.server.http_port,
                                                       context=ctx, timeout=30)
                    conn.request("GET", "/health")
                    self.assertEqual(conn.getresponse().status, 200)
                    conn.close()
                    calls[0] += 1
                except Exception as e:  # noqa: BLE001 - any failure counts
                    failures.append(repr(e))

        def wait_calls(n):
            deadline = time.monotonic() + 60
            while calls[0] < n and not failures and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertGreaterEqual(calls[0], n, "the load made no progress: %s" % failures)

        t = threading.Thread(target=load, daemon=True)
        t.start()
        self.addCleanup(t.join, 30)
        self.addCleanup(stop.set)  # a failed assertion below must not leave the load running
        wait_calls(3)
        # As Kubernetes does with a mounted secret: new files moved into place.
        shutil.copy(os.path.join(self.d, "server2.key"), self.key + ".new")
        shutil.copy(os.path.join(self.d, "server2.pem"), self.cert + ".new")
        os.replace(self.key + ".new", self.key)
        os.replace(self.cert + ".new", self.cert)
        deadline = time.monotonic() + 15
        served = https_served = None
        new = ssl.PEM_cert_to_DER_cert(read(self.d, "server2.pem").decode())
        while time.monotonic() < deadline:
            served = ssl.get_server_certificate(("127.0.0.1", self.server.port))
            https_served = ssl.get_server_certificate(("127.0.0.1", self.server.http_port))
            if (ssl.PEM_cert_to_DER_cert(served) == new
                    and ssl.PEM_cert_to_DER_cert(https_served) == new):
                break
            time.sleep(0.1)
        self.assertEqual(ssl.PEM_cert_to_DER_cert(https_served), new, "HTTPS serves the new one")
        # Calls go on over the new pair before the load stops.
        wait_calls(calls[0] + 3)
        stop.set()
        t.join(30)
        self.assertEqual(ssl.PEM_cert_to_DER_cert(served),
                         ssl.PEM_cert_to_DER_cert(read(self.d, "server2.pem").decode()),
                         "the new certificate is served")
        self.assertEqual(failures, [])
        self.assertGreater(calls[0], 5)
        self.assertTrue(self.server.events("tls_reloaded"))
        self.assertTrue([e for e in self.server.events("tls_reloaded")
                         if e.get("listener") == "https"], self.server.log()[-2000:])


    def test_a_key_that_is_not_the_certificates_keeps_the_pair_in_use(self):
        make_cert(self.d, "ca", "other", "serverAuth", 77)
        shutil.copy(os.path.join(self.d, "other.key"), self.key + ".new")
        os.replace(self.key + ".new", self.key)
        # New connections still get the old pair, and the log says why the new one was not
        # taken.
        for _ in range(3):
            self.assertEqual(self.health(self.creds()), "SERVING")
        old = ssl.PEM_cert_to_DER_cert(read(self.d, "server.pem").decode())
        https = ("127.0.0.1", self.server.http_port)
        self.assertEqual(ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(https)), old)
        self.assertTrue([e for e in self.server.events("tls_reload_failed")
                         if e.get("listener") == "https"
                         and "is not the certificate's" in e["error"]], self.server.log()[-2000:])
        self.assertTrue(self.server.events("tls_reload_failed"), self.server.log()[-2000:])
        self.assertIn("is not the certificate's",
                      self.server.events("tls_reload_failed")[0]["error"])
        self.assertFalse(self.server.events("tls_reloaded"))
        # The certificate that goes with it arrives: served from the next connection.
        shutil.copy(os.path.join(self.d, "other.pem"), self.cert + ".new")
        os.replace(self.cert + ".new", self.cert)
        self.assertEqual(self.health(self.creds()), "SERVING")
        served = ssl.get_server_certificate(("127.0.0.1", self.server.port))
        self.assertEqual(ssl.PEM_cert_to_DER_cert(served),
                         ssl.PEM_cert_to_DER_cert(read(self.d, "other.pem").decode()))
        self.assertEqual(ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(https)),
                         ssl.PEM_cert_to_DER_cert(read(self.d, "other.pem").decode()))


class HttpsReload(TlsCase):
    def https_cert(self):
        return ssl.PEM_cert_to_DER_cert(
            ssl.get_server_certificate(("127.0.0.1", self.server.http_port)))

    def test_a_missing_file_is_reported_once_and_each_rotation_is_served(self):
        first = self.https_cert()
        os.unlink(self.key)
        for _ in range(5):
            self.assertEqual(self.https_cert(), first, "the pair in use stays")
        missing = [e for e in self.server.events("tls_reload_failed")
                   if e.get("listener") == "https" and "is missing" in e["error"]]
        self.assertEqual(len(missing), 1, self.server.log()[-3000:])
        # Two rotations, each served from the next handshake (the first pair's connections
        # are gone, so it is freed: ASan would see a use after that).
        for n, name in enumerate(("server2", "server3")):
            make_cert(self.d, "ca", name, "serverAuth", 50 + n)
            shutil.copy(os.path.join(self.d, name + ".key"), self.key + ".new")
            shutil.copy(os.path.join(self.d, name + ".pem"), self.cert + ".new")
            os.replace(self.key + ".new", self.key)
            os.replace(self.cert + ".new", self.cert)
            want = ssl.PEM_cert_to_DER_cert(read(self.d, name + ".pem").decode())
            self.assertEqual(self.https_cert(), want, name)
            ctx = ssl.create_default_context(cafile=os.path.join(self.d, "ca.pem"))
            conn = http.client.HTTPSConnection("localhost", self.server.http_port, context=ctx,
                                               timeout=30)
            conn.request("GET", "/health")
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()


class HttpsTwoListeners(TlsCase):
    """--metrics-listen over HTTPS shares the front door's pair: both serve it, both take a
    rotation, and the pair is let go cleanly when both stop (ASan watching)."""

    def test_the_metrics_listener_serves_the_same_pair_and_its_rotation(self):
        self.server.stop()
        mport = free_port()
        self.server = Server(args=["--tls-cert", self.cert, "--tls-key", self.key,
                                   "--metrics-listen", "127.0.0.1:%d" % mport])
        self.server.credentials = self.creds()
        self.addCleanup(self.server.cleanup)
        self.server.start()
        ctx = ssl.create_default_context(cafile=os.path.join(self.d, "ca.pem"))

        def served(port):
            return ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port)))

        conn = http.client.HTTPSConnection("localhost", mport, context=ctx, timeout=30)
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertIn(b"fstore_store_map_size_bytes", resp.read())
        conn.close()
        make_cert(self.d, "ca", "server4", "serverAuth", 60)
        shutil.copy(os.path.join(self.d, "server4.key"), self.key + ".new")
        shutil.copy(os.path.join(self.d, "server4.pem"), self.cert + ".new")
        os.replace(self.key + ".new", self.key)
        os.replace(self.cert + ".new", self.cert)
        want = ssl.PEM_cert_to_DER_cert(read(self.d, "server4.pem").decode())
        self.assertEqual(served(mport), want, "the metrics listener")
        self.assertEqual(served(self.server.http_port), want, "the front door")


class CurlMixin:
    def curl(self, path, client=None, body=None):
        cmd = ["curl", "-sS", "-w", "\n%{http_code}", "--cacert", os.path.join(self.d, "ca.pem")]
        if client is not None:
            cmd += ["--cert", os.path.join(self.d, client + ".pem"),
                    "--key", os.path.join(self.d, client + ".key")]
        if body is not None:
            cmd += ["-X", "POST", "-H", "Content-Type: application/json", "-d", body]
        p = subprocess.run(cmd + ["https://localhost:%d%s" % (self.server.http_port, path)],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        text, _, code = p.stdout.rpartition("\n")
        return int(code), text


class MutualTls(CurlMixin, TlsCase):
    args = ["--tls-client-ca", "@D@/ca.pem", "--tls-require-client-cert"]
    mtls = True

    def test_https_needs_a_client_certificate_from_the_ca_except_for_probes(self):
        read_body = ('{"features": ["driver_stats@v1:trips"], "entities": {"driver_id": [1]}}')
        code, text = self.curl("/get-online-features", "client", read_body)
        self.assertEqual(code, 200, text)
        for who, want in ((None, "requires a client certificate"),
                          ("stranger", "not one this server accepts"),
                          ("expired", "not one this server accepts"),
                          # From the CA, but for server authentication only.
                          ("server", "not one this server accepts")):
            with self.subTest(client=who):
                code, text = self.curl("/get-online-features", who, read_body)
                self.assertEqual(code, 401, text)
                self.assertIn(want, text)
                # Writes too, refused at their headers.
                code, text = self.curl("/write-to-online-store", who, json_write())
                self.assertEqual(code, 401, text)
                # Probes need none.
                for probe in ("/health", "/ping"):
                    self.assertEqual(self.curl(probe, who)[0], 200, probe)
        # Many requests on one connection: each checked against the connection's verdict.
        urls = []
        for path in ["/health", "/v1/models/nope"] * 3:
            urls += ["-o", "/dev/null", "https://localhost:%d%s" % (self.server.http_port, path)]
        p = subprocess.run(["curl", "-sS", "-w", "%{http_code} ",
                            "--cacert", os.path.join(self.d, "ca.pem"),
                            "--cert", os.path.join(self.d, "client.pem"),
                            "--key", os.path.join(self.d, "client.key")] + urls,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.stdout.split(), ["200", "404"] * 3, p.stderr)
        # A refused certificate on one connection: probes still answered, the rest refused.
        urls = []
        for path in ["/health", "/v1/models/scorer", "/health"]:
            urls += ["-o", "/dev/null", "https://localhost:%d%s" % (self.server.http_port, path)]
        p = subprocess.run(["curl", "-sS", "-w", "%{http_code} ",
                            "--cacert", os.path.join(self.d, "ca.pem"),
                            "--cert", os.path.join(self.d, "stranger.pem"),
                            "--key", os.path.join(self.d, "stranger.key")] + urls,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.stdout.split(), ["200", "401", "200"], p.stderr)

    def test_only_clients_with_a_certificate_from_the_ca_are_served(self):
        self.assertEqual(self.health(self.creds(client="client")), "SERVING")
        for who in (None, "stranger", "expired"):
            with self.subTest(client=who):
                with self.assertRaises(grpc.RpcError) as cm:
                    self.health(self.creds(client=who), timeout=3)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)


def json_write():
    return ('{"feature_view_name": "driver_stats@v1", "df": {"driver_id": [1], "trips": [2], '
            '"event_timestamp": ["2026-01-01T00:00:00Z"]}}')


class OptionalClientCerts(CurlMixin, TlsCase):
    """--tls-client-ca alone: a certificate is not needed, but one that is given must be good."""
    args = ["--tls-client-ca", "@D@/ca.pem"]

    def test_https_takes_no_certificate_or_a_good_one_and_refuses_a_bad_one(self):
        read_body = ('{"features": ["driver_stats@v1:trips"], "entities": {"driver_id": [1]}}')
        self.assertEqual(self.curl("/get-online-features", None, read_body)[0], 200)
        self.assertEqual(self.curl("/get-online-features", "client", read_body)[0], 200)
        code, text = self.curl("/get-online-features", "stranger", read_body)
        self.assertEqual(code, 401, text)
        self.assertIn("not one this server accepts", text)


class CertificateIdentity(CurlMixin, TlsCase):
    """The tokens file's cert: lines: a client certificate verified against --tls-client-ca is a
    principal by a subject alternative name (a DNS name, a SPIFFE ID here), with that line's
    scopes, on gRPC and HTTPS alike; a bearer token, when sent, decides instead."""
    args = ["--tls-client-ca", "@D@/ca.pem", "--tokens-file", "@D@/tokens"]
    SPIFFE = "spiffe://cluster.local/ns/ml/sa/trainer"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        make_cert(cls.d, "ca", "reader-svc", "clientAuth", 10, san=",DNS:reader-svc.ml.svc")
        make_cert(cls.d, "ca", "trainer", "clientAuth", 11, san=",URI:" + cls.SPIFFE)
        with open(os.path.join(cls.d, "tokens"), "w") as f:
            f.write("reader cert:reader-svc.ml.svc read\n"
                    "trainer cert:%s read,write\n"
                    "ops %s admin\n" % (cls.SPIFFE, hashlib.sha256(b"ops-token").hexdigest()))

    def call(self, path, who, token=None):
        """The status and details of path called with an empty request, with who's
        certificate (None: none) and a bearer token or none."""
        ch = grpc.secure_channel(self.server.target, self.creds(client=who))
        self.addCleanup(ch.close)
        md = [] if token is None else [("authorization", "Bearer " + token)]
        try:
            ch.unary_unary(path)(b"", metadata=md, timeout=10)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()

    def test_a_certificate_name_is_a_principal_on_grpc_and_https(self):
        read = "/fstore.v1.OnlineFeatureService/GetOnlineFeatures"
        write = "/fstore.v1.OnlineFeatureService/WriteFeatures"
        catalog = "/fstore.v1.OnlineFeatureService/GetCatalog"
        # A read by its DNS name (an empty request is INVALID_ARGUMENT: past the check).
        self.assertEqual(self.call(read, "reader-svc")[0], grpc.StatusCode.INVALID_ARGUMENT)
        code, msg = self.call(write, "reader-svc")
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("'reader' lacks the 'write' scope", msg)
        # A write by its SPIFFE ID (a URI SAN).
        self.assertEqual(self.call(write, "trainer")[0], grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.call(catalog, "trainer")[0], grpc.StatusCode.PERMISSION_DENIED)
        # A certificate from the CA that no line names; none at all.
        code, msg = self.call(read, "client")
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("named by no 'cert:' line", msg)
        code, msg = self.call(read, None)
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("no credentials", msg)
        # A token decides over the certificate, both ways.
        self.assertEqual(self.call(catalog, "reader-svc", "ops-token")[0], grpc.StatusCode.OK)
        self.assertEqual(self.call(read, "trainer", "wrong")[0],
                         grpc.StatusCode.UNAUTHENTICATED)
        # HTTPS: the same principals, in Feast's error body when refused.
        read_body = ('{"features": ["driver_stats@v1:trips"], "entities": {"driver_id": [1]}}')
        self.assertEqual(self.curl("/get-online-features", "reader-svc", read_body)[0], 200)
        code, text = self.curl("/write-to-online-store", "reader-svc", json_write())
        self.assertEqual(code, 403, text)
        self.assertIn("FeastPermissionError", text)
        self.assertIn("'reader' lacks the 'write' scope", text)
        code, text = self.curl("/write-to-online-store", "trainer", json_write())
        self.assertEqual(code, 200, text)
        code, text = self.curl("/get-online-features", "client", read_body)
        self.assertEqual(code, 401, text)
        self.assertIn("named by no 'cert:' line", text)
        self.assertEqual(self.curl("/get-online-features", None, read_body)[0], 401)
        audits = self.server.events("audit")
        self.assertTrue(any(a["principal"] == "trainer" and a["op"] == "write"
                            for a in audits), audits)

    def fstore(self, *args):
        return subprocess.run([FSTORE] + list(args), capture_output=True, text=True, timeout=120)

    def test_the_cli_reaches_a_tls_server_with_a_certificate_or_a_token(self):
        target = self.server.target  # 127.0.0.1: the certificate names it (IP SAN)
        csv = os.path.join(self.d, "rows.csv")
        with open(csv, "w") as f:
            f.write("driver_id,trips\n77,5\n78,6\n")
        ca = os.path.join(self.d, "ca.pem")
        # ingest as trainer (write scope, by its certificate's SPIFFE ID).
        p = self.fstore("ingest", "--target", target, "--catalog", CATALOG, "--view",
                        "driver_stats@v1", "--tls-ca", ca,
                        "--tls-cert", os.path.join(self.d, "trainer.pem"),
                        "--tls-key", os.path.join(self.d, "trainer.key"), csv)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(any(a["principal"] == "trainer" and a["rows"] == 2
                            for a in self.server.events("audit")))
        # The reader's certificate has no write scope: refused, naming it.
        p = self.fstore("ingest", "--target", target, "--catalog", CATALOG, "--view",
                        "driver_stats@v1", "--tls-ca", ca,
                        "--tls-cert", os.path.join(self.d, "reader-svc.pem"),
                        "--tls-key", os.path.join(self.d, "reader-svc.key"), csv)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("'reader' lacks the 'write' scope", p.stderr)
        # gc with an admin token and no certificate (this server does not require one).
        tok = os.path.join(self.d, "ops.token")
        with open(tok, "w") as f:
            f.write("ops-token\n")
        p = self.fstore("gc", "--target", target, "--tls-ca", ca, "--token-file", tok)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deleted", p.stdout)
        # status needs admin: with the token it answers, without it it is refused.
        p = self.fstore("status", "--listen", target, "--tls-ca", ca, "--token-file", tok,
                        "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["health"], "SERVING")
        p = self.fstore("status", "--listen", target, "--tls-ca", ca)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no credentials", p.stderr)
        # A target the certificate does not name (a pod's address): --tls-server-name.
        p = self.fstore("gc", "--target", target, "--tls-ca", ca, "--token-file", tok,
                        "--tls-server-name", "localhost")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.fstore("gc", "--target", target, "--tls-ca", ca, "--token-file", tok,
                        "--tls-server-name", "fstore.elsewhere.example", "--timeout-ms", "5000")
        self.assertNotEqual(p.returncode, 0)
        # A server whose certificate is not from the CA given: no call, the handshake refused.
        p = self.fstore("gc", "--target", target, "--token-file", tok,
                        "--tls-ca", os.path.join(self.d, "other_ca.pem"), "--timeout-ms", "5000")
        self.assertNotEqual(p.returncode, 0)
        # Half a client certificate, or TLS without --target: usage errors.
        p = self.fstore("gc", "--target", target, "--tls-cert", os.path.join(self.d, "trainer.pem"))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("needs its key", p.stderr)
        p = self.fstore("gc", "--data-dir", self.d, "--tls-ca", ca)
        self.assertEqual(p.returncode, 2, p.stderr)


class ClientCaReload(CurlMixin, TlsCase):
    """--tls-client-ca replaced while serving: HTTPS and gRPC verify against the new CAs from
    the next connection on, and a broken file leaves the CAs in use."""
    args = ["--tls-client-ca", "@D@/client_ca.pem", "--tls-require-client-cert"]
    mtls = True

    def setUp(self):
        self.ca_file = os.path.join(self.d, "client_ca.pem")
        shutil.copy(os.path.join(self.d, "ca.pem"), self.ca_file)
        super().setUp()

    def replace_ca(self, data):
        with open(self.ca_file + ".tmp", "wb") as f:
            f.write(data)
        os.replace(self.ca_file + ".tmp", self.ca_file)  # as a rotated secret appears

    def served(self, who):
        """(HTTPS status, gRPC served) for a client with who's certificate."""
        body = '{"features": ["driver_stats@v1:trips"], "entities": {"driver_id": [1]}}'
        code = self.curl("/get-online-features", who, body)[0]
        try:
            ok = self.health(self.creds(client=who), timeout=3) == "SERVING"
        except grpc.RpcError:
            ok = False
        return code, ok

    def test_a_rotated_client_ca_is_verified_against_without_a_restart(self):
        # HTTPS's certificate request names no CA (the start's would go stale): a client that
        # picks its certificate by those names (Go's) sends its own whatever the CA file holds.
        for version in ("-tls1_2", "-tls1_3"):
            p = subprocess.run(["openssl", "s_client", version, "-connect",
                                "127.0.0.1:%d" % self.server.http_port],
                               input="", capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            # A certificate request came (its algorithms), naming no CA.
            self.assertIn("Requested Signature Algorithms", p.stdout, version)
            self.assertIn("No client certificate CA names sent", p.stdout, version)
            self.assertNotIn("Acceptable client certificate CA names", p.stdout, version)
        self.assertEqual(self.served("client"), (200, True))
        self.assertEqual(self.served("stranger"), (401, False))
        # A connection keeps the verdict of its first request across the change.
        ctx = ssl.create_default_context(cafile=os.path.join(self.d, "ca.pem"))
        ctx.load_cert_chain(os.path.join(self.d, "client.pem"), os.path.join(self.d, "client.key"))
        kept = http.client.HTTPSConnection("localhost", self.server.http_port, context=ctx,
                                           timeout=30)
        self.addCleanup(kept.close)
        body = '{"features": ["driver_stats@v1:trips"], "entities": {"driver_id": [1]}}'

        def on_kept():
            kept.request("POST", "/get-online-features", body,
                         {"Content-Type": "application/json"})
            r = kept.getresponse()
            r.read()
            return r.status
        self.assertEqual(on_kept(), 200)
        self.replace_ca(read(self.d, "other_ca.pem"))
        self.assertEqual(self.served("stranger"), (200, True))
        self.assertEqual(self.served("client"), (401, False))
        self.assertEqual(self.served("expired"), (401, False))
        self.assertEqual(on_kept(), 200)
        reloads = [e for e in self.server.events("tls_reloaded") if "client_ca" in e]
        self.assertEqual(len(reloads), 1, self.server.log()[-3000:])
        # A broken file: logged once, and the CAs in use stay.
        self.replace_ca(b"not a certificate\n")
        for _ in range(3):
            self.assertEqual(self.served("stranger")[0], 200)
            self.assertEqual(self.served("client")[0], 401)
        failed = [e for e in self.server.events("tls_reload_failed")
                  if "client CAs" in e.get("note", "")]
        self.assertEqual(len(failed), 1, self.server.log()[-3000:])
        self.assertIn("no PEM CA certificate", failed[0]["error"])
        # Both CAs in one file: both served.
        self.replace_ca(read(self.d, "ca.pem") + read(self.d, "other_ca.pem"))
        self.assertEqual(self.served("client")[0], 200)
        self.assertEqual(self.served("stranger")[0], 200)


class BadFiles(unittest.TestCase):
    def test_unreadable_or_mismatched_files_stop_the_start(self):
        d = tempfile.mkdtemp(prefix="fstore-tls-bad-")
        self.addCleanup(shutil.rmtree, d, True)
        make_ca(d, "ca")
        make_cert(d, "ca", "a", "serverAuth", 1)
        make_cert(d, "ca", "b", "serverAuth", 2)
        for cert, key, want in (("a.pem", "missing.key", "cannot read"),
                                ("a.pem", "b.key", "is not the certificate's"),
                                ("a.key", "a.key", "not PEM")):
            with self.subTest(cert=cert, key=key):
                s = Server(args=["--tls-cert", os.path.join(d, cert),
                                 "--tls-key", os.path.join(d, key)])
                self.addCleanup(s.cleanup)
                s.spawn()
                self.assertEqual(s.proc.wait(60), 1, s.log())
                self.assertIn(want, s.log())


class UpstreamTls(unittest.TestCase):
    """Predict's model server over TLS (a binding with `tls: true`): verified against
    --upstream-tls-ca, with this node's certificate (--upstream-tls-cert/-key) for a model server
    that requires one; gRPC Predict and the HTTP passthrough both go through it, and a node
    without the right CA or certificate gets UNAVAILABLE naming the upstream."""

    @classmethod
    def setUpClass(cls):
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("openssl is not installed")
        from test_predict import write_drivers
        cls.d = tempfile.mkdtemp(prefix="fstore-upstream-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.d, True)
        make_ca(cls.d, "ca")
        make_ca(cls.d, "other_ca")
        make_cert(cls.d, "ca", "model", "serverAuth", 1)
        make_cert(cls.d, "ca", "node", "clientAuth", 2)
        make_cert(cls.d, "other_ca", "stranger", "clientAuth", 3)
        # A model server whose certificate is from the right CA but for another name.
        make_cert(cls.d, "ca", "misnamed", "serverAuth", 4, names="DNS:elsewhere.test")
        cls.upstream, cls.catalog = cls.model_server("model")
        cls.misnamed, cls.misnamed_catalog = cls.model_server("misnamed")
        cls.write_drivers = staticmethod(write_drivers)

    @classmethod
    def model_server(cls, cert):
        """A model server requiring clients of ca, with the certificate cert, and a catalog
        whose first binding (scorer) speaks TLS to it."""
        from test_predict import render_catalog
        from upstream_model_server import UpstreamModelServer
        creds = grpc.ssl_server_credentials(
            [(read(cls.d, cert + ".key"), read(cls.d, cert + ".pem"))],
            root_certificates=read(cls.d, "ca.pem"), require_client_auth=True)
        upstream = UpstreamModelServer(0, credentials=creds).start()
        cls.addClassCleanup(upstream.stop)
        cat_dir, catalog = render_catalog(upstream.port, 1)
        cls.addClassCleanup(shutil.rmtree, cat_dir, True)
        with open(catalog) as f:
            text = f.read()
        text = text.replace("      keep_entity_inputs: true\n",
                            "      keep_entity_inputs: true\n      tls: true\n", 1)
        with open(catalog, "w") as f:
            f.write(text)
        return upstream, catalog

    def start(self, *args, catalog=None):
        s = Server(catalog=catalog or self.catalog, args=list(args))
        self.addCleanup(s.cleanup)
        s.start()
        self.write_drivers(s.client)
        return s

    def predict(self, s):
        from tensorflow_serving.apis import prediction_service_pb2_grpc
        from test_predict import predict_request
        from upstream_model_server import make_tensor
        with grpc.insecure_channel(s.target) as ch:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
            return stub.Predict(predict_request("scorer",
                                                {"driver_id": make_tensor("DT_INT64", [1])}),
                                timeout=30)

    def test_a_node_with_the_ca_and_a_certificate_reaches_the_model_over_tls(self):
        from upstream_model_server import tensor_rows
        s = self.start("--upstream-tls-ca", os.path.join(self.d, "ca.pem"),
                       "--upstream-tls-cert", os.path.join(self.d, "node.pem"),
                       "--upstream-tls-key", os.path.join(self.d, "node.key"))
        resp = self.predict(s)
        self.assertEqual(tensor_rows(resp.outputs["echo"]), [b"weighted_sum", b"score"])
        self.assertEqual(self.upstream.last_request()["inputs"]["trips"], [10])
        # The HTTP passthrough shares the options.
        p = subprocess.run(["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json",
                            "-d", '{"inputs": {"driver_id": [1]}}',
                            "http://%s/v1/models/scorer:predict" % s.http],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"echo"', p.stdout)
        self.assertTrue([e for e in s.events("upstream_channel") if e.get("tls")], s.log())
        self.assertEqual(s.stop(), 0, s.log()[-3000:])
        self.assertIsNone(s.sanitizer_report())

    def test_without_the_ca_or_a_certificate_the_model_is_unavailable(self):
        cases = [
            ("no client certificate", ["--upstream-tls-ca", os.path.join(self.d, "ca.pem")]),
            ("another CA", ["--upstream-tls-ca", os.path.join(self.d, "other_ca.pem"),
                            "--upstream-tls-cert", os.path.join(self.d, "node.pem"),
                            "--upstream-tls-key", os.path.join(self.d, "node.key")]),
        ]
        for what, args in cases:
            with self.subTest(what):
                s = self.start(*args)
                n = len(self.upstream.requests)
                with self.assertRaises(grpc.RpcError) as cm:
                    self.predict(s)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE,
                                 cm.exception.details())
                self.assertIn("127.0.0.1:%d" % self.upstream.port, cm.exception.details())
                # Over HTTP, TF Serving's REST mapping of UNAVAILABLE.
                p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                    "-X", "POST", "-H", "Content-Type: application/json",
                                    "-d", '{"inputs": {"driver_id": [1]}}',
                                    "http://%s/v1/models/scorer:predict" % s.http],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(p.stdout, "503", p.stderr)
                self.assertEqual(len(self.upstream.requests), n, "a call got through")

    def test_a_model_server_whose_certificate_names_another_host_is_refused(self):
        s = self.start("--upstream-tls-ca", os.path.join(self.d, "ca.pem"),
                       "--upstream-tls-cert", os.path.join(self.d, "node.pem"),
                       "--upstream-tls-key", os.path.join(self.d, "node.key"),
                       catalog=self.misnamed_catalog)
        with self.assertRaises(grpc.RpcError) as cm:
            self.predict(s)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("127.0.0.1:%d" % self.misnamed.port, cm.exception.details())
        self.assertEqual(self.misnamed.requests, [], "a call reached a misnamed server")
        self.assertEqual(s.stop(), 0, s.log()[-3000:])
        self.assertIsNone(s.sanitizer_report())

    def test_rotated_files_are_used_without_a_restart(self):
        """The node starts with the wrong CA and a certificate the model server does not take;
        the files are replaced as a Kubernetes secret update replaces them (a new file renamed
        over the old), and Predict works within seconds, the server never restarted."""
        rot = tempfile.mkdtemp(prefix="rot-", dir=self.d)

        def put(name, source):
            tmp = os.path.join(rot, "." + name)
            shutil.copyfile(os.path.join(self.d, source), tmp)
            os.replace(tmp, os.path.join(rot, name))
        put("ca.pem", "other_ca.pem")
        put("node.pem", "stranger.pem")
        put("node.key", "stranger.key")
        s = self.start("--upstream-tls-ca", os.path.join(rot, "ca.pem"),
                       "--upstream-tls-cert", os.path.join(rot, "node.pem"),
                       "--upstream-tls-key", os.path.join(rot, "node.key"))
        pid = s.proc.pid
        n = len(self.upstream.requests)

        def unavailable_for(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                with self.assertRaises(grpc.RpcError) as cm:
                    self.predict(s)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
                time.sleep(0.2)
        unavailable_for(1)
        put("ca.pem", "ca.pem")  # the right CA, but still a stranger's certificate
        unavailable_for(4)
        self.assertEqual(len(self.upstream.requests), n)
        put("node.key", "node.key")
        put("node.pem", "node.pem")
        deadline = time.monotonic() + 15
        while True:
            try:
                self.predict(s)
                break
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
                self.assertLess(time.monotonic(), deadline, "the new files were never used")
                time.sleep(0.2)
        self.assertIsNone(s.proc.poll(), "the server restarted or died")
        self.assertEqual(s.proc.pid, pid)
        self.assertGreater(len(self.upstream.requests), n)
        self.assertEqual(s.stop(), 0, s.log()[-3000:])
        self.assertIsNone(s.sanitizer_report())

    def test_bad_upstream_tls_flags_stop_the_start(self):
        for args, want in (
                (["--upstream-tls-cert", os.path.join(self.d, "node.pem")], "go together"),
                (["--upstream-tls-ca", os.path.join(self.d, "missing.pem")],
                 "No such file or directory"),
                (["--upstream-tls-ca", os.path.join(self.d, "node.key")], "not a PEM file"),
                (["--upstream-tls-cert", os.path.join(self.d, "node.pem"),
                  "--upstream-tls-key", os.path.join(self.d, "stranger.key")],
                 "is not the certificate's")):
            with self.subTest(args=args):
                s = Server(catalog=self.catalog, args=args)
                self.addCleanup(s.cleanup)
                s.spawn()
                self.assertEqual(s.proc.wait(60), 2, s.log())
                self.assertIn(want, s.log())


if __name__ == "__main__":
    unittest.main()

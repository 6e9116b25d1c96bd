# tests/e2e/test_readme.py - every example in README.md runs, and says what the README says.
"""Each fenced block of README.md carries a marker on the line before it:
    <!-- readme-test: run NAME -->      this test runs it (one test method per NAME)
    <!-- readme-test: not run: WHY -->  it cannot run here; WHY names what covers it instead
A block without a marker, or a `run` block no test claims, fails the suite.

Shell blocks run line by line (continuations joined) with `fstore` on PATH, in a temporary
directory's paths and on free 127.0.0.1 ports: /tmp/fs, /var/lib/fstore/* and /var/lib/nats move
under the test's directory; 6566/6567 (gRPC), 8080/8081 (HTTP) and 4222 (NATS) become free
ports. `fstore serve` and `nats-server` lines start in the background and are waited for. The
`#   ` lines after a command are its expected output: every piece between `...` must appear in
what it printed (whitespace squeezed); `# exit N` on a command is its expected exit status.
Python blocks run with the stubs and the client on the path; a line `EXPR  # VALUE` whose comment
starts with a Python literal asserts EXPR == VALUE (floats to 1e-6).
"""
import ast
import contextlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BINARY_DIR, free_port

ROOT = os.environ.get("FSTORE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
README = os.path.join(ROOT, "README.md")
PY = "/usr/bin/python3"


def blocks():
    """[(marker, lang, [lines])] for every fenced block, in order."""
    out = []
    lines = slurp(README).split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if m and m.group(1):
            marker = None
            if i > 0:
                mm = re.match(r"^<!-- readme-test: (.*) -->$", lines[i - 1])
                marker = mm.group(1) if mm else None
            j = i + 1
            while j < len(lines) and lines[j] != "```":
                j += 1
            out.append((marker, m.group(1), lines[i + 1:j], i + 1))
            i = j + 1
            continue
        i += 1
    return out


def block(name):
    for marker, lang, body, _ in blocks():
        if marker == "run " + name:
            return lang, body
    raise AssertionError("README.md has no block marked 'run %s'" % name)


def commands(body):
    """[(command, [expected lines], expected exit)] from a shell block."""
    cmds = []
    cur = None
    for line in body:
        if line.startswith("#   "):
            if cmds:
                cmds[-1][1].append(line[4:])
            continue
        if line.startswith("#") or not line.strip():
            continue
        if cur is not None:
            cur += "\n" + line
        else:
            cur = line
        if cur.endswith("\\"):
            continue
        m = re.search(r"#\s*exit (\d+)", cur)
        cmds.append((cur, [], int(m.group(1)) if m else 0))
        cur = None
    return cmds


def slurp(path):
    with open(path) as f:
        return f.read()


def squeeze(s):
    return re.sub(r"\s+", " ", s).strip()


def wait_port(port, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def approx_equal(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(approx_equal(x, y) for x, y in zip(a, b))
    return a == b


class Readme(unittest.TestCase):
    """Runs the README's blocks in the order a reader would: the walk-through's server stays up
    for the client examples that follow it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fstore-readme-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.bin = os.path.join(cls.tmp, "bin")
        os.makedirs(cls.bin)
        os.symlink(os.path.abspath(os.path.join(BINARY_DIR, "fstore")), os.path.join(cls.bin, "fstore"))
        cls.ports = {"6566": free_port(), "6567": free_port(), "8080": free_port(),
                     "8081": free_port(), "4222": free_port()}
        cls.procs = []
        cls.addClassCleanup(cls.stop_all)

    @classmethod
    def stop_all(cls):
        for p in cls.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        cls.procs = []

    def env(self):
        env = dict(os.environ)
        env["PATH"] = self.bin + os.pathsep + env.get("PATH", "")
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(BINARY_DIR, "python"),
                                             os.path.join(ROOT, "clients", "python")])
        env["FSTORE_PY_STUBS"] = os.path.join(BINARY_DIR, "python")
        # A serve line without --http-listen must not take 8080 on the test machine.
        env["FSTORE_HTTP_LISTEN"] = "127.0.0.1:%d" % self.ports["8080"]
        env.pop("SAGEMAKER_BIND_TO_PORT", None)
        return env

    def localize(self, text):
        text = text.replace("/tmp/fs", os.path.join(self.tmp, "fs"))
        text = re.sub(r"/var/lib/fstore/(\w+)", lambda m: os.path.join(self.tmp, "var", m.group(1)),
                      text)
        text = text.replace("/var/lib/nats", os.path.join(self.tmp, "nats"))
        for port, free in self.ports.items():
            text = re.sub(r"(?<![\d.])%s(?!\d)" % port, str(free), text)
        text = re.sub(r"\bnats-server -js\b", "nats-server -a 127.0.0.1 -p %d -js" %
                      self.ports["4222"], text)
        text = text.replace("\u2026", "...")
        return text

    def run_block(self, name):
        lang, body = block(name)
        self.assertEqual(lang, "sh")
        for cmd, expected, rc in commands(body):
            cmd = self.localize(cmd)
            with self.subTest(command=cmd.splitlines()[0]):
                first = cmd.split()[0]
                if (first == "fstore" and cmd.split()[1] == "serve") or first == "nats-server":
                    self.background(cmd)
                    continue
                out = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=self.env(),
                                     capture_output=True, text=True, timeout=300)
                got = out.stdout + out.stderr
                self.assertEqual(out.returncode, rc, "%s\n%s" % (cmd, got))
                for want in expected:
                    want = re.sub(r"\s{2,}\(.*\)$", "", want)  # a trailing aside
                    for piece in squeeze(want).split("..."):
                        piece = piece.strip()
                        if piece:
                            self.assertIn(piece, squeeze(got), "%s: expected '%s'" % (cmd, want))

    def background(self, cmd):
        with open(os.path.join(self.tmp, "bg-%d.log" % len(self.procs)), "w") as log:
            p = subprocess.Popen(["bash", "-c", "exec " + cmd], cwd=ROOT, env=self.env(),
                                 stdout=log, stderr=subprocess.STDOUT)
        type(self).procs.append(p)
        m = re.search(r"--listen 127\.0\.0\.1:(\d+)", cmd) or re.search(r"-p (\d+)", cmd)
        port = int(m.group(1))
        self.assertTrue(wait_port(port), "%s never listened:\n%s" % (cmd, slurp(log.name)))
        if cmd.startswith("fstore"):
            self.wait_serving(port, log.name)

    def wait_serving(self, port, log):
        end = time.monotonic() + 60
        while time.monotonic() < end:
            out = subprocess.run(["fstore", "status", "--listen", "127.0.0.1:%d" % port],
                                 env=self.env(), capture_output=True, text=True, timeout=30)
            if "SERVING" in out.stdout and "NOT_SERVING" not in out.stdout:
                return
            if out.returncode == 0 and "ready" in out.stdout:
                return
            time.sleep(0.1)
        self.fail("fstore on %d never served:\n%s" % (port, slurp(log)))

    def run_python(self, name, extra_env=None):
        lang, body = block(name)
        self.assertEqual(lang, "python")
        src = []
        for line in body:
            m = re.match(r"^(\s*)(.*?\S)\s+#\s*(.*)$", line)
            if m and not m.group(2).startswith(("import", "from")) and "=" not in m.group(2):
                lit = re.match(r"^(\[[^\]]*\]|'[^']*'|\"[^\"]*\"|-?[\d.]+|None|True|False)",
                               m.group(3))
                if lit:
                    try:
                        ast.literal_eval(lit.group(1))
                        src.append("%s_check(%s, %s)" % (m.group(1), m.group(2), lit.group(1)))
                        continue
                    except (ValueError, SyntaxError):
                        pass
            src.append(line)
        code = ("import math\n"
                "def _eq(a, b):\n"
                "    if isinstance(a, float) or isinstance(b, float):\n"
                "        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6)\n"
                "    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):\n"
                "        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b))\n"
                "    return a == b\n"
                "def _check(got, want):\n"
                "    got = list(got) if not isinstance(got, (str, bytes, int, float)) and got is not None else got\n"
                "    assert _eq(got, want), 'README says %r, got %r' % (want, got)\n" +
                self.localize("\n".join(src)))
        env = self.env()
        env.update(extra_env or {})
        out = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(out.returncode, 0, "%s\n%s%s" % (code, out.stdout, out.stderr))
        return out.stdout

    # The blocks, in README order (unittest runs methods alphabetically: hence the numbers).

    def test_00_every_block_is_marked_and_every_run_block_is_claimed(self):
        claimed = {"top", "paths", "walkthrough", "example-script", "python-client", "http-feast",
                   "on-demand",
                   "http-predict", "replication", "models-yaml", "predict-python",
                   "container", "kustomize", "offline", "offline-python", "offline-cli",
                   "pit-sql"}  # container: tests/deploy/test_container.py; pit-sql:
        # tests/e2e/test_cdc.py (it needs PostgreSQL)
        for marker, lang, _, line in blocks():
            self.assertIsNotNone(marker, "README.md:%d: a %s block without a readme-test "
                                         "marker" % (line, lang or "plain"))
            if marker.startswith("run "):
                self.assertIn(marker[4:], claimed, "README.md:%d: no test runs '%s'" %
                              (line, marker))
            else:
                self.assertRegex(marker, r"^not run: .*tests/", "README.md:%d: a block not run "
                                 "must name the test that covers it" % line)

    def test_01_walkthrough_then_clients_against_its_server(self):
        self.run_block("walkthrough")
        out = subprocess.run([PY] + self.localize(
            " ".join(block("example-script")[1][0].split()[1:])).split(),
            cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("feature service driver_activity_v1:", out.stdout)
        self.run_python("python-client")
        self.run_block("http-feast")
        self.run_block("on-demand")
        self.run_block("http-predict")
        self.run_python("predict-python")
        self.stop_all()

    def test_02_models_yaml_is_a_valid_binding_of_the_example_catalog(self):
        lang, body = block("models-yaml")
        self.assertEqual(lang, "yaml")
        cat = os.path.join(self.tmp, "catalog")
        shutil.copytree(os.path.join(ROOT, "examples", "catalog"), cat)
        services = slurp(os.path.join(cat, "services.yaml"))
        # The README's bindings replace the example's.
        services = services[:services.index("\nmodels:")] + "\n" + "\n".join(body) + "\n"
        with open(os.path.join(cat, "services.yaml"), "w") as f:
            f.write(services)
        out = subprocess.run(["fstore", "validate", "--catalog", cat], env=self.env(),
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("3 models", out.stdout)

    def test_03_replication(self):
        if shutil.which("nats-server") is None:
            self.skipTest("nats-server is not installed")
        self.run_block("replication")
        self.stop_all()

    def test_07_offline_serving(self):
        self.run_block("offline")
        self.run_python("offline-python")
        self.run_block("offline-cli")
        self.stop_all()

    def test_05_paths_put_fstore_and_the_python_client_on_the_path(self):
        lang, body = block("paths")
        script = "set -e\n" + "\n".join(c for c, _, _ in commands(body)) + (
            "\ncommand -v fstore\n/usr/bin/python3 -c 'import fstore_client, sys; "
            "print(fstore_client.__file__)'\n")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        out = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=1200)
        self.assertEqual(out.returncode, 0, out.stdout[-3000:] + out.stderr[-3000:])
        lines = out.stdout.strip().splitlines()
        self.assertEqual(lines[-2], os.path.join(ROOT, "build", "release", "fstore"))
        self.assertEqual(lines[-1], os.path.join(ROOT, "clients", "python", "fstore_client.py"))

    @unittest.skipIf(shutil.which("kubectl") is None, "kubectl is not installed")
    def test_06_kustomize_renders_what_apply_would_send(self):
        self.run_block("kustomize")

    @contextlib.contextmanager
    def run_sh(self, env, log):
        """scripts/run.sh serving (its output in log) for the with block; stopped after it with
        SIGTERM, which must end it with status 0."""
        with open(log, "w") as f:
            p = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=f,
                                 stderr=subprocess.STDOUT)
        try:
            self.assertTrue(wait_port(self.ports["6567"], timeout=600), slurp(log))
            self.wait_serving(self.ports["6567"], log)
            yield p
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(60)
        self.assertEqual(rc, 0, slurp(log))

    def test_04_the_run_command(self):
        """scripts/run.sh on the test's build (its package installation already done)."""
        lang, body = block("top")
        self.assertEqual([l.split()[0:2] for l in body], [["bash", "scripts/run.sh"],
                                                          ["bash", "scripts/test.sh"]])
        env = self.env()
        env.update({"FSTORE_RUN_PRESET": os.path.basename(BINARY_DIR), "FSTORE_RUN_SKIP_DEPS": "1",
                    "FSTORE_DATA_DIR": os.path.join(self.tmp, "run-data"),
                    "FSTORE_LISTEN": "127.0.0.1:%d" % self.ports["6567"],
                    "FSTORE_HTTP_LISTEN": "127.0.0.1:%d" % self.ports["8081"]})
        log = os.path.join(self.tmp, "run.log")
        with self.run_sh(env, log):
            out = subprocess.run([PY, "examples/python/get_features.py",
                                  "127.0.0.1:%d" % self.ports["6567"]], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            curl = subprocess.run(["curl", "-s", "-X", "POST", "http://127.0.0.1:%d/get-online-"
                                   "features" % self.ports["8081"], "-d",
                                   '{"feature_service": "driver_activity_v1", '
                                   '"entities": {"driver_id": [1001]}}'],
                                  capture_output=True, text=True, timeout=60)
            self.assertIn('"PRESENT"', curl.stdout)
            write = subprocess.run([PY, "-c", "from fstore_client import FeatureStoreClient as C\n"
                                    "with C('127.0.0.1:%d') as c: c.write_features("
                                    "'driver_realtime_stats', {'driver_id': [1001], "
                                    "'trips_today': [77]})" % self.ports["6567"]],
                                   env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(write.returncode, 0, write.stderr)
        text = slurp(log)
        self.assertIn("fstore is serving the example catalog", text)
        self.assertIn("driver_id=1001", text)

        # A second start keeps what was written since: the sample rows are not loaded again.
        with self.run_sh(env, log):
            read = subprocess.run([PY, "-c", "from fstore_client import FeatureStoreClient as C\n"
                                   "with C('127.0.0.1:%d') as c: print(c.get_online_features("
                                   "features=['driver_realtime_stats:trips_today'], entities="
                                   "{'driver_id': [1001]})['trips_today'])" % self.ports["6567"]],
                                  env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(read.stdout.strip(), "[77]", read.stderr)
        self.assertIn("sample rows not loaded again", slurp(log))


if __name__ == "__main__":
    unittest.main()

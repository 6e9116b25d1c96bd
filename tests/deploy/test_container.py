# tests/deploy/test_container.py - the image builds and runs, the rendered manifests run, and the
# README's container example does what it says.
"""Runs scripts/container-smoke.sh (a debootstrapped base when there is none yet, the image from
the Dockerfile, --help, its libraries, gRPC health, and the rendered single-node pod under
`podman kube play` with a write and a read), then the README's `container` block line by line
against that image, on free loopback ports and under names of its own. Skipped where podman
cannot run containers (the script's exit status 77)."""
import os
import re
import subprocess
import sys
import time
import unittest
import uuid

ROOT = os.environ.get("FSTORE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY_DIR = os.environ.get("FSTORE_BINARY_DIR", os.path.join(ROOT, "build", "asan"))
# test_readme's block parser, and what it imports (the e2e harness, the client and its stubs).
sys.path[:0] = [os.path.join(ROOT, "tests", "e2e"), os.path.join(ROOT, "clients", "python"),
                os.path.join(BINARY_DIR, "python")]
from free_port import free_port  # noqa: E402
from test_readme import block, commands, squeeze  # noqa: E402

IMAGE = os.environ.get("IMAGE", "fstore:ctest")


class Container(unittest.TestCase):
    def test_the_image_and_the_readme_container_example(self):
        smoke = subprocess.run(["bash", os.path.join(ROOT, "scripts", "container-smoke.sh")],
                               env=dict(os.environ, MAKE_BASE="auto", IMAGE=IMAGE),
                               capture_output=True, text=True, timeout=1400)
        if smoke.returncode == 77:
            self.skipTest(smoke.stdout.strip().splitlines()[-1])
        self.assertEqual(smoke.returncode, 0, smoke.stdout[-4000:] + smoke.stderr[-4000:])
        self.assertIn("OK: %s builds, runs --help, links all libraries and serves gRPC health"
                      % IMAGE, smoke.stdout)
        if "SKIP: kubectl is not installed" not in smoke.stdout:
            self.assertIn("OK: the rendered pod runs under its restricted security context, "
                          "serves health, writes and reads; the loading Job loads the example "
                          "rows into it; the gc CronJob sweeps it", smoke.stdout)

        lang, body = block("container")
        tag = "fstore-readme-" + uuid.uuid4().hex[:8]
        grpc_port, http_port = free_port(), free_port()
        # The README names fstore:0.1.0, container `fstore`, volume `fstore-data`, ports 6566
        # and 8080: this runs it under names and ports no one else on the machine uses.
        subst = [(r"\bfstore:dev\b", IMAGE), (r"\bfstore:0\.1\.0\b", tag + ":0.1.0"),
                 (r"--name fstore\b", "--name " + tag), (r"podman stop fstore\b", "podman stop " + tag),
                 (r"podman rm -f fstore\b", "podman rm -f " + tag),
                 (r"\bfstore-data\b", tag + "-data"), (r"127\.0\.0\.1:6566", "127.0.0.1:%d" % grpc_port),
                 (r"127\.0\.0\.1:8080", "127.0.0.1:%d" % http_port)]
        self.addCleanup(subprocess.run, "podman rm -f %s; podman volume rm -f %s-data; "
                        "podman rmi %s:0.1.0" % (tag, tag, tag), shell=True,
                        capture_output=True)
        ran = 0
        for cmd, expect, code in commands(body):
            if "container-smoke.sh" in cmd:
                continue  # it just ran, above
            for pat, rep in subst:
                cmd = re.sub(pat, rep, cmd)
            # A person types the next line a moment after the server started: retry a probe
            # until the server answers (at most 60 s).
            deadline = time.monotonic() + (60 if cmd.startswith("curl") else 0)
            while True:
                out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                                     timeout=300)
                if out.returncode == code and all(squeeze(e) in squeeze(out.stdout)
                                                  for e in expect) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            self.assertEqual(out.returncode, code, "%s\n%s%s" % (cmd, out.stdout, out.stderr))
            for e in expect:
                self.assertIn(squeeze(e), squeeze(out.stdout), cmd)
            ran += 1
        self.assertGreaterEqual(ran, 4)


if __name__ == "__main__":
    unittest.main()

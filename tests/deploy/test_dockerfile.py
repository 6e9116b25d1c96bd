# tests/deploy/test_dockerfile.py - the image's runtime stage has what the binary and SageMaker need.
"""Static checks of the Dockerfile against the binary built here (the image build itself needs
podman and a debootstrapped base): every shared library fstore links comes from a package the
runtime stage installs; SageMaker's bind-to-port label and both ports are declared; the
entrypoint runs `fstore serve`, which is what SageMaker's `docker run IMAGE serve` starts."""
import os
import re
import subprocess
import unittest

ROOT = os.environ.get("FSTORE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.path.join(os.environ.get("FSTORE_BINARY_DIR", os.path.join(ROOT, "build", "asan")),
                      "fstore")
# In every Debian image, or only in the sanitizer build the tests run (libatomic comes with its
# longer gRPC link line).
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "libasan8", "libubsan1", "libatomic1"}


def runtime_stage():
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = f.read()
    text = text.replace("\\\n", " ")
    stages = re.split(r"^FROM ", text, flags=re.M)
    return stages[-1]


def installed_packages(stage):
    pkgs = set()
    for m in re.finditer(r"apt-get install ([^&]*)", stage):
        pkgs.update(w for w in m.group(1).split() if not w.startswith("-"))
    return pkgs


def linked_packages(binary):
    """{library: the Debian package that owns it} for every library the binary loads."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = dict(re.findall(r"^\s*(\S+) => (/\S+)", out, flags=re.M))
    # dpkg knows files by the path their package ships (/lib or /usr/lib, merged or not).
    paths = set()
    for p in libs.values():
        real = os.path.realpath(p)
        for q in (p, real):
            paths.update({q, q.replace("/usr/lib/", "/lib/", 1), q.replace("/lib/", "/usr/lib/", 1)})
    q = subprocess.run(["dpkg", "-S"] + sorted(paths), capture_output=True, text=True)
    owner = {}
    for line in q.stdout.splitlines():
        pkg, _, path = line.partition(": ")
        owner[path] = pkg.split(":")[0]
    found = {}
    for lib, p in libs.items():
        real = os.path.realpath(p)
        cands = [owner.get(x) for x in (p, real, p.replace("/usr/lib/", "/lib/", 1),
                                        p.replace("/lib/", "/usr/lib/", 1),
                                        real.replace("/usr/lib/", "/lib/", 1),
                                        real.replace("/lib/", "/usr/lib/", 1))]
        found[lib] = next((c for c in cands if c), None)
    return found


def dependency_closure(pkgs):
    """The packages apt installs for pkgs (their Depends and PreDepends, recursively)."""
    out = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                          "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] +
                         sorted(pkgs), capture_output=True, text=True).stdout
    closure = set(pkgs)
    for line in out.splitlines():
        if not line.startswith(" "):
            closure.add(line.strip().split(":")[0])
        else:
            m = re.match(r"\s+\|?(?:Pre)?Depends: <?([^>\s:]+)", line)
            if m:
                closure.add(m.group(1))
    return closure


class Dockerfile(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(BINARY):
            self.skipTest("no fstore binary at %s" % BINARY)
        self.stage = runtime_stage()

    def test_every_linked_library_is_installed_in_the_runtime_stage(self):
        have = installed_packages(self.stage)
        self.assertIn("libgrpc29", have, self.stage)
        closure = dependency_closure(have)
        for lib, pkg in linked_packages(BINARY).items():
            with self.subTest(lib=lib):
                self.assertIsNotNone(pkg, "no Debian package owns %s" % lib)
                if pkg in BASE_PACKAGES:
                    continue
                self.assertIn(pkg, closure, "%s (%s) is not installed by the runtime stage" %
                              (lib, pkg))

    def test_sagemaker_contract(self):
        self.assertRegex(self.stage,
                         r'LABEL\s+com\.amazonaws\.sagemaker\.capabilities\.'
                         r'accept-bind-to-port=true')
        ports = set(re.findall(r"^EXPOSE\s+(.*)$", self.stage, flags=re.M)[0].split())
        self.assertEqual(ports, {"6566", "8080"})
        self.assertIn('ENTRYPOINT ["/usr/local/bin/fstore"]', self.stage)
        self.assertIn('CMD ["serve"]', self.stage)

    def test_small_and_safe(self):
        # Non-root; no image VOLUME (an anonymous volume left behind by every `podman run`);
        # no HEALTHCHECK (probes belong to the orchestrator); exec-form entrypoint, so fstore is
        # PID 1 and gets SIGTERM itself.
        self.assertRegex(self.stage, r"(?m)^USER 10001:10001$")
        self.assertNotRegex(self.stage, r"(?m)^VOLUME")
        self.assertNotRegex(self.stage, r"(?m)^HEALTHCHECK")
        self.assertRegex(self.stage, r'(?m)^ENTRYPOINT \[')
        # The build stage installs the build packages only, and the catalog it ships exists.
        with open(os.path.join(ROOT, "Dockerfile")) as f:
            text = f.read()
        self.assertIn("install-deps.sh --build-only", text)
        for src in re.findall(r"COPY --from=build /src/(\S+)", text):
            if not src.startswith("build/"):
                self.assertTrue(os.path.exists(os.path.join(ROOT, src)), src)
        with open(os.path.join(ROOT, ".dockerignore")) as f:
            self.assertIn("build", f.read().split())


if __name__ == "__main__":
    unittest.main()

# tests/deploy/test_kubernetes.py - the Kubernetes manifests render and say what the README says.
"""kubectl kustomize renders deploy/kubernetes (one node) and deploy/kubernetes/replicated (NATS
JetStream and three replicas); the rendered objects are checked for what the deployment story
promises. Skipped, with a message, where kubectl is not installed."""
import os
import shutil
import subprocess
import tempfile
import unittest

import yaml

ROOT = os.environ.get("FSTORE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
KUBECTL = shutil.which("kubectl")


def render(path):
    out = subprocess.run([KUBECTL, "kustomize", os.path.join(ROOT, path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise AssertionError("no %s %s" % (kind, name))


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@unittest.skipIf(KUBECTL is None, "kubectl is not installed: manifests not rendered")
class KubernetesTest(unittest.TestCase):
    def test_the_default_is_one_node_without_nats(self):
        docs = render("deploy/kubernetes")
        sts = find(docs, "StatefulSet", "fstore")
        self.assertEqual(sts["spec"]["replicas"], 1)
        c = sts["spec"]["template"]["spec"]["containers"][0]
        self.assertNotIn("FSTORE_REPLICATION", env_of(c))
        self.assertFalse(any(d["kind"] == "StatefulSet" and d["metadata"]["name"] == "nats"
                             for d in docs))
        for d in docs:
            if d["kind"] != "Namespace":
                self.assertEqual(d["metadata"].get("namespace"), "fstore", d["metadata"])

    def test_the_replicated_overlay_runs_three_replicas_on_an_r3_stream(self):
        docs = render("deploy/kubernetes/replicated")
        for d in docs:
            if d["kind"] != "Namespace":
                self.assertEqual(d["metadata"].get("namespace"), "fstore", d["metadata"])
        sts = find(docs, "StatefulSet", "fstore")
        self.assertEqual(sts["spec"]["replicas"], 3)
        c = sts["spec"]["template"]["spec"]["containers"][0]
        env = env_of(c)
        urls = env["FSTORE_REPLICATION"].split(",")
        self.assertEqual(len(urls), 3)
        self.assertEqual(env["FSTORE_STREAM_REPLICAS"], "3")
        self.assertEqual(env["FSTORE_BOOTSTRAP_FROM"], "fstore-headless:6566")
        # Readiness is the default health service (caught up), liveness the "liveness" one.
        self.assertNotIn("service", c["readinessProbe"]["grpc"])
        self.assertEqual(c["livenessProbe"]["grpc"]["service"], "liveness")
        self.assertEqual(c["startupProbe"]["grpc"]["service"], "liveness")
        # Every flag set from the environment is one fstore serve knows.
        help_flags = subprocess.run(
            [os.path.join(os.environ.get("FSTORE_BINARY_DIR", ROOT + "/build/asan"), "fstore"),
             "serve", "--help"], capture_output=True, text=True).stdout
        for name in env:
            flag = "--" + name[len("FSTORE_"):].lower().replace("_", "-")
            self.assertIn(flag, help_flags, name)

        nats = find(docs, "StatefulSet", "nats")
        self.assertEqual(nats["spec"]["replicas"], 3)
        self.assertEqual(nats["spec"]["serviceName"], "nats-headless")
        self.assertTrue(nats["spec"]["volumeClaimTemplates"])
        for u in urls:
            host = u.split("//")[1].split(":")[0]
            self.assertRegex(host, r"^nats-[0-2]\.nats-headless$")
        headless = find(docs, "Service", "nats-headless")
        self.assertEqual(headless["spec"]["clusterIP"], "None")
        hpa = find(docs, "HorizontalPodAutoscaler", "fstore")
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["kind"], "StatefulSet")
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], "fstore")
        self.assertGreaterEqual(hpa["spec"]["minReplicas"], 3)
        find(docs, "PodDisruptionBudget", "nats")

        # The NATS config is one nats-server accepts.
        conf = find(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write(conf)
        self.addCleanup(os.unlink, f.name)
        server = shutil.which("nats-server")
        if server:
            out = subprocess.run([server, "-t", "-c", f.name], capture_output=True, text=True,
                                 env=dict(os.environ, POD_NAME="nats-0"), timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("nats://nats-2.nats-headless:6222", conf)


if __name__ == "__main__":
    unittest.main()

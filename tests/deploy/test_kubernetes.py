# tests/deploy/test_kubernetes.py - the Kubernetes manifests render, validate and say what the
# README says.
"""kubectl kustomize renders every overlay of deploy/kubernetes: single (the default, one node)
and replicated (NATS JetStream and three replicas). Every rendered object is validated against
the Kubernetes OpenAPI schema by kubernetes-models (npm, installed into the build tree from
tests/deploy/package-lock.json), every pod template is checked against Pod Security's
"restricted" profile, and the objects are checked for what the deployment story promises.
Skipped, with a message, where kubectl (or node and npm, for the schema check) is missing."""
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

ROOT = os.environ.get("FSTORE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY_DIR = os.environ.get("FSTORE_BINARY_DIR", os.path.join(ROOT, "build", "asan"))
FSTORE = os.path.join(BINARY_DIR, "fstore")
KUBECTL = shutil.which("kubectl")
NODE, NPM = shutil.which("node"), shutil.which("npm")
OVERLAYS = ("deploy/kubernetes", "deploy/kubernetes/single", "deploy/kubernetes/replicated",
            "deploy/kubernetes/load-example", "deploy/kubernetes/secured")
POD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
# Pod Security "restricted" (Kubernetes 1.25+): the volume types it allows.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


@functools.lru_cache(maxsize=None)
def rendered(path):
    """kubectl kustomize's output for path, once per run."""
    out = subprocess.run([KUBECTL, "kustomize", os.path.join(ROOT, path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def render(path):
    """The rendered objects of path, parsed afresh: a test may change what it gets."""
    return [d for d in yaml.safe_load_all(rendered(path)) if d]


def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise AssertionError("no %s %s" % (kind, name))


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def pod_spec(obj):
    """The pod template's spec of a workload object (None for other kinds)."""
    if obj["kind"] not in POD_KINDS:
        return None
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def restricted_violations(spec):
    """What breaks Pod Security's "restricted" profile in one pod spec (plus fstore's own rule:
    a read-only root filesystem), as readable strings."""
    why = []
    psc = spec.get("securityContext", {})
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            why.append(host)
    for v in spec.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            why.append("volume %s: %s" % (v["name"], sorted(kinds)))
    containers = spec.get("initContainers", []) + spec["containers"]
    for c in containers:
        sc = c.get("securityContext", {})
        name = c["name"]
        if sc.get("privileged"):
            why.append("%s: privileged" % name)
        if sc.get("allowPrivilegeEscalation") is not False:
            why.append("%s: allowPrivilegeEscalation is not false" % name)
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            why.append("%s: capabilities do not drop ALL" % name)
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            why.append("%s: adds capabilities %s" % (name, caps["add"]))
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
            why.append("%s: runAsNonRoot is not true" % name)
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            why.append("%s: runs as uid 0" % name)
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            why.append("%s: seccompProfile is %s" % (name, seccomp))
        if sc.get("readOnlyRootFilesystem") is not True:
            why.append("%s: root filesystem is writable" % name)
        if c.get("ports") and any(p.get("hostPort") for p in c["ports"]):
            why.append("%s: hostPort" % name)
        res = c.get("resources", {})
        if not res.get("requests") or not res.get("limits", {}).get("memory"):
            why.append("%s: no resource requests or memory limit" % name)
    return why


class RestrictedCheckTest(unittest.TestCase):
    """The profile check itself finds what it must (it runs without kubectl)."""

    def test_it_names_each_violation(self):
        good = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"},
                                                           "limits": {"memory": "1Gi"}},
                                "securityContext": {"allowPrivilegeEscalation": False,
                                                    "readOnlyRootFilesystem": True,
                                                    "capabilities": {"drop": ["ALL"]}}}]}
        self.assertEqual(restricted_violations(good), [])
        for path, value, expect in [
                (("securityContext", "runAsNonRoot"), False, "runAsNonRoot"),
                (("securityContext", "seccompProfile"), {"type": "Unconfined"}, "seccompProfile"),
                (("containers", 0, "securityContext", "allowPrivilegeEscalation"), True,
                 "allowPrivilegeEscalation"),
                (("containers", 0, "securityContext", "capabilities"), {"drop": ["NET_RAW"]},
                 "drop ALL"),
                (("containers", 0, "securityContext", "readOnlyRootFilesystem"), False,
                 "writable"),
                (("hostNetwork",), True, "hostNetwork"),
                (("volumes",), [{"name": "h", "hostPath": {"path": "/"}}], "hostPath")]:
            bad = json.loads(json.dumps(good))
            node = bad
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
            found = restricted_violations(bad)
            self.assertTrue(any(expect in w for w in found), (path, found))


@unittest.skipIf(KUBECTL is None, "kubectl is not installed: manifests not rendered")
class SchemaTest(unittest.TestCase):
    """Every object of every overlay, against the Kubernetes OpenAPI schema."""

    @classmethod
    def setUpClass(cls):
        if NODE is None or NPM is None:
            raise unittest.SkipTest("node/npm are not installed: schema validation not run")
        cls.npm_dir = os.path.join(BINARY_DIR, "tests", "deploy", "npm")
        os.makedirs(cls.npm_dir, exist_ok=True)
        lock = os.path.join(ROOT, "tests", "deploy", "package-lock.json")
        stamp = os.path.join(cls.npm_dir, "node_modules", ".package-lock.json")
        if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
            for f in ("package.json", "package-lock.json"):
                shutil.copy(os.path.join(ROOT, "tests", "deploy", f), cls.npm_dir)
            out = subprocess.run([NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                 cwd=cls.npm_dir, capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                text = out.stdout + out.stderr
                if any(e in text for e in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT",
                                           "ENETUNREACH", "ECONNRESET")):
                    raise unittest.SkipTest("the npm registry is unreachable: schema validation "
                                            "not run (" + text.strip().splitlines()[-1] + ")")
                raise AssertionError("npm ci of tests/deploy/package-lock.json failed:\n" + text)

    def validate(self, docs):
        return subprocess.run([NODE, os.path.join(ROOT, "tests", "deploy", "validate.js")],
                              input=json.dumps(docs), capture_output=True, text=True,
                              cwd=self.npm_dir, timeout=120,
                              env=dict(os.environ, NODE_PATH=os.path.join(self.npm_dir,
                                                                          "node_modules")))

    def test_every_overlay_validates(self):
        for overlay in OVERLAYS:
            docs = render(overlay)
            out = self.validate(docs)
            self.assertEqual(out.returncode, 0, overlay + ":\n" + out.stdout + out.stderr)
            self.assertEqual(out.stdout.count("ok "), len(docs), out.stdout)

    def test_the_validator_refuses_a_broken_object(self):
        docs = render("deploy/kubernetes")
        sts = find(docs, "StatefulSet", "fstore")
        c = sts["spec"]["template"]["spec"]["containers"][0]
        c["ports"][0]["containerPort"] = "grpc"
        c["imagePullPolicy"] = "Sometimes"
        out = self.validate(docs)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("INVALID StatefulSet/fstore", out.stdout)
        self.assertIn("containerPort must be integer", out.stdout)
        self.assertIn("imagePullPolicy", out.stdout)


@unittest.skipIf(KUBECTL is None, "kubectl is not installed: manifests not rendered")
class KubernetesTest(unittest.TestCase):
    def test_the_default_is_one_node_without_nats(self):
        docs = render("deploy/kubernetes")
        self.assertEqual(docs, render("deploy/kubernetes/single"))
        sts = find(docs, "StatefulSet", "fstore")
        self.assertEqual(sts["spec"]["replicas"], 1)
        c = sts["spec"]["template"]["spec"]["containers"][0]
        self.assertNotIn("FSTORE_REPLICATION", env_of(c))
        self.assertFalse(any(d["kind"] == "StatefulSet" and d["metadata"]["name"] == "nats"
                             for d in docs))
        for d in docs:
            if d["kind"] != "Namespace":
                self.assertEqual(d["metadata"].get("namespace"), "fstore", d["metadata"])
        # One replica: a budget could only allow a full outage or block every drain.
        self.assertFalse([d for d in docs if d["kind"] == "PodDisruptionBudget"])

    def test_every_pod_template_meets_the_restricted_profile(self):
        for overlay in OVERLAYS:
            docs = render(overlay)
            specs = [(d["kind"] + "/" + d["metadata"]["name"], pod_spec(d)) for d in docs]
            specs = [(n, s) for n, s in specs if s is not None]
            self.assertTrue(specs, overlay)
            for name, spec in specs:
                self.assertEqual(restricted_violations(spec), [], "%s %s" % (overlay, name))
                self.assertIs(spec.get("automountServiceAccountToken"), False, name)

    def test_probes_readiness_means_data_liveness_means_process(self):
        for overlay in ("deploy/kubernetes/single", "deploy/kubernetes/replicated"):
            c = find(render(overlay), "StatefulSet", "fstore")["spec"]["template"]["spec"][
                "containers"][0]
            # Readiness is the default health service: SERVING once a catalog is applied (and,
            # replicated, the replica caught up); liveness and startup the "liveness" service.
            self.assertNotIn("service", c["readinessProbe"]["grpc"], overlay)
            self.assertEqual(c["livenessProbe"]["grpc"]["service"], "liveness", overlay)
            self.assertEqual(c["startupProbe"]["grpc"]["service"], "liveness", overlay)
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            self.assertEqual(ports, {"grpc": 6566, "http": 8080})

    def test_every_flag_set_from_the_environment_is_one_serve_knows(self):
        help_flags = subprocess.run([FSTORE, "serve", "--help"], capture_output=True,
                                    text=True).stdout
        self.assertIn("--catalog-watch-ms", help_flags)
        for overlay in ("deploy/kubernetes/single", "deploy/kubernetes/replicated",
                        "deploy/kubernetes/secured"):
            c = find(render(overlay), "StatefulSet", "fstore")["spec"]["template"]["spec"][
                "containers"][0]
            for name in env_of(c):
                flag = "--" + name[len("FSTORE_"):].lower().replace("_", "-")
                self.assertIn(flag, help_flags, (overlay, name))

    def test_the_catalog_configmap_holds_the_catalog_fstore_validates(self):
        for overlay in ("deploy/kubernetes/single", "deploy/kubernetes/replicated"):
            docs = render(overlay)
            cm = find(docs, "ConfigMap", "fstore-catalog")
            # Generated from the catalog's files, under a fixed name: a change reloads in place.
            base = os.path.join(ROOT, "deploy", "kubernetes", "base", "catalog")
            self.assertEqual(sorted(cm["data"]), sorted(os.listdir(base)))
            d = tempfile.mkdtemp()
            self.addCleanup(shutil.rmtree, d)
            for name, text in cm["data"].items():
                with open(os.path.join(base, name)) as f:
                    self.assertEqual(text, f.read(), name)
                with open(os.path.join(d, name), "w") as f:
                    f.write(text)
            out = subprocess.run([FSTORE, "validate", "--catalog", d], capture_output=True,
                                 text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            sts = find(docs, "StatefulSet", "fstore")
            spec = sts["spec"]["template"]["spec"]
            vols = {v["name"]: v for v in spec["volumes"]}
            self.assertEqual(vols["catalog"]["configMap"]["name"], "fstore-catalog")
            env = env_of(spec["containers"][0])
            self.assertEqual(env["FSTORE_CATALOG"], "/etc/fstore/catalog")
            self.assertGreater(int(env["FSTORE_CATALOG_WATCH_MS"]), 0)
        # examples/catalog is the same directory (what run.sh and the README use).
        self.assertEqual(os.path.realpath(os.path.join(ROOT, "examples", "catalog")),
                         os.path.realpath(base))

    def test_the_loading_job_sends_every_example_file_to_the_service(self):
        docs = render("deploy/kubernetes/load-example")
        job = find(docs, "Job", "fstore-load-example")
        spec = job["spec"]["template"]["spec"]
        self.assertIn(spec["restartPolicy"], ("OnFailure", "Never"))
        c = spec["containers"][0]
        self.assertEqual(env_of(c)["FSTORE_TARGET"], "fstore:6566")
        script = c["args"][0]
        self.assertIn("fstore ingest --target", script)
        self.assertIn("--catalog /etc/fstore/catalog", script)
        data_dir = os.path.join(ROOT, "deploy", "kubernetes", "load-example", "data")
        files = sorted(os.listdir(data_dir))
        views = [f[:-len(".csv")] for f in files]
        self.assertIn("for v in " + " ".join(views) + ";", script)
        vols = {v["name"]: v for v in spec["volumes"]}
        cm = find(docs, "ConfigMap", vols["data"]["configMap"]["name"])
        self.assertEqual(sorted(cm["data"]), sorted(v.replace("@", "_") + ".csv" for v in views))
        for f in files:
            with open(os.path.join(data_dir, f)) as fh:
                self.assertEqual(cm["data"][f.replace("@", "_")], fh.read(), f)
        self.assertEqual(vols["catalog"]["configMap"]["name"], "fstore-catalog")
        self.assertEqual(os.path.realpath(os.path.join(ROOT, "examples", "data")),
                         os.path.realpath(data_dir))
        # Every view it loads is in the catalog the servers mount.
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        catalog = find(render("deploy/kubernetes/single"), "ConfigMap", "fstore-catalog")["data"]
        for name, text in catalog.items():
            with open(os.path.join(d, name), "w") as fh:
                fh.write(text)
        for v in views:
            out = subprocess.run([FSTORE, "ingest", "--target", "127.0.0.1:1", "--catalog", d,
                                  "--view", v, os.path.join(data_dir, v + ".csv")],
                                 capture_output=True, text=True, timeout=60)
            # Checked whole against the catalog, then the (absent) server is called.
            self.assertIn("WriteFeatures", out.stderr, (v, out.stderr))

    def run_gc_script(self, container, failing=None):
        """Runs the CronJob's script with stand-ins for getent (three ready pods, one of them
        IPv6) and fstore (a call to an address in failing exits with its code there); returns
        (exit, targets)."""
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        calls = os.path.join(d, "calls")
        with open(os.path.join(d, "getent"), "w") as f:
            f.write("#!/bin/sh\nprintf '10.1.0.7 STREAM x\\n10.1.0.7 DGRAM\\nfd00::9 STREAM\\n"
                    "10.1.0.5 STREAM\\n'\n")
        with open(os.path.join(d, "fstore"), "w") as f:
            f.write('#!/bin/sh\necho "$3" >> %s\ncase "$3" in\n' % calls)
            for addr, code in (failing or {}).items():
                f.write("  '%s') exit %d;;\n" % (addr, code))
            f.write("esac\n")
        for name in ("getent", "fstore"):
            os.chmod(os.path.join(d, name), 0o755)
        env = dict(os.environ, PATH=d + ":" + os.environ["PATH"], **{
            k: v for k, v in env_of(container).items() if v is not None})
        p = subprocess.run(container["command"] + container["args"], env=env,
                           capture_output=True, text=True, timeout=60)
        if not os.path.exists(calls):
            return p.returncode, []
        with open(calls) as f:
            return p.returncode, f.read().split()

    def test_the_gc_cronjob_sweeps_every_single_pod_and_one_replica(self):
        # The single overlay's pods each hold their own store: each is called. The replicated
        # overlay's sweep goes through the log to every node: one ready pod is called, the next
        # only when one was unavailable (exit 3), never after another failure (that pod may have
        # published the sweep already).
        pods = ["10.1.0.5:6566", "10.1.0.7:6566", "[fd00::9]:6566"]
        for overlay in ("deploy/kubernetes/single", "deploy/kubernetes/replicated"):
            cron = find(render(overlay), "CronJob", "fstore-gc")
            self.assertEqual(cron["spec"]["concurrencyPolicy"], "Forbid")
            c = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
            env = env_of(c)
            self.assertEqual(env["FSTORE_GC_SERVICE"], "fstore-headless")
            self.assertEqual(env["FSTORE_GC_PORT"], "6566")
            self.assertIn('fstore gc --target "$t"', c["args"][0])
            if overlay.endswith("single"):
                self.assertEqual(self.run_gc_script(c), (0, pods))
                self.assertEqual(self.run_gc_script(c, failing={pods[1]: 1}), (1, pods))
                self.assertEqual(self.run_gc_script(c, failing={pods[0]: 3}), (1, pods))
            else:
                # Never retried: a failed call may have published its sweep already.
                job = cron["spec"]["jobTemplate"]["spec"]
                self.assertEqual(job["backoffLimit"], 0)
                self.assertEqual(job["template"]["spec"]["restartPolicy"], "Never")
                self.assertEqual(self.run_gc_script(c), (0, pods[:1]))
                self.assertEqual(self.run_gc_script(c, failing={pods[0]: 3, pods[1]: 3}),
                                 (0, pods))
                self.assertEqual(self.run_gc_script(c, failing={p: 3 for p in pods}), (3, pods))
                self.assertEqual(self.run_gc_script(c, failing={pods[0]: 1}), (1, pods[:1]))
            # The service it resolves lists the server pods, on the port the pods serve.
            svc = find(render(overlay), "Service", "fstore-headless")
            self.assertEqual(svc["spec"]["clusterIP"], "None")
            self.assertEqual(svc["spec"]["ports"][0]["port"], 6566)
        help_text = subprocess.run([FSTORE, "gc", "--help"], capture_output=True,
                                   text=True).stdout
        self.assertIn("--target", help_text)

    def test_images_are_set_in_one_place_per_overlay(self):
        for overlay in ("deploy/kubernetes/single", "deploy/kubernetes/replicated",
                        "deploy/kubernetes/load-example"):
            with open(os.path.join(ROOT, overlay, "kustomization.yaml")) as f:
                k = yaml.safe_load(f)
            self.assertEqual([i["name"] for i in k["images"]], ["fstore"], overlay)
            want = "%s:%s" % (k["images"][0]["newName"], k["images"][0]["newTag"])
            for d in render(overlay):
                spec = pod_spec(d)
                for c in (spec or {}).get("containers", []):
                    self.assertEqual(c["image"], want, (overlay, d["metadata"]["name"]))

    def test_the_namespace_enforces_the_restricted_profile(self):
        for overlay in ("deploy/kubernetes/single", "deploy/kubernetes/replicated"):
            labels = find(render(overlay), "Namespace", "fstore")["metadata"]["labels"]
            for mode in ("enforce", "warn", "audit"):
                self.assertEqual(labels["pod-security.kubernetes.io/" + mode], "restricted")

    def test_every_network_policy_lets_its_pods_reach_cluster_dns(self):
        # Exactly kube-dns, in any namespace: a selector that also asks for fstore's own labels
        # (kustomize adds them to matchLabels) matches no DNS pod, and nothing resolves.
        want = {"namespaceSelector": {},
                "podSelector": {"matchExpressions": [{"key": "k8s-app", "operator": "In",
                                                      "values": ["kube-dns"]}]}}
        for overlay in ("deploy/kubernetes/single", "deploy/kubernetes/replicated"):
            for pol in [d for d in render(overlay) if d["kind"] == "NetworkPolicy"]:
                if "Egress" not in pol["spec"]["policyTypes"] or pol["metadata"]["name"] == \
                        "fstore-to-nats":
                    continue
                dns = [r for r in pol["spec"]["egress"]
                       if {p["port"] for p in r["ports"]} == {53}]
                self.assertEqual(len(dns), 1, pol["metadata"]["name"])
                self.assertEqual(dns[0]["to"], [want], pol["metadata"]["name"])
                self.assertEqual(sorted(p["protocol"] for p in dns[0]["ports"]), ["TCP", "UDP"])

    def test_storage_and_network_policy(self):
        for overlay in ("deploy/kubernetes/single", "deploy/kubernetes/replicated"):
            docs = render(overlay)
            vct = find(docs, "StatefulSet", "fstore")["spec"]["volumeClaimTemplates"]
            self.assertEqual([v["metadata"]["name"] for v in vct], ["data"])
            self.assertEqual(vct[0]["spec"]["resources"]["requests"]["storage"], "20Gi")
            pol = find(docs, "NetworkPolicy", "fstore")
            self.assertEqual(pol["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
                             "server")
            self.assertEqual(sorted(pol["spec"]["policyTypes"]), ["Egress", "Ingress"])
            ports = {p["port"] for rule in pol["spec"]["ingress"] for p in rule["ports"]}
            self.assertEqual(ports, {6566, 8080})
            egress = {p["port"] for rule in pol["spec"]["egress"] for p in rule["ports"]}
            self.assertTrue({53, 6566} <= egress, egress)

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
        # The log has a retention, by age and by a size under JetStream's own file limit (past
        # which every publish would be refused).
        self.assertEqual(env["FSTORE_STREAM_MAX_AGE"], "7d")
        conf = find(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
        limit = re.search(r"max_file_store:\s*(\d+)([KMGT]B?)?\s*$", conf, re.M)
        self.assertIsNotNone(limit, conf)
        # NATS's config units: K, M, G, T are powers of 1000; KB, MB, GB, TB of 1024.
        unit = limit.group(2) or ""
        power = " KMGT".index(unit[:1] or " ")
        scale = (1024 if unit.endswith("B") else 1000) ** power
        self.assertLess(int(env["FSTORE_STREAM_MAX_BYTES"]), int(limit.group(1)) * scale)
        # The binary takes the overlay's settings (it then fails only to reach NATS).
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run([FSTORE, "serve", "--data-dir", d, "--catalog",
                                  os.path.join(ROOT, "examples", "catalog"),
                                  "--listen", "127.0.0.1:0", "--http-listen", "",
                                  "--connect-timeout-ms", "200"],
                                 env=dict(os.environ, **{k: v for k, v in env.items()
                                                         if k.startswith("FSTORE_STREAM_")},
                                          FSTORE_REPLICATION="nats://127.0.0.1:1"),
                                 capture_output=True, text=True, timeout=60)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("no NATS server answered", out.stderr)
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
        # Drains take one fstore node at a time, and there are at least three.
        pdb = find(docs, "PodDisruptionBudget", "fstore")
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        self.assertLess(pdb["spec"]["maxUnavailable"], hpa["spec"]["minReplicas"])
        # NATS takes clients from fstore pods only, and fstore pods may reach it.
        npol = find(docs, "NetworkPolicy", "nats")
        client = [r for r in npol["spec"]["ingress"] if r["ports"][0]["port"] == 4222][0]
        self.assertEqual(client["from"], [{"podSelector": {"matchLabels": {
            "app.kubernetes.io/component": "server", "app.kubernetes.io/name": "fstore"}}}])
        egress = find(docs, "NetworkPolicy", "fstore-to-nats")["spec"]["egress"]
        self.assertEqual(egress[0]["ports"][0]["port"], 4222)

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

def mounted_at(spec, container, path):
    """The pod volume whose mount in container holds path (None: none)."""
    for m in container.get("volumeMounts", []):
        if path.startswith(m["mountPath"].rstrip("/") + "/"):
            for v in spec["volumes"]:
                if v["name"] == m["name"]:
                    return v
    return None


@unittest.skipIf(KUBECTL is None, "kubectl is not installed: manifests not rendered")
class SecuredTest(unittest.TestCase):
    """deploy/kubernetes/secured: TLS, client certificates, tokens and service-account JWTs,
    checked in the rendered objects, then run: the real binary started with the StatefulSet's
    own environment (its mounted paths pointed at files made here), probed as the kubelet probes
    it, and swept by the gc CronJob's own command with a service-account JWT."""

    def setUp(self):
        docs = render("deploy/kubernetes/secured")
        self.sts = find(docs, "StatefulSet", "fstore")
        self.spec = self.sts["spec"]["template"]["spec"]
        self.c = self.spec["containers"][0]
        self.env = env_of(self.c)
        self.gc = find(docs, "CronJob", "fstore-gc")
        self.gc_spec = pod_spec(self.gc)
        self.gc_c = self.gc_spec["containers"][0]
        self.sa = find(docs, "ServiceAccount", "fstore-gc")

    def test_every_file_the_server_reads_is_a_mounted_secret_or_configmap(self):
        kinds = {"FSTORE_TLS_CERT": ("secret", "fstore-tls"),
                 "FSTORE_TLS_KEY": ("secret", "fstore-tls"),
                 "FSTORE_TLS_CLIENT_CA": ("secret", "fstore-tls"),
                 "FSTORE_TOKENS_FILE": ("secret", "fstore-tokens"),
                 "FSTORE_JWKS_FILE": ("configMap", "fstore-jwks")}
        for name, (kind, obj) in kinds.items():
            v = mounted_at(self.spec, self.c, self.env[name])
            self.assertIsNotNone(v, name)
            self.assertEqual(v[kind].get("secretName", v[kind].get("name")), obj, name)
        self.assertTrue(self.env["FSTORE_JWT_ISSUER"].startswith("https://"))
        # gRPC is TLS now: no gateway or mesh may take the port for cleartext h2c.
        svc = find(render("deploy/kubernetes/secured"), "Service", "fstore")
        grpc_port = [p for p in svc["spec"]["ports"] if p["name"] == "grpc"][0]
        self.assertEqual(grpc_port["appProtocol"], "https")
        # The kubelet's gRPC probe has no TLS: every probe is HTTPS, to routes open to probes.
        for probe, path in (("readinessProbe", "/ping"), ("livenessProbe", "/health"),
                            ("startupProbe", "/health")):
            self.assertNotIn("grpc", self.c[probe], probe)
            self.assertEqual(self.c[probe]["httpGet"],
                             {"port": 8080, "path": path, "scheme": "HTTPS"}, probe)

    def test_the_gc_cronjob_calls_with_its_own_service_account_token(self):
        self.assertEqual(self.gc_spec["serviceAccountName"], "fstore-gc")
        self.assertEqual(self.sa["metadata"]["namespace"], "fstore")
        gc_env = env_of(self.gc_c)
        v = mounted_at(self.gc_spec, self.gc_c, gc_env["FSTORE_TOKEN_FILE"])
        src = v["projected"]["sources"][0]["serviceAccountToken"]
        self.assertEqual(src["audience"], self.env["FSTORE_JWT_AUDIENCE"])
        self.assertEqual(gc_env["FSTORE_TOKEN_FILE"].rsplit("/", 1)[1], src["path"])
        self.assertIn("--tls-ca /etc/fstore/tls/ca.crt", self.gc_c["args"][0])

    @unittest.skipIf(shutil.which("openssl") is None or shutil.which("curl") is None,
                     "openssl or curl is not installed")
    def test_the_overlays_environment_serves_and_the_gc_cronjob_sweeps(self):
        import sys
        for path in (os.path.join(ROOT, "tests", "e2e"), os.path.join(ROOT, "clients", "python"),
                     os.path.join(BINARY_DIR, "python")):
            sys.path.insert(0, path)
        import jwt_tool
        from free_port import free_port
        from test_tls import make_ca, make_cert
        d = tempfile.mkdtemp(prefix="fstore-secured-")
        self.addCleanup(shutil.rmtree, d, True)
        make_ca(d, "ca")
        # The servers' certificate names the name the gc CronJob verifies.
        server_name = env_of(self.gc_c)["FSTORE_GC_SERVER_NAME"]
        make_cert(d, "ca", "server", "serverAuth", 1, san=",DNS:" + server_name)
        jwt_tool.make_keys(d)
        sa = "system:serviceaccount:%s:%s" % (self.sa["metadata"]["namespace"],
                                              self.sa["metadata"]["name"])
        files = {"FSTORE_TLS_CERT": os.path.join(d, "server.pem"),
                 "FSTORE_TLS_KEY": os.path.join(d, "server.key"),
                 "FSTORE_TLS_CLIENT_CA": os.path.join(d, "ca.pem"),
                 "FSTORE_TOKENS_FILE": os.path.join(d, "tokens"),
                 "FSTORE_JWKS_FILE": os.path.join(d, "jwks.json")}
        with open(files["FSTORE_TOKENS_FILE"], "w") as f:
            f.write("gc jwt:%s admin\n" % sa)
        port, http_port = free_port(), free_port()
        env = {k: v for k, v in self.env.items() if v is not None}
        env.update(files)
        env.update({"FSTORE_LISTEN": "127.0.0.1:%d" % port,
                    "FSTORE_HTTP_LISTEN": "127.0.0.1:%d" % http_port,
                    "FSTORE_DATA_DIR": os.path.join(d, "data"),
                    "FSTORE_CATALOG": os.path.join(ROOT, "deploy", "kubernetes", "base",
                                                   "catalog"),
                    "FSTORE_WORKERS": "2", "PATH": os.environ.get("PATH", "/usr/bin")})
        log = open(os.path.join(d, "log"), "w+")
        self.addCleanup(log.close)

        def logged():
            with open(log.name) as f:
                return f.read()[-2000:]
        p = subprocess.Popen([FSTORE] + self.c["args"], env=env, stdout=log,
                             stderr=subprocess.STDOUT)
        self.addCleanup(lambda: p.poll() is not None or (p.kill(), p.wait()))

        def probe(path):
            r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                                "https://127.0.0.1:%d%s" % (http_port, path)],
                               capture_output=True, text=True, timeout=30)
            return r.stdout

        import time
        deadline = time.monotonic() + 60
        while probe(self.c["readinessProbe"]["httpGet"]["path"]) != "200":
            self.assertIsNone(p.poll(), logged())
            self.assertLess(time.monotonic(), deadline, logged())
            time.sleep(0.2)
        self.assertEqual(probe(self.c["livenessProbe"]["httpGet"]["path"]), "200")
        # The CronJob's command, as its pod runs it, with a token as the kubelet projects it.
        tok = jwt_tool.sign(d, "RS256", "rsa1",
                            {"iss": self.env["FSTORE_JWT_ISSUER"], "sub": sa,
                             "aud": [self.env["FSTORE_JWT_AUDIENCE"]], "exp": "+3600"})
        os.makedirs(os.path.join(d, "sa"))
        with open(os.path.join(d, "sa", "token"), "w") as f:
            f.write(tok)
        script = self.gc_c["args"][0].replace("/etc/fstore/tls/ca.crt",
                                              os.path.join(d, "ca.pem"))
        gc_env = {k: v for k, v in env_of(self.gc_c).items() if v is not None}
        gc_env.update({"FSTORE_TOKEN_FILE": os.path.join(d, "sa", "token"),
                       "FSTORE_GC_SERVICE": "127.0.0.1", "FSTORE_GC_PORT": str(port),
                       "PATH": os.path.dirname(FSTORE) + ":" + os.environ.get("PATH", "")})
        r = subprocess.run(self.gc_c["command"] + [script], env=gc_env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("deleted", r.stdout)
        # Without the token: refused.
        with open(os.path.join(d, "sa", "token"), "w") as f:
            f.write(jwt_tool.sign(d, "RS256", "rsa1",
                                  {"iss": self.env["FSTORE_JWT_ISSUER"], "sub": sa,
                                   "aud": ["other"], "exp": "+3600"}))
        r = subprocess.run(self.gc_c["command"] + [script], env=gc_env, capture_output=True,
                           text=True, timeout=120)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("audience does not hold", r.stderr)
        p.terminate()
        self.assertEqual(p.wait(timeout=60), 0, logged())


if __name__ == "__main__":
    unittest.main()

# tests/e2e/test_integrity.py - damaged records on disk: a checksum on every record, checked on
# every read (INVALID, never a wrong value reported PRESENT), counted in /metrics, found by
# `fstore verify`, repaired by writing the rows again.
import os
import re
import subprocess
import tempfile
import unittest

from harness import FSTORE, Server

N = 1000
DAMAGED = [17, 400, 777]
FEATURES = ["customer_profile@v1:age", "customer_profile@v1:avatar", "derived:age_or_zero",
            "derived:stored_at"]
CATALOG = """
project: integrity
entities:
  - name: customer
    join_keys: [{name: customer_id, type: STRING}]
feature_views:
  - name: customer_profile
    entities: [customer]
    features:
      - {name: age, dtype: INT64}
      - {name: avatar, dtype: BYTES}
on_demand_feature_views:
  - name: derived
    sources: [customer_profile]
    features:
      - {name: age_or_zero, dtype: INT64, expression: "coalesce(age, 0) + 1"}
      - {name: stored_at, dtype: INT64, expression: "age(event_time(customer_profile))"}
"""


def marker(i):
    """Each row's avatar: bytes found once in the data file, so a test can damage that row."""
    return b"AVATAR-%06d-" % i + bytes(range(32, 96))


def ids(rows):
    return ["c%04d" % i for i in rows]


class Integrity(unittest.TestCase):
    def setUp(self):
        fd, path = tempfile.mkstemp(prefix="fstore-integrity-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(CATALOG)
        self.addCleanup(os.unlink, path)
        self.server = Server(catalog=path)
        self.addCleanup(self.server.cleanup)
        self.server.start()
        rows = list(range(N))
        self.assertEqual(self.server.client.write_features(
            "customer_profile@v1",
            {"customer_id": ids(rows), "age": [i % 100 for i in rows],
             "avatar": [marker(i) for i in rows]}), (N, 0))
        self.assertEqual(self.server.stop(), 0)

    def damage(self, rows):
        """Flips one bit in the middle of each row's avatar bytes, in the data file itself. A
        record read back without its checksum would be PRESENT with the wrong bytes."""
        path = self.server.data_dir + "/data.mdb"
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            for i in rows:
                m = marker(i)
                hits = [x.start() for x in re.finditer(re.escape(m), data)]
                self.assertTrue(hits, "row %d's bytes are in the file" % i)
                for at in hits:
                    data[at + len(m) // 2] ^= 0x01
            f.seek(0)
            f.write(data)

    def verify(self):
        return subprocess.run([FSTORE, "verify", "--data-dir", self.server.data_dir],
                              capture_output=True, text=True, timeout=60)

    def read_all(self):
        return self.server.client.get_online_features(features=FEATURES,
                                                      entities={"customer_id": ids(range(N))})

    def metric(self, name):
        v = self.server.metric(name)
        self.assertIsNotNone(v, name)
        return int(v)

    def test_damaged_rows_read_invalid_never_a_wrong_value_verify_finds_them_a_write_repairs(self):
        v = self.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("intact:", v.stdout)
        self.damage(DAMAGED)

        v = self.verify()
        self.assertEqual(v.returncode, 1, v.stdout + v.stderr)
        self.assertRegex(v.stdout, r"(?m)^customer_profile@v1 records=%d damaged=%d$" % (
            N, len(DAMAGED)))
        for i in DAMAGED:
            self.assertIn('(customer_id="c%04d")' % i, v.stdout)
        self.assertIn("DAMAGED: ", v.stdout)

        self.server.start()
        r = self.read_all()
        for i in range(N):
            if i in DAMAGED:
                # Nothing from a damaged record, nor computed from one (coalesce would have
                # made 1 of its null, the event time 1970).
                for name in ("avatar", "age", "age_or_zero", "stored_at"):
                    self.assertEqual(r.statuses[name][i], "INVALID", (name, i))
                    self.assertIsNone(r[name][i], (name, i))
            else:
                self.assertEqual(r.statuses["avatar"][i], "PRESENT", i)
                self.assertEqual(r["avatar"][i], marker(i), i)
                self.assertEqual(r["age"][i], i % 100, i)
                self.assertEqual(r["age_or_zero"][i], i % 100 + 1, i)
                self.assertEqual(r.statuses["stored_at"][i], "PRESENT", i)
        self.assertEqual(self.metric("fstore_store_damaged_records_total"), len(DAMAGED))
        events = self.server.events("record_damaged")
        self.assertTrue(events, "the damage is logged")
        self.assertEqual(events[0]["view"], "customer_profile")

        # Writing the rows again repairs them.
        self.server.client.write_features(
            "customer_profile@v1", {"customer_id": ids(DAMAGED), "age": [1] * len(DAMAGED),
                                    "avatar": [marker(i) for i in DAMAGED]})
        r = self.read_all()
        self.assertEqual(set(r.statuses["avatar"]), {"PRESENT"})
        self.assertEqual([r["avatar"][i] for i in DAMAGED], [marker(i) for i in DAMAGED])
        self.assertEqual(self.server.stop(), 0)
        v = self.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_verify_json_lists_each_databases_damaged_keys(self):
        self.damage(DAMAGED[:2])
        v = subprocess.run([FSTORE, "verify", "--data-dir", self.server.data_dir, "--json",
                            "--max-keys", "1"], capture_output=True, text=True, timeout=60)
        self.assertEqual(v.returncode, 1, v.stdout + v.stderr)
        import json
        doc = json.loads(v.stdout)
        self.assertFalse(doc["intact"])
        self.assertEqual(doc["damaged"], 2)
        rows = [d for d in doc["databases"] if d["database"] == "customer_profile@v1"][0]
        self.assertEqual((rows["records"], rows["damaged"]), (N, 2))
        # The key as stored: a STRING join key is its length (2 bytes) and its bytes.
        first = b"\x00\x05" + (b"c%04d" % DAMAGED[0])
        self.assertEqual(rows["damaged_keys"], [{"key_hex": first.hex(),
                                                 "key": 'customer_id="c%04d"' % DAMAGED[0]}],
                         "--max-keys 1: the first only")
        others = [d for d in doc["databases"] if d["database"] != "customer_profile@v1"]
        self.assertTrue(others and all(d["damaged"] == 0 and d["damaged_keys"] == []
                                       for d in others), others)


if __name__ == "__main__":
    unittest.main()

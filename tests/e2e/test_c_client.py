# tests/e2e/test_c_client.py - runs the C client test binary against a real server.
import os
import subprocess
import unittest

from harness import SANITIZER_RE, ServerTestCase


class CClient(ServerTestCase):
    def test_c_client_reads_writes_and_reports_status(self):
        binary = os.environ.get("E2E_C_CLIENT")
        self.assertTrue(binary and os.path.exists(binary), "E2E_C_CLIENT not built: %s" % binary)
        p = subprocess.run([binary, self.server.target], capture_output=True, text=True,
                           timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIsNone(SANITIZER_RE.search(p.stderr), p.stderr)
        self.assertIn("all checks passed", p.stdout)


if __name__ == "__main__":
    unittest.main()

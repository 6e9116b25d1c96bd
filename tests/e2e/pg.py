# tests/e2e/pg.py - a throwaway PostgreSQL cluster for a test: initdb and pg_ctl from Debian's
# postgresql package, in a temp dir, on a loopback port, as the postgres user (initdb refuses root).
"""    with Postgres() as pg:
           pg.sql("SELECT 1")        # -> [["1"]]
           pg.url                    # postgresql://postgres@127.0.0.1:PORT/postgres
"""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile

from free_port import free_port


def pg_bin():
    """The newest PostgreSQL's bin directory, or None when the package is not installed."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return dirs[-1] if dirs and os.path.exists(os.path.join(dirs[-1], "initdb")) else None


class Postgres:
    def __init__(self):
        self.bin = pg_bin()
        if self.bin is None or shutil.which("psql") is None:
            raise RuntimeError("PostgreSQL is not installed (apt install postgresql)")
        self.dir = tempfile.mkdtemp(prefix="fstore-pg-")
        self.port = free_port()
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port
        self.started = False

    def _as_postgres(self, args, **kw):
        if os.getuid() == 0:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, check=True, capture_output=True, text=True, **kw)

    def start(self):
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = os.path.join(self.dir, "data")
        self._as_postgres([os.path.join(self.bin, "initdb"), "-D", data, "-U", "postgres",
                           "-A", "trust", "--no-sync", "-E", "UTF8"])
        opts = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (self.port, self.dir)
        self._as_postgres([os.path.join(self.bin, "pg_ctl"), "-D", data, "-o", opts, "-w",
                           "-l", os.path.join(self.dir, "log"), "start"], timeout=60)
        self.started = True
        return self

    def stop(self):
        if self.started:
            self._as_postgres([os.path.join(self.bin, "pg_ctl"), "-D",
                               os.path.join(self.dir, "data"), "-m", "immediate", "-w", "stop"],
                              timeout=60)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, query):
        """Rows of a query, each a list of text cells (NULL as None)."""
        out = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                              "-A", "-t", "-F", "\x1f", "-R", "\x1d", "-P", "null=\x1e",
                              "-c", query],
                             check=True, capture_output=True, text=True, timeout=60)
        rows = []
        # Unusual separators, so that values may hold newlines and tabs.
        text = out.stdout[:-1] if out.stdout.endswith("\n") else out.stdout
        for record in text.split("\x1d") if text else []:
            rows.append([None if c == "\x1e" else c for c in record.split("\x1f")])
        return rows

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

#!/usr/bin/env bash
# scripts/mutate.sh - mutation testing: plants each mutant of tests/mutate/mutants.txt, one at a
# time, in a separate worktree of HEAD (never in this tree), rebuilds the asan preset there, runs
# the tests the mutant names, and counts it killed when they fail. Prints one line per mutant and
# "N mutants, K killed", with the survivors named; exit status 1 if any survived.
#
#   bash scripts/mutate.sh                  # every mutant (about a minute each on two cores)
#   bash scripts/mutate.sh bulk-tie ...     # the named ones
#
# Environment: MUTATE_DIR (the worktree; default ${TMPDIR:-/tmp}/fstore-mutate, reused between
# runs), JOBS (build and test jobs; default nproc). Not run in CI: too slow. Needs what
# scripts/test.sh needs (run it, or scripts/install-deps.sh, once).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${MUTATE_DIR:-${TMPDIR:-/tmp}/fstore-mutate}
jobs=${JOBS:-$(nproc)}

if [ -d "$work/.git" ] || [ -f "$work/.git" ]; then
  git -C "$work" checkout -q --detach "$(git rev-parse HEAD)"
  git -C "$work" reset -q --hard
else
  git worktree add -q --detach "$work" HEAD
fi
echo "mutate: worktree $work at $(git -C "$work" rev-parse --short HEAD); building the asan preset"
(cd "$work" && cmake --preset asan >/dev/null && cmake --build --preset asan -j"$jobs" >/dev/null)

exec /usr/bin/python3 - "$root/tests/mutate/mutants.txt" "$work" "$jobs" "$@" <<'PY'
import os, subprocess, sys, time

listing, work, jobs, only = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:])

mutants, cur = [], None
with open(listing) as f:
    for line in f:
        line = line.rstrip("\n")
        if line.startswith("== "):
            mid, _, what = line[3:].partition(": ")
            cur = {"id": mid, "what": what}
            mutants.append(cur)
        elif cur is not None and ":" in line and not line.startswith("#"):
            key, _, val = line.partition(": ")
            cur[key.rstrip(":")] = val.replace("\\n", "\n") if key in ("old", "new") else val
unknown = only - {m["id"] for m in mutants}
if unknown:
    sys.exit("mutate: no mutant %s in %s" % (", ".join(sorted(unknown)), listing))
if only:
    mutants = [m for m in mutants if m["id"] in only]

def run(cmd, log):
    with open(log, "w") as f:
        return subprocess.run(cmd, cwd=work, stdout=f, stderr=subprocess.STDOUT).returncode

killed, survivors, stillborn = 0, [], []
logdir = os.path.join(work, "mutate-logs")
os.makedirs(logdir, exist_ok=True)
for m in mutants:
    path = os.path.join(work, m["file"])
    with open(path) as f:
        src = f.read()
    n = src.count(m["old"])
    if n != 1:
        sys.exit("mutate: %s: 'old' occurs %d times in %s (the list is out of date)"
                 % (m["id"], n, m["file"]))
    t0 = time.monotonic()
    with open(path, "w") as f:
        f.write(src.replace(m["old"], m["new"]))
    try:
        log = os.path.join(logdir, m["id"] + ".log")
        if run(["cmake", "--build", "--preset", "asan", "-j", jobs], log) != 0:
            # A mutant the compiler refuses tests nothing: the list needs a better one.
            verdict = "STILLBORN (no build)"
            stillborn.append(m)
        elif run(["ctest", "--test-dir", "build/asan", "-R", m["tests"], "-j", jobs,
                  "--timeout", "600"], log) != 0:
            verdict = "killed"
            killed += 1
        else:
            verdict = "SURVIVED"
            survivors.append(m)
    finally:
        with open(path, "w") as f:
            f.write(src)
    print("%-28s %-24s %5.0f s  %s" % (m["id"], verdict, time.monotonic() - t0, m["what"]),
          flush=True)
subprocess.run(["cmake", "--build", "--preset", "asan", "-j", jobs], cwd=work,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("\n%d mutants, %d killed" % (len(mutants) - len(stillborn), killed)
      + (", %d stillborn (they do not build: fix the list)" % len(stillborn) if stillborn else ""))
for m in survivors:
    print("survived: %s (%s: %s; tests %s)" % (m["id"], m["file"], m["what"], m["tests"]))
for m in stillborn:
    print("stillborn: %s (%s)" % (m["id"], m["file"]))
sys.exit(1 if survivors or stillborn else 0)
PY

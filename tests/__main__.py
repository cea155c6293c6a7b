"""
Run every check of the project: ruff, mypy, towncrier, and the trial suite.

    python -m tests            (from the repository root, in the project's venv)

Ends with one line ``N passed, N failed`` where each trial test counts once and
each of ruff, mypy and towncrier counts as one more check.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

BIN = os.path.dirname(sys.executable)


def run(name: str, argv: list[str]) -> tuple[int, str]:
    print(f"==> {name}: {' '.join(argv)}", flush=True)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(proc.stdout)
    sys.stdout.flush()
    return proc.returncode, proc.stdout


def main() -> int:
    passed = failed = 0
    for name, argv in [
        ("ruff", [os.path.join(BIN, "ruff"), "check", "."]),
        ("mypy", [os.path.join(BIN, "mypy")]),
        ("towncrier", [os.path.join(BIN, "towncrier"), "build", "--draft", "--version", "next"]),
    ]:
        code, _ = run(name, argv)
        if code == 0:
            passed += 1
        else:
            failed += 1
    jobs = os.environ.get("OCPPD_TEST_JOBS", "2")
    code, output = run("trial", [sys.executable, "-m", "twisted.trial", f"--jobs={jobs}", "tests"])
    summaries = re.findall(r"^(?:PASSED|FAILED) \((.*)\)$", output, re.MULTILINE)
    counts = {
        key: int(value)
        for key, value in re.findall(r"(\w+)=(\d+)", summaries[-1] if summaries else "")
    }
    passed += counts.get("successes", 0) + counts.get("expectedFailures", 0)
    trial_failed = sum(counts.get(k, 0) for k in ("failures", "errors", "unexpectedSuccesses"))
    if code != 0 and trial_failed == 0:
        trial_failed = 1  # trial broke before it could count (e.g. an import error)
    failed += trial_failed
    skipped = counts.get("skips", 0)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

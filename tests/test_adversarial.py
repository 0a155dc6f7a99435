"""benchmarks/adversarial.py (issue 32's rerunnable check of hostile conditions) still runs: a few of its cases,
the ones that are quick, through its own command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "adversarial.py"


def adversarial(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)


def test_it_lists_its_cases():
    listed = adversarial("--list")
    assert listed.returncode == 0
    names = listed.stdout.splitlines()
    for family in ("size:", "refuse:", "file:", "symlink:", "overwrite:", "enospc:", "kill -9:", "signal:", "lock:"):
        assert any(name.startswith(family) for name in names), family


def test_refusal_and_crafted_file_cases_hold():
    ran = adversarial("--only", "refuse: train --")
    lines = ran.stdout.splitlines()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert [line.split(" ", 1)[0] for line in lines[:-1]] == ["HELD"] * 3, lines
    assert "refuse: train --gpus-per-run -1: exit 2: memory-envs: error: --gpus-per-run: only with --backend ray" \
        in ran.stdout
    assert lines[-1].startswith("3 held, 0 broken, of 3 cases in ")
    ran = adversarial("--only", "nested 100,000 deep, plot")
    assert ran.returncode == 0 and ran.stdout.startswith("HELD   file: config.json nested 100,000 deep, plot: exit 2: "
                                                         "memory-envs: error: "), ran.stdout + ran.stderr


def test_an_unknown_case_is_an_error():
    ran = adversarial("--only", "no such case")
    assert ran.returncode == 2 and ran.stdout == "no case's name holds 'no such case'\n"

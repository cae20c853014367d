"""bench/: every script starts (its imports resolve) and run_all.sh only passes options the scripts accept."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("b[0-9]*.py"))


def _help(script: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_bench_script_prints_its_usage(script):
    assert "usage:" in _help(script)


def test_run_all_uses_only_options_the_scripts_accept():
    calls = [
        shlex.split(line.split('"$PY"', 1)[1])
        for line in (ROOT / "bench" / "run_all.sh").read_text().splitlines()
        if '"$PY" bench/' in line
    ]
    assert {Path(call[0]).name for call in calls} == set(SCRIPTS), "run_all.sh should run every bench script"
    for call in calls:
        usage = _help(Path(call[0]).name)
        for option in (arg for arg in call[1:] if arg.startswith("--")):
            assert re.search(rf"{re.escape(option)}\b", usage), f"{call[0]} has no option {option}"


def test_make_has_a_target_for_every_bench_script():
    line = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("BENCHES ="))
    assert {f"{name}.py" for name in line.split("=", 1)[1].split()} == set(SCRIPTS)

"""infra/supervise.sh, the loop up-local.sh runs the scheduler and the dispatchers under: a command that exits is
started again after a short backoff, each restart logged; SIGTERM stops the command and the loop, nothing left."""

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

from tests.sms_helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
SUPERVISE = ROOT / "infra" / "supervise.sh"


def _flaky(tmp_path: Path, failures: int) -> Path:
    """A command that exits 1 on its first `failures` runs, then runs until SIGTERM (and says so)."""
    script = tmp_path / "flaky.sh"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/usr/bin/env bash
            runs="{tmp_path}/runs"
            n=$(( $(cat "$runs" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$runs"
            echo "run $n pid $$" >> "{tmp_path}/log"
            (( n <= {failures} )) && exit 1
            # A group-wide SIGTERM reaches it twice (directly and passed on by the loop), as it reaches the real
            # scheduler and dispatchers, whose handlers are idempotent; this one may log its stop twice.
            trap 'trap "" TERM; echo "run $n stopped by TERM" >> "{tmp_path}/log"; exit 0' TERM
            while :; do sleep 0.05; done
            """
        )
    )
    script.chmod(0o755)
    return script


def _supervise(tmp_path: Path, *command: str) -> subprocess.Popen:
    env = {**os.environ, "SUPERVISE_MIN_DELAY": "1", "SUPERVISE_MAX_DELAY": "1"}
    return subprocess.Popen(
        [str(SUPERVISE), "flaky", *command],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # as up-local.sh's setsid: the loop and its command share a process group
    )


def _runs(tmp_path: Path) -> list[str]:
    log = tmp_path / "log"
    return log.read_text().splitlines() if log.exists() else []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_command_that_fails_twice_is_restarted_until_it_runs_and_each_restart_is_logged(tmp_path):
    proc = _supervise(tmp_path, str(_flaky(tmp_path, failures=2)))
    try:
        wait_until(lambda: len(_runs(tmp_path)) == 3, timeout=15, what="the third run")
        time.sleep(1.5)  # longer than the backoff: a running command is left alone
        assert [line.split(" pid")[0] for line in _runs(tmp_path)] == ["run 1", "run 2", "run 3"]
        third = int(_runs(tmp_path)[-1].rsplit(" ", 1)[1])
        assert _alive(third)
        proc.send_signal(signal.SIGTERM)  # to the loop alone: it passes the signal on
        err = proc.communicate(timeout=10)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err  # the command's own status once it stopped
    assert len([line for line in _runs(tmp_path) if " pid " in line]) == 3  # no restart after the stop
    assert "run 3 stopped by TERM" in _runs(tmp_path)
    assert not _alive(third)
    restarts = [line for line in err.splitlines() if "exited with status 1" in line]
    assert len(restarts) == 2 and "restart 1 in 1 s" in restarts[0] and "restart 2 in 1 s" in restarts[1], err
    assert "flaky stopped" in err


def test_a_killed_command_is_restarted_and_a_signal_to_the_whole_group_stops_everything(tmp_path):
    proc = _supervise(tmp_path, str(_flaky(tmp_path, failures=0)))
    try:
        wait_until(lambda: _runs(tmp_path), timeout=10, what="the first run")
        first = int(_runs(tmp_path)[0].rsplit(" ", 1)[1])
        os.kill(first, signal.SIGKILL)  # a crash, an OOM kill
        wait_until(lambda: len(_runs(tmp_path)) == 2, timeout=10, what="the restart")
        second = int(_runs(tmp_path)[1].rsplit(" ", 1)[1])
        os.killpg(proc.pid, signal.SIGTERM)  # as down-local.sh stops it
        err = proc.communicate(timeout=10)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "exited with status 137" in err  # 128 + SIGKILL
    time.sleep(1.5)  # longer than the backoff: no restart after the stop
    assert [line for line in _runs(tmp_path) if " pid " in line] == [f"run 1 pid {first}", f"run 2 pid {second}"]
    assert "run 2 stopped by TERM" in _runs(tmp_path)
    assert not _alive(second)


def test_it_refuses_to_run_without_a_command():
    result = subprocess.run([str(SUPERVISE), "only-a-name"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 2 and "usage:" in result.stderr

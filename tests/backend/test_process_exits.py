"""The long-running commands exit non-zero with one sentence when their database does not answer at start, so a
supervisor restarts them later instead of keeping a process that can do nothing (or one that printed a traceback)."""

import os

import pytest

from tests.live_server import run_flask


@pytest.mark.parametrize("command", [["scheduler", "--no-dispatch"], ["dispatch"], ["dispatch", "--once"]])
@pytest.mark.parametrize(
    "url, reason",
    [
        ("postgresql+psycopg://postgres:not-shown@127.0.0.1:1/trial", "Connection refused"),
        ("sqlite:///{tmp}/no-such-dir/trial.db", "unable to open database file"),
    ],
    ids=["postgresql-refused", "sqlite-no-directory"],
)
def test_a_database_that_does_not_answer_at_start_ends_the_process_with_status_1_and_a_sentence(
    tmp_path, command, url, reason
):
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": url.format(tmp=tmp_path),
        "INSTANCE_DIR": str(tmp_path),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = run_flask(env, *command, timeout=60)
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()  # one sentence, no traceback
    assert line.startswith("Error: cannot reach the database at ") and reason in line
    assert "exiting so the supervisor starts this process again" in line
    assert "not-shown" not in result.stderr  # the password stays out of the log

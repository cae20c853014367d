"""infra/e2e-local.sh: the scale-out shape brought up for real (gunicorn, scheduler, two dispatchers, PostgreSQL
with an owner and a runtime role, Redis, the Twilio stand-in) passes the SMS scenario in real time, and is torn
down again, its database and roles included."""

import os
import re
import signal
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("E2E_REDIS_URL", "redis://127.0.0.1:6379/14")


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


def _admin_url(url: str) -> str:
    """The maintenance database on the test server, as plain postgresql:// (up-local.sh connects with psycopg)."""
    base = url.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql://{base}/postgres"


@pytest.mark.skipif(not PG_URL, reason="the stack runs on PostgreSQL only (set TEST_DATABASE_URL)")
@pytest.mark.skipif(not _redis_up(), reason=f"no Redis answering at {REDIS_URL} (set E2E_REDIS_URL)")
def test_e2e_local_brings_up_the_stack_passes_the_sms_scenario_and_tears_down():
    env = {**os.environ, "PG_ADMIN_URL": _admin_url(PG_URL), "E2E_REDIS_URL": REDIS_URL}
    # Its own process group, so a timeout can SIGTERM the script and its scenario together: the script's trap then
    # still tears the stack down (a plain kill of bash alone would leave the stack running).
    proc = subprocess.Popen(
        ["bash", str(ROOT / "infra" / "e2e-local.sh")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
        pytest.fail(f"infra/e2e-local.sh took over 300 s; stopped it:\n{output}")
    print(output)
    assert proc.returncode == 0, f"infra/e2e-local.sh exited {proc.returncode}:\n{output}"
    assert "e2e-local: PASS" in output
    # The processes ran as the runtime role, which the migrations' owner granted no way to change the audit trail.
    assert re.search(r"^ok +9 least privilege.*all as trial_e2e_\w+_app .*owned by trial_e2e_\w+_owner", output, re.M)
    name = re.search(r"database (trial_e2e_\w+)", output).group(1)
    with psycopg.connect(env["PG_ADMIN_URL"], autocommit=True) as conn:
        left = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname IN (%s, %s) UNION ALL SELECT datname FROM pg_database"
            " WHERE datname = %s",
            (f"{name}_app", f"{name}_owner", name),
        ).fetchall()
    assert left == [], f"down-local.sh --drop left {left} behind"

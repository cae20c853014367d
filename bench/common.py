"""What every benchmark needs: the machine, throw-away databases, bulk data, the stand-in, and processes.

Everything stays on loopback. PostgreSQL benchmarks create a dedicated database and drop it at the
end; SQLite ones use a file in a temporary directory. Loops are bounded by count and by time.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PY = os.environ.get("BENCH_PYTHON", sys.executable)
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PROTOCOL = ROOT / "protocols" / "NCT04237987.toml"

# One set of secrets per benchmark run, shared by the in-process setup and every child process.
SECRETS = {
    "SECRET_KEY": secrets.token_urlsafe(32),
    "PHONE_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "PHONE_HASH_KEY": secrets.token_urlsafe(32),
    "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
}


# --- the machine -------------------------------------------------------------------------------------------
def machine() -> str:
    """nproc, CPU model, RAM, Python and PostgreSQL versions: one line for the results table."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError):
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    return (
        f"{os.cpu_count()} CPU(s) ({cpu}), {ram} RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def cpu_busy(seconds: float = 2.0) -> float:
    """Share of all CPUs busy over the next `seconds` (from /proc/stat), 0..1."""

    def snap():
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    total0, idle0 = snap()
    time.sleep(seconds)
    total1, idle1 = snap()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(max_wait: float | None = None) -> float:
    """Wait (bounded) until other work on the machine stops, so figures are ours: returns the busy share seen."""
    max_wait = float(os.environ.get("BENCH_WAIT_QUIET", "300")) if max_wait is None else max_wait
    started = time.monotonic()
    busy = cpu_busy()
    while busy > 0.10 and time.monotonic() - started < max_wait:
        print(f"   machine {busy:.0%} busy with other work; waiting (BENCH_WAIT_QUIET={max_wait:.0f} s)", flush=True)
        time.sleep(10)
        busy = cpu_busy()
    if busy > 0.10:
        print(f"   WARNING: machine still {busy:.0%} busy with other work; figures will be low", flush=True)
    return busy


_OTHER_LOAD: list[float] = []


def banner(title: str) -> float:
    """Print what runs and where; wait for a quiet machine; return the busy share before starting."""
    print(f"== {title}")
    print(f"   machine: {machine()}")
    busy = wait_quiet()
    _OTHER_LOAD.append(busy)
    print(f"   other load before start: {busy:.0%} of CPU", flush=True)
    return busy


# --- databases ---------------------------------------------------------------------------------------------
# Runtime URL -> owner URL of each database pg_database made: env_for passes the owner's as MIGRATION_DATABASE_URL.
_OWNER_URLS: dict[str, str] = {}


@contextlib.contextmanager
def pg_database(tag: str) -> Iterator[str]:
    """A new PostgreSQL database for one benchmark, as production runs it: owned by a role of its own that migrates,
    used by another (the runtime role the processes must be, see README, Database roles). Yields the runtime URL;
    the database and both roles are dropped afterwards (only those: the server is shared)."""
    import psycopg
    from sqlalchemy.engine import make_url

    suffix = uuid.uuid4().hex[:8]
    name, owner, runtime = f"bench_{tag}_{suffix}", f"bench_owner_{suffix}", f"bench_runtime_{suffix}"
    admin = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", password=None, database=name)

    def as_role(role: str) -> str:
        return admin.set(username=role).render_as_string(hide_password=False)

    created: list[str] = []
    runtime_url = as_role(runtime)
    try:  # from the first CREATE on, so a failed step still drops what the earlier ones made
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for role in (owner, runtime):
                conn.execute(f'CREATE ROLE "{role}" LOGIN')
                created.append(role)
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        _OWNER_URLS[runtime_url] = as_role(owner)
        yield runtime_url
    finally:
        _OWNER_URLS.pop(runtime_url, None)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            for role in reversed(created):
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@contextlib.contextmanager
def sqlite_database(tag: str) -> Iterator[str]:
    """A SQLite file in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{tag}-") as tmp:
        yield f"sqlite:///{tmp}/bench.sqlite"


@contextlib.contextmanager
def database(kind: str, tag: str) -> Iterator[str]:
    """'pg' or 'sqlite'."""
    with pg_database(tag) if kind == "pg" else sqlite_database(tag) as url:
        yield url


def env_for(url: str, workdir: str, **extra) -> dict[str, str]:
    """Environment for the app and its processes: production mode, this run's secrets, quiet logs."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DISPATCH_", "GUNICORN_", "PROMETHEUS_"))
    }
    env.update(SECRETS)
    env.update(
        {
            "APP_ENV": "production",
            "DATABASE_URL": url,
            "MIGRATION_DATABASE_URL": _OWNER_URLS.get(url, ""),
            "INSTANCE_DIR": f"{workdir}/instance",
            "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
            "SMS_BACKEND": "console",
            "LOG_FORMAT": "json",
            "SEND_RATE_PER_SECOND": "0",
            "RATELIMIT_STORAGE_URI": "memory://",
            "SESSION_COOKIE_SECURE": "false",
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": f"{workdir}/metrics",
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    return env


def make_app(env: dict[str, str]):
    """The real app for in-process setup and timing (never serves requests here)."""
    from backend.app import create_app
    from backend.config import load_settings

    return create_app(load_settings(environ=env))


def migrate(app) -> None:
    """`flask db upgrade`, in process."""
    from backend import migrate as m

    m.upgrade(app)


def study_and_site(app) -> tuple[int, int]:
    """Load the shipped protocol and one site; return their ids."""
    from backend.db import get_database
    from backend.extensions import get_vault
    from schedules.changes import Actor
    from schedules.protocol import load_protocol_file
    from schedules.sites import create_site
    from schedules.studies import load_study

    with app.app_context(), get_database(app).session() as session:
        study = load_study(
            session,
            protocol=load_protocol_file(PROTOCOL),
            source_file=str(PROTOCOL),
            actor=Actor("system", "bench"),
            reason="benchmark data",
            now=datetime.now(timezone.utc),
        )
        site = create_site(
            session,
            code="BENCH",
            name="Bench site",
            time_zone="Asia/Shanghai",
            on_call=["+8613900000099"],
            phone="+861088325555",
            vault=get_vault(app),
            actor=Actor("system", "bench"),
        )
        session.flush()
        return study.id, site.id


def phone(i: int) -> str:
    """A distinct valid mainland mobile number per index."""
    return f"+86138{i:08d}"


def bulk_participants(
    app,
    *,
    study_id: int,
    site_id: int,
    n: int,
    first_dose: date,
    reminder_time: str = "20:00",
    code_prefix: str = "B",
    start: int = 0,
) -> list[int]:
    """Insert n active participants with one multi-row INSERT per 1,000 (no ORM objects, no audit rows)."""
    from sqlalchemy import insert, select

    from backend.db import get_database
    from backend.extensions import get_vault
    from schedules.models import Participant

    vault = get_vault(app)
    # Enrolled before the first dose, as enrollment wants it: a window that closed before enrollment waits
    # for a nurse's entry and the missed-dose job would leave it alone.
    enrolled_at = min(
        datetime.now(timezone.utc), datetime.combine(first_dose, datetime.min.time(), timezone.utc) - timedelta(days=1)
    )
    rows = [
        {
            "study_id": study_id,
            "site_id": site_id,
            "study_code": f"{code_prefix}-{i:07d}",
            "arm": "il2",
            "phone_ciphertext": vault.encrypt(phone(i)),
            "phone_hash": vault.lookup_hash(phone(i)),
            "phone_last2": phone(i)[-2:],
            "time_zone": "Asia/Shanghai",
            "language": "zh-CN" if i % 3 else "en",
            "reminder_time": reminder_time,
            "first_dose_date": first_dose,
            "treatment_end_date": first_dose + timedelta(days=90),
            "follow_up_end_date": first_dose + timedelta(days=180),
            "sms_consent": True,
            "status": "active",
            "hold_reason": "",
            "opted_out": False,
            "calendar_token_hash": "",
            "enrolled_at": enrolled_at,
        }
        for i in range(start, start + n)
    ]
    database = get_database(app)
    with database.engine.begin() as conn:
        for k in range(0, n, 1000):
            conn.execute(insert(Participant.__table__), rows[k : k + 1000])
        ids = (
            conn.execute(
                select(Participant.__table__.c.id)
                .where(Participant.__table__.c.study_code.like(f"{code_prefix}-%"))
                .order_by(Participant.__table__.c.id)
            )
            .scalars()
            .all()
        )
    return list(ids)


# --- the Twilio stand-in in its own process ------------------------------------------------------------------
class StandIn:
    """`python -m notifications.twilio_standin` on a free loopback port, with a latency."""

    def __init__(self, latency_ms: float = 50):
        self.proc = subprocess.Popen(
            [PY, "-m", "notifications.twilio_standin", "--port", "0", "--latency-ms", str(latency_ms)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        line = self.proc.stdout.readline()
        self.url = line.strip().rsplit(" ", 1)[-1]
        if not self.url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"stand-in did not start: {line!r}")

    def control(self, **command) -> None:
        """POST /_standin/control."""
        req = urllib.request.Request(
            self.url + "/_standin/control",
            data=json.dumps(command).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=10).read()

    def stats(self) -> dict:
        """GET /_standin/stats."""
        return json.loads(urllib.request.urlopen(self.url + "/_standin/stats", timeout=10).read())

    def messages(self) -> list[dict]:
        """GET /_standin/messages."""
        return json.loads(urllib.request.urlopen(self.url + "/_standin/messages", timeout=60).read())

    def stop(self) -> None:
        """End the stand-in process."""
        stop_process(self.proc)

    def __enter__(self) -> "StandIn":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def twilio_env(standin: StandIn, **extra) -> dict[str, str]:
    """Settings that point the real Twilio sender at the stand-in."""
    return {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 27 + "bench",
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": standin.url,
        "TWILIO_TIMEOUT": "10",
        **{k: str(v) for k, v in extra.items()},
    }


# --- processes -----------------------------------------------------------------------------------------------
def spawn(args: list[str], env: dict[str, str], log_path: str) -> subprocess.Popen:
    """Start a process in its own session (so it and its children stop together), output to a log file."""
    log = open(log_path, "ab")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM its process group, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def profile(pid: int, name: str, *, seconds: int) -> subprocess.Popen | None:
    """When BENCH_PROFILE_DIR is set, sample a running process with py-spy for `seconds` (collapsed stacks,
    summarised by bench/profile_top.py). Non-blocking sampling, so the figures stay close to an unprofiled run."""
    out = os.environ.get("BENCH_PROFILE_DIR")
    if not out:
        return None
    os.makedirs(out, exist_ok=True)
    spy = str(Path(PY).with_name("py-spy"))
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            "50",
            "--nonblocking",
            "--format",
            "raw",
            "-o",
            f"{out}/{name}.txt",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def children(pid: int) -> list[int]:
    """Direct children of a process (gunicorn's workers)."""
    out = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of a live process so far (VmHWM), in MB."""
    with contextlib.suppress(OSError, AttributeError):
        kb = int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))
        return kb / 1024
    return None


class RssWatcher:
    """Samples VmHWM of a set of processes (and their children) until stopped, keeping each one's peak."""

    def __init__(self, named_pids: dict[str, int], every: float = 0.5):
        self.named = named_pids
        self.peaks: dict[str, float] = {}
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for name, pid in list(self.named.items()):
            web = name.startswith("web")
            for label, p in [(f"{name} master" if web else name, pid)] + [
                (f"{name} worker", c) for c in children(pid) if web
            ]:
                value = peak_rss_mb(p)
                if value is not None:
                    self.peaks[label] = max(self.peaks.get(label, 0.0), value)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def start(self) -> "RssWatcher":
        """Begin sampling."""
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        """Take a last sample and return the peaks."""
        self._sample()
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peaks


def wait_for(predicate, *, timeout: float, every: float = 0.2, what: str = "condition") -> float:
    """Poll until predicate() is true; return the seconds waited. Raises after timeout (bounded loops only)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(every)
    raise TimeoutError(f"{what} not reached within {timeout:.0f} s")


def wait_http(url: str, timeout: float = 60) -> None:
    """Wait until a URL answers 200."""

    def ok():
        try:
            return urllib.request.urlopen(url, timeout=2).status == 200
        except OSError:
            return False

    wait_for(ok, timeout=timeout, every=0.25, what=f"{url} answering")


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def record(name: str, result: dict) -> None:
    """Append a result as one JSON line to bench/results.jsonl (the README's table is written from these)."""
    entry = {
        "bench": name,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "other_load_before_start": round(_OTHER_LOAD[-1], 2) if _OTHER_LOAD else None,
        **result,
    }
    with open(ROOT / "bench" / "results.jsonl", "a") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")

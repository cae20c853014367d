"""Fixtures: a migrated database per run (SQLite, or PostgreSQL with TEST_DATABASE_URL), one rolled-back
transaction per test, the app bound to it, frozen time, and a guard against real network sends."""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
import time_machine
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from backend.app import create_app
from backend.config import load_settings
from backend.db import Database, normalize_url
from backend.extensions import set_sender
from notifications.senders import RecordingSmsSender

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
TWILIO_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_BASE_URL = "https://trial.example.org"


# --- never really send: any connection off this machine fails the test -------------------------
_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
        raise AssertionError(f"test tried to connect to {host}: tests must never leave this machine")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


# --- databases -----------------------------------------------------------------------------------
def test_settings(url: str, **extra):
    """Settings for tests: recording SMS, a known Twilio token, a public URL to sign against."""
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": url,
        "SMS_BACKEND": "recording",
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "INSTANCE_DIR": extra.pop("INSTANCE_DIR", "/tmp/trial-companion-test-instance"),
        "SEND_RATE_PER_SECOND": "0",
        "DISPATCH_CONCURRENCY": "1",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return load_settings(environ=env)


@contextmanager
def fresh_database_url(tmp_dir):
    """A new, empty database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if not PG_URL:
        yield f"sqlite:///{tmp_dir}/db-{uuid.uuid4().hex[:8]}.sqlite"
        return
    name = f"tc_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = normalize_url(PG_URL).rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def migrate_database(url: str, tmp_dir) -> None:
    """Run the real migrations (`flask db upgrade`) against url."""
    from backend import migrate

    app = create_app(test_settings(url, INSTANCE_DIR=str(tmp_dir)))
    migrate.upgrade(app)
    app.extensions["database"].engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """The per-run database, migrated once."""
    tmp = tmp_path_factory.mktemp("db")
    with fresh_database_url(tmp) as url:
        migrate_database(url, tmp)
        yield url


@pytest.fixture(scope="session")
def engine_database(database_url):
    """The run's Database object (real engine)."""
    database = Database(database_url)
    yield database
    database.engine.dispose()


class BoundDatabase(Database):
    """A Database whose sessions all live inside one outer transaction that the test rolls back."""

    def __init__(self, real: Database, connection):
        self.url, self.engine = real.url, real.engine
        self.sessions = sessionmaker(
            bind=connection, class_=Session, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )


@pytest.fixture
def committed(tmp_path):
    """A migrated database of the test's own, whose commits other connections and processes see; its Database."""
    with fresh_database_url(tmp_path) as url:
        migrate_database(url, tmp_path)
        database = Database(url)
        try:
            yield database
        finally:
            database.engine.dispose()


def _chain_problem(database: Database) -> str | None:
    """Why the audit chain the test left behind does not verify, or None (nothing to check once the test's
    transaction has failed: it is rolled back anyway)."""
    from sqlalchemy.exc import DBAPIError

    from backend.audit_verify import describe, verify_chain

    try:
        with database.reading() as session:
            report = verify_chain(session)
    except DBAPIError:
        return None
    return None if report.intact else describe(report)


@pytest.fixture
def database(engine_database, request):
    """Per-test isolation: everything runs in one transaction rolled back at the end. Every test's scenario
    must leave an intact audit chain (`audit verify`), unless it is marked audit_tampered."""
    connection = engine_database.engine.connect()
    outer = connection.begin()
    try:
        bound = BoundDatabase(engine_database, connection)
        yield bound
        if "audit_tampered" not in request.keywords:
            problem = _chain_problem(bound)
            assert problem is None, f"the test left a broken audit chain: {problem}"
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture
def session(database):
    """A session inside the test's transaction."""
    with database.session() as s:
        yield s


@pytest.fixture
def sender():
    """The recording SMS sender the app uses in tests."""
    return RecordingSmsSender()


@pytest.fixture
def app(database, sender, tmp_path):
    """The app bound to the test's transaction, with a recording sender."""
    application = create_app(test_settings(database.url, INSTANCE_DIR=str(tmp_path)), database=database)
    set_sender(application, sender)
    return application


@pytest.fixture
def client(app):
    """Flask test client."""
    return app.test_client()


@pytest.fixture
def cli(app):
    """Flask CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def clock():
    """Frozen, movable time: clock.move_to('2026-03-01T11:59Z'), clock.shift(seconds)."""
    with time_machine.travel(datetime(2026, 2, 20, 0, 0, tzinfo=timezone.utc), tick=False) as traveller:
        yield traveller


def utc(text_value: str) -> datetime:
    """Parse an ISO-8601 UTC instant ('2026-03-01T12:00Z')."""
    return datetime.fromisoformat(text_value.replace("Z", "+00:00"))

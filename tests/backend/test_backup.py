"""Backup and restore: `flask backup PATH` restores into a fresh database with every row, the audit trail
and readiness as they were; bad paths are refused with a sentence; the backup is audited."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, inspect, text

from backend.app import create_app
from backend.db import normalize_url
from backend.runtime.demo import seed_demo
from tests import conftest
from tests.conftest import PG_URL, fresh_database_url, migrate_database

OTHER_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"o" * 32).decode()


def _query(url: str, fn):
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return fn(conn)
    finally:
        engine.dispose()


def _row_counts(url: str) -> dict[str, int]:
    """Rows of every table in the database (alembic_version included)."""

    def count(conn):
        return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in inspect(conn).get_table_names()}

    return _query(url, count)


def _audit_trail(url: str) -> list[tuple]:
    def rows(conn):
        query = "SELECT id, at, actor, source, action, entity, entity_id, field, old_value, new_value, reason"
        return [tuple(r) for r in conn.execute(text(f"{query} FROM audit_entry ORDER BY id"))]

    return _query(url, rows)


def _readyz(url: str, tmp_path, **keys) -> int:
    app = create_app(conftest.test_settings(url, INSTANCE_DIR=str(tmp_path), **keys))
    try:
        return app.test_client().get("/readyz").status_code
    finally:
        app.extensions["database"].engine.dispose()


def _backup(app, path):
    return app.test_cli_runner().invoke(args=["backup", str(path)])


@contextmanager
def _restored(backup, tmp_path):
    """The README's restore into a fresh database: the SQLite file copied back, or pg_restore into a new,
    uniquely named database dropped afterwards."""
    if not PG_URL:
        restored = tmp_path / "restored" / "trial_companion.db"
        restored.parent.mkdir()
        shutil.copyfile(backup, restored)
        yield f"sqlite:///{restored}"
        return
    with fresh_database_url(tmp_path) as url:
        target = url.replace("postgresql+psycopg://", "postgresql://", 1)
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={target}", str(backup)],
            check=True,
            capture_output=True,
        )
        yield url


@pytest.fixture
def pg_client_tools():
    """pg_dump and pg_restore when the suite runs on PostgreSQL (mandatory in CI)."""
    if PG_URL and not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        if os.environ.get("CI"):
            pytest.fail("pg_dump/pg_restore are not installed (apt-get install postgresql-client)")
        pytest.skip("pg_dump/pg_restore are not installed; the PostgreSQL backup test needs them")


def test_a_backup_restores_into_a_fresh_database_with_every_row_the_audit_trail_and_readiness(
    tmp_path, pg_client_tools
):
    with fresh_database_url(tmp_path) as url:
        migrate_database(url, tmp_path)
        app = create_app(conftest.test_settings(url, INSTANCE_DIR=str(tmp_path)))
        seed_demo(app)
        counts, trail = _row_counts(url), _audit_trail(url)
        assert counts["participant"] == 6 and counts["dose"] > 0 and counts["key_check"] == 1 and trail

        (tmp_path / "backups").mkdir()
        backup = tmp_path / "backups" / "trial.backup"
        result = _backup(app, backup)
        app.extensions["database"].engine.dispose()
        assert result.exit_code == 0, result.output
        assert "NOT in the backup" in result.output and "PHONE_ENCRYPTION_KEY" in result.output
        assert backup.stat().st_mode & 0o777 == 0o600  # personal data: readable by its owner only

        # The backup is audited after it succeeded: who, when and where; it is the one row the copy lacks.
        *before, last = _audit_trail(url)
        assert before == trail
        assert (last[2], last[4], last[5]) == (f"cli:{os.environ.get('USER', 'operator')}", "backup", "database")
        assert json.loads(last[9])["path"] == str(backup)

        with _restored(backup, tmp_path) as restored_url:
            assert _row_counts(restored_url) == counts
            assert _audit_trail(restored_url) == trail
            assert _readyz(restored_url, tmp_path) == 200
            assert _readyz(restored_url, tmp_path, PHONE_ENCRYPTION_KEY=OTHER_ENCRYPTION_KEY) == 503


def test_a_sqlite_backup_is_consistent_while_the_app_is_writing(tmp_path):
    # Its own SQLite file whichever database the suite runs on: this is the SQLite path of `back_up`.
    url = f"sqlite:///{tmp_path}/trial.db"
    migrate_database(url, tmp_path)
    app = create_app(conftest.test_settings(url, INSTANCE_DIR=str(tmp_path)))
    seed_demo(app)
    counts = _row_counts(url)
    writing, release = threading.Event(), threading.Event()

    def writer():
        # A write transaction in progress (the write lock held, rows not yet committed) during the whole backup.
        with app.extensions["database"].engine.connect() as conn:
            conn.execute(
                text(
                    "INSERT INTO job_run (name, last_finished_at, last_error, last_summary, last_seconds) "
                    "VALUES ('mid-backup', '2026-01-01 00:00:00', '', '', 0)"
                )
            )
            writing.set()
            release.wait(30)
            conn.commit()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(30)
        from backend.backup import back_up

        made = back_up(url, tmp_path / "during.db")  # the CLI's copy, without its audit row (the writer holds the lock)
    finally:
        release.set()
        thread.join()
    copied = _row_counts(f"sqlite:///{made.path}")
    assert copied == counts  # the committed state: the uncommitted row is not in the copy, nothing is torn
    assert _row_counts(url)["job_run"] == counts["job_run"] + 1
    app.extensions["database"].engine.dispose()


def test_backup_refuses_an_existing_file_or_a_missing_directory_with_a_sentence(cli, tmp_path):
    existing = tmp_path / "taken.backup"
    existing.write_text("an earlier backup")
    refused = cli.invoke(args=["backup", str(existing)])
    assert refused.exit_code == 2
    assert f"{existing} exists already" in refused.output and "Traceback" not in refused.output
    assert existing.read_text() == "an earlier backup"

    nowhere = tmp_path / "no" / "such" / "dir" / "trial.backup"
    missing = cli.invoke(args=["backup", str(nowhere)])
    assert missing.exit_code == 2
    assert f"the directory {nowhere.parent} does not exist" in missing.output
    assert not nowhere.parent.exists() and not list(tmp_path.glob(".*partial*"))

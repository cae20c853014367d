"""Keys that match the data: other phone keys make /readyz 503 and stop the scheduler and dispatchers;
the embedded default never generates new keys for a database that holds encrypted data."""

from __future__ import annotations

import base64
import json
import os

import pytest
from sqlalchemy import delete, func, select

from backend import migrate
from backend.app import create_app
from backend.config import ConfigError, load_settings
from backend.db import Database
from backend.key_check import KEYS_DO_NOT_OPEN
from backend.models import KeyCheck
from tests import conftest
from tests.conftest import fresh_database_url, migrate_database
from tests.factories import make_participant
from tests.live_server import run_flask

OTHER_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"o" * 32).decode()
TEST_ENCRYPTION_KEY = load_settings(environ={"APP_ENV": "test"}).PHONE_ENCRYPTION_KEY


def _app(database, tmp_path, **keys):
    return create_app(conftest.test_settings(database.url, INSTANCE_DIR=str(tmp_path), **keys), database=database)


def _run(app, args):
    """Run a long-running command as `flask` does: inside the app context."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=args)


@pytest.mark.parametrize(
    "keys",
    [{"PHONE_ENCRYPTION_KEY": OTHER_ENCRYPTION_KEY}, {"PHONE_HASH_KEY": "another-phone-hash-key"}],
    ids=["other encryption key", "other hash key"],
)
def test_readyz_is_503_and_says_the_keys_do_not_open_the_data(database, tmp_path, keys):
    response = _app(database, tmp_path, **keys).test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503, body
    assert body["status"] == "unavailable" and body["migrations"].startswith("current")
    assert body["keys"].startswith(KEYS_DO_NOT_OPEN) and "PHONE_ENCRYPTION_KEY" in body["keys"]


def test_readyz_stays_ok_during_a_key_rotation_while_the_older_key_is_still_listed(database, tmp_path):
    rotating = _app(database, tmp_path, PHONE_ENCRYPTION_KEY=f"{OTHER_ENCRYPTION_KEY},{TEST_ENCRYPTION_KEY}")
    response = rotating.test_client().get("/readyz")
    assert response.status_code == 200 and response.get_json()["keys"] == "ok"
    dropped = _app(database, tmp_path, PHONE_ENCRYPTION_KEY=OTHER_ENCRYPTION_KEY).test_client().get("/readyz")
    assert dropped.status_code == 503


@pytest.fixture(scope="module")
def committed_database_url(tmp_path_factory):
    """A migrated database of this module's own: the commands open connections of their own, outside any test's
    transaction (on SQLite the per-test transaction would hold the write lock they wait for)."""
    tmp = tmp_path_factory.mktemp("keys")
    with fresh_database_url(tmp) as url:
        migrate_database(url, tmp)
        yield url


@pytest.mark.parametrize("args", [["scheduler", "--no-dispatch"], ["scheduler"], ["dispatch"], ["dispatch", "--once"]])
def test_scheduler_and_dispatchers_refuse_to_start_with_other_keys(committed_database_url, tmp_path, args):
    # Real processes, as a supervisor starts them; the timeout turns "started anyway" into a failure, not a hang.
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": committed_database_url,
        "INSTANCE_DIR": str(tmp_path),
        "PHONE_ENCRYPTION_KEY": OTHER_ENCRYPTION_KEY,
        "SMS_BACKEND": "recording",
    }
    done = run_flask(env, *args, timeout=60)
    assert done.returncode != 0, done.stdout
    assert KEYS_DO_NOT_OPEN in done.stderr
    assert "scheduler running" not in done.stdout and "claimed" not in done.stdout


def test_a_database_without_its_key_check_is_judged_by_its_data_and_gets_one_at_the_first_start(tmp_path):
    # A database migrated by bare Alembic (or restored from before 0008's row was written) has no key check yet.
    with fresh_database_url(tmp_path) as url:
        migrate_database(url, tmp_path)
        database = Database(url)
        try:
            with database.session() as session:
                session.execute(delete(KeyCheck))
                make_participant(session)
            other = create_app(
                conftest.test_settings(url, INSTANCE_DIR=str(tmp_path), PHONE_HASH_KEY="another-hash-key")
            )
            assert other.test_client().get("/readyz").status_code == 503
            refused = _run(other, ["dispatch", "--once"])
            assert refused.exit_code != 0 and KEYS_DO_NOT_OPEN in refused.output
            matching = create_app(conftest.test_settings(url, INSTANCE_DIR=str(tmp_path)))
            started = _run(matching, ["dispatch", "--once"])
            assert started.exit_code == 0, started.output
            with database.session() as session:
                assert session.execute(select(func.count()).select_from(KeyCheck)).scalar() == 1
            # From now on the row decides, whatever data there is.
            assert other.test_client().get("/readyz").status_code == 503
            for app in (other, matching):
                app.extensions["database"].engine.dispose()
        finally:
            database.engine.dispose()


def _embedded(tmp_path):
    return {"INSTANCE_DIR": str(tmp_path / "instance")}  # the embedded default: development, SQLite, keys.json


def test_the_embedded_default_refuses_to_generate_keys_for_a_database_written_with_lost_ones(tmp_path):
    app = create_app(load_settings(environ=_embedded(tmp_path)))
    migrate.upgrade(app)  # writes the key check with the generated keys
    app.extensions["database"].engine.dispose()
    keys_file = tmp_path / "instance" / "keys.json"
    saved = keys_file.read_text()
    keys_file.unlink()

    with pytest.raises(ConfigError) as refused:
        load_settings(environ=_embedded(tmp_path))
    message = str(refused.value)
    assert f"{keys_file} is missing" in message and "Restore" in message and "PHONE_ENCRYPTION_KEY" in message
    assert not keys_file.exists()

    keys_file.write_text(saved)  # the documented restore: the file back where it was
    restored = create_app(load_settings(environ=_embedded(tmp_path)))
    assert restored.test_client().get("/readyz").status_code == 200
    assert json.loads(saved)["PHONE_ENCRYPTION_KEY"] == restored.config["PHONE_ENCRYPTION_KEY"]
    restored.extensions["database"].engine.dispose()


def test_the_embedded_default_still_generates_keys_for_an_empty_database(tmp_path):
    # A database file with the schema but no encrypted data (migrated, then its keys file lost) starts afresh.
    app = create_app(load_settings(environ=_embedded(tmp_path)))
    migrate.upgrade(app)
    with app.extensions["database"].engine.begin() as conn:
        conn.execute(delete(KeyCheck))
    app.extensions["database"].engine.dispose()
    (tmp_path / "instance" / "keys.json").unlink()
    settings = load_settings(environ=_embedded(tmp_path))
    assert (tmp_path / "instance" / "keys.json").exists() and settings.PHONE_ENCRYPTION_KEY != app.config[
        "PHONE_ENCRYPTION_KEY"
    ]

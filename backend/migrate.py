"""Alembic driven from the app: upgrade, current revision, and autogenerate for developers."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from backend.config import settings_of
from backend.db import get_database, make_engine
from backend.db_roles import check_runtime_role, grant_runtime, runtime_role

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(app: Flask) -> Config:
    """An Alembic Config pointing at our migrations and the app's database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", get_database(app).url.replace("%", "%%"))
    return cfg


def upgrade(app: Flask, revision: str = "head") -> str | None:
    """Create or migrate the schema to `revision`, record the key check (see backend/key_check.py) and, when the
    migrations run as an owner role, grant the runtime role its privileges (backend/db_roles.py); returns that role.

    One transaction: a refused runtime role or a failed step leaves the database as it was."""
    owner_url = settings_of(app).MIGRATION_DATABASE_URL
    role = runtime_role(get_database(app).url, owner_url)
    engine = make_engine(owner_url) if owner_url else get_database(app).engine
    cfg = alembic_config(app)
    try:
        with engine.begin() as conn:
            if role:
                check_runtime_role(conn, role)  # before migrating anything
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            _record_keys(app, conn)
            if role:
                grant_runtime(conn, role)
    finally:
        if owner_url:
            engine.dispose()
    return role


def _record_keys(app: Flask, conn) -> None:
    """Write the key check with the configured phone keys, unless they do not open the data already there."""
    from backend.extensions import get_vault
    from backend.key_check import keys_problem, record_key_check
    from schedules.dbtypes import utcnow

    vault = get_vault(app)
    if keys_problem(conn, vault) is None:  # other keys: left to /readyz and the processes to refuse, with the reason
        record_key_check(conn, vault, now=utcnow())


def is_current(app: Flask) -> bool:
    """True if the database is at the newest migration (for /readyz)."""
    head = ScriptDirectory.from_config(alembic_config(app)).get_current_head()
    with get_database(app).engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def autogenerate(app: Flask, message: str) -> None:
    """Write a new migration from the difference between models and database (developers only)."""
    command.revision(alembic_config(app), message=message, autogenerate=True)

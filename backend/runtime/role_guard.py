"""The start of every long-running process in production: refuse a database role that could rewrite the audit trail."""

from __future__ import annotations

import click
from flask import Flask

from backend.config import settings_of
from backend.db import get_database
from backend.db_roles import audit_privilege_problem


def refuse_unless_runtime_role(app: Flask) -> None:
    """Exit non-zero with the reason when, in production, the app's PostgreSQL role may change audit rows."""
    if not settings_of(app).is_production:
        return  # development and tests run as one role on purpose (SQLite has none)
    with get_database(app).engine.connect() as conn:
        problem = audit_privilege_problem(conn)
    if problem:
        raise click.ClickException(f"{problem}.")

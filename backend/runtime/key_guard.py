"""The start of every long-running process: refuse to run on a database the configured phone keys cannot read."""

from __future__ import annotations

import click
from flask import Flask

from backend.db import get_database
from backend.extensions import get_vault
from backend.key_check import KeysDoNotOpen, require_keys_open
from schedules.dbtypes import utcnow


def refuse_unless_keys_open(app: Flask) -> None:
    """Exit non-zero with the reason when the phone keys do not open the app's database (else record the check)."""
    try:
        require_keys_open(get_database(app).engine, get_vault(app), now=utcnow())
    except KeysDoNotOpen as exc:
        raise click.ClickException(f"{exc}.") from None

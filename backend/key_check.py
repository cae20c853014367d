"""Do the configured phone keys open this database's data? One check for /readyz, the scheduler and dispatchers.

A database restored with other keys (or an embedded SQLite file without its keys.json) still answers
queries, but no phone number decrypts and no inbound SMS matches anyone. The `key_check` row holds the
vault's encryption and lookup hash of a known value; the keys that open it open the data.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from backend.models import KeyCheck
from notifications.models import OutboundMessage
from schedules.models import Participant, Site
from schedules.phones import PhoneVault

KEYS_DO_NOT_OPEN = "the configured phone keys do not open this database's data"
_HINT = (
    "start with the PHONE_ENCRYPTION_KEY and PHONE_HASH_KEY (or the keys file) saved with this database; "
    "see README, Keys"
)
NOT_MIGRATED = "the database has no key_check table: run `flask --app wsgi db upgrade`"
# Any fixed text does: only the keys that wrote its ciphertext and hash reproduce them.
_KNOWN_VALUE = "trial-companion key check"

_KEY_CHECK = KeyCheck.__table__
_PARTICIPANT = Participant.__table__
_OUTBOX = OutboundMessage.__table__
_SITE = Site.__table__


class KeysDoNotOpen(RuntimeError):
    """The configured phone keys cannot read this database; the message says what to do."""


def _decrypts(vault: PhoneVault, ciphertext: str) -> str | None:
    try:
        return vault.decrypt(ciphertext)
    except ValueError:
        return None


def keys_problem(conn: Connection, vault: PhoneVault) -> str | None:
    """None when `vault` opens this database's data, else the sentence saying it does not (read only).

    The key_check row decides; a database written before it existed is judged by one sample of its data."""
    if not inspect(conn).has_table(_KEY_CHECK.name):
        return NOT_MIGRATED
    mismatch = f"{KEYS_DO_NOT_OPEN}; {_HINT}"
    row = conn.execute(select(_KEY_CHECK.c.ciphertext, _KEY_CHECK.c.lookup_hash).limit(1)).first()
    if row is not None:
        # MultiFernet tries every configured key: during a rotation the older key still opens it.
        opens = _decrypts(vault, row.ciphertext) == _KNOWN_VALUE and vault.lookup_hash(_KNOWN_VALUE) == row.lookup_hash
        return None if opens else mismatch
    person = conn.execute(select(_PARTICIPANT.c.phone_ciphertext, _PARTICIPANT.c.phone_hash).limit(1)).first()
    if person is not None:
        phone = _decrypts(vault, person.phone_ciphertext)
        return None if phone is not None and vault.lookup_hash(phone) == person.phone_hash else mismatch
    for column in (_OUTBOX.c.recipient_ciphertext, _SITE.c.on_call_ciphertext):
        ciphertext = conn.execute(select(column).where(column != "").limit(1)).scalar()
        if ciphertext is not None:
            return None if _decrypts(vault, ciphertext) is not None else mismatch
    return None


def require_keys_open(engine: Engine, vault: PhoneVault, *, now: datetime) -> None:
    """Raise KeysDoNotOpen unless `vault` opens the data; record the key check on first success."""
    for _attempt in range(2):
        try:
            with engine.begin() as conn:
                problem = keys_problem(conn, vault)
                if problem:
                    raise KeysDoNotOpen(problem)
                record_key_check(conn, vault, now=now)
            return
        except IntegrityError:
            continue  # another process wrote the row first: check against that one


def record_key_check(conn: Connection, vault: PhoneVault, *, now: datetime) -> bool:
    """Write the key check row with these keys if the database has none (the caller checked they open the data)."""
    if (
        not inspect(conn).has_table(_KEY_CHECK.name)
        or conn.execute(select(func.count()).select_from(_KEY_CHECK)).scalar()
    ):
        return False
    conn.execute(
        _KEY_CHECK.insert().values(
            id=1,
            ciphertext=vault.encrypt(_KNOWN_VALUE),
            lookup_hash=vault.lookup_hash(_KNOWN_VALUE),
            created_at=now,
        )
    )
    return True


def holds_encrypted_data(url: str) -> bool:
    """Whether the database at `url` already holds data written with phone keys (False if it cannot be read).

    Used before keys are generated, so it never creates a SQLite file that is not there."""
    parsed = make_url(url)
    connect_args = {}
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or not Path(parsed.database).is_file():
            return False
    else:
        connect_args["connect_timeout"] = 5  # a development database that does not answer must not hang the start
    from backend.db import normalize_url

    engine = create_engine(normalize_url(url), connect_args=connect_args)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            probes = [
                (_KEY_CHECK, None),
                (_PARTICIPANT, None),
                (_OUTBOX, _OUTBOX.c.recipient_ciphertext != ""),
                (_SITE, _SITE.c.on_call_ciphertext != ""),
            ]
            for table, condition in probes:
                if table.name in tables:
                    query = select(1).select_from(table).limit(1)
                    if conn.execute(query if condition is None else query.where(condition)).first():
                        return True
    except SQLAlchemyError:
        return False  # unreachable or unreadable: nothing known, and the key check still guards the start
    finally:
        engine.dispose()
    return False

"""Issue 14 item 1's acceptance on a real server: gunicorn with 4 workers takes 4 signed status callbacks per
message at the same moment for 100 messages; all 100 end delivered, nothing answers 5xx, SQLite never says
'database is locked', and a later 'undelivered' moves none of them back."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import select

from backend.app import create_app
from backend.db import get_database
from notifications.models import OutboundMessage
from schedules.dbtypes import utcnow
from tests.conftest import fresh_database_url, migrate_database
from tests.conftest import test_settings as settings_for
from tests.factories import make_sent_messages
from tests.live_server import live_server, server_environ
from tests.sms_helpers import ACCOUNT_SID, signature

MESSAGES = 100
RACERS = 4  # callbacks per message at the same moment: one 'delivered', the rest late 'sent'
PARALLEL_MESSAGES = 4  # messages raced at once, so the 4 workers also see different rows together


@pytest.fixture
def sent_messages(tmp_path):
    """A fresh migrated database with MESSAGES sent messages, committed; (url, their SIDs)."""
    with fresh_database_url(tmp_path) as url:
        migrate_database(url, tmp_path)
        app = create_app(settings_for(url, INSTANCE_DIR=str(tmp_path)))
        with get_database(app).session() as session:
            sids = make_sent_messages(session, MESSAGES, now=utcnow())
        get_database(app).engine.dispose()
        yield url, sids


def _post_status(base_url: str, sid: str, status: str, error_code: int | None = None) -> int:
    """POST one status callback signed as Twilio signs it; the HTTP status it got."""
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
    if error_code:
        params["ErrorCode"] = str(error_code)
    request = urllib.request.Request(
        base_url + "/sms/status",
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature("/sms/status", params)},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _fire(base_url: str, rounds: list[tuple[str, tuple[str, ...]]]) -> Counter:
    """For each (sid, statuses), post every status at the same moment (one barrier per message); count answers."""
    width = max(len(statuses) for _, statuses in rounds)
    tasks = []
    for sid, statuses in rounds:
        barrier = threading.Barrier(len(statuses))
        tasks += [(sid, status, barrier) for status in statuses]

    def one(task) -> int:
        sid, status, barrier = task
        barrier.wait(timeout=60)
        return _post_status(base_url, sid, status, 30003 if status == "undelivered" else None)

    # Tasks of one message are consecutive and the pool takes them in order, so they land on different threads.
    with ThreadPoolExecutor(max_workers=width * PARALLEL_MESSAGES) as pool:
        return Counter(pool.map(one, tasks))


def test_four_workers_racing_four_callbacks_per_message_deliver_all_hundred(sent_messages, tmp_path):
    url, sids = sent_messages
    with live_server(server_environ(url, tmp_path), tmp_path / "gunicorn.log", workers=4) as server:
        raced = _fire(server.base_url, [(sid, ("delivered",) + ("sent",) * (RACERS - 1)) for sid in sids])
        late = _fire(server.base_url, [(sid, ("undelivered",)) for sid in sids])
        log = server.log()

    assert raced == {204: MESSAGES * RACERS} and late == {204: MESSAGES}, (raced, late, log[-3000:])
    assert "database is locked" not in log and "Traceback" not in log, log[-3000:]
    app = create_app(settings_for(url, INSTANCE_DIR=str(tmp_path)))
    with get_database(app).session() as session:
        rows = session.exec(select(OutboundMessage).where(OutboundMessage.provider_sid.in_(sids))).all()
    get_database(app).engine.dispose()
    assert len(rows) == MESSAGES
    assert Counter((row.status, row.provider_status, row.last_error_code) for row in rows) == {
        ("delivered", "delivered", None): MESSAGES
    }

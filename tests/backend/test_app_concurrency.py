"""Retries that arrive at the same time (a phone's retry racing its first attempt) against a real,
committed database: one effect, never two."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlmodel import func, select

from backend.app import create_app
from backend.db import get_database
from backend.identity.app_tokens import start_device_session
from schedules.dbtypes import utcnow
from schedules.models import VasScore
from tests.conftest import fresh_database_url, migrate_database
from tests.conftest import test_settings as settings_for
from tests.factories import auth, make_participant, make_site, make_study

WORKERS = 6


@pytest.fixture
def live_app(tmp_path):
    """An app on its own migrated database (SQLite file or a new PostgreSQL database), data committed."""
    with fresh_database_url(tmp_path) as url:
        migrate_database(url, tmp_path)
        app = create_app(settings_for(url, INSTANCE_DIR=str(tmp_path)))
        with app.app_context(), get_database(app).session() as session:
            now = utcnow()
            participant = make_participant(
                session, study=make_study(session, now=now), site=make_site(session), first_dose=date.today(), now=now
            )
            pair = start_device_session(session, participant=participant, device_name="racing phone", now=now)
        yield app, participant.id, pair
        get_database(app).engine.dispose()


def _race(app, send) -> list:
    barrier, results = threading.Barrier(WORKERS), []

    def worker():
        client = app.test_client()
        barrier.wait()
        response = send(client)
        results.append((response.status_code, response.get_json(), response.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_simultaneous_retries_with_one_key_record_one_vas(live_app):
    app, participant_id, pair = live_app
    results = _race(
        app,
        lambda c: c.post(
            "/api/v1/me/vas", json={"value": "6.5"}, headers={**auth(pair.access_token), "Idempotency-Key": "same-tap"}
        ),
    )
    statuses = [status for status, _, _ in results]
    assert len(results) == WORKERS and set(statuses) <= {201, 409} and 201 in statuses
    assert len({str(body) for status, body, _ in results if status == 201}) == 1  # every success is the first response
    with app.app_context(), get_database(app).session() as session:
        assert (
            session.exec(
                select(func.count()).select_from(VasScore).where(VasScore.participant_id == participant_id)
            ).one()
            == 1
        )


def test_simultaneous_refreshes_with_one_token_leave_one_family_member(live_app):
    app, _, pair = live_app
    results = _race(app, lambda c: c.post("/api/v1/app/token/refresh", json={"refresh_token": pair.refresh_token}))
    winners = [body for status, body, _ in results if status == 200]
    # One rotation wins; any other is reuse of a spent token, which signs the device out (the safe side).
    assert len(winners) <= 1 and all(status in (200, 401) for status, _, _ in results)

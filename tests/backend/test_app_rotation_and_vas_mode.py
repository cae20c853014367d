"""The app's injection-site rotation and VAS modes through the public API, and the site an injection-site
reaction is linked to."""

from __future__ import annotations

from sqlmodel import select

from schedules.models import AdverseEvent, VasScore
from tests.backend.app_fixtures import signed_in, trial  # noqa: F401  (fixture)
from tests.conftest import utc
from tests.factories import auth


def _report(client, headers, seq, site, taken_at):
    response = client.post(
        f"/api/v1/me/doses/{seq}/report",
        json={"taken": True, "injection_site": site, "taken_at": taken_at},
        headers=headers,
    )
    assert response.status_code == 200, response.get_json()


def test_sites_list_last_use_and_suggest_the_least_recent(client, trial, clock):
    clock.move_to(utc("2026-03-03T10:00Z"))
    headers = auth(signed_in(client, trial, trial.a)["access_token"])
    first = client.get("/api/v1/me/injection-sites", headers=headers).get_json()
    assert first["suggested"] == "abdomen_left"
    assert [s["site"] for s in first["sites"]] == [
        "abdomen_left",
        "abdomen_right",
        "thigh_left",
        "thigh_right",
        "arm_left",
        "arm_right",
    ]
    assert first["sites"][2]["label"] == "左大腿" and all(s["last_used_at"] is None for s in first["sites"])

    _report(client, headers, 1, "abdomen_left", "2026-03-01T10:00:00Z")
    _report(client, headers, 2, "abdomen_right", "2026-03-03T09:00:00Z")
    after = client.get("/api/v1/me/injection-sites", headers=headers).get_json()
    assert after["suggested"] == "thigh_left"
    used = {s["site"]: s["last_used_at"] for s in after["sites"]}
    assert used["abdomen_left"].startswith("2026-03-01T10:00") and used["abdomen_right"].startswith("2026-03-03T09")


def test_vas_keeps_its_mode_for_the_participant_and_for_staff(client, trial, session, clock):
    clock.move_to(utc("2026-03-03T10:00Z"))
    headers = auth(signed_in(client, trial, trial.a)["access_token"])
    line = client.post("/api/v1/me/vas", json={"value": 6.3, "mode": "vas_line"}, headers=headers)
    typed = client.post("/api/v1/me/vas", json={"value": "4"}, headers=headers)
    assert line.status_code == 201 and line.get_json()["mode"] == "vas_line" and line.get_json()["value"] == 6.3
    assert typed.status_code == 201 and typed.get_json()["mode"] == "sms_numeric"
    wrong = client.post("/api/v1/me/vas", json={"value": 5, "mode": "slider"}, headers=headers)
    assert wrong.status_code == 422 and "mode" in wrong.get_json()["errors"]["json"]
    staff = client.get(f"/api/v1/participants/{trial.a.id}/vas", headers=auth(trial.nurse)).get_json()
    assert [(s["value"], s["mode"]) for s in staff] == [(6.3, "vas_line"), (4.0, "sms_numeric")]
    # A nurse's correction fixes the reading, not the instrument.
    corrected = client.post(
        f"/api/v1/vas/{line.get_json()['id']}/correct",
        json={"value": 6.4, "reason": "participant says the mark slipped"},
        headers=auth(trial.nurse),
    )
    assert corrected.status_code in (200, 201), corrected.get_json()
    session.expire_all()
    assert {s.mode for s in session.exec(select(VasScore).where(VasScore.replaces_id.is_not(None))).all()} == {
        "vas_line"
    }


def test_an_injection_site_reaction_is_linked_to_the_latest_injection_before_it(client, trial, session, clock):
    clock.move_to(utc("2026-03-03T10:00Z"))
    headers = auth(signed_in(client, trial, trial.a)["access_token"])
    _report(client, headers, 1, "thigh_left", "2026-03-01T10:00:00Z")
    _report(client, headers, 2, "arm_right", "2026-03-03T09:00:00Z")
    reaction = client.post(
        "/api/v1/me/adverse-events", json={"term": "injection_site_reaction", "severity": "mild"}, headers=headers
    )
    fever = client.post("/api/v1/me/adverse-events", json={"term": "fever", "severity": "mild"}, headers=headers)
    assert reaction.status_code == 201 and reaction.get_json()["injection_site"] == "arm_right"
    assert fever.get_json()["injection_site"] is None
    staff = client.get(f"/api/v1/adverse-events/{reaction.get_json()['id']}", headers=auth(trial.nurse)).get_json()
    assert staff["injection_site"] == "arm_right"
    session.expire_all()
    assert session.get(AdverseEvent, reaction.get_json()["id"]).injection_site == "arm_right"


def test_the_migration_makes_every_earlier_score_a_typed_number_and_downgrades_cleanly(tmp_path, clock):
    from alembic import command
    from sqlalchemy import text

    from backend import migrate
    from backend.app import create_app
    from backend.db import get_database
    from tests.conftest import fresh_database_url, test_settings
    from tests.factories import make_participant, make_site, make_staff_token, make_study

    clock.move_to(utc("2026-03-02T04:00Z"))
    with fresh_database_url(tmp_path) as url:
        app = create_app(test_settings(url, INSTANCE_DIR=str(tmp_path)))
        migrate.upgrade(app)
        database = get_database(app)
        with database.session() as s:
            site = make_site(s)
            pid = make_participant(s, study=make_study(s), site=site).id
            nurse = make_staff_token(s, role="nurse", site=site)
            s.commit()
        client = app.test_client()
        made = client.post(
            f"/api/v1/participants/{pid}/vas", json={"value": 4.5, "reason": "by phone"}, headers=auth(nurse)
        )
        assert made.status_code == 201, made.get_json()
        database.engine.dispose()
        command.downgrade(migrate.alembic_config(app), "-1")  # 0015 is the head
        with database.engine.connect() as conn:
            assert "mode" not in conn.execute(text("SELECT * FROM vasscore")).keys()
        migrate.upgrade(app)
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT value, mode FROM vasscore")).one().mode == "sms_numeric"
            assert conn.execute(text("SELECT injection_site FROM adverseevent")).all() == []
        database.engine.dispose()

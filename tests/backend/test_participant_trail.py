"""A participant's audit view holds everything that happened to them: details, consent, doses, VAS, adverse
events and their reviews, alerts, app access; and nothing of another participant."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import String, cast, select, text

from backend.identity.models import ActivationCode, DeviceSession
from backend.models import AuditEntry
from backend.participant_trail import UNDECLARED, audited_models, participant_trail, trail_statement
from notifications.consent import mark_opted_in, mark_opted_out
from schedules.changes import Actor
from schedules.models import AdverseEvent, Alert, Dose, Participant, VasScore
from tests.backend.app_fixtures import new_code, trial  # noqa: F401
from tests.conftest import utc
from tests.factories import auth

SMS = Actor("sms", "participant")


def _audit(client, trial, participant):
    response = client.get(f"/api/v1/participants/{participant.id}/audit", headers=auth(trial.nurse))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _rows_in_database(session, participant) -> Counter:
    """The audit rows of the participant's own rows, per table, found independently of the view."""
    owned = {
        "participant": select(cast(Participant.id, String)).where(Participant.id == participant.id),
        "dose": select(cast(Dose.id, String)).where(Dose.participant_id == participant.id),
        "vasscore": select(cast(VasScore.id, String)).where(VasScore.participant_id == participant.id),
        "adverseevent": select(cast(AdverseEvent.id, String)).where(AdverseEvent.participant_id == participant.id),
        "alert": select(cast(Alert.id, String)).where(Alert.participant_id == participant.id),
        "activation_code": select(cast(ActivationCode.id, String)).where(
            ActivationCode.participant_id == participant.id
        ),
        "device_session": select(cast(DeviceSession.id, String)).where(DeviceSession.participant_id == participant.id),
    }
    counts = Counter()
    for entity, ids in owned.items():
        rows = session.scalars(
            select(AuditEntry.id).where(AuditEntry.entity == entity, AuditEntry.entity_id.in_(ids))
        ).all()
        if rows:
            counts[entity] = len(rows)
    return counts


def test_the_audit_view_shows_vas_adverse_events_alerts_and_consent_counted_against_the_database(
    client, session, trial, clock
):
    a, b = trial.a, trial.b
    session.commit()  # audit rows join the hash chain when their transaction commits
    clock.move_to(utc("2026-03-02T02:00Z"))
    staff = auth(trial.nurse)
    vas = client.post(f"/api/v1/participants/{a.id}/vas", json={"value": 6, "reason": "told by phone"}, headers=staff)
    assert vas.status_code == 201, vas.get_json()
    corrected = client.post(
        f"/api/v1/vas/{vas.get_json()['id']}/correct", json={"value": 4, "reason": "misheard"}, headers=staff
    )
    assert corrected.status_code == 201, corrected.get_json()
    ae = client.post(
        f"/api/v1/participants/{a.id}/adverse-events",
        json={"term": "fever", "onset_date": "2026-03-01", "severity": "moderate", "ongoing": True, "reason": "visit"},
        headers=staff,
    )
    assert ae.status_code == 201, ae.get_json()
    alert_id = session.scalars(select(Alert.id).where(Alert.participant_id == a.id)).one()
    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=staff).status_code == 200
    mark_opted_out(session, participant=a, now=utc("2026-03-02T03:00Z"), actor=SMS, why="STOP by SMS")
    mark_opted_in(session, participant=a, now=utc("2026-03-02T04:00Z"), actor=SMS, why="START by SMS")
    session.commit()
    new_code(client, trial.nurse, a.id)
    # The other participant's reports stay in their own trail.
    assert (
        client.post(f"/api/v1/participants/{b.id}/vas", json={"value": 2, "reason": "x"}, headers=staff).status_code
        == 201
    )

    shown = _audit(client, trial, a)
    by_entity = Counter(row["entity"] for row in shown)
    assert by_entity == _rows_in_database(session, a)
    assert {"vasscore", "adverseevent", "alert", "activation_code"} <= set(by_entity)
    assert by_entity["vasscore"] == 3  # the score, the correction and the original marked corrected
    assert [row["at"] for row in shown] == sorted(row["at"] for row in shown)
    consent = [(r["field"], r["new_value"], r["reason"]) for r in shown if r["entity"] == "participant"]
    assert ("opted_out", "True", "STOP by SMS") in consent and ("opted_out", "False", "START by SMS") in consent
    alert_rows = [r for r in shown if r["entity"] == "alert"]
    assert {r["action"] for r in alert_rows} >= {"create", "update"}  # opened, acknowledged, opted out, resolved
    b_vas = session.scalars(select(VasScore.id).where(VasScore.participant_id == b.id)).one()
    assert not any(r["entity"] == "vasscore" and r["entity_id"] == str(b_vas) for r in shown)
    assert Counter(row["entity"] for row in _audit(client, trial, b)) == _rows_in_database(session, b)


def test_every_audited_table_that_names_a_participant_says_whether_it_is_in_their_trail():
    undecided = [
        model.__tablename__
        for model in audited_models()
        if "participant_id" in model.__table__.columns
        and getattr(model, "__audit_participant__", UNDECLARED) is UNDECLARED
    ]
    assert undecided == []


def test_the_trail_is_found_through_the_indexes_not_by_reading_the_whole_audit_table(session, trial):
    if session.bind.dialect.name != "sqlite":
        return  # the plan below is SQLite's; PostgreSQL chooses by table size, which a test database lacks
    assert participant_trail(session, trial.a.id)
    compiled = trail_statement(trial.a.id).compile(dialect=session.bind.dialect, compile_kwargs={"literal_binds": True})
    plan = [row[-1] for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    reads = [step for step in plan if "audit_entry" in step]
    # Each table's audit rows by entity and id together: never every row of a table (all doses of everyone).
    assert reads and all("entity=? AND entity_id=?" in step for step in reads), plan


def test_a_table_about_several_participants_joins_the_trail_through_a_select_of_its_ids(session, trial, monkeypatch):
    # As an export and its link table would: the ids of the rows concerning the participant, by any query.
    make_vas = VasScore(participant_id=trial.a.id, value=5, recorded_at=utc("2026-02-20T01:00Z"), source="staff")
    session.add(make_vas)
    session.flush()
    by_column = [r.id for r in participant_trail(session, trial.a.id)]
    monkeypatch.setattr(
        VasScore,
        "__audit_participant__",
        staticmethod(lambda pid: select(VasScore.id).where(VasScore.participant_id == pid)),
    )
    assert [r.id for r in participant_trail(session, trial.a.id)] == by_column
    assert any(r.entity == "vasscore" for r in participant_trail(session, trial.a.id))

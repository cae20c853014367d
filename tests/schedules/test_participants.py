"""Participants in the domain: phone lookup by keyed hash, resume policies, when messaging stops."""

from __future__ import annotations

import json
from datetime import date

from schedules.changes import Actor
from schedules.participants import find_by_phone, hold_dosing, messaging_allowed, resume_dosing
from schedules.queries import doses_of
from tests.conftest import utc
from tests.factories import VAULT, make_participant, make_study

NURSE = Actor("staff", "staff:1")


def test_inbound_number_is_matched_by_keyed_hash(session):
    participant = make_participant(session, phone="+8613812345678")
    assert find_by_phone(session, e164="+8613812345678", vault=VAULT).id == participant.id
    assert find_by_phone(session, e164="+8613812345679", vault=VAULT) is None
    assert VAULT.decrypt(participant.phone_ciphertext) == "+8613812345678"


def test_extend_to_total_doses_keeps_the_planned_count(session):
    study = make_study(session)
    data = json.loads(study.protocol_json)
    data["hold"]["resume_policy"] = "extend_to_total_doses"
    study.protocol_json = json.dumps(data)
    session.add(study)
    participant = make_participant(session, study=study)
    planned = len(doses_of(session, participant.id))
    hold_dosing(
        session,
        participant=participant,
        reason="infection",
        effective=date(2026, 3, 10),
        actor=NURSE,
        now=utc("2026-03-09T00:00Z"),
    )
    resume_dosing(
        session,
        participant=participant,
        reason="recovered",
        resume_date=date(2026, 3, 20),
        actor=NURSE,
        now=utc("2026-03-19T17:00Z"),
    )
    given_or_due = [d for d in doses_of(session, participant.id) if d.state not in ("held", "cancelled")]
    assert len(given_or_due) == planned == 46
    assert given_or_due[-1].local_date > date(2026, 5, 31)  # end moved out to fit every dose
    assert participant.treatment_end_date > date(2026, 6, 1)


def test_messaging_stops_at_follow_up_end_and_on_opt_out(session):
    participant = make_participant(session)
    assert participant.follow_up_end_date == date(2026, 8, 30)  # 3 months after the last dose (30 May)
    assert messaging_allowed(participant, now=utc("2026-08-29T00:00Z"))
    assert not messaging_allowed(participant, now=utc("2026-08-30T00:00Z"))
    participant.opted_out = True
    assert not messaging_allowed(participant, now=utc("2026-04-01T00:00Z"))


def test_enrollment_without_a_language_gets_the_protocols_default(session):
    from tests.factories import make_participant

    participant = make_participant(session, language=None)
    assert participant.language == "zh-CN"

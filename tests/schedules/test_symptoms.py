"""VAS and adverse events in the domain: scale rules, undo, corrections, serious words (review: test_ae_review)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlmodel import select

from backend.models import AuditEntry
from schedules.changes import Actor
from schedules.errors import Conflict, InvalidInput
from schedules.models import AdverseEvent, Alert
from schedules.queries import vas_history
from schedules.studies import protocol_of
from schedules.symptoms import (
    correct_vas,
    record_vas,
    report_adverse_event,
    serious_keyword_matches,
    undo_last_vas,
)
from schedules.vocabulary import AE_TERM_LABELS, AE_TERMS
from tests.conftest import utc
from tests.factories import make_participant, make_site, make_study

SMS = Actor("sms", "participant:1")
NURSE = Actor("staff", "staff:7")
INVESTIGATOR = Actor("staff", "staff:8")
NOW = utc("2026-03-01T12:30Z")


@pytest.fixture
def world(session):
    study = make_study(session)
    site = make_site(session)
    participant = make_participant(session, study=study, site=site)
    return {"study": study, "site": site, "participant": participant, "protocol": protocol_of(study)}


def _vas(session, world, value, *, at=NOW, actor=SMS, reason=None):
    return record_vas(
        session,
        participant=world["participant"],
        value=Decimal(value),
        protocol=world["protocol"],
        actor=actor,
        now=at,
        reason=reason,
    )


def _audit(session, entity, entity_id):
    """Audit rows of one entity, one per field (a creation row holding every value as JSON is spread out)."""
    rows = session.exec(
        select(AuditEntry)
        .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
        .order_by(AuditEntry.id)
    ).all()
    spread = []
    for row in rows:
        if row.field == "*":
            spread += [
                SimpleNamespace(action=row.action, field=k, new_value=v, actor=row.actor, reason=row.reason)
                for k, v in json.loads(row.new_value).items()
            ]
        else:
            spread.append(row)
    return spread


@pytest.mark.parametrize("value", ["0", "0.0", "4.5", "10", "10.0"])
def test_vas_on_the_scale_is_recorded_with_one_decimal(session, world, value):
    score = _vas(session, world, value)
    assert score.value == Decimal(value).quantize(Decimal("0.1")) and str(score.value) == str(
        Decimal(value).quantize(Decimal("0.1"))
    )
    assert score.status == "valid" and score.source == "sms"


@pytest.mark.parametrize(
    "value, reason", [("10.1", "between"), ("-0.1", "between"), ("11", "between"), ("4.55", "decimal")]
)
def test_vas_off_the_scale_is_refused_with_the_reason_and_nothing_stored(session, world, value, reason):
    with pytest.raises(InvalidInput) as refused:
        _vas(session, world, value)
    assert refused.value.field == "value" and reason in refused.value.message
    assert vas_history(session, world["participant"].id) == []


def test_staff_recording_a_vas_needs_a_reason_which_is_kept_and_audited(session, world):
    with pytest.raises(InvalidInput) as refused:
        _vas(session, world, "3.0", actor=NURSE)
    assert refused.value.field == "reason"
    score = _vas(session, world, "3.0", actor=NURSE, reason="told the nurse by phone")
    assert score.source == "staff" and score.reason == "told the nurse by phone"
    rows = _audit(session, "vasscore", score.id)
    assert {r.field for r in rows} >= {"value", "source", "status"}
    assert {(r.actor, r.reason) for r in rows} == {("staff:staff:7", "told the nurse by phone")}


def test_undo_within_the_hour_withdraws_the_last_vas_and_keeps_the_row(session, world):
    score = _vas(session, world, "4.5")
    undone = undo_last_vas(
        session, participant=world["participant"], actor=SMS, now=NOW + timedelta(minutes=59), within=timedelta(hours=1)
    )
    assert undone is score and score.status == "withdrawn" and score.withdrawn_at == NOW + timedelta(minutes=59)
    assert [(r.id, r.status) for r in vas_history(session, world["participant"].id)] == [(score.id, "withdrawn")]
    assert any(r.field == "status" and r.new_value == "withdrawn" for r in _audit(session, "vasscore", score.id))


def test_undo_after_the_hour_changes_nothing(session, world):
    score = _vas(session, world, "4.5")
    assert (
        undo_last_vas(
            session,
            participant=world["participant"],
            actor=SMS,
            now=NOW + timedelta(minutes=61),
            within=timedelta(hours=1),
        )
        is None
    )
    assert score.status == "valid"


def test_correction_needs_a_reason_adds_a_row_and_marks_the_original_corrected(session, world):
    original = _vas(session, world, "4.5")
    with pytest.raises(InvalidInput) as refused:
        correct_vas(
            session, score=original, value=Decimal("5.4"), protocol=world["protocol"], reason="  ", actor=NURSE, now=NOW
        )
    assert refused.value.field == "reason" and original.status == "valid"
    new = correct_vas(
        session,
        score=original,
        value=Decimal("5.4"),
        protocol=world["protocol"],
        reason="digits swapped",
        actor=NURSE,
        now=NOW,
    )
    assert (
        new.id != original.id
        and new.replaces_id == original.id
        and new.value == Decimal("5.4")
        and new.recorded_at == original.recorded_at
    )
    assert original.status == "corrected" and original.value == Decimal("4.5")
    assert [r.status for r in vas_history(session, world["participant"].id)] == ["corrected", "valid"]
    with pytest.raises(Conflict):
        correct_vas(
            session,
            score=original,
            value=Decimal("6.0"),
            protocol=world["protocol"],
            reason="again",
            actor=NURSE,
            now=NOW,
        )
    assert any(
        r.field == "status" and r.new_value == "corrected" and r.reason == "digits swapped"
        for r in _audit(session, "vasscore", original.id)
    )
    assert any(
        r.field == "value" and r.new_value == "5.4" and r.reason == "digits swapped"
        for r in _audit(session, "vasscore", new.id)
    )


@pytest.mark.parametrize(
    "text, found",
    [
        ("发烧 住院了", ["住院"]),
        ("昨晚去了急诊", ["急诊"]),
        ("went to the ER last night", ["ER"]),
        ("drank more water", []),
        ("拨打120叫了救护车", ["120", "救护车"]),
        ("walked 1200 steps", []),
        ("在ＩＣＵ", ["ICU"]),
        ("Admitted to Hospital", ["hospital", "admitted"]),
        ("headache", []),
    ],
)
def test_serious_words_match_whole_latin_words_and_chinese_substrings(world, text, found):
    assert sorted(serious_keyword_matches(text, world["protocol"].safety.serious_keywords)) == sorted(found)


def test_serious_report_opens_a_high_alert_with_a_24_hour_deadline(session, world):
    ae = report_adverse_event(
        session,
        participant=world["participant"],
        protocol=world["protocol"],
        actor=SMS,
        now=NOW,
        raw_text="发烧 住院了",
    )
    assert ae.suspected_serious and ae.matched_keywords == "住院" and ae.raw_text == "发烧 住院了"
    alert = session.exec(select(Alert).where(Alert.ref_type == "adverse_event", Alert.ref_id == ae.id)).one()
    assert (alert.kind, alert.priority, alert.deadline_at, alert.state) == (
        "serious_ae",
        "high",
        NOW + timedelta(hours=24),
        "open",
    )


def test_went_to_hospital_alone_makes_a_report_suspected_serious(session, world):
    ae = report_adverse_event(
        session,
        participant=world["participant"],
        protocol=world["protocol"],
        actor=NURSE,
        now=NOW,
        term="fever",
        went_to_hospital=True,
        severity="severe",
        onset_date=date(2026, 2, 28),
        reason="phoned in",
    )
    assert ae.suspected_serious and ae.matched_keywords == ""
    assert {r.reason for r in _audit(session, "adverseevent", ae.id)} == {"phoned in"}


def test_ordinary_report_opens_a_normal_alert_without_deadline(session, world):
    ae = report_adverse_event(
        session, participant=world["participant"], protocol=world["protocol"], actor=SMS, now=NOW, raw_text="headache"
    )
    alert = session.exec(select(Alert).where(Alert.ref_id == ae.id, Alert.ref_type == "adverse_event")).one()
    assert not ae.suspected_serious and (alert.kind, alert.priority, alert.deadline_at) == (
        "adverse_event",
        "normal",
        None,
    )


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"term": "sneezing"}, "term"),
        ({"term": "other"}, "other_text"),
        ({"term": "fever", "severity": "awful"}, "severity"),
        ({"term": "fever", "onset_date": date(2026, 3, 9)}, "onset_date"),
    ],
)
def test_bad_structured_report_names_the_field_and_stores_nothing(session, world, kwargs, field):
    with pytest.raises(InvalidInput) as refused:
        report_adverse_event(
            session, participant=world["participant"], protocol=world["protocol"], actor=NURSE, now=NOW, **kwargs
        )
    assert refused.value.field == field
    assert session.exec(select(AdverseEvent)).all() == [] and session.exec(select(Alert)).all() == []


def test_every_term_has_an_english_and_chinese_label_and_the_required_terms_exist():
    assert set(AE_TERM_LABELS) == set(AE_TERMS)
    assert all(set(labels) == {"en", "zh-CN"} and all(labels.values()) for labels in AE_TERM_LABELS.values())
    assert {
        "injection_site_reaction",
        "fever",
        "fatigue",
        "chills_flu_like",
        "rash",
        "nausea",
        "headache",
        "other",
    } <= set(AE_TERMS)

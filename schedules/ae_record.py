"""Completing an adverse-event report into a record an SAE report can be written from: CTCAE v5 term, dates,
severity, hospital, action taken with the study drug, when the site became aware, narrative.

Nurses do this for an SMS report (which arrives as term "other" with no dates); investigators and admins may too.
The participant's own words (raw_text, other_text) are never changed. A signed version stays as signed: the
completion goes into the next version (schedules.ae_review.open_version). When the site's awareness time is
corrected, the open reporting deadline of a suspected-serious event moves with it: the clock runs from awareness."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from schedules.ae_review import open_version
from schedules.ae_versions import current_version_signed
from schedules.alerts import open_alert
from schedules.changes import Actor, acting
from schedules.ctcae import ctcae_term
from schedules.errors import InvalidInput
from schedules.models import HIGH, AdverseEvent, Alert, AlertKind, AlertState, Participant
from schedules.protocol import Protocol
from schedules.queries import local_today
from schedules.vocabulary import ACTIONS_TAKEN, NARRATIVE_MAX, RECORD_FIELDS, SEVERITIES


def _checked_choice(changes: dict[str, object], name: str, allowed: tuple[str, ...], label: str) -> None:
    value = changes.get(name)
    if value is not None and value not in allowed:
        raise InvalidInput(f"{label} must be one of {', '.join(allowed)}", field=name)


def _checked_date(value: object, name: str, label: str, today: date) -> None:
    if value is None:
        return
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidInput(f"{label} must be a date", field=name)
    if value > today:
        raise InvalidInput(
            f"{label} {value.isoformat()} is in the future: it is {today.isoformat()} where the participant lives",
            field=name,
        )


def _checked_aware_at(aware_at: object, onset: date | None, participant: Participant, now: datetime) -> None:
    if not isinstance(aware_at, datetime) or aware_at.tzinfo is None:
        raise InvalidInput("the time the site became aware needs a date, a time and a time zone", field="aware_at")
    if aware_at > now:
        raise InvalidInput("the site cannot have become aware in the future", field="aware_at")
    if onset is not None and local_today(participant, aware_at) < onset:
        raise InvalidInput(
            f"the site cannot have become aware before the event began (onset {onset.isoformat()})", field="aware_at"
        )


def checked_record(
    ae: AdverseEvent, participant: Participant, changes: dict[str, object], *, now: datetime
) -> dict[str, object]:
    """The fields that change, validated against each other and the participant's local today; InvalidInput
    (with the field) for the first thing wrong."""
    unknown = sorted(set(changes) - set(RECORD_FIELDS))
    if unknown:
        raise InvalidInput(f"completing an adverse event changes only {', '.join(RECORD_FIELDS)}", field=unknown[0])
    checked = dict(changes)
    if "ctcae_term" in checked and ctcae_term(str(checked["ctcae_term"] or "")) is None:
        raise InvalidInput("choose a term from the CTCAE v5 list (GET /api/v1/ctcae-terms)", field="ctcae_term")
    _checked_choice(checked, "severity", SEVERITIES, "severity")
    _checked_choice(checked, "action_taken", ACTIONS_TAKEN, "the action taken with the study drug")
    for name in ("ongoing", "went_to_hospital"):
        if checked.get(name) is not None and not isinstance(checked[name], bool):
            raise InvalidInput(f"{name.replace('_', ' ')} is yes, no or not known", field=name)
    today = local_today(participant, now)
    _checked_date(checked.get("onset_date"), "onset_date", "the onset date", today)
    _checked_date(checked.get("stop_date"), "stop_date", "the stop date", today)
    after = {name: checked.get(name, getattr(ae, name)) for name in ("onset_date", "stop_date", "ongoing")}
    if after["onset_date"] and after["stop_date"] and after["stop_date"] < after["onset_date"]:
        raise InvalidInput(
            f"the stop date {after['stop_date'].isoformat()} is before the onset date "
            f"{after['onset_date'].isoformat()}",
            field="stop_date" if "stop_date" in checked else "onset_date",
        )
    if after["ongoing"] and after["stop_date"]:
        raise InvalidInput("an ongoing event has no stop date: clear one of them", field="ongoing")
    if "aware_at" in checked or "onset_date" in checked:
        aware_at = checked.get("aware_at", ae.aware_at or ae.reported_at)
        _checked_aware_at(aware_at, after["onset_date"], participant, now)
    if "narrative" in checked:
        checked["narrative"] = (checked["narrative"] or "").strip()
        if len(checked["narrative"]) > NARRATIVE_MAX:
            raise InvalidInput(f"the narrative takes at most {NARRATIVE_MAX} characters", field="narrative")
    return {name: value for name, value in checked.items() if getattr(ae, name) != value}


def _serious_alert(session: Session, ae: AdverseEvent) -> Alert | None:
    """The event's unresolved suspected-serious alert, if any (the one its reporting clock is on)."""
    return session.exec(
        select(Alert)
        .where(
            Alert.ref_type == "adverse_event",
            Alert.ref_id == ae.id,
            Alert.kind == AlertKind.SERIOUS_AE.value,
            Alert.state != AlertState.RESOLVED.value,
        )
        .order_by(Alert.id.desc())
    ).first()


def _move_deadline(session: Session, ae: AdverseEvent, protocol: Protocol) -> Alert | None:
    """The unresolved suspected-serious alert's deadline, counted again from when the site became aware."""
    alert = _serious_alert(session, ae)
    if alert is None or alert.deadline_at is None:
        return None
    alert.deadline_at = ae.aware_at + timedelta(hours=protocol.safety.reporting_deadline_hours)
    session.add(alert)
    return alert


def _make_suspected_serious(
    session: Session, ae: AdverseEvent, participant: Participant, protocol: Protocol, *, actor: Actor, now: datetime
) -> None:
    """A completion that says the participant went to hospital makes the event suspected serious, as the report
    would have: its alert becomes the high-priority serious one with the reporting clock (a new one when the
    ordinary alert was already resolved). The caller pages on-call."""
    ae.suspected_serious = True
    session.add(ae)
    deadline = (ae.aware_at or now) + timedelta(hours=protocol.safety.reporting_deadline_hours)
    alert = session.exec(select(Alert).where(Alert.dedupe_key == f"ae:{ae.id}")).first()
    if alert is not None and alert.state != AlertState.RESOLVED.value:
        alert.kind, alert.priority, alert.deadline_at = AlertKind.SERIOUS_AE.value, HIGH, deadline
        session.add(alert)
        return
    open_alert(
        session,
        participant=participant,
        site_id=participant.site_id,
        kind=AlertKind.SERIOUS_AE.value,
        dedupe_key=f"ae:{ae.id}:serious",
        now=now,
        actor=actor,
        priority=HIGH,
        ref_type="adverse_event",
        ref_id=ae.id,
        deadline_at=deadline,
        summary="suspected serious adverse event: went to hospital (record completed by staff)",
    )


def complete_adverse_event(
    session: Session,
    *,
    ae: AdverseEvent,
    participant: Participant,
    protocol: Protocol,
    actor: Actor,
    now: datetime,
    changes: dict[str, object],
    reason: str | None = None,
) -> AdverseEvent:
    """Complete or correct the record's fields (RECORD_FIELDS; those left out are kept), each change audited
    with `reason`. After a signature the change is a new version, to be signed again."""
    changed = checked_record(ae, participant, changes, now=now)
    if not changed:
        signed = " (and signed)" if current_version_signed(session, ae) else ""
        raise InvalidInput(
            f"nothing to change: the values are the current ones{signed}", field=next(iter(changes), "ctcae_term")
        )
    with acting(session, actor, (reason or "").strip() or "adverse event record completed"):
        open_version(session, ae)
        for name, value in changed.items():
            setattr(ae, name, value)
        session.add(ae)
        if changed.get("went_to_hospital") and not ae.suspected_serious:
            _make_suspected_serious(session, ae, participant, protocol, actor=actor, now=now)
        elif "aware_at" in changed:
            _move_deadline(session, ae, protocol)
    return ae

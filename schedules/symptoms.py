"""Patient-global VAS and adverse events: recording, undo, corrections, escalation (review: schedules.ae_review)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from sqlmodel import Session, select

from schedules.alerts import open_alert
from schedules.changes import Actor, acting
from schedules.errors import Conflict, InvalidInput
from schedules.injection_sites import site_before
from schedules.models import (
    HIGH,
    NORMAL,
    AdverseEvent,
    AlertKind,
    Participant,
    VasScore,
)
from schedules.protocol import Protocol
from schedules.vocabulary import AE_TERMS, INJECTION_SITE_TERM, SEVERITIES, VAS_MODES


def check_vas_value(value: Decimal, protocol: Protocol) -> Decimal:
    """The value if it is on the protocol's scale with its decimals; InvalidInput with the reason otherwise."""
    rule = protocol.vas
    if not (rule.scale_min <= value <= rule.scale_max):
        raise InvalidInput(f"VAS must be between {rule.scale_min} and {rule.scale_max}", field="value")
    if value != value.quantize(Decimal(1).scaleb(-rule.decimals)):
        raise InvalidInput(f"VAS takes at most {rule.decimals} decimal", field="value")
    return value.quantize(Decimal(1).scaleb(-rule.decimals))


def record_vas(
    session: Session,
    *,
    participant: Participant,
    value: Decimal,
    protocol: Protocol,
    actor: Actor,
    now: datetime,
    inbound_id: int | None = None,
    reason: str | None = None,
    mode: str = "sms_numeric",
) -> VasScore:
    """Record a VAS answer (`mode`: a typed number or a mark on the line); staff recording one on a participant's
    behalf must give a reason."""
    if mode not in VAS_MODES:
        raise InvalidInput(f"mode must be one of {', '.join(VAS_MODES)}", field="mode")
    if actor.source == "staff" and not (reason or "").strip():
        raise InvalidInput("a reason is required when staff record a VAS on a participant's behalf", field="reason")
    why = (reason or "").strip()
    score = VasScore(
        participant_id=participant.id,
        value=check_vas_value(value, protocol),
        recorded_at=now,
        source=actor.source,
        inbound_id=inbound_id,
        reason=why,
        mode=mode,
    )
    with acting(session, actor, why or "VAS reported"):
        session.add(score)
    return score


def undo_last_vas(
    session: Session, *, participant: Participant, actor: Actor, now: datetime, within: timedelta
) -> VasScore | None:
    """Withdraw the participant's latest valid VAS if recorded within `within`; the row stays, marked withdrawn."""
    last = session.exec(
        select(VasScore)
        .where(VasScore.participant_id == participant.id, VasScore.status == "valid")
        .order_by(VasScore.recorded_at.desc(), VasScore.id.desc())
    ).first()
    if last is None or last.recorded_at < now - within:
        return None
    with acting(session, actor, "withdrawn by participant (UNDO)"):
        last.status, last.withdrawn_at = "withdrawn", now
        session.add(last)
    return last


def correct_vas(
    session: Session,
    *,
    score: VasScore,
    value: Decimal,
    protocol: Protocol,
    reason: str | None,
    actor: Actor,
    now: datetime,
) -> VasScore:
    """Staff correction: a new row replaces the old one, which is kept and marked corrected."""
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required for a correction", field="reason")
    if score.status != "valid":
        raise Conflict(f"this VAS is {score.status} and cannot be corrected", field="status")
    new = VasScore(
        participant_id=score.participant_id,
        value=check_vas_value(value, protocol),
        recorded_at=score.recorded_at,
        source=actor.source,
        status="valid",
        replaces_id=score.id,
        reason=reason.strip(),
        mode=score.mode,  # a correction fixes the reading, not the instrument
    )
    with acting(session, actor, reason.strip()):
        score.status = "corrected"
        session.add(score)
        session.add(new)
    return new


def _fold(text: str) -> str:
    """NFKC (full-width ＩＣＵ and １２０ from Chinese keyboards), case folded, invisible format characters gone."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").casefold()


@lru_cache(maxsize=32)
def _keyword_matchers(keywords: tuple[str, ...]) -> tuple[tuple[str, str | None, re.Pattern | None], ...]:
    """Each keyword with its folded form (CJK: a substring) or its whole-word pattern (Latin script and digits),
    made once per protocol's list: every inbound SMS is checked against it."""
    matchers = []
    for word in keywords:
        folded = _fold(word)
        if re.search(r"[\u3400-\u9fff]", folded):
            matchers.append((word, folded, None))
        else:
            # Bounded by Latin letters and digits only: Chinese runs words together ("拨打120", "去了ICU").
            matchers.append((word, None, re.compile(rf"(?<![a-z0-9]){re.escape(folded)}(?![a-z0-9])")))
    return tuple(matchers)


def serious_keyword_matches(text: str, keywords: tuple[str, ...]) -> list[str]:
    """Serious-event words in `text`, as the protocol spells them: whole words for Latin script and numbers
    (so 'water' is not 'ER'), substrings for CJK (Chinese has no spaces); both sides folded alike."""
    text = _fold(text)
    return [
        word
        for word, substring, pattern in _keyword_matchers(tuple(keywords))
        if (substring in text if pattern is None else pattern.search(text))
    ]


def report_adverse_event(
    session: Session,
    *,
    participant: Participant,
    protocol: Protocol,
    actor: Actor,
    now: datetime,
    raw_text: str = "",
    term: str = "other",
    other_text: str = "",
    onset_date: date | None = None,
    severity: str | None = None,
    ongoing: bool | None = None,
    went_to_hospital: bool | None = None,
    reason: str | None = None,
) -> AdverseEvent:
    """Record an AE and open its nurse alert; hospital or a serious word makes it suspected-serious
    with a reporting deadline."""
    if term not in AE_TERMS:
        raise InvalidInput(f"unknown term {term!r}", field="term")
    if term == "other" and not (other_text or raw_text).strip():
        raise InvalidInput("describe the event when the term is 'other'", field="other_text")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}", field="severity")
    if onset_date is not None and onset_date > now.date() + timedelta(days=1):
        raise InvalidInput("onset date is in the future", field="onset_date")
    matches = serious_keyword_matches(" ".join([raw_text, other_text]), protocol.safety.serious_keywords)
    serious = bool(went_to_hospital) or bool(matches)
    ae = AdverseEvent(
        participant_id=participant.id,
        reported_at=now,
        aware_at=now,
        source=actor.source,
        raw_text=raw_text,
        term=term,
        other_text=other_text,
        onset_date=onset_date,
        severity=severity,
        ongoing=ongoing,
        went_to_hospital=went_to_hospital,
        suspected_serious=serious,
        matched_keywords=", ".join(matches),
        # A reaction belongs to the site of the latest injection before it was reported.
        injection_site=site_before(session, participant.id, at=now) if term == INJECTION_SITE_TERM else None,
    )
    with acting(session, actor, (reason or "").strip() or "adverse event reported"):
        session.add(ae)
    deadline = now + timedelta(hours=protocol.safety.reporting_deadline_hours) if serious else None
    open_alert(
        session,
        participant=participant,
        site_id=participant.site_id,
        kind=AlertKind.SERIOUS_AE.value if serious else AlertKind.ADVERSE_EVENT.value,
        dedupe_key=f"ae:{ae.id}",
        now=now,
        actor=actor,
        priority=HIGH if serious else NORMAL,
        ref_type="adverse_event",
        ref_id=ae.id,
        deadline_at=deadline,
        summary=("suspected serious adverse event" if serious else "adverse event") + f" reported by {actor.source}",
    )
    return ae

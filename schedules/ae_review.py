"""Investigator review of adverse events: grading, follow-up, and electronic signatures of each version.

A signed version is frozen: a later grading or follow-up (outcome, stop date, narrative) opens the next version,
which needs signing again; the earlier one stays readable with its signatures (schedules.ae_versions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from schedules.ae_versions import canonical, content_hash, current_version_signed, signed_content
from schedules.changes import Actor, acting
from schedules.errors import Conflict, InvalidInput
from schedules.models import AdverseEvent, AdverseEventSignature, AdverseEventVersion
from schedules.vocabulary import (
    ACTIONS_TAKEN,
    FOLLOW_UP_FIELDS,
    NARRATIVE_MAX,
    OUTCOMES,
    RELATEDNESS,
    SERIOUS_CRITERIA,
    SIGNATURE_MEANINGS,
)


@dataclass(frozen=True)
class Signer:
    """Who signs: a staff account whose password the caller has just checked again, as the signature names it."""

    staff_id: int
    email: str
    role: str


def open_version(session: Session, ae: AdverseEvent) -> None:
    """Make the record changeable: a signed version stays as signed, so the change goes into the next one."""
    if current_version_signed(session, ae):
        ae.version += 1
        ae.signed_off_by, ae.signed_off_at = "", None


def review_adverse_event(
    session: Session,
    *,
    ae: AdverseEvent,
    actor: Actor,
    now: datetime,
    ctcae_grade: int,
    serious: bool,
    serious_criteria: list[str],
    relatedness: str,
    outcome: str,
    reason: str | None = None,
) -> AdverseEvent:
    """Investigator grading: CTCAE v5 grade, seriousness with criteria, relatedness, outcome.
    After a signature the new grading is a new version, to be signed again."""
    if not 1 <= ctcae_grade <= 5:
        raise InvalidInput("CTCAE grade is 1 to 5", field="ctcae_grade")
    if relatedness not in RELATEDNESS:
        raise InvalidInput(f"relatedness must be one of {', '.join(RELATEDNESS)}", field="relatedness")
    if outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}", field="outcome")
    bad = [c for c in serious_criteria if c not in SERIOUS_CRITERIA]
    if bad:
        raise InvalidInput(f"unknown serious criteria {', '.join(bad)}", field="serious_criteria")
    if serious and not serious_criteria:
        raise InvalidInput("a serious event needs at least one criterion", field="serious_criteria")
    grading = dict(
        ctcae_grade=ctcae_grade,
        serious=serious,
        serious_criteria=",".join(serious_criteria),
        relatedness=relatedness,
        outcome=outcome,
    )
    signed = current_version_signed(session, ae)
    if signed and all(getattr(ae, name) == value for name, value in grading.items()):
        raise Conflict(f"version {ae.version} is signed with this very grading: nothing to change", field="review")
    with acting(session, actor, reason or "investigator review"):
        open_version(session, ae)
        for name, value in grading.items():
            setattr(ae, name, value)
        ae.reviewed_by, ae.reviewed_at = actor.label, now
        session.add(ae)
    return ae


def _checked_follow_up(ae: AdverseEvent, changes: dict[str, object], *, now: datetime) -> dict[str, object]:
    unknown = sorted(set(changes) - set(FOLLOW_UP_FIELDS))
    if unknown:
        raise InvalidInput(f"a follow-up changes only {', '.join(FOLLOW_UP_FIELDS)}", field=unknown[0])
    checked = dict(changes)
    if "outcome" in checked and checked["outcome"] not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}", field="outcome")
    if checked.get("action_taken") is not None and checked["action_taken"] not in ACTIONS_TAKEN:
        raise InvalidInput(f"action taken must be one of {', '.join(ACTIONS_TAKEN)}", field="action_taken")
    if checked.get("ongoing") is not None and not isinstance(checked["ongoing"], bool):
        raise InvalidInput("ongoing is yes, no or not known", field="ongoing")
    stop = checked.get("stop_date")
    if stop is not None:
        if not isinstance(stop, date):
            raise InvalidInput("stop date must be a date", field="stop_date")
        # A day ahead of UTC: the participant's local date may already be tomorrow.
        if stop > now.date() + timedelta(days=1):
            raise InvalidInput("stop date is in the future", field="stop_date")
        if ae.onset_date is not None and stop < ae.onset_date:
            raise InvalidInput(f"stop date is before the onset date {ae.onset_date.isoformat()}", field="stop_date")
    if "narrative" in checked:
        checked["narrative"] = (checked["narrative"] or "").strip()
        if len(checked["narrative"]) > NARRATIVE_MAX:
            raise InvalidInput(f"the narrative takes at most {NARRATIVE_MAX} characters", field="narrative")
    return {name: value for name, value in checked.items() if getattr(ae, name) != value}


def follow_up_adverse_event(
    session: Session, *, ae: AdverseEvent, actor: Actor, now: datetime, changes: dict[str, object], reason: str
) -> AdverseEvent:
    """Follow-up information (outcome, stop date, ongoing, action taken, narrative) with its reason, e.g.
    'discharge letter received'. After a signature it is a new version, to be signed again; the signed one stays."""
    if not (reason or "").strip():
        raise InvalidInput("say where the follow-up comes from (a reason is required)", field="reason")
    changed = _checked_follow_up(ae, changes, now=now)
    if not changed:
        raise InvalidInput("nothing to change: the values are the current ones", field=next(iter(changes), "outcome"))
    with acting(session, actor, f"follow-up: {reason.strip()}"):
        open_version(session, ae)
        for name, value in changed.items():
            setattr(ae, name, value)
        session.add(ae)
    return ae


def check_signable(session: Session, *, ae: AdverseEvent, signer: Signer, meaning: str) -> None:
    """Refuse (before any password is asked for) a signature that could not be made."""
    if meaning not in SIGNATURE_MEANINGS:
        raise InvalidInput(f"the meaning of a signature is one of {', '.join(SIGNATURE_MEANINGS)}", field="meaning")
    if ae.reviewed_at is None:
        raise Conflict("review the adverse event (grade, seriousness, relatedness) before signing off", field="review")
    already = session.exec(
        select(AdverseEventSignature.id).where(
            AdverseEventSignature.adverse_event_id == ae.id,
            AdverseEventSignature.version == ae.version,
            AdverseEventSignature.signer_id == signer.staff_id,
            AdverseEventSignature.meaning == meaning,
        )
    ).first()
    if already is not None:
        raise Conflict(f"you already signed version {ae.version} as {meaning}", field="meaning")


def _frozen(session: Session, ae: AdverseEvent, *, now: datetime) -> AdverseEventVersion:
    """The current version's frozen content, stored at its first signature."""
    content = signed_content(ae)
    digest = content_hash(content)
    lookup = select(AdverseEventVersion).where(
        AdverseEventVersion.adverse_event_id == ae.id, AdverseEventVersion.version == ae.version
    )
    snapshot = session.exec(lookup).first()
    if snapshot is None:
        try:
            with session.begin_nested():  # a second signer at the same moment stores it first
                snapshot = AdverseEventVersion(
                    adverse_event_id=ae.id,
                    version=ae.version,
                    content=canonical(content),
                    content_hash=digest,
                    frozen_at=now,
                )
                session.add(snapshot)
        except IntegrityError:
            snapshot = session.exec(lookup).one()
    if snapshot.content_hash != digest:
        raise Conflict(
            f"version {ae.version} no longer holds what was signed: it was changed outside the review", field="version"
        )
    return snapshot


def sign_adverse_event(
    session: Session, *, ae: AdverseEvent, signer: Signer, meaning: str, actor: Actor, now: datetime
) -> AdverseEventSignature:
    """An electronic signature of the current version: signer, time, meaning and the hash of what is signed.
    The caller has checked the signer's password again; the version is frozen from now on."""
    check_signable(session, ae=ae, signer=signer, meaning=meaning)
    with acting(session, actor, f"signed version {ae.version} as {meaning}"):
        snapshot = _frozen(session, ae, now=now)
        signature = AdverseEventSignature(
            adverse_event_id=ae.id,
            version=ae.version,
            signer_id=signer.staff_id,
            signer_email=signer.email,
            signer_role=signer.role,
            meaning=meaning,
            signed_at=now,
            content_hash=snapshot.content_hash,
        )
        session.add(signature)
        ae.signed_off_by, ae.signed_off_at = actor.label, now
        session.add(ae)
    return signature

"""An adverse event's record completed by a nurse, its investigator review and follow-up, and signing it with email
and password entered again.

The password goes through the staff sign-in (`identity.staff.sign_in_staff`), so a wrong one counts towards the
account's lockout like a wrong sign-in, and a locked account signs nothing."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from backend.identity.app_tokens import Refused
from backend.identity.lockout import LockoutPolicy
from backend.identity.staff import normalize_email, sign_in_staff
from backend.models import Staff
from backend.operations.symptoms import protocol_for
from notifications.escalation import escalate_serious_ae
from schedules import ae_record, ae_review
from schedules.changes import Actor
from schedules.errors import NotPermitted
from schedules.models import AdverseEvent, AdverseEventSignature, Participant
from schedules.phones import PhoneVault

# Nothing follows a grading or a follow-up (no message, no page): the domain write is the whole operation.
review_adverse_event = ae_review.review_adverse_event
follow_up_adverse_event = ae_review.follow_up_adverse_event


def complete_adverse_event(
    session: Session,
    *,
    ae: AdverseEvent,
    actor: Actor,
    now: datetime,
    changes: dict[str, object],
    vault: PhoneVault,
    reason: str | None = None,
) -> AdverseEvent:
    """Complete a report into an SAE-ready record (nurse, investigator, admin) under the participant's protocol,
    whose reporting clock the awareness time restarts."""
    participant = session.get(Participant, ae.participant_id)
    was_serious = ae.suspected_serious
    ae_record.complete_adverse_event(
        session,
        ae=ae,
        participant=participant,
        protocol=protocol_for(session, participant),
        actor=actor,
        now=now,
        changes=changes,
        reason=reason,
    )
    if ae.suspected_serious and not was_serious:
        # "Went to hospital" learnt later escalates as the report would have: on-call is paged now.
        escalate_serious_ae(session, ae=ae, participant=participant, vault=vault, now=now)
    return ae


def sign_adverse_event(
    session: Session,
    *,
    ae: AdverseEvent,
    staff_id: int,
    email: str,
    password: str,
    meaning: str,
    actor: Actor,
    now: datetime,
    policy: LockoutPolicy,
) -> AdverseEventSignature:
    """Sign the current version of an adverse event as the signed-in staff member, who enters email and password.

    NotPermitted for someone else's email; SignInLocked while the account is locked; Refused (403) on a wrong
    password, whose consequence (the failure counted) must be written although nothing is signed."""
    staff = session.get(Staff, staff_id)
    if normalize_email(email) != staff.email:
        raise NotPermitted(
            f"sign with your own account: you are signed in as {staff.email}; nothing was signed", field="email"
        )
    signer = ae_review.Signer(staff_id=staff.id, email=staff.email, role=staff.role)
    # A signature that could not be made anyway costs no password attempt.
    ae_review.check_signable(session, ae=ae, signer=signer, meaning=meaning)
    try:
        sign_in_staff(session, email=staff.email, password=password, now=now, policy=policy)
    except Refused as exc:
        raise Refused(
            "wrong password: nothing was signed (wrong passwords count towards locking your sign-in)",
            no_longer_allowed=True,
            consequence=exc.consequence,
        ) from None
    return ae_review.sign_adverse_event(session, ae=ae, signer=signer, meaning=meaning, actor=actor, now=now)

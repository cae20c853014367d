"""On-call pages of a suspected-serious alert: the dedupe key of each round, and what became of each SMS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from notifications.models import OutboundMessage, OutboxStatus, Purpose
from schedules.models import Alert, AlertKind
from schedules.phones import PhoneVault, mask_e164

_ROUND = re.compile(r":round:(\d+):to:")


def page_prefix(ae_id: int, round_no: int = 1) -> str:
    """Dedupe prefix of one round of on-call pages for an adverse event: one row per number and round, however
    often or by however many processes the round is queued (round 1 keeps the key it always had)."""
    return f"staff_alert:ae:{ae_id}" if round_no == 1 else f"staff_alert:ae:{ae_id}:round:{round_no}"


def _round_of(dedupe_key: str) -> int:
    found = _ROUND.search(dedupe_key)
    return int(found.group(1)) if found else 1


@dataclass(frozen=True)
class PageRecipient:
    """One SMS of a round: the number (masked, or "" without the vault) and how far it got (outbox status)."""

    number: str
    status: str


@dataclass(frozen=True)
class PageRound:
    """One round of on-call pages: round 1 when the event was reported, 2, 3... the repeats of the chase."""

    round: int
    at: datetime  # queued
    left_at: datetime | None  # the last of its SMS handed to the provider (None while none has)
    recipients: tuple[PageRecipient, ...]

    @property
    def delivered(self) -> int:
        """How many of the round's SMS the carrier reported delivered."""
        return sum(r.status in (OutboxStatus.DELIVERED.value, "read") for r in self.recipients)

    @property
    def waiting(self) -> bool:
        """Some SMS of the round has not left the outbox yet."""
        return any(r.status == OutboxStatus.PLANNED.value for r in self.recipients)


def page_rounds(session: Session, alert: Alert, *, vault: PhoneVault | None = None) -> list[PageRound]:
    """The on-call pages of a suspected-serious alert, oldest round first ([] for any other alert); numbers
    masked when a vault is given."""
    if alert.kind != AlertKind.SERIOUS_AE.value or alert.ref_type != "adverse_event" or alert.ref_id is None:
        return []
    rows = session.exec(
        select(OutboundMessage)
        .where(
            OutboundMessage.purpose == Purpose.STAFF_ALERT.value,
            OutboundMessage.ref_type == "adverse_event",
            OutboundMessage.ref_id == alert.ref_id,
        )
        .order_by(OutboundMessage.due_at, OutboundMessage.id)
    ).all()
    rounds: dict[int, list[OutboundMessage]] = {}
    for row in rows:
        rounds.setdefault(_round_of(row.dedupe_key), []).append(row)

    def recipient(row: OutboundMessage) -> PageRecipient:
        number = mask_e164(vault.decrypt(row.recipient_ciphertext)) if vault is not None else ""
        # The outbox status stops at "delivered"; the carrier's finer word, when it has one, says more.
        finer = row.provider_status in ("partially_delivered", "read")
        return PageRecipient(number=number, status=row.provider_status if finer else row.status)

    return [
        PageRound(
            round=n,
            at=min(r.due_at for r in group),
            left_at=max((r.sent_at for r in group if r.sent_at is not None), default=None),
            recipients=tuple(recipient(r) for r in group),
        )
        for n, group in sorted(rounds.items())
    ]

"""Record what the carrier says happened to a message (Twilio's status callback)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from notifications.status import apply_status_callback


def record_delivery_status(
    session: Session,
    *,
    message_sid: str,
    status: str,
    error_code: int | None,
    now: datetime,
    outbox_id: int | None = None,
) -> bool:
    """Keep the callback and move its message forward if it is news (opening a contact-problem alert when
    a message did not arrive); `outbox_id` is the row the callback URL names. Returns True if anything changed."""
    return apply_status_callback(
        session, message_sid=message_sid, status=status, error_code=error_code, now=now, outbox_id=outbox_id
    )

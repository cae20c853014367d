"""What a nurse reads for an alert: written from the alert's facts at the edge, in the reader's language."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from sqlalchemy.orm import object_session

from schedules.models import HIGH, Alert, AlertKind, Dose

DEFAULT_LANGUAGE = "en"


@lru_cache(maxsize=1)
def _texts() -> dict[str, dict[str, str]]:
    """The catalogue of alert wording (alert_texts.toml beside this module)."""
    return tomllib.loads((Path(__file__).with_name("alert_texts.toml")).read_text(encoding="utf-8"))


def _dose_text_key(alert: Alert) -> str:
    """Which wording a missed-dose alert takes: undelivered reminder, second in a row, or plain missed."""
    if alert.kind == AlertKind.CONTACT_PROBLEM.value:
        return "missed_dose_undelivered"
    return "missed_dose_second" if alert.priority == HIGH else "missed_dose"


def alert_summary(alert: Alert, *, language: str = DEFAULT_LANGUAGE) -> str:
    """The alert's one-line summary: the stored one when its writer gave one, else words for its dose."""
    if alert.summary or alert.ref_type != "dose" or alert.ref_id is None:
        return alert.summary
    dose = object_session(alert).get(Dose, alert.ref_id)
    if dose is None:
        return alert.summary
    texts = _texts()[_dose_text_key(alert)]
    return texts.get(language, texts[DEFAULT_LANGUAGE]).format(seq=dose.seq, date=dose.local_date.isoformat())


def acknowledged_via(alert: Alert) -> str | None:
    """How the alert was acknowledged: "sms" (an on-call phone's ACK) or "queue" (a nurse, page or API)."""
    if not alert.acknowledged_by:
        return None
    return "sms" if alert.acknowledged_by.startswith("sms:") else "queue"

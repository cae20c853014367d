"""Injection-site rotation: the site least recently used, and the site an injection-site reaction belongs to."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

from sqlmodel import Session, select

from schedules.models import Dose


def last_used(history: Iterable[tuple[str, datetime]], sites: Sequence[str]) -> dict[str, datetime | None]:
    """When each of the protocol's sites was last injected (None: never); sites outside the protocol are ignored."""
    latest: dict[str, datetime | None] = {site: None for site in sites}
    for site, at in history:
        if site in latest and (latest[site] is None or at > latest[site]):
            latest[site] = at
    return latest


def suggest_site(history: Iterable[tuple[str, datetime]], sites: Sequence[str]) -> str:
    """The site to inject next: one never used, else the least recently used; ties go to the protocol's order.

    `history` is (site, taken_at) of past injections in any order; `sites` the protocol's list (not empty)."""
    if not sites:
        raise ValueError("the protocol lists no injection sites")
    latest = last_used(history, sites)
    # Never used sorts first; then the oldest last use; the protocol's order breaks ties (min is stable).
    return min(sites, key=lambda site: (latest[site] is not None, latest[site] or datetime.min))


def site_history(session: Session, participant_id: int) -> list[tuple[str, datetime]]:
    """(site, taken_at) of every injection of the participant that named its site, newest first."""
    rows = session.exec(
        select(Dose.injection_site, Dose.taken_at)
        .where(
            Dose.participant_id == participant_id,
            Dose.injection_site.is_not(None),
            Dose.taken_at.is_not(None),
        )
        .order_by(Dose.taken_at.desc(), Dose.id.desc())
    ).all()
    return [(site, taken_at) for site, taken_at in rows]


def site_before(session: Session, participant_id: int, *, at: datetime) -> str | None:
    """The site of the participant's latest injection taken at or before `at` (None when none named one)."""
    for site, taken_at in site_history(session, participant_id):
        if taken_at <= at:
            return site
    return None

"""Studies in the database and the protocol each was loaded from."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache

from sqlmodel import Session, select

from schedules.changes import Actor, acting
from schedules.errors import NotFound
from schedules.models import Study
from schedules.protocol import Protocol, protocol_from_dict


def load_study(
    session: Session, *, protocol: Protocol, source_file: str, actor: Actor, reason: str, now: datetime
) -> Study:
    """Create or update the study row for a validated protocol, attributed to `actor` with `reason`."""
    study = session.exec(select(Study).where(Study.code == protocol.study_code)).first()
    payload = json.dumps(protocol.to_dict(), sort_keys=True, ensure_ascii=False)
    if study is None:
        study = Study(
            code=protocol.study_code,
            title=protocol.title,
            protocol_json=payload,
            source_file=source_file,
            loaded_at=now,
        )
        session.add(study)
    elif study.protocol_json != payload:
        study.protocol_json, study.title, study.source_file, study.loaded_at = payload, protocol.title, source_file, now
    with acting(session, actor, reason):
        session.flush()
    return study


@lru_cache(maxsize=64)
def _parse(payload: str, code: str) -> Protocol:
    return protocol_from_dict(json.loads(payload), source=code)


def protocol_of(study: Study) -> Protocol:
    """The Protocol object of a study row (parsed once per distinct payload)."""
    return _parse(study.protocol_json, study.code)


def get_study(session: Session, code: str) -> Study:
    """The study with this code, or NotFound naming it."""
    study = session.exec(select(Study).where(Study.code == code)).first()
    if study is None:
        raise NotFound(f"no study {code!r} is loaded", field="study")
    return study


def arm_doses(study: Study, arm_code: str) -> bool:
    """True when the participant's arm has a dosing regimen (a control arm has none: no doses, nothing to hold)."""
    return protocol_of(study).arm(arm_code).regimen is not None

"""One export: who may have which variant, the scope of sites, the document, and its one audit row.

Investigators and admins get the full variant, the masked outcome assessor the masked one; nurses and participants
none. The caller's site scope (backend.identity.scope) applies, narrowed to one site on request. The audit row
(who from the session's actor, when, format, scope, variant, rows per dataset) is written in the caller's
transaction: the CLI command or the request commits it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import and_
from sqlmodel import Session, select

from backend.audit import record_operator_action
from backend.exports.datasets import Export, build_datasets
from backend.exports.masked import mask
from backend.identity import scope
from backend.identity.principal import REVIEWERS, Principal
from backend.models import Role
from schedules.changes import Actor, acting
from schedules.errors import InvalidInput, NotFound, NotPermitted
from schedules.models import Site, Study

FORMATS = ("csv", "odm", "fhir")
# Who may export: reviewers get the full variant, the assessor the masked one.
EXPORTERS = (*REVIEWERS, Role.ASSESSOR.value)
MEDIA_TYPES = {"csv": "application/zip", "odm": "application/xml", "fhir": "application/fhir+json"}
SUFFIXES = {"csv": ".zip", "odm": ".xml", "fhir": ".json"}


@dataclass(frozen=True)
class Document:
    """A rendered export: its bytes in pieces (ODM and FHIR are written a participant or a resource at a time;
    the CSV bundle is one zip), its media type and file name."""

    chunks: Iterable[bytes]
    media_type: str
    filename: str
    export: Export


def check_format(fmt: str) -> str:
    """The format, or InvalidInput naming the ones there are."""
    if fmt not in FORMATS:
        raise InvalidInput(f"no export format {fmt!r}; choose csv, odm or fhir", field="format")
    return fmt


def _study(session: Session, code: str | None) -> Study:
    studies = session.exec(select(Study).order_by(Study.code)).all()
    if code:
        match = [s for s in studies if s.code == code]
        if not match:
            raise NotFound(f"no study {code!r}", field="study")
        return match[0]
    if len(studies) != 1:
        names = ", ".join(s.code for s in studies) or "none is loaded"
        raise InvalidInput(f"name the study to export ({names})", field="study")
    return studies[0]


def _scope(session: Session, principal: Principal, site_code: str | None):
    """The WHERE clause on a site id column: the caller's sites, narrowed to `site_code` when given."""
    if principal.kind != "staff" or principal.role not in EXPORTERS:
        raise NotPermitted("exports are for investigators, admins and the masked outcome assessor")
    if not site_code:
        return lambda column: scope.site_filter(principal, column)
    site = session.exec(select(Site).where(Site.code == site_code)).first()
    if site is None:
        raise InvalidInput(f"no site {site_code!r}", field="site")
    if not principal.can_see_site(site.id):
        raise NotPermitted(f"you may export only your own site's data, not site {site_code}")
    return lambda column: and_(scope.site_filter(principal, column), column == site.id)


def build_export(
    session: Session, principal: Principal, *, site_code: str | None, study_code: str | None, now: datetime
) -> Export:
    """The datasets the caller may have (masked for the assessor), or a DomainError saying why not."""
    where = _scope(session, principal, site_code)
    export = build_datasets(session, study=_study(session, study_code), scope=where, created_at=now)
    return mask(export) if principal.masked else export


def render(export: Export, fmt: str) -> Document:
    """The export in `fmt`; the renderers are imported here (fhir.resources and the zip writer are large)."""
    if fmt == "csv":
        from backend.exports.csv_bundle import zip_bundle

        def renderer(export):
            return [zip_bundle(export)]
    elif fmt == "odm":
        from backend.exports.odm import odm_chunks as renderer
    else:
        from backend.exports.fhir import fhir_chunks as renderer
    stamp = export.created_at.strftime("%Y%m%dT%H%M%SZ")
    name = f"{export.study.code}-{stamp}{'-masked' if export.masked else ''}{SUFFIXES[fmt]}"
    return Document(renderer(export), MEDIA_TYPES[fmt], name, export)


def record_export(session: Session, export: Export, fmt: str, *, actor: Actor, reason: str, destination: str) -> None:
    """The export's one audit row, attributed to `actor` with `reason` (flushed; the caller commits)."""
    detail = {
        "format": fmt,
        "study": export.study.code,
        "sites": list(export.site_codes),
        "masked": export.masked,
        "rows": export.counts(),
        "to": destination,
    }
    with acting(session, actor, reason=reason):
        record_operator_action(session, action="export", entity="study", entity_id=export.study.code, detail=detail)

"""The masked variant for the outcome assessor: the same in every arm.

No arm, no dosing (the doses, deviations and messages datasets are absent, and so are hold and treatment
dates), no free text (no typed SMS, no other-term text, no narrative), no action taken with the study drug,
adverse-event terms (the app's and the CTCAE one) that tell the arm withheld, and only the alerts the assessor
sees. The rules are backend/web/masking.py's and backend/identity/principal.py's; this module only applies them
to the declared datasets."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from backend.exports.datasets import Dataset, Export
from backend.exports.variables import CTCAE_CODES, DatasetSpec
from backend.identity.principal import ASSESSOR_ALERT_KINDS
from backend.web.masking import (
    WITHHELD,
    masked_adverse_event,
    masked_status,
    masked_title,
    visible_ctcae_codes,
    visible_terms,
)
from schedules.models import ParticipantStatus
from schedules.vocabulary import AE_TERMS


def _allowed(export: Export) -> dict[str, tuple[str, ...]]:
    """The allowed values the masked variant declares in place of the full ones."""
    return {
        ("participants", "status"): (ParticipantStatus.ACTIVE.value, ParticipantStatus.WITHDRAWN.value),
        ("adverse_events", "term"): (*visible_terms(export.protocol, AE_TERMS), WITHHELD),
        ("adverse_events", "ctcae_term"): (*visible_ctcae_codes([export.protocol], CTCAE_CODES), WITHHELD),
        ("alerts", "kind"): ASSESSOR_ALERT_KINDS,
    }


def _masked_spec(spec: DatasetSpec, export: Export) -> DatasetSpec:
    allowed = _allowed(export)
    variables = tuple(
        replace(v, allowed=allowed.get((spec.name, v.name), v.allowed)) for v in spec.variables if v.masked
    )
    return replace(spec, variables=variables)


def _masked_row(name: str, row: dict, export: Export, participant_by_code: dict) -> dict | None:
    if name == "alerts" and row["kind"] not in ASSESSOR_ALERT_KINDS:
        return None
    row = dict(row)
    if name == "participants":
        row["status"] = masked_status(participant_by_code[row["study_code"]])
    if name == "adverse_events":
        shown = masked_adverse_event(SimpleNamespace(term=row["term"], ctcae_term=row["ctcae_term"]), export.protocol)
        row.update(term=shown.term, ctcae_term=shown.ctcae_term, ctcae_term_name=shown.ctcae_term_name)
    return row


def mask(export: Export) -> Export:
    """The export as the masked assessor may receive it."""
    participant_by_code = {p.study_code: p for p in export.participants.values()}
    datasets = []
    for dataset in export.datasets:
        if not dataset.spec.masked:
            continue
        spec = _masked_spec(dataset.spec, export)
        keep = {v.name for v in spec.variables}
        rows = []
        for row in dataset.rows:
            shown = _masked_row(spec.name, row, export, participant_by_code)
            if shown is not None:
                rows.append({k: v for k, v in shown.items() if k in keep})
        datasets.append(Dataset(spec, rows))
    return replace(export, datasets=datasets, masked=True, title=masked_title(export.study))

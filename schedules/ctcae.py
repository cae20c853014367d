"""The CTCAE v5.0 term list with MedDRA codes (schedules/data/ctcae_v5.csv), and the default term for each
of the app's PRO-CTCAE-based report terms, so a nurse coding a report starts from a suggestion."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import groupby

DATA_FILE = "ctcae_v5.csv"
COLUMNS = ("meddra_code", "term", "soc")


@dataclass(frozen=True)
class CtcaeTerm:
    """One CTCAE v5.0 term: its MedDRA code (as text, e.g. "10022095"), its name and its system organ class."""

    meddra_code: str
    term: str
    soc: str


# The app's report terms (schedules.vocabulary.AE_TERMS) -> the CTCAE term a nurse usually codes them as.
# Only where the match is plain; "swelling" and "other" need the nurse's judgement.
DEFAULT_FOR_APP_TERM = {
    "injection_site_reaction": "10022095",  # Injection site reaction
    "fever": "10016558",  # Fever
    "fatigue": "10016256",  # Fatigue
    "chills_flu_like": "10016791",  # Flu like symptoms
    "rash": "10037868",  # Rash maculo-papular
    "nausea": "10028813",  # Nausea
    "headache": "10019211",  # Headache
    "vomiting": "10047700",  # Vomiting
    "diarrhea": "10012727",  # Diarrhea
    "muscle_pain": "10028411",  # Myalgia
    "joint_pain": "10003239",  # Arthralgia
    "cough": "10011224",  # Cough
    "shortness_of_breath": "10013963",  # Dyspnea
    "dizziness": "10013573",  # Dizziness
    "itching": "10037087",  # Pruritus
}


def _read(text: str) -> tuple[CtcaeTerm, ...]:
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError(
            f"{DATA_FILE}: the header must be {','.join(COLUMNS)}, not {','.join(reader.fieldnames or ())}"
        )
    terms, seen = [], set()
    for number, row in enumerate(reader, start=2):
        code, term, soc = (row[name].strip() for name in COLUMNS)
        if not (code.isdigit() and len(code) == 8):
            raise ValueError(f"{DATA_FILE}: row {number}: a MedDRA code is 8 digits, not {code!r}")
        if code in seen:
            raise ValueError(f"{DATA_FILE}: row {number}: MedDRA code {code} is listed twice")
        if not term or not soc:
            raise ValueError(f"{DATA_FILE}: row {number}: the term and its SOC are required")
        seen.add(code)
        terms.append(CtcaeTerm(code, term, soc))
    return tuple(terms)


@cache
def ctcae_terms() -> tuple[CtcaeTerm, ...]:
    """Every term of the shipped list, in file order (grouped by SOC)."""
    return _read(resources.files("schedules").joinpath("data", DATA_FILE).read_text(encoding="utf-8"))


@cache
def _by_code() -> dict[str, CtcaeTerm]:
    return {term.meddra_code: term for term in ctcae_terms()}


def ctcae_term(code: str) -> CtcaeTerm | None:
    """The term with this MedDRA code, or None when the list has no such code."""
    return _by_code().get(code)


def ctcae_codes() -> tuple[str, ...]:
    """The MedDRA codes of the list, for validating input."""
    return tuple(_by_code())


def ctcae_by_soc() -> list[tuple[str, list[CtcaeTerm]]]:
    """The list grouped by system organ class, SOCs in file order (for a grouped picker)."""
    return [(soc, list(group)) for soc, group in groupby(ctcae_terms(), key=lambda term: term.soc)]


def suggested_ctcae_code(app_term: str) -> str:
    """The CTCAE code a report with this app term is usually coded as, or "" when it needs judgement."""
    return DEFAULT_FOR_APP_TERM.get(app_term, "")

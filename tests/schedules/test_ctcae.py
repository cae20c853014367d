"""The CTCAE v5 term list as data: the shipped file reads, a replacement file with a mistake is refused with the
row and the reason, and a protocol withholds only codes of the list."""

from __future__ import annotations

import pytest

from schedules.ctcae import _read, ctcae_terms
from schedules.protocol import protocol_from_dict
from tests.schedules.test_protocol import errors_for, minimal

HEADER = "# a comment line\nmeddra_code,term,soc\n"


def test_a_replacement_file_with_the_documented_columns_reads_with_its_comments_skipped():
    terms = _read(HEADER + "10016558,Fever,General disorders and administration site conditions\n\n")
    assert [(t.meddra_code, t.term) for t in terms] == [("10016558", "Fever")]


@pytest.mark.parametrize(
    "text,reason",
    [
        ("code,term,soc\n10016558,Fever,General\n", "the header must be meddra_code,term,soc"),
        (HEADER + "1001655,Fever,General\n", "row 2: a MedDRA code is 8 digits, not '1001655'"),
        (HEADER + "10016558,Fever,General\n10016558,Pyrexia,General\n", "row 3: MedDRA code 10016558 is listed twice"),
        (HEADER + "10016558,,General\n", "row 2: the term and its SOC are required"),
    ],
)
def test_a_replacement_file_with_a_mistake_is_refused_with_the_row_and_the_reason(text, reason):
    with pytest.raises(ValueError) as caught:
        _read(text)
    assert reason in str(caught.value)


def test_the_shipped_file_is_read_from_the_package_in_soc_blocks():
    socs = [t.soc for t in ctcae_terms()]
    assert socs == sorted(socs)  # one block per SOC, as the grouped picker shows them


def test_a_protocol_withholds_only_codes_of_the_list_and_defaults_to_the_injection_terms():
    assert protocol_from_dict(minimal(), source="t.toml").blinding.withheld_ctcae_terms == ("10022095", "10064774")
    chosen = protocol_from_dict(minimal(blinding={"withheld_ctcae_terms": ["10022095"]}), source="t.toml")
    assert chosen.blinding.withheld_ctcae_terms == ("10022095",)
    assert errors_for(minimal(blinding={"withheld_ctcae_terms": ["12345678"]})) == [
        "t.toml: blinding.withheld_ctcae_terms.0: Must be a MedDRA code of the CTCAE v5 list."
    ]

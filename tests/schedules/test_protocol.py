"""Protocol files: the shipped trials load, bad files list every mistake, dicts round-trip."""

import copy
import json
import re
from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedules.protocol import (
    Protocol,
    ProtocolInvalid,
    load_protocol_file,
    protocol_from_dict,
)

PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"

MINIMAL = {
    "study_code": "TEST0001",
    "title": "A test trial",
    "condition": "testing",
    "default_language": "en",
    "languages": ["en"],
    "site_time_zone": "Europe/London",
    "arms": [
        {
            "code": "drug",
            "label": "Drug",
            "regimen": {
                "drug": "testamab",
                "dose_amount": 5,
                "dose_unit": "mg",
                "route": "subcutaneous",
                "interval_days": 2,
                "treatment_months": 3,
            },
            "follow_up_months": 3,
            "follow_up_from": "last_dose",
        },
        {"code": "control", "label": "Control", "follow_up_months": 6, "follow_up_from": "first_dose"},
    ],
}


def minimal(**changes):
    """A valid protocol dict with top-level keys replaced."""
    data = copy.deepcopy(MINIMAL)
    data.update(changes)
    return data


def errors_for(data, source="t.toml"):
    """The error lines protocol_from_dict reports for data."""
    with pytest.raises(ProtocolInvalid) as caught:
        protocol_from_dict(data, source=source)
    return caught.value.errors


# --- the shipped trials -------------------------------------------------------------------


def test_nct04237987_says_what_the_product_brief_says():
    protocol = load_protocol_file(PROTOCOLS / "NCT04237987.toml")

    assert protocol.study_code == "NCT04237987"
    assert protocol.condition == "idiopathic inflammatory myopathy"
    assert protocol.site_time_zone == "Asia/Shanghai"
    assert protocol.default_language == "zh-CN"
    assert set(protocol.languages) == {"zh-CN", "en"}
    assert protocol.arm_codes == ("il2", "control")
    assert protocol.show_drug_name_in_messages is False

    il2 = protocol.arm("il2")
    assert il2.regimen.drug == "recombinant human interleukin-2"
    assert il2.regimen.dose_amount == Decimal(1_000_000)
    assert (il2.regimen.dose_unit, il2.regimen.route) == ("IU", "subcutaneous")
    assert (il2.regimen.interval_days, il2.regimen.treatment_months) == (2, 3)
    assert (il2.follow_up_months, il2.follow_up_from) == (3, "last_dose")
    assert "ciclosporin" in il2.label and "corticosteroid" in il2.label

    control = protocol.arm("control")
    assert control.regimen is None
    assert (control.follow_up_months, control.follow_up_from) == (6, "first_dose")

    window = protocol.dose_window
    assert (window.opens_at, window.closes_at, window.closes_day_offset) == (time(0), time(12), 1)
    reminders = protocol.reminders
    assert (reminders.nudge_after_minutes, reminders.stale_after_minutes) == (180, 120)
    assert (reminders.quiet_start, reminders.quiet_end) == (time(22), time(8))
    vas = protocol.vas
    assert (vas.every_days, vas.reply_window_hours, vas.undo_minutes) == (7, 24, 60)
    assert (vas.scale_min, vas.scale_max, vas.decimals) == (Decimal("0.0"), Decimal("10.0"), 1)
    assert protocol.hold.resume_policy == "keep_end_date"
    assert protocol.safety.reporting_deadline_hours == 24
    assert protocol.safety.chase_every_minutes == 30
    assert {
        "hospital",
        "hospitalised",
        "hospitalized",
        "admitted",
        "emergency",
        "ER",
        "A&E",
        "ICU",
        "intensive care",
        "ambulance",
        "120",
        "住院",
        "急诊",
        "抢救",
        "重症",
        "救护车",
    } <= set(protocol.safety.serious_keywords)


def test_sibling_trial_is_one_il2_arm_with_the_same_dosing():
    sibling = load_protocol_file(PROTOCOLS / "NCT04062019.toml")
    first = load_protocol_file(PROTOCOLS / "NCT04237987.toml")

    assert sibling.study_code == "NCT04062019"
    assert sibling.arm_codes == ("il2",)
    assert sibling.arm("il2").regimen == first.arm("il2").regimen
    assert sibling.arm("il2").follow_up_from == "last_dose"


@pytest.mark.parametrize("path", sorted(PROTOCOLS.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_protocol_loads_and_is_named_after_its_study(path):
    assert load_protocol_file(path).study_code == path.stem


def test_unknown_arm_is_a_key_error():
    protocol = protocol_from_dict(minimal())
    with pytest.raises(KeyError):
        protocol.arm("placebo")


# --- bad files ----------------------------------------------------------------------------

BAD_TOML = """\
study_code = "BAD1"
title = "Bad"
condition = "x"
default_language = "fr"
languages = ["zh-CN", "en"]
site_time_zone = "Asia/Beijing"
colour = "blue"

[[arms]]
code = "il2"
label = "IL-2"
follow_up_months = 3
follow_up_from = "last_dose"
  [arms.regimen]
  drug = "il-2"
  dose_amount = 1000000
  dose_unit = "IU"
  route = "subcutaneous"
  interval_days = 2
  treatment_months = 0

[[arms]]
code = "il2"
label = "Again"
follow_up_months = 3
follow_up_from = "last_dose"
  [arms.regimen]
  drug = "il-2"
  dose_amount = 1000000
  dose_unit = "IU"
  route = "subcutaneous"
  interval_days = 0
  treatment_months = 3

[reminders]
quiet_start = "24:00"
quiet_end = "8am"

[hold]
resume_policy = "pause"
"""


def test_a_file_with_several_mistakes_reports_all_of_them(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD_TOML, encoding="utf-8")

    with pytest.raises(ProtocolInvalid) as caught:
        load_protocol_file(path)

    errors = caught.value.errors
    assert all(re.fullmatch(re.escape(str(path)) + r": [\w.]+: \S.*", line) for line in errors), errors
    where = {line.split(": ")[1] for line in errors}
    assert where == {
        "default_language",
        "site_time_zone",
        "colour",
        "arms.0.regimen.treatment_months",
        "arms.1.regimen.interval_days",
        "arms.1.code",
        "reminders.quiet_start",
        "reminders.quiet_end",
        "hold.resume_policy",
    }
    assert f"{path}: arms.1.regimen.interval_days: Must be greater than or equal to 1." in errors
    assert f"{path}: colour: Unknown field." in errors
    assert str(caught.value).count("\n") == len(errors) - 1


def test_duplicate_arm_codes_are_refused_even_when_the_arms_are_otherwise_fine():
    arms = copy.deepcopy(MINIMAL["arms"])
    arms[1]["code"] = "drug"
    assert errors_for(minimal(arms=arms)) == ["t.toml: arms.1.code: Duplicate arm code 'drug' (also arms.0)."]


def test_unknown_keys_are_refused_inside_sections_too():
    arms = copy.deepcopy(MINIMAL["arms"])
    arms[0]["regimen"]["frequency"] = "qod"
    errors = errors_for(minimal(arms=arms, vas={"scale": 10}))
    assert sorted(errors) == [
        "t.toml: arms.0.regimen.frequency: Unknown field.",
        "t.toml: vas.scale: Unknown field.",
    ]


@pytest.mark.parametrize("zone", ["Asia/Beijing", "", "America", "../etc/passwd", "/etc/localtime", "UTC "])
def test_unknown_or_path_like_time_zones_are_refused(zone):
    assert errors_for(minimal(site_time_zone=zone)) == [f"t.toml: site_time_zone: Unknown IANA time zone {zone!r}."]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"languages": ["en", "de"]}, "languages.1: Must be one of: zh-CN, en."),
        ({"languages": ["zh-CN"]}, "default_language: Must be one of languages (zh-CN)."),
        ({"languages": []}, "languages: Must list at least one."),
        ({"arms": []}, "arms: Must list at least one."),
        ({"reminders": {"quiet_start": "22:00", "quiet_end": "22:00"}}, "reminders.quiet_end: Must differ"),
        ({"vas": {"scale_min": 10, "scale_max": 0}}, "vas.scale_max: Must be greater than scale_min."),
        ({"safety": {"serious_keywords": ["ok", " "]}}, "safety.serious_keywords.1: Must not be blank."),
        ({"show_drug_name_in_messages": "yes"}, "show_drug_name_in_messages: Must be true or false."),
        ({"safety": {"chase_every_minutes": 0}}, "safety.chase_every_minutes: Must be greater than or equal to 1."),
        ({"dose_window": {"closes_day_offset": 2}}, "dose_window: The dose window must close before"),
        (
            {"dose_window": {"opens_at": "12:00", "closes_at": "08:00", "closes_day_offset": 0}},
            "dose_window.closes_at: Must be after opens_at",
        ),
    ],
)
def test_each_rule_names_the_field_it_breaks(changes, expected):
    errors = errors_for(minimal(**changes))
    assert len(errors) == 1 and errors[0].startswith("t.toml: " + expected), errors


def test_a_protocol_without_the_chase_setting_pages_again_every_30_minutes():
    assert protocol_from_dict(minimal()).safety.chase_every_minutes == 30
    keywords = {"serious_keywords": ["hospital"], "reporting_deadline_hours": 24}
    assert protocol_from_dict(minimal(safety=keywords)).safety.chase_every_minutes == 30
    chased = protocol_from_dict(minimal(safety={**keywords, "chase_every_minutes": 15}))
    assert chased.safety.chase_every_minutes == 15
    assert protocol_from_dict(chased.to_dict()) == chased


def test_follow_up_from_last_dose_needs_a_regimen_and_a_known_anchor():
    arms = copy.deepcopy(MINIMAL["arms"])
    arms[0]["follow_up_from"] = "randomisation"
    arms[1]["follow_up_from"] = "last_dose"
    assert errors_for(minimal(arms=arms)) == [
        "t.toml: arms.0.follow_up_from: Must be one of: last_dose, first_dose.",
        "t.toml: arms.1.follow_up_from: 'last_dose' needs a regimen; an arm without doses counts from 'first_dose'.",
    ]


def test_numbers_must_be_whole_and_in_range():
    arms = copy.deepcopy(MINIMAL["arms"])
    arms[0]["regimen"].update(interval_days=1.5, treatment_months=True, dose_amount=-1)
    assert sorted(errors_for(minimal(arms=arms))) == [
        "t.toml: arms.0.regimen.dose_amount: Must be greater than 0.",
        "t.toml: arms.0.regimen.interval_days: Not a valid integer.",
        "t.toml: arms.0.regimen.treatment_months: Not a valid integer.",
    ]


def test_a_dict_that_is_not_a_table_is_refused_without_a_traceback():
    assert errors_for(["not", "a", "table"]) == ["t.toml: (top level): Invalid input type."]


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('study_code = "X"\ntitle = "T"\nlanguages = ["en",\nthis is not toml\n', encoding="utf-8")

    with pytest.raises(ProtocolInvalid) as caught:
        load_protocol_file(path)

    [error] = caught.value.errors
    assert error.startswith(f"{path}: line 4, column ")
    assert "TOML syntax error" in error


def test_missing_or_binary_file_is_protocol_invalid(tmp_path):
    with pytest.raises(ProtocolInvalid) as missing:
        load_protocol_file(tmp_path / "nowhere.toml")
    assert missing.value.errors == [f"{tmp_path / 'nowhere.toml'}: (file): Cannot read: No such file or directory."]

    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ProtocolInvalid) as undecodable:
        load_protocol_file(binary)
    assert undecodable.value.errors == [f"{binary}: (file): Not UTF-8 text."]


# --- defaults and round trip --------------------------------------------------------------


def test_sections_left_out_take_the_product_defaults():
    protocol = protocol_from_dict(minimal(vas={"every_days": 14}))

    assert (protocol.vas.scale_min, protocol.vas.scale_max) == (Decimal(0), Decimal(10))
    assert protocol.vas.every_days == 14
    assert (protocol.dose_window.closes_at, protocol.dose_window.closes_day_offset) == (time(12), 1)
    assert protocol.reminders.nudge_after_minutes == 180
    assert protocol.hold.resume_policy == "keep_end_date"
    assert "住院" in protocol.safety.serious_keywords
    assert protocol.show_drug_name_in_messages is False


@pytest.mark.parametrize("path", sorted(PROTOCOLS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_protocols_round_trip_through_json(path):
    protocol = load_protocol_file(path)
    as_json = json.dumps(protocol.to_dict(), ensure_ascii=False)
    assert protocol_from_dict(json.loads(as_json)) == protocol


clock = st.times().map(lambda t: t.strftime("%H:%M"))
decimal_str = st.decimals(min_value=0, max_value=100, places=1, allow_nan=False).map(str)


@settings(max_examples=60, deadline=None)
@given(
    interval=st.integers(1, 14),
    months=st.integers(1, 24),
    dose=st.decimals(min_value="0.001", max_value="1e9", places=3, allow_nan=False),
    quiet=st.tuples(clock, clock).filter(lambda pair: pair[0] != pair[1]),
    opens=clock,
    scale_max=st.decimals(min_value="0.1", max_value=100, places=1),
    policy=st.sampled_from(["keep_end_date", "extend_to_total_doses"]),
    keywords=st.lists(st.text(min_size=1).filter(str.strip), min_size=1, max_size=5, unique=True),
    show=st.booleans(),
)
def test_any_valid_protocol_round_trips(interval, months, dose, quiet, opens, scale_max, policy, keywords, show):
    arms = copy.deepcopy(MINIMAL["arms"])
    arms[0]["regimen"].update(interval_days=interval, treatment_months=months, dose_amount=str(dose))
    data = minimal(
        arms=arms,
        reminders={"quiet_start": quiet[0], "quiet_end": quiet[1]},
        dose_window={"opens_at": opens, "closes_at": "23:59", "closes_day_offset": 0}
        if opens < "23:59"
        else {"opens_at": opens, "closes_at": "00:30", "closes_day_offset": 1},
        vas={"scale_min": 0, "scale_max": str(scale_max)},
        hold={"resume_policy": policy},
        safety={"serious_keywords": keywords, "reporting_deadline_hours": 24},
        show_drug_name_in_messages=show,
    )
    protocol = protocol_from_dict(data)

    again = protocol_from_dict(json.loads(json.dumps(protocol.to_dict())))

    assert again == protocol
    assert isinstance(again, Protocol)
    assert again.arm("drug").regimen.dose_amount == dose
    assert again.reminders.quiet_start.strftime("%H:%M") == quiet[0]


@given(text=st.text(max_size=6))
def test_only_hh_mm_strings_are_times(text):
    # Written out, not \d: Python's \d also matches Arabic-Indic and other digits.
    valid = re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", text) is not None
    quiet_end = "09:00" if text == "08:00" else "08:00"
    try:
        protocol = protocol_from_dict(minimal(reminders={"quiet_start": text, "quiet_end": quiet_end}), source="t.toml")
    except ProtocolInvalid as invalid:
        assert not valid
        assert invalid.errors[0].startswith("t.toml: reminders.quiet_start: Not a valid time")
    else:
        assert valid
        assert protocol.reminders.quiet_start.strftime("%H:%M") == text


@pytest.mark.parametrize("text", ["20:00", "00:00", "23:59", " 07:30 "])
def test_the_one_hhmm_parser_reads_times_of_day(text):
    from schedules.wallclock import format_hhmm, parse_hhmm

    assert format_hhmm(parse_hhmm(text)) == text.strip()


@pytest.mark.parametrize("text", ["24:00", "7:30", "+1:00", "２０:００", "20:60", "2000", "", "20:00:00"])
def test_the_one_hhmm_parser_refuses_what_is_not_hh_mm(text):
    from schedules.wallclock import parse_hhmm

    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(text)

"""Outbound message templates: completeness, parameters, lock-screen safety, SMS length."""

import re

import pytest

from notifications import templates
from notifications.templates import SUPPORTED_LANGUAGES, UnknownTemplate, render, template_keys, template_params

# What callers are promised: key -> parameters.
REQUIRED = {
    "dose_reminder": {"local_date", "site_phone"},
    "dose_reminder_dated": {"local_date", "site_phone"},
    "dose_reminder_with_vas": {"local_date", "site_phone"},
    "dose_nudge": {"local_date"},
    "dose_nudge_yesterday": {"local_date"},
    "dose_nudge_dated": {"local_date"},
    "vas_prompt": set(),
    "study_closing": {"site_phone"},
    "reply_dose_taken": {"local_date"},
    "reply_dose_taken_late": {"local_date"},
    "reply_dose_not_taken": {"local_date"},
    "reply_dose_site": {"site"},
    "reply_no_open_dose": set(),
    "reply_dose_already": {"local_date", "state"},
    "reply_dose_and_vas_hint": set(),
    "reply_vas_recorded": {"value", "scale_max"},
    "reply_vas_out_of_range": {"scale_min", "scale_max"},
    "reply_vas_too_many_decimals": {"decimals"},
    "reply_vas_not_a_number": {"scale_min", "scale_max"},
    "app_vas_out_of_range": {"scale_min", "scale_max"},
    "app_vas_too_many_decimals": {"decimals"},
    "app_vas_not_a_number": {"scale_min", "scale_max"},
    "reply_vas_undone": {"value"},
    "reply_undo_nothing": set(),
    "reply_ae_recorded": {"site_phone", "emergency_number"},
    "reply_ae_serious": {"site_phone", "emergency_number"},
    "reply_symptom_noted": {"symptom", "site_phone", "emergency_number"},
    "reply_stop": set(),
    "reply_start": set(),
    "reply_help": {"site_phone"},
    "reply_help_no_dosing": {"site_phone"},
    "reply_unknown": {"site_phone"},
    "reply_unknown_no_dosing": {"site_phone"},
    "reply_study_over": {"site_phone"},
    "reply_unknown_sender": set(),
    "reply_paused": set(),
    "staff_serious_ae": {"study_code", "site_code", "deadline_local", "alert_id"},
    "staff_serious_ae_repeat": {"round", "study_code", "site_code", "reported_local", "alert_id"},
    "staff_ack_done": {"alert_id"},
    "staff_ack_already": {"alert_id", "at_local"},
    "staff_ack_unknown_alert": {"alert_id"},
    "staff_ack_not_on_call": set(),
    "staff_ack_usage": set(),
    "staff_alert_digest": {"site_code", "open_count", "high_count", "summary"},
    "staff_alert_digest_line": {"kind", "count"},
    "staff_alert_digest_empty": {"site_code"},
    "activation_code": {"code", "hours"},
}
DOSE_STATES = ["scheduled", "taken", "taken_late", "skipped", "missed", "held", "cancelled"]

SAMPLE = {
    "local_date": "2026-03-01",
    "site": "Left thigh",
    "site_phone": "+86 10 8832 6666",
    "state": "taken",
    "value": "4.5",
    "study_code": "PKU-017",
    "site_code": "PKUPH",
    "deadline_local": "2026-03-02 14:05",
    "reported_local": "2026-03-01 14:05 (Asia/Shanghai)",
    "at_local": "2026-03-01 14:40",
    "round": 3,
    "alert_id": 4711,
    "open_count": 3,
    "high_count": 1,
    "summary": "2 missed, 1 AE",
    "code": "482913",
    "hours": 24,
    "scale_min": "0",
    "scale_max": "10",
    "decimals": 1,
    "emergency_number": "911",
    "symptom": "bit of fever",
    "kind": "missed dose",
    "count": 2,
}

# A lock screen shows these texts: no diagnosis, no drug name.
FORBIDDEN = re.compile(
    r"il-?2|interleukin|aldesleukin|myositis|myopathy|ciclosporin|cyclosporin|corticosteroid|prednis"
    r"|白介素|白细胞介素|肌炎|肌病|环孢素|激素|泼尼松",
    re.IGNORECASE,
)

ALL_KEYS = template_keys()


def test_every_required_key_exists_with_exactly_its_parameters():
    for key, params in REQUIRED.items():
        assert template_params(key) == params, key
    for state in DOSE_STATES:
        assert template_params(f"dose_state_{state}") == set()


def test_every_alert_kind_has_its_name_in_each_language_for_the_digest():
    from schedules.models import AlertKind

    for kind in AlertKind:
        assert template_params(f"alert_kind_{kind.value}") == set(), kind
    assert render("alert_kind_missed_dose", "zh-CN") == "漏注射"
    assert render("alert_kind_missed_dose", "en") == "missed dose"


# Both arms get these, so they must not speak of doses (an arm without a regimen has none).
ARM_NEUTRAL = ["vas_prompt", "study_closing"]
DOSING_WORDS = re.compile(r"inject|dose|dosing|jab|shot|注射|打针|用药|剂量", re.IGNORECASE)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("key", ARM_NEUTRAL)
def test_what_every_arm_gets_has_no_dosing_words(key, language):
    assert not DOSING_WORDS.search(render(key, language, **SAMPLE)), (key, language)


@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_key_has_both_languages_with_the_same_parameters(key):
    texts = templates._catalogue()[key]
    assert set(texts) == set(SUPPORTED_LANGUAGES)
    fields = {lang: templates._field_names(text) for lang, text in texts.items()}
    assert fields["zh-CN"] == fields["en"], key


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_key_renders_without_leftover_braces_or_forbidden_words(key, language):
    text = render(key, language, **SAMPLE)
    assert text.strip()
    assert "{" not in text and "}" not in text
    assert not FORBIDDEN.search(text), (key, language, text)
    for name in template_params(key):
        assert str(SAMPLE[name]) in text


@pytest.mark.parametrize("key", ALL_KEYS)
def test_english_is_sms_friendly(key):
    text = render(key, "en", **SAMPLE)
    assert len(text) <= 300, (key, len(text))
    # Plain ASCII keeps the GSM-7 encoding (160 chars per segment, not 70).
    assert text.isascii() and "`" not in text, key


@pytest.mark.parametrize("key", ALL_KEYS)
def test_chinese_is_chinese_and_not_too_long(key):
    text = render(key, "zh-CN", **SAMPLE)
    assert re.search(r"[\u4e00-\u9fff]", text), key
    assert len(text) <= 160, (key, len(text))


def test_read_back_matches_product_wording():
    assert render("reply_vas_recorded", "en", value="4.5", scale_max="10").startswith("Recorded VAS 4.5 of 10")
    assert "V 1" in render("reply_dose_and_vas_hint", "en")
    assert "V 1" in render("reply_dose_and_vas_hint", "zh-CN")
    assert "START" in render("reply_stop", "en")
    assert "120" in render("reply_ae_serious", "zh-CN", site_phone="x", emergency_number="120")
    prompt = render("vas_prompt", "en")
    assert "0 = not active" in prompt and "10 = extremely active" in prompt and "V 4.5" in prompt


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("key", ["reply_help_no_dosing", "reply_unknown_no_dosing", "reply_study_over"])
def test_texts_for_arms_without_a_study_drug_have_no_dosing_words(key, language):
    assert not re.search(r"inject|dose|1 \(|1 =|注射|打针", render(key, language, **SAMPLE), re.IGNORECASE)


def test_different_languages_give_different_text():
    assert render("reply_help", "zh-CN", site_phone="1") != render("reply_help", "en", site_phone="1")


@pytest.mark.parametrize("language", ["fr", "", "de-DE"])
def test_missing_language_falls_back_to_english(language):
    assert render("reply_stop", language) == render("reply_stop", "en")


@pytest.mark.parametrize("language", ["zh", "zh-cn", "zh_CN", "zh-Hans"])
def test_chinese_variants_reach_chinese(language):
    assert render("reply_stop", language) == render("reply_stop", "zh-CN")


def test_unknown_key_fails_clearly():
    with pytest.raises(UnknownTemplate, match="no_such_template"):
        render("no_such_template", "en")
    with pytest.raises(KeyError):  # UnknownTemplate is a KeyError for callers that catch that
        render("no_such_template", "zh-CN")


def test_missing_parameter_raises_value_error_naming_it():
    with pytest.raises(ValueError, match="site_phone"):
        render("dose_reminder", "en", local_date="2026-03-01")
    with pytest.raises(ValueError, match="deadline_local.*site_code|site_code"):
        render("staff_serious_ae", "zh-CN", study_code="P1")


def test_extra_parameters_are_ignored_and_values_are_not_reformatted():
    text = render("reply_vas_recorded", "en", value="{site_phone}", scale_max="10", site_phone="secret")
    assert "{site_phone}" in text and "secret" not in text


def test_every_protocol_files_languages_are_in_the_catalogue():
    from pathlib import Path

    from schedules.protocol import load_protocol_file

    for path in sorted((Path(__file__).resolve().parents[2] / "protocols").glob("*.toml")):
        offered = set(load_protocol_file(path).languages)
        for key in ALL_KEYS:
            assert offered <= set(templates._catalogue()[key]), (path.name, key)

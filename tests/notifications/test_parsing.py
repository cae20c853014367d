"""Inbound SMS parsing: keywords, VAS scores, adverse events, the bare-number rule."""

from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifications import parsing
from notifications.parsing import EDGE_PUNCTUATION, Intent, IntentKind, normalize
from schedules.protocol import VasRule, load_protocol_file

K = IntentKind
# The first trial's scale (0.0-10.0, one decimal), read from its protocol file as the SMS handler does.
SCALE = load_protocol_file(Path(__file__).parents[2] / "protocols" / "NCT04237987.toml").vas
parse_reply = partial(parsing.parse_reply, scale=SCALE)
parse_vas_value = partial(parsing.parse_vas_value, scale=SCALE)

KEYWORDS = {
    K.DOSE_TAKEN: ["1", "Y", "YES", "TAKEN", "DONE", "已打", "打了", "是"],
    K.DOSE_NOT_TAKEN: ["2", "N", "NO", "SKIP", "未打", "没打"],
    K.STOP: ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE", "退订", "TD"],
    K.START: ["START", "UNSTOP", "订阅"],
    K.HELP: ["HELP", "帮助", "INFO"],
    K.UNDO: ["UNDO", "撤销"],
}
ALL_KEYWORDS = [(word, kind) for kind, words in KEYWORDS.items() for word in words]


# --- normalize -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Yes!  ", "yes"),
        ("Taken.", "taken"),
        ("１", "1"),
        ("Ｖ  ４，５", "v 4,5"),
        ("已打。", "已打"),
        ("\tSTOP\u3000！", "stop"),
        ("vas：4.5", "vas:4.5"),
        (".5", ".5"),
        ("", ""),
    ],
)
def test_normalize_folds_width_case_space_and_edge_punctuation(raw, expected):
    assert normalize(raw) == expected


@settings(max_examples=300)
@given(st.text())
# Lower-casing "W" + combining ring enables an NFKC composition that the
# first fold missed; a single pass would not be idempotent here.
@example("W\u030a")
@example(" . yes")
def test_normalize_is_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once


# --- keywords ------------------------------------------------------------------


@pytest.mark.parametrize(("word", "kind"), ALL_KEYWORDS)
def test_every_product_keyword_maps_to_its_intent(word, kind):
    assert parse_reply(word) == Intent(kind)


@pytest.mark.parametrize("text", ["yes!", "Taken.", "１", "  done ", "ＹＥＳ", "是！", "打了。"])
def test_taken_is_forgiving(text):
    assert parse_reply(text).kind is K.DOSE_TAKEN


def _random_case(draw, word):
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(ch.upper() if flip else ch.lower() for ch, flip in zip(word, flips))


_SPACE = st.sampled_from([" ", "\t", "\n", "\u3000", "\u00a0"])
# A leading '.' before a digit is kept on purpose (".5" is a score), so the
# leading side draws from the edge punctuation without '.'.
_LEADING = st.text(alphabet=st.one_of(_SPACE, st.sampled_from(EDGE_PUNCTUATION.replace(".", ""))), max_size=4)
_TRAILING = st.text(alphabet=st.one_of(_SPACE, st.sampled_from(EDGE_PUNCTUATION)), max_size=4)


@st.composite
def decorated_keyword(draw):
    word, kind = draw(st.sampled_from(ALL_KEYWORDS))
    return draw(_LEADING) + _random_case(draw, word) + draw(_TRAILING), kind


@settings(max_examples=300)
@given(decorated_keyword())
def test_keyword_with_random_case_space_and_punctuation_parses_to_its_intent(case):
    text, kind = case
    assert parse_reply(text).kind is kind


@settings(max_examples=500)
@given(st.text(), st.booleans(), st.booleans())
def test_parse_reply_never_raises(text, expecting_vas, dose_open):
    intent = parse_reply(text, expecting_vas=expecting_vas, dose_open=dose_open)
    assert isinstance(intent.kind, IntentKind)


def test_words_that_merely_contain_a_keyword_are_not_that_keyword():
    assert parse_reply("yes taken").kind is K.UNKNOWN
    assert parse_reply("Stop it please").kind is K.UNKNOWN
    assert parse_reply("very bad").kind is K.UNKNOWN  # starts with "v" but is no score
    assert parse_reply("Aeroplane").kind is K.UNKNOWN  # starts with "ae"


def test_empty_and_punctuation_only_messages_are_unknown():
    assert parse_reply("").kind is K.UNKNOWN
    assert parse_reply("  ?!。 ").kind is K.UNKNOWN


# --- VAS -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["V 4.5", "VAS 4.5", "V4.5", "vas: 4.5", "VAS：4.5", "V 4,5", "V ４,５", "v=4.5", "V 4.5.", "V 4.5/10"]
)
def test_vas_formats_parse_to_the_value(text):
    assert parse_reply(text) == Intent(K.VAS, value=Decimal("4.5"))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("V 4.55", "too_many_decimals"),
        ("V 11", "out_of_range"),
        ("V -1", "out_of_range"),
        ("V 10.1", "out_of_range"),
        ("V abc", "not_a_number"),
        ("V", "not_a_number"),
        ("VAS 4.5.1", "not_a_number"),
    ],
)
def test_invalid_vas_is_refused_with_its_reason(text, error):
    assert parse_reply(text) == Intent(K.VAS_INVALID, error=error)


@pytest.mark.parametrize(
    ("raw", "value"), [("0", "0"), ("10", "10"), ("10.0", "10"), ("0.0", "0"), ("-0", "0"), (".5", "0.5")]
)
def test_vas_bounds_are_inclusive(raw, value):
    intent = parse_vas_value(raw)
    assert intent.kind is K.VAS and intent.value == Decimal(value)


def test_parse_vas_value_is_usable_by_api_callers():
    assert parse_vas_value(" 7,5 ") == Intent(K.VAS, value=Decimal("7.5"))
    assert parse_vas_value("7.25").error == "too_many_decimals"
    assert parse_vas_value("").error == "not_a_number"
    assert parse_vas_value("1e1").error == "not_a_number"


def test_the_scale_comes_from_the_caller_not_the_parser():
    percent = VasRule(
        every_days=7, reply_window_hours=24, undo_minutes=60, scale_min=Decimal(0), scale_max=Decimal(100), decimals=0
    )
    assert parsing.parse_reply("V 55", scale=percent) == Intent(K.VAS, value=Decimal("55"))
    assert parsing.parse_reply("V 55/100", scale=percent) == Intent(K.VAS, value=Decimal("55"))
    assert parsing.parse_reply("V 5.5", scale=percent).error == "too_many_decimals"
    assert parsing.parse_reply("V 101", scale=percent).error == "out_of_range"
    assert parsing.parse_reply("V 55/10", scale=percent).error == "not_a_number"
    assert parse_reply("V 55").error == "out_of_range"


_FULL_WIDTH = str.maketrans("0123456789.,", "０１２３４５６７８９．，")


@st.composite
def formatted_score(draw):
    tenths = draw(st.integers(0, 100))
    value = Decimal(tenths) / 10
    number = f"{value:.1f}"
    if tenths % 10 == 0 and draw(st.booleans()):
        number = str(tenths // 10)
    if draw(st.booleans()):
        number = number.replace(".", ",")
    if draw(st.booleans()):
        number = number.translate(_FULL_WIDTH)
    prefix = draw(st.sampled_from(["V ", "VAS ", "v", "vas: ", "Ｖ ", "VAS：", "V  "]))
    return prefix + number, value


@settings(max_examples=300)
@given(formatted_score(), st.booleans(), st.booleans())
def test_any_valid_score_with_prefix_parses_to_exactly_that_value(case, expecting_vas, dose_open):
    text, value = case
    intent = parse_reply(text, expecting_vas=expecting_vas, dose_open=dose_open)
    assert intent.kind is K.VAS
    assert intent.value == value


@settings(max_examples=200)
@given(st.integers(0, 100).filter(lambda t: t not in (10, 20)))
def test_bare_score_after_prompt_is_vas_even_with_a_dose_open(tenths):
    value = Decimal(tenths) / 10
    intent = parse_reply(f"{value:.1f}", expecting_vas=True, dose_open=True)
    assert intent == Intent(K.VAS, value=value)


# --- the bare-number ambiguity rule ---------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [("1", K.DOSE_TAKEN), ("2", K.DOSE_NOT_TAKEN), ("１", K.DOSE_TAKEN)])
def test_bare_1_or_2_with_dose_open_is_a_dose_even_when_vas_pending(text, kind):
    assert parse_reply(text, expecting_vas=True, dose_open=True).kind is kind


@pytest.mark.parametrize(("text", "value"), [("1", "1"), ("2", "2")])
def test_bare_1_or_2_without_open_dose_is_a_score_when_vas_pending(text, value):
    assert parse_reply(text, expecting_vas=True, dose_open=False) == Intent(K.VAS, value=Decimal(value))


def test_bare_1_or_2_is_a_dose_reply_when_no_vas_pending_even_without_open_dose():
    assert parse_reply("1").kind is K.DOSE_TAKEN
    assert parse_reply("2").kind is K.DOSE_NOT_TAKEN


@pytest.mark.parametrize("text", ["4.5", "7", "0", "4,5"])
def test_bare_number_without_vas_prompt_is_unknown(text):
    assert parse_reply(text, dose_open=True).kind is K.UNKNOWN


@pytest.mark.parametrize(
    ("text", "error"),
    [("11", "out_of_range"), ("-1", "out_of_range"), ("4.55", "too_many_decimals"), ("abc", "not_a_number")],
)
def test_bad_reply_to_vas_prompt_is_refused_with_reason(text, error):
    assert parse_reply(text, expecting_vas=True) == Intent(K.VAS_INVALID, error=error)


def test_bare_comma_decimal_after_prompt():
    assert parse_reply("4,5", expecting_vas=True) == Intent(K.VAS, value=Decimal("4.5"))


def test_keywords_win_over_a_pending_vas_prompt():
    assert parse_reply("STOP", expecting_vas=True).kind is K.STOP
    assert parse_reply("yes", expecting_vas=True).kind is K.DOSE_TAKEN
    assert parse_reply("AE rash", expecting_vas=True).kind is K.ADVERSE_EVENT


# --- adverse events ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ae_text"),
    [
        ("AE headache after injection", "headache after injection"),
        ("ae: Rash on ARM", "Rash on ARM"),
        ("AE：头痛", "头痛"),
        ("  ＡＥ  Fever 39°C  ", "Fever 39°C"),
        ("不良反应 注射部位红肿", "注射部位红肿"),
        ("副作用：发烧，住院了", "发烧，住院了"),
        ("副作用头晕", "头晕"),
    ],
)
def test_adverse_event_keeps_original_text_trimmed(text, ae_text):
    assert parse_reply(text) == Intent(K.ADVERSE_EVENT, text=ae_text)


@pytest.mark.parametrize("text", ["AE", "AE:", "ae ： ", "不良反应", "副作用。"])
def test_adverse_event_without_text_is_unknown(text):
    assert parse_reply(text).kind is K.UNKNOWN


# --- consent as the carrier sees it ---------------------------------------------


@settings(max_examples=200)
@given(st.text(max_size=30), st.sampled_from(["STOP", "START", "HELP", "stop", "Start"]), st.booleans())
def test_the_carriers_opt_out_type_decides_whatever_the_body(body, opt_out_type, opted_out):
    kind = {"stop": K.STOP, "start": K.START, "help": K.HELP}[opt_out_type.lower()]
    assert parse_reply(body, opt_out_type=opt_out_type, opted_out=opted_out).kind is kind


@pytest.mark.parametrize("text", ["YES", "yes!", "Ｙｅｓ", " yes. "])
def test_yes_opts_an_opted_out_participant_back_in_and_is_otherwise_a_dose(text):
    assert parse_reply(text, opted_out=True).kind is K.START
    assert parse_reply(text, opted_out=False).kind is K.DOSE_TAKEN


def test_an_unknown_opt_out_type_leaves_the_body_to_decide():
    assert parse_reply("1", opt_out_type="OTHER").kind is K.DOSE_TAKEN
    assert parse_reply("ARRET", opt_out_type="").kind is K.UNKNOWN


# --- mixed replies: an answer and a symptom ---------------------------------------

_MIXED_WORDS = [
    ("1", K.DOSE_TAKEN),
    ("taken", K.DOSE_TAKEN),
    ("已打", K.DOSE_TAKEN),
    ("打了", K.DOSE_TAKEN),
    ("2", K.DOSE_NOT_TAKEN),
    ("未打", K.DOSE_NOT_TAKEN),
    ("没打", K.DOSE_NOT_TAKEN),
    ("skip", K.DOSE_NOT_TAKEN),
]
_GAPS = st.sampled_from([" ", ", ", "，", "。", "、", " - ", ": ", "; ", "! "])
_SYMPTOM = st.text(alphabet=st.sampled_from("发烧头痛红肿疼乏力 feverashd"), min_size=1, max_size=12).filter(
    lambda t: any(ch.isalpha() for ch in t) and t.strip() == t and normalize(t) not in {"ty", "ok"}
)


@settings(max_examples=300)
@given(st.sampled_from(_MIXED_WORDS), _GAPS, _SYMPTOM, st.booleans())
def test_a_dose_answer_followed_by_words_keeps_both(word_kind, gap, symptom, full_width):
    word, kind = word_kind
    if full_width and word.isascii():
        word = "".join(chr(ord(ch) + 0xFEE0) for ch in word)
    intent = parse_reply(word + gap + symptom, dose_open=True)
    assert intent.kind is kind
    assert intent.symptom == symptom


@pytest.mark.parametrize("text", ["taken, thanks", "1 谢谢", "已打，好的", "done ok!"])
def test_thanks_after_a_dose_answer_is_not_a_symptom(text):
    assert parse_reply(text) == Intent(K.DOSE_TAKEN)


@pytest.mark.parametrize("text", ["yes I have a question", "no problem", "1.5 tired", "1 5", "是不是要打针"])
def test_ambiguous_starts_are_not_dose_answers(text):
    assert parse_reply(text).kind is K.UNKNOWN


@settings(max_examples=200)
@given(st.integers(0, 100), _GAPS, _SYMPTOM)
def test_a_score_followed_by_words_keeps_both(tenths, gap, symptom):
    value = Decimal(tenths) / 10
    intent = parse_reply(f"V {value}{gap}{symptom}")
    assert intent.kind is K.VAS and intent.value == value.quantize(Decimal("0.1"))
    assert intent.symptom == symptom


# --- the injection site named with a dose ----------------------------------------

_SITE_SPELLINGS = [(word, site) for site, words in parsing.SITE_WORDS.items() for word in words]
_TAKEN = st.sampled_from(["1", "taken", "done", "已打", "打了", "已经打了", "１", "Taken"])


def _shouted(word: str) -> str:
    """The spelling as a phone may send it: capitals, or full-width forms."""
    return word.upper() if word.isascii() else word


@settings(max_examples=300)
@given(_TAKEN, _GAPS, st.sampled_from(_SITE_SPELLINGS), st.booleans(), st.booleans(), st.booleans())
def test_a_site_after_taken_is_the_site_never_a_symptom(taken, gap, spelling, shout, expecting_vas, dose_open):
    word, site = spelling
    intent = parse_reply(
        taken + gap + (_shouted(word) if shout else word), expecting_vas=expecting_vas, dose_open=dose_open
    )
    assert intent == Intent(K.DOSE_TAKEN, site=site)


@settings(max_examples=200)
@given(st.sampled_from(_SITE_SPELLINGS), _GAPS, _SYMPTOM)
def test_a_site_then_words_keeps_the_site_and_the_words_as_the_symptom(spelling, gap, symptom):
    word, site = spelling
    intent = parse_reply(f"1 {word}{gap}{symptom}", dose_open=True)
    assert intent == Intent(K.DOSE_TAKEN, site=site, symptom=symptom)


@pytest.mark.parametrize(
    "text, site",
    [
        ("已打左腿", "thigh_left"),
        ("打了右上臂", "arm_right"),
        ("1左腹", "abdomen_left"),
        ("１ Ｌ－ＴＨＩＧＨ", "thigh_left"),
    ],
)
def test_chinese_sites_may_run_into_the_answer(text, site):
    assert parse_reply(text) == Intent(K.DOSE_TAKEN, site=site)


@pytest.mark.parametrize("text", ["2 left arm", "没打 左腿", "skip, right thigh"])
def test_a_site_after_not_taken_names_no_site(text):
    intent = parse_reply(text, dose_open=True)
    assert intent.kind is K.DOSE_NOT_TAKEN and intent.site is None


@pytest.mark.parametrize("text", ["1 left armchair", "taken leftover", "left thigh", "左腿", "1 l"])
def test_words_that_are_not_a_site_after_an_answer_stay_what_they_were(text):
    assert parse_reply(text, dose_open=True).site is None

"""Turn an inbound SMS body into one participant intent.

Pure functions, no database: the caller supplies the conversation state
(``expecting_vas``: a VAS prompt is pending; ``dose_open``: a dose window is
open and not yet reported) and acts on the returned :class:`Intent`.

Ambiguity rule for bare numbers (``"1"``, ``"4.5"``, ``"１"``):

* When ``expecting_vas`` and the message is exactly ``1`` or ``2`` and
  ``dose_open``: the dose wins (``DOSE_TAKEN`` / ``DOSE_NOT_TAKEN``); the reply
  should explain that a score of 1 is sent as ``V 1``.
* Otherwise, when ``expecting_vas``: any bare number is a VAS score (``VAS``,
  or ``VAS_INVALID`` with the reason), and any text that is neither a keyword
  nor a number is ``VAS_INVALID`` / ``not_a_number``.
* Without ``expecting_vas``: ``1`` / ``2`` are dose replies, any other bare
  number is ``UNKNOWN`` (a score must then carry its ``V`` / ``VAS`` prefix).

Keywords (STOP, HELP, AE, ...) always win over the VAS expectation. Consent keywords are the
carrier's (Twilio's opt-out, opt-in and help lists plus the Chinese 退订 / 订阅 / 帮助), matched on the
whole body; when the carrier names the keyword itself (``opt_out_type``, Twilio's OptOutType) that
decides, whatever the body says. YES opts an opted-out participant back in, as the carrier does;
otherwise it is a dose report.

Mixed replies: a dose answer or a score followed by more words ("1 但是注射部位红肿", "taken, bit of
fever", "V 6 knee pain") keep the answer and carry the words as ``symptom``; words that are only
thanks ("taken, thanks") are not a symptom.

Injection sites: a "taken" answer may name where it was injected right after it ("1 L-thigh", "taken left
arm", "已打 左腿", "已打左腿", "1 左腿 有点红"); the site is carried as ``site`` (an InjectionSite code) and
is never read as a symptom. A site after "1" makes it a dose answer even while a VAS is pending.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

__all__ = [
    "IntentKind",
    "Intent",
    "normalize",
    "parse_reply",
    "parse_vas_value",
    "VasScale",
    "EDGE_PUNCTUATION",
]


class IntentKind(str, enum.Enum):
    """What an inbound message asks for."""

    DOSE_TAKEN = "dose_taken"
    DOSE_NOT_TAKEN = "dose_not_taken"
    VAS = "vas"
    VAS_INVALID = "vas_invalid"
    ADVERSE_EVENT = "adverse_event"
    STOP = "stop"
    START = "start"
    HELP = "help"
    UNDO = "undo"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Intent:
    """One parsed message: its kind plus the VAS value, AE text, VAS error code or the symptom that came with it."""

    kind: IntentKind
    value: Decimal | None = None
    text: str | None = None
    # For VAS_INVALID: 'out_of_range' | 'too_many_decimals' | 'not_a_number'.
    error: str | None = None
    # Words after a dose answer or a score ("1 but the injection site is red"), in the sender's characters.
    symptom: str | None = None
    # For DOSE_TAKEN: where it was injected, when the reply names it ("1 L-thigh"): an InjectionSite code.
    site: str | None = None


# Compared after normalize(), so ASCII keywords are lower-case and full-width
# forms have already been folded by NFKC.
_KEYWORDS: dict[IntentKind, frozenset[str]] = {
    IntentKind.DOSE_TAKEN: frozenset({"1", "y", "yes", "taken", "done", "已打", "打了", "已打了", "已经打了", "是"}),
    IntentKind.DOSE_NOT_TAKEN: frozenset({"2", "n", "no", "skip", "未打", "没打", "没有打"}),
    IntentKind.STOP: frozenset(
        {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke", "退订", "td"}
    ),
    IntentKind.START: frozenset({"start", "unstop", "订阅"}),
    IntentKind.HELP: frozenset({"help", "info", "帮助"}),
    IntentKind.UNDO: frozenset({"undo", "撤销"}),
}
_KEYWORD_TO_KIND = {word: kind for kind, words in _KEYWORDS.items() for word in words}
# The carrier's opt-in words that are also a dose answer: opt-in only for someone opted out.
_OPT_IN_WHEN_OPTED_OUT = frozenset({"yes"})
# Twilio's OptOutType values (Advanced Opt-Out) and what they mean here.
_CARRIER_TYPES = {"stop": IntentKind.STOP, "start": IntentKind.START, "help": IntentKind.HELP}
CONSENT_KINDS = frozenset({IntentKind.STOP, IntentKind.START, IntentKind.HELP})

# Dose answers that may be followed by a symptom. Not y/n/yes/no/是: "no problem" and "yes I have a
# question" are not dose reports, so those count only on their own. Longest first.
_MIXED_DOSE_WORDS: dict[str, IntentKind] = {
    "已经打了": IntentKind.DOSE_TAKEN,
    "已打了": IntentKind.DOSE_TAKEN,
    "没有打": IntentKind.DOSE_NOT_TAKEN,
    "taken": IntentKind.DOSE_TAKEN,
    "done": IntentKind.DOSE_TAKEN,
    "skip": IntentKind.DOSE_NOT_TAKEN,
    "已打": IntentKind.DOSE_TAKEN,
    "打了": IntentKind.DOSE_TAKEN,
    "未打": IntentKind.DOSE_NOT_TAKEN,
    "没打": IntentKind.DOSE_NOT_TAKEN,
    "1": IntentKind.DOSE_TAKEN,
    "2": IntentKind.DOSE_NOT_TAKEN,
}
# How a reply may name an injection site (folded: NFKC, ASCII lower-case). Latin spellings need a word boundary
# after them; Chinese ones may run straight into the next words ("左腿有点红").
SITE_WORDS: dict[str, tuple[str, ...]] = {
    "abdomen_left": (
        "l-abdomen", "l abdomen", "left abdomen", "abdomen left", "l-belly", "l belly", "left belly", "belly left",
        "左腹部", "左侧腹部", "腹部左侧", "左腹", "肚子左边", "左肚子",
    ),
    "abdomen_right": (
        "r-abdomen", "r abdomen", "right abdomen", "abdomen right", "r-belly", "r belly", "right belly", "belly right",
        "右腹部", "右侧腹部", "腹部右侧", "右腹", "肚子右边", "右肚子",
    ),
    "thigh_left": (
        "l-thigh", "l thigh", "left thigh", "thigh left", "l-leg", "l leg", "left leg",
        "左大腿", "左侧大腿", "大腿左侧", "左腿",
    ),
    "thigh_right": (
        "r-thigh", "r thigh", "right thigh", "thigh right", "r-leg", "r leg", "right leg",
        "右大腿", "右侧大腿", "大腿右侧", "右腿",
    ),
    "arm_left": (
        "l-arm", "l arm", "left arm", "left upper arm", "arm left", "左上臂", "左手臂", "左胳膊", "左臂",
    ),
    "arm_right": (
        "r-arm", "r arm", "right arm", "right upper arm", "arm right", "右上臂", "右手臂", "右胳膊", "右臂",
    ),
}  # fmt: skip
_SITE_OF = {word: site for site, words in SITE_WORDS.items() for word in words}
_SITE_ALTERNATION = "|".join(map(re.escape, sorted(_SITE_OF, key=len, reverse=True)))
_SITE = re.compile(rf"(?P<site>{_SITE_ALTERNATION})(?![a-z0-9])")

# What may follow an answer before the symptom: a space or punctuation, but not the decimal mark of "1.5".
_GAP = r"(?:\s|[,;:!?~、，。！？；：—\-](?![0-9])|\.(?![0-9]))+"
# Words after an answer that are not a symptom.
_COURTESY = frozenset(
    {"thanks", "thank you", "thx", "ty", "ok", "okay", "cheers", "谢谢", "谢谢你", "多谢", "好的", "好", "收到", "👍"}
)

# Characters trimmed from both ends of a message. NFKC runs first, so the
# full-width forms (！？，：) arrive here as their ASCII twins.
EDGE_PUNCTUATION = ".,!?;:~…。、，！？；：\"'“”‘’()[]（）【】《》<>*#"
_EDGE_NO_DOT = re.escape(EDGE_PUNCTUATION.replace(".", ""))
# A single leading "." is kept when a digit follows: ".5" is a score, not "5"; "…1" is still "1".
_LEADING = re.compile(rf"^(?:[\s{_EDGE_NO_DOT}]|\.{{2,}}|\.(?![0-9]))+")
_TRAILING = re.compile(rf"[\s{re.escape(EDGE_PUNCTUATION)}]+$")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# "v" / "vas" followed by a separator, or directly by the number ("V4.5").
_VAS_PREFIX = re.compile(r"^(?:vas|v)(?:\s*[:=]\s*|\s+|(?=[-+.,0-9])|$)(?P<rest>.*)$", re.S)
# Tolerates "4.5/10" and "4.5分" because that is how people write scores ("/10" must name the scale's top).
_NUMBER = re.compile(r"^(?P<num>[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:\s*/\s*(?P<of>[0-9]+(?:\.[0-9]+)?)|\s*分)?$")


class VasScale(Protocol):
    """The protocol's VAS scale (schedules.protocol.VasRule has these fields)."""

    scale_min: Decimal
    scale_max: Decimal
    decimals: int


def _normalize_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    # Zero-width and other format characters are invisible to the sender.
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.translate(_ASCII_LOWER)
    text = " ".join(text.split())
    text = _LEADING.sub("", text)
    return _TRAILING.sub("", text)


def normalize(text: str) -> str:
    """Fold a message for matching: NFKC, ASCII lower-case, single spaces, no edge punctuation."""
    # Lower-casing can enable a new NFKC composition ("W" + ring has no
    # precomposed form, "w" + ring does), so iterate to a fixed point.
    for _ in range(8):
        folded = _normalize_once(text)
        if folded == text:
            break
        text = folded
    return text


def parse_vas_value(raw: str, *, scale: VasScale) -> Intent:
    """Parse a VAS score on the protocol's `scale` (',' accepted as decimal mark) into VAS or VAS_INVALID."""
    text = " ".join(unicodedata.normalize("NFKC", raw).split())
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    match = _NUMBER.match(text)
    if match is None or (match.group("of") is not None and Decimal(match.group("of")) != scale.scale_max):
        return Intent(IntentKind.VAS_INVALID, error="not_a_number")
    number = match.group("num")
    value = Decimal(number)
    if not scale.scale_min <= value <= scale.scale_max:
        return Intent(IntentKind.VAS_INVALID, error="out_of_range")
    # Counted on the text, not the value: "4.50" and "1,000" are refused
    # rather than guessed at.
    decimals = len(number.partition(".")[2])
    if decimals > scale.decimals:
        return Intent(IntentKind.VAS_INVALID, error="too_many_decimals")
    # "-0" is 0; quantize gives every score the same shape.
    value = abs(value) if value == 0 else value
    return Intent(IntentKind.VAS, value=value.quantize(Decimal(1).scaleb(-scale.decimals)))


@dataclass(frozen=True)
class _Folded:
    """A message folded character by character (NFKC, ASCII lower-case, format characters dropped), with the
    position in the original of each folded character, so what a pattern finds can be cut from what was typed."""

    text: str
    starts: tuple[int, ...]

    @classmethod
    def of(cls, raw: str) -> "_Folded":
        """Fold `raw`."""
        text, starts = [], []
        for index, ch in enumerate(raw):
            folded = (
                "" if unicodedata.category(ch) == "Cf" else unicodedata.normalize("NFKC", ch).translate(_ASCII_LOWER)
            )
            text.append(folded)
            starts.extend([index] * len(folded))
        return cls("".join(text), tuple(starts))

    def original_from(self, raw: str, position: int) -> str:
        """What was typed from the folded `position` on, trimmed of spaces and separators."""
        rest = raw[self.starts[position] :] if position < len(self.starts) else ""
        return rest.strip(_SEPARATORS).strip()


_SEPARATORS = " \t\r\n\u3000:：-—=,，、。.;；!！?？~"
_LEAD = rf"^[\s{re.escape(EDGE_PUNCTUATION)}]*"
# ASCII keywords need a word boundary after them ("Aeroplane" is not "AE"); Chinese ones are commonly
# run straight into the text ("副作用头痛").
_AE_START = re.compile(_LEAD + r"(?:不良反应|副作用|ae(?![a-z]))")
_MIXED_DOSE = re.compile(_LEAD + "(" + "|".join(map(re.escape, _MIXED_DOSE_WORDS)) + ")" + _GAP)
# "taken" words with a site right after them, with or without a gap ("已打左腿", "1 L-thigh").
_TAKEN_WORDS = [w for w, k in _MIXED_DOSE_WORDS.items() if k == IntentKind.DOSE_TAKEN]
_DOSE_BEFORE_SITE = re.compile(
    _LEAD + "(" + "|".join(map(re.escape, _TAKEN_WORDS)) + ")" + f"(?:{_GAP})?" + f"(?={_SITE_ALTERNATION})"
)
_SCORE = r"(?P<num>[-+]?(?:[0-9]+(?:[.,][0-9]+)?|\.[0-9]+))(?:\s*/\s*(?P<of>[0-9]+(?:\.[0-9]+)?)|\s*分)?"
_MIXED_VAS = re.compile(_LEAD + r"(?P<prefix>(?:vas|v)(?:\s*[:=]\s*|\s+|(?=[-+.,0-9])))?" + _SCORE + _GAP)


def _adverse_event_text(raw: str) -> str | None:
    """Return what follows an AE keyword in the raw text (original characters), or None if no keyword."""
    folded = _Folded.of(raw)
    match = _AE_START.match(folded.text)
    return None if match is None else folded.original_from(raw, match.end())


_NOT_A_SYMPTOM = ""


def _symptom(raw: str, folded: _Folded, position: int) -> str | None:
    """The words from `position` on: the symptom when they have letters, _NOT_A_SYMPTOM when they are only
    thanks, None when they make the whole message unreadable ("1 5")."""
    words = folded.original_from(raw, position)
    if normalize(words) in _COURTESY:
        return _NOT_A_SYMPTOM
    return words if any(ch.isalpha() for ch in words) else None


def _with_symptom(answer: Intent, raw: str, folded: _Folded, position: int) -> Intent | None:
    words = _symptom(raw, folded, position)
    if words is None:
        return None
    return replace(answer, symptom=words) if words else answer


def _mixed(raw: str, *, scale: VasScale, expecting_vas: bool, dose_open: bool) -> Intent | None:
    """A dose answer or a score with words after it, or None; bare 1 and 2 follow the ambiguity rule."""
    folded = _Folded.of(raw)
    placed = _DOSE_BEFORE_SITE.match(folded.text)
    site = _SITE.match(folded.text, placed.end()) if placed else None
    if site:
        # A site names an injection: a dose answer whatever else is pending; the site is not a symptom.
        answer = Intent(IntentKind.DOSE_TAKEN, site=_SITE_OF[site.group("site")])
        if not folded.original_from(raw, site.end()):
            return answer
        return _with_symptom(answer, raw, folded, site.end())
    dose = _MIXED_DOSE.match(folded.text)
    if dose and not (dose.group(1) in ("1", "2") and expecting_vas and not dose_open):
        return _with_symptom(Intent(_MIXED_DOSE_WORDS[dose.group(1)]), raw, folded, dose.end())
    score = _MIXED_VAS.match(folded.text)
    if score is None or not (score.group("prefix") or expecting_vas):
        return None
    number = score.group("num") + (f"/{score.group('of')}" if score.group("of") else "")
    return _with_symptom(parse_vas_value(number, scale=scale), raw, folded, score.end())


def parse_reply(
    text: str,
    *,
    scale: VasScale,
    expecting_vas: bool = False,
    dose_open: bool = False,
    opted_out: bool = False,
    opt_out_type: str | None = None,
) -> Intent:
    """Classify an inbound SMS body, reading scores on the protocol's VAS `scale`; see the module docstring.
    `opt_out_type` is the keyword class the carrier recognised (Twilio's OptOutType), if it said."""
    carrier = _CARRIER_TYPES.get((opt_out_type or "").strip().lower())
    if carrier is not None:
        return Intent(carrier)
    folded = normalize(text)
    if not folded:
        return Intent(IntentKind.UNKNOWN)
    if opted_out and folded in _OPT_IN_WHEN_OPTED_OUT:
        return Intent(IntentKind.START)

    kind = _KEYWORD_TO_KIND.get(folded)
    if kind is not None:
        if folded in ("1", "2") and expecting_vas and not dose_open:
            return parse_vas_value(folded, scale=scale)
        return Intent(kind)

    ae_text = _adverse_event_text(text)
    if ae_text is not None:
        if any(ch.isalnum() for ch in ae_text):
            return Intent(IntentKind.ADVERSE_EVENT, text=ae_text)
        return Intent(IntentKind.UNKNOWN)

    prefixed = _VAS_PREFIX.match(folded)
    if prefixed is not None:
        whole = parse_vas_value(prefixed.group("rest"), scale=scale)
        if whole.kind == IntentKind.VAS or whole.error != "not_a_number":
            return whole
        return _mixed(text, scale=scale, expecting_vas=expecting_vas, dose_open=dose_open) or whole

    if expecting_vas:
        whole = parse_vas_value(folded, scale=scale)
        if whole.kind == IntentKind.VAS or whole.error != "not_a_number":
            return whole
        return _mixed(text, scale=scale, expecting_vas=expecting_vas, dose_open=dose_open) or whole
    return _mixed(text, scale=scale, expecting_vas=expecting_vas, dose_open=dose_open) or Intent(IntentKind.UNKNOWN)

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

Keywords (STOP, HELP, AE, ...) always win over the VAS expectation.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
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
    """One parsed message: its kind plus the VAS value, AE text or VAS error code."""

    kind: IntentKind
    value: Decimal | None = None
    text: str | None = None
    # For VAS_INVALID: 'out_of_range' | 'too_many_decimals' | 'not_a_number'.
    error: str | None = None


# Compared after normalize(), so ASCII keywords are lower-case and full-width
# forms have already been folded by NFKC.
_KEYWORDS: dict[IntentKind, frozenset[str]] = {
    IntentKind.DOSE_TAKEN: frozenset({"1", "y", "yes", "taken", "done", "已打", "打了", "已打了", "已经打了", "是"}),
    IntentKind.DOSE_NOT_TAKEN: frozenset({"2", "n", "no", "skip", "未打", "没打", "没有打"}),
    IntentKind.STOP: frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "退订", "td"}),
    IntentKind.START: frozenset({"start", "unstop", "订阅"}),
    IntentKind.HELP: frozenset({"help", "帮助", "info"}),
    IntentKind.UNDO: frozenset({"undo", "撤销"}),
}
_KEYWORD_TO_KIND = {word: kind for kind, words in _KEYWORDS.items() for word in words}

# ASCII keywords need a word boundary after them ("Aeroplane" is not "AE");
# Chinese ones are commonly run straight into the text ("副作用头痛").
_AE_KEYWORDS = ("不良反应", "副作用", "ae")

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


def _fold_char(ch: str) -> str:
    if unicodedata.category(ch) == "Cf":
        return ""
    return unicodedata.normalize("NFKC", ch).translate(_ASCII_LOWER)


def _adverse_event_text(raw: str) -> str | None:
    """Return what follows an AE keyword in the raw text (original characters), or None if no keyword."""
    folded = [_fold_char(ch) for ch in raw]
    start = 0
    while start < len(raw) and all(ch.isspace() or ch in EDGE_PUNCTUATION for ch in folded[start]):
        start += 1
    for keyword in _AE_KEYWORDS:
        end, matched = start, ""
        while end < len(raw) and len(matched) < len(keyword):
            matched += folded[end]
            end += 1
        if matched != keyword:
            continue
        next_char = folded[end][:1] if end < len(raw) else ""
        if keyword.isascii() and next_char.isascii() and next_char.isalpha():
            continue
        rest = raw[end:]
        return rest.lstrip(" \t\r\n\u3000:：-—=,，").strip()
    return None


def parse_reply(text: str, *, scale: VasScale, expecting_vas: bool = False, dose_open: bool = False) -> Intent:
    """Classify an inbound SMS body, reading scores on the protocol's VAS `scale`; see the module docstring."""
    folded = normalize(text)
    if not folded:
        return Intent(IntentKind.UNKNOWN)

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
        return parse_vas_value(prefixed.group("rest"), scale=scale)

    if expecting_vas:
        return parse_vas_value(folded, scale=scale)
    return Intent(IntentKind.UNKNOWN)

"""Reading what an on-call phone texts back: ACK and an alert number, in any width or case, or 确认 and a number."""

from __future__ import annotations

import re
import unicodedata

MAX_DIGITS = 9  # an alert number fits a 32-bit id column; a longer one is no alert of ours

# After NFKC (full-width letters, digits and spaces become ASCII) and casefold: "ack 12", "ack12", "ack #12",
# "ack: 12", "确认 12". [0-9], not \d: \d would take other scripts' digits, which NFKC leaves alone.
_ACK = re.compile(rf"(?:ack|确认)\s*[:#]?\s*#?\s*([0-9]{{1,{MAX_DIGITS}}})")
_EDGES = " \t\r\n.,!?;。，！？；"


def parse_ack(text: str) -> int | None:
    """The alert number of an ACK command, or None when the text is not one."""
    normal = unicodedata.normalize("NFKC", text or "").casefold().strip(_EDGES)
    found = _ACK.fullmatch(normal)
    return int(found.group(1)) if found else None

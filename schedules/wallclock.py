"""Local wall-clock times of day as people write them: "HH:MM", 00:00 to 23:59."""

from __future__ import annotations

import re
from datetime import time

# ASCII digits only: int() would also take "２０" or "+1", which no form or protocol file means.
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])", re.ASCII)


def parse_hhmm(value: str) -> time:
    """'20:00' -> time(20, 0); ValueError with a sentence otherwise (surrounding spaces are forgiven)."""
    match = _HHMM.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a time of day in HH:MM form")
    return time(int(match.group(1)), int(match.group(2)))


def format_hhmm(value: time) -> str:
    """time(20, 0) -> '20:00'."""
    return value.strftime("%H:%M")

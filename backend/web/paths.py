"""What every route's path shares."""

from __future__ import annotations

# Ids are 32-bit INTEGER columns: a larger number in a path is simply not found, not a database overflow.
MAX_ID = 2**31 - 1
ID = f"int(max={MAX_ID})"

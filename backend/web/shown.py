"""A row with a few computed or replaced attributes, for a schema or template to show."""

from __future__ import annotations


class Shown:
    """A model row plus the few computed attributes its schema dumps (the participant's study code, alert state...)."""

    def __init__(self, row: object, **extra: object):
        self._row = row
        self.__dict__.update(extra)

    def __getattr__(self, name: str) -> object:
        return getattr(self._row, name)

"""Render outbound texts from messages.toml in every language a protocol may offer (tests check it covers them)."""

from __future__ import annotations

import functools
import string
import tomllib
from importlib import resources

from schedules.protocol import SUPPORTED_LANGUAGES

__all__ = [
    "SUPPORTED_LANGUAGES",
    "FALLBACK_LANGUAGE",
    "UnknownTemplate",
    "render",
    "template_keys",
    "template_params",
]

FALLBACK_LANGUAGE = "en"
_formatter = string.Formatter()


class UnknownTemplate(KeyError):
    """Raised when a template key is not in messages.toml."""


@functools.cache
def _catalogue() -> dict[str, dict[str, str]]:
    raw = resources.files(__package__).joinpath("messages.toml").read_text(encoding="utf-8")
    return tomllib.loads(raw)


def _field_names(text: str) -> frozenset[str]:
    # "{a.b}" / "{a[0]}" both need the parameter "a".
    names = set()
    for _, field, _, _ in _formatter.parse(text):
        if field is not None:
            names.add(field.split(".", 1)[0].split("[", 1)[0])
    return frozenset(names)


def _pick_language(texts: dict[str, str], language: str) -> str:
    """Pick the stored language for a tag: exact, then case/underscore-insensitive, then primary subtag, then en."""
    if language in texts:
        return language
    wanted = (language or "").replace("_", "-").casefold()
    by_folded = {tag.casefold(): tag for tag in texts}
    if wanted in by_folded:
        return by_folded[wanted]
    # "zh" or "zh-Hans" should reach zh-CN rather than fall to English.
    primary = wanted.split("-", 1)[0]
    for tag in texts:
        if tag.casefold().split("-", 1)[0] == primary and primary:
            return tag
    return FALLBACK_LANGUAGE


def template_keys() -> list[str]:
    """List every template key, sorted."""
    return sorted(_catalogue())


def template_params(key: str) -> frozenset[str]:
    """Name the parameters a template needs (the union over its languages)."""
    texts = _texts(key)
    return frozenset().union(*(_field_names(text) for text in texts.values()))


def _texts(key: str) -> dict[str, str]:
    try:
        return _catalogue()[key]
    except KeyError:
        raise UnknownTemplate(key) from None


def render(key: str, language: str, /, **params: object) -> str:
    """Render template `key` in `language` (en when that language is missing) with named params."""
    texts = _texts(key)
    text = texts[_pick_language(texts, language)]
    missing = sorted(_field_names(text) - params.keys())
    if missing:
        raise ValueError(f"template {key!r} needs parameter(s): {', '.join(missing)}")
    # Extra params are allowed so callers can pass one common context.
    return text.format_map(params)

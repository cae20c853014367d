"""Documenting error responses: every endpoint lists its errors in the one shared JSON shape."""

from __future__ import annotations

from functools import partial

from flask_smorest import Blueprint

from backend.web.api.schemas import ApiErrorSchema

STAFF_ERRORS = {
    401: "not authenticated",
    403: "role may not do this",
    404: "not found or not visible",
    409: "conflicts with current state",
    422: "invalid input",
}


def _document(blp: Blueprint, descriptions: dict[int, str], *codes: int):
    def decorate(fn):
        for code in codes:
            fn = blp.alt_response(code, schema=ApiErrorSchema, description=descriptions[code])(fn)
        return fn

    return decorate


def error_responses(blp: Blueprint, descriptions: dict[int, str] = STAFF_ERRORS):
    """A decorator factory `errors(401, 404, …)` that documents those error responses on `blp`."""
    return partial(_document, blp, descriptions)

"""Strict JSON: no NaN/Infinity (also as 1e999), bounded nesting depth."""

from __future__ import annotations

import json
import math
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def json_depth(raw: bytes) -> int:
    """Deepest bracket nesting, ignoring brackets inside strings (regexes run in C)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads_strict(raw: bytes, *, max_depth: int):
    if json_depth(raw) > max_depth:
        raise ParseError(f"JSON is nested deeper than {max_depth} levels.")
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_parse_float)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"Malformed JSON: {exc}") from None


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw:
            raise ParseError("Request body is empty; send a JSON object.")
        return loads_strict(raw, max_depth=settings.API_MAX_JSON_DEPTH)

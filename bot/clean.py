"""Cleaning what comes in, once, at the boundary, for every channel.

A platform update may carry what no database should be asked to store: NUL bytes (SQLite
keeps them, PostgreSQL refuses them), lone surrogates from a JSON ``\\ud800`` escape (no UTF-8
encoding exists for them), other control characters, or nesting deep enough to hurt the JSON
code that reads it back. ``clean`` returns a copy with those characters removed, or raises
``Unfit`` for a structure too deep to be a real update.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32  # a Telegram update nests about 6 levels; WeCom's fields are flat
#: C0 controls but tab, line feed and carriage return; DEL; the surrogates; the non-characters.
_UNFIT = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\ud800-\\udfff\\ufffe\\uffff]")


class Unfit(ValueError):
    """The payload cannot be a real update (too deeply nested)."""


def clean_text(value: str) -> str:
    """``value`` without the characters a database or a chat cannot take."""
    return _UNFIT.sub("", value)


def clean(value: Any, depth: int = 0) -> Any:
    """A copy of a decoded JSON (or XML) payload with every string cleaned."""
    if depth > MAX_DEPTH:
        raise Unfit(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(item, depth + 1) for item in value]
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str) -> Any:
    """``json.loads`` refusing NaN and Infinity, which are not JSON (PostgreSQL refuses them)."""
    return json.loads(text, parse_constant=_no_constant)

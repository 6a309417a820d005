"""The service policy: promised times per level, the classification window, reminders.

A policy is a TOML file (the default one ships beside this module); a site may override any
part of it. Anything malformed is refused with the file, the key and the reason, so the
service never starts on a policy it would misread.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.toml")
LEVELS = (1, 2, 3)
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_LEVEL_KEYS = {"response", "restore", "resolve", "resolve_from"}
_TOP_KEYS = {"levels", "classification", "reminders"}

ResolveFrom = Literal["report", "arrival"]


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the file, the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class LevelPolicy:
    """The promised times of one fault level."""

    response: timedelta
    restore: timedelta | None
    resolve: timedelta
    resolve_from: ResolveFrom = "report"


@dataclass(frozen=True)
class Policy:
    """A complete, validated policy."""

    levels: Mapping[int, LevelPolicy]
    classification_window: timedelta
    default_level: int
    reminders: tuple[float, ...]
    source: str
    raw: Mapping[str, Any]

    def level(self, level: int) -> LevelPolicy:
        """The times of ``level`` (1, 2 or 3)."""
        return self.levels[level]


def parse_duration(text: object, source: str, key: str) -> timedelta:
    """Read "30s", "10m", "4h" or "2d" as a positive timedelta."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise PolicyError(source, key, f'bad duration {text!r}: expected like "30s", "10m", "4h", "2d"')
    amount = int(match.group(1))
    if amount <= 0:
        raise PolicyError(source, key, f"duration {text!r} must be greater than zero")
    return timedelta(**{_UNITS[match.group(2)]: amount})


def format_duration(delta: timedelta) -> str:
    """Spell ``delta`` the way the seed's table does: "10m", "60m", "4h", "48h", "7d"."""
    seconds = int(delta.total_seconds())
    if seconds % 60 == 0 and seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds % 3600 == 0 and seconds < 100 * 3600:
        return f"{seconds // 3600}h"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate the policy file at ``path`` (None: the built-in default)."""
    path = path or DEFAULT_POLICY_PATH
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(source, "(file)", f"cannot be read: {exc.strerror or exc}") from exc
    return parse_policy(text, source)


def parse_policy(text: str, source: str, base: Policy | None = None) -> Policy:
    """Validate TOML ``text``; with ``base``, ``text`` overrides parts of it (a site's policy)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(source, "(file)", f"not valid TOML: {exc}") from exc
    if base is not None:
        _check_known_keys(data, source)
        data = _merge(base.raw, data)
    return _build(data, source)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _check_known_keys(data: Mapping[str, Any], source: str) -> None:
    for key in data:
        if key not in _TOP_KEYS:
            raise PolicyError(source, key, f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")


def _table(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise PolicyError(source, key, "missing table" if value is None else "must be a table")
    return value


def _build(data: Mapping[str, Any], source: str) -> Policy:
    _check_known_keys(data, source)
    levels_table = _table(data, "levels", source)
    for key in levels_table:
        if key not in {str(n) for n in LEVELS}:
            raise PolicyError(source, f"levels.{key}", "unknown level (allowed: 1, 2, 3)")
    levels = {n: _build_level(levels_table, n, source) for n in LEVELS}

    classification = _table(data, "classification", source)
    for key in classification:
        if key not in {"window", "default_level"}:
            raise PolicyError(source, f"classification.{key}", "unknown key")
    window = parse_duration(classification.get("window"), source, "classification.window")
    default_level = classification.get("default_level")
    if not isinstance(default_level, int) or isinstance(default_level, bool) or default_level not in LEVELS:
        raise PolicyError(source, "classification.default_level", f"must be 1, 2 or 3, not {default_level!r}")

    reminders_table = _table(data, "reminders", source)
    for key in reminders_table:
        if key != "at":
            raise PolicyError(source, f"reminders.{key}", "unknown key")
    reminders = _build_reminders(reminders_table.get("at"), source)
    return Policy(levels, window, default_level, reminders, source, data)


def _build_level(levels_table: Mapping[str, Any], level: int, source: str) -> LevelPolicy:
    prefix = f"levels.{level}"
    table = levels_table.get(str(level))
    if not isinstance(table, Mapping):
        raise PolicyError(source, prefix, "missing level" if table is None else "must be a table")
    for key in table:
        if key not in _LEVEL_KEYS:
            raise PolicyError(
                source,
                f"{prefix}.{key}",
                f"unknown key (allowed: {', '.join(sorted(_LEVEL_KEYS))})",
            )
    for required in ("response", "resolve"):
        if required not in table:
            raise PolicyError(source, f"{prefix}.{required}", "missing")
    response = parse_duration(table["response"], source, f"{prefix}.response")
    resolve = parse_duration(table["resolve"], source, f"{prefix}.resolve")
    restore = None
    if "restore" in table:
        restore = parse_duration(table["restore"], source, f"{prefix}.restore")
        if restore > resolve:
            raise PolicyError(source, f"{prefix}.restore", "must not be longer than resolve")
    resolve_from = table.get("resolve_from", "report")
    if resolve_from not in ("report", "arrival"):
        raise PolicyError(
            source, f"{prefix}.resolve_from", f'must be "report" or "arrival", not {resolve_from!r}'
        )
    if response > resolve:
        raise PolicyError(source, f"{prefix}.response", "must not be longer than resolve")
    return LevelPolicy(response, restore, resolve, resolve_from)


def _build_reminders(value: object, source: str) -> tuple[float, ...]:
    key = "reminders.at"
    if not isinstance(value, list):
        raise PolicyError(source, key, "must be a list of fractions like [0.5, 0.8]")
    fractions: list[float] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not 0 < item < 1:
            raise PolicyError(source, key, f"{item!r} is not a fraction between 0 and 1")
        fractions.append(float(item))
    if fractions != sorted(set(fractions)):
        raise PolicyError(source, key, "fractions must be increasing, each once")
    return tuple(fractions)


class PolicyBook:
    """The base policy plus each site's override, validated once per distinct override."""

    def __init__(self, base: Policy) -> None:
        self.base = base
        self._sites: dict[str, Policy] = {}

    def for_site(self, slug: str, override: str | None) -> Policy:
        """The policy a site's tickets follow."""
        if not override:
            return self.base
        key = f"{slug}\0{override}"
        policy = self._sites.get(key)
        if policy is None:
            policy = parse_policy(override, f"site {slug} policy", base=self.base)
            self._sites[key] = policy
        return policy

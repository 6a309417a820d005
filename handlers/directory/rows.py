"""What imports share: row errors, the all-or-nothing refusal, and field checks."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: Called once per processed row (drives the CLI's progress bar).
Progress = Callable[[], None]


@dataclass(frozen=True)
class RowError:
    """Why one row cannot be imported (row 1 is the header; 0 is the file itself)."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}" if self.row else self.reason


class ImportRejected(Exception):
    """The file was refused; nothing from it was written."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class ImportResult:
    """What an accepted file did: each record it names was created, updated or already so."""

    rows: int
    created: int
    updated: int
    unchanged: int


@dataclass
class Tally:
    """Counts records as an import writes them."""

    rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def count(self, is_new: bool, changed: bool) -> None:
        """Count one record."""
        if is_new:
            self.created += 1
        elif changed:
            self.updated += 1
        else:
            self.unchanged += 1

    def result(self) -> ImportResult:
        """The final figures."""
        return ImportResult(self.rows, self.created, self.updated, self.unchanged)


def check_text(
    errors: list[str], cells: dict[str, str], column: str, max_length: int, *, required: bool
) -> str:
    """The stripped cell, with a reason appended to ``errors`` when it is missing or too long."""
    value = cells.get(column, "").strip()
    if required and not value:
        errors.append(f"{column} is empty")
    elif len(value) > max_length:
        errors.append(f"{column} is longer than {max_length} characters")
    return value


def check_pattern(errors: list[str], cells: dict[str, str], column: str, pattern: str, hint: str) -> str:
    """An optional cell that must match ``pattern`` when given."""
    value = cells.get(column, "").strip()
    if value and not re.fullmatch(pattern, value):
        errors.append(f"{column} {value!r} is not valid ({hint})")
    return value


async def check_site(
    errors: list[str],
    cells: dict[str, str],
    cache: dict[str, T | None],
    load: Callable[[str], Awaitable[T | None]],
) -> T | None:
    """The site the row's ``site`` column names, loaded once per slug; a reason if unknown."""
    slug = check_text(errors, cells, "site", 40, required=True)
    if slug and slug not in cache:
        cache[slug] = await load(slug)
    found = cache.get(slug)
    if slug and found is None:
        errors.append(f"site {slug!r} does not exist (add it with: dutydesk site add)")
    return found

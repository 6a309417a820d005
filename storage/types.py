"""Column types shared by the tables."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC that always comes back timezone-aware.

    PostgreSQL keeps the offset (timestamptz); SQLite keeps none and returns naive values,
    so both directions are normalised here, at the storage boundary. Naive datetimes are
    refused on the way in: a naive time is a bug, not a guess to make.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_type(enum_cls: type[Enum]) -> sa.Enum:
    """A portable enum column: a VARCHAR of the members' values, no native PG type."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


def utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    """A fresh Column for a UTC timestamp (each table needs its own Column object)."""
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)

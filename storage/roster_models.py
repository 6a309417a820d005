"""The duty roster's table: who is on duty at a site, from when to when (times in UTC).

Kept apart from storage.models; importing this module registers the table on the shared
metadata (storage/migrations/env.py and the migration test import it).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

import storage.models  # noqa: F401  (the naming convention and the referenced tables)
from storage.types import utc_column


class DutyShift(SQLModel, table=True):
    """A named duty engineer (值班工程师) and optional backup (备班) for [starts_at, ends_at)."""

    __tablename__ = "duty_shift"
    __table_args__ = (sa.UniqueConstraint("site_id", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    starts_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    ends_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    engineer_id: int = Field(foreign_key="person.id")
    backup_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column(nullable=False))

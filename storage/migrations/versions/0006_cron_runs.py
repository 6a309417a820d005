"""cron runs: once-only periodic jobs across processes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 23:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cron_run",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_cron_run")),
    )


def downgrade() -> None:
    op.drop_table("cron_run")

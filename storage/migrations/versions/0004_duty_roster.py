"""duty roster: named duty engineers and backups per site and period

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 23:13:08.769834
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "duty_shift",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("engineer_id", sa.Integer(), nullable=False),
        sa.Column("backup_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["backup_id"], ["person.id"], name=op.f("fk_duty_shift_backup_id_person")),
        sa.ForeignKeyConstraint(
            ["engineer_id"], ["person.id"], name=op.f("fk_duty_shift_engineer_id_person")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_duty_shift_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_shift")),
        sa.UniqueConstraint("site_id", "starts_at", name=op.f("uq_duty_shift_site_id_starts_at")),
    )
    with op.batch_alter_table("duty_shift", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duty_shift_ends_at"), ["ends_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_duty_shift_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_duty_shift_starts_at"), ["starts_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("duty_shift", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duty_shift_starts_at"))
        batch_op.drop_index(batch_op.f("ix_duty_shift_site_id"))
        batch_op.drop_index(batch_op.f("ix_duty_shift_ends_at"))

    op.drop_table("duty_shift")

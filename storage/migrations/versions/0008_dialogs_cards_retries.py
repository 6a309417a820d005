"""dialogs with due rows, live ticket cards, outbox row kinds, inbox retries

Conversation.state "report.describe" becomes dialog "report", state "describe" (the fault
handling report's "fault.*" becomes "fault_report"). Timers may belong to a conversation.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = sa.Enum("telegram", "wecom", "webchat", name="channel", native_enum=False, length=16)
CLOCK = sa.Enum("response", "restore", "resolve", name="clock", native_enum=False, length=16)
LEASED = "sent_at IS NULL AND failed_at IS NULL AND claimed_until IS NOT NULL"
#: old state prefix → dialog name
DIALOGS = {"report.": "report", "fault.": "fault_report"}


def _conversation() -> sa.TableClause:
    return sa.table("conversation", sa.column("dialog", sa.String), sa.column("state", sa.String))


def upgrade() -> None:
    op.create_table(
        "ticket_card",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("channel", CHANNEL, nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("handle", sa.String(length=128), nullable=True),
        sa.Column("token", sa.String(length=128), nullable=True),
        sa.Column("token_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_ticket_card_person_id_person")),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_card_ticket_id_ticket")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_card")),
    )
    op.create_index("ix_ticket_card_live", "ticket_card", ["ticket_id", "channel", "chat_id", "live"])

    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("dialog", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("serial", sa.Integer(), nullable=False, server_default="0"))
    conversation = _conversation()
    for prefix, dialog in DIALOGS.items():
        op.execute(
            conversation.update()
            .where(conversation.c.state.like(f"{prefix}%"))
            .values(dialog=dialog, state=sa.func.substr(conversation.c.state, len(prefix) + 1))
        )

    with op.batch_alter_table("inbox_update") as batch:
        batch.add_column(sa.Column("retry_at", UTCDateTime(), nullable=True))
        batch.create_index(
            "ix_inbox_update_retry",
            ["retry_at"],
            postgresql_where=sa.text("processed_at IS NULL"),
            sqlite_where=sa.text("processed_at IS NULL"),
        )

    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=8), nullable=False, server_default="text"))
        batch.add_column(sa.Column("card_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_outbox_message_card_id_ticket_card"), "ticket_card", ["card_id"], ["id"]
        )
        batch.create_index(
            "ix_outbox_message_leased",
            ["claimed_until"],
            postgresql_where=sa.text(LEASED),
            sqlite_where=sa.text(LEASED),
        )

    with op.batch_alter_table("timer") as batch:
        batch.add_column(sa.Column("conversation_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("serial", sa.Integer(), nullable=True))
        batch.alter_column("ticket_id", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("kind", existing_type=sa.String(length=16), type_=sa.String(length=32))
        batch.alter_column("clock", existing_type=CLOCK, nullable=True)
        batch.create_index(batch.f("ix_timer_conversation_id"), ["conversation_id"])
        batch.create_foreign_key(
            batch.f("fk_timer_conversation_id_conversation"), "conversation", ["conversation_id"], ["id"]
        )

    with op.batch_alter_table("webchat_message") as batch:
        batch.add_column(sa.Column("replaces_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webchat_message") as batch:
        batch.drop_column("replaces_id")

    op.execute(sa.text("DELETE FROM timer WHERE ticket_id IS NULL"))
    with op.batch_alter_table("timer") as batch:
        batch.drop_constraint(batch.f("fk_timer_conversation_id_conversation"), type_="foreignkey")
        batch.drop_index(batch.f("ix_timer_conversation_id"))
        batch.alter_column("clock", existing_type=CLOCK, nullable=False)
        batch.alter_column("kind", existing_type=sa.String(length=32), type_=sa.String(length=16))
        batch.alter_column("ticket_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("serial")
        batch.drop_column("conversation_id")

    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_index("ix_outbox_message_leased")
        batch.drop_constraint(batch.f("fk_outbox_message_card_id_ticket_card"), type_="foreignkey")
        batch.drop_column("card_id")
        batch.drop_column("kind")

    with op.batch_alter_table("inbox_update") as batch:
        batch.drop_index("ix_inbox_update_retry")
        batch.drop_column("retry_at")

    conversation = _conversation()
    for prefix, dialog in DIALOGS.items():
        op.execute(
            conversation.update()
            .where(conversation.c.dialog == dialog)
            .values(state=sa.literal(prefix, sa.String) + conversation.c.state)
        )
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("serial")
        batch.drop_column("dialog")

    op.drop_index("ix_ticket_card_live", table_name="ticket_card")
    op.drop_table("ticket_card")

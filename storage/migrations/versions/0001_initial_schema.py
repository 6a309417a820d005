"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 22:29:36.281615
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("telegram", "wecom", "webchat", name="channel", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation")),
        sa.UniqueConstraint(
            "channel", "chat_id", "user_id", name=op.f("uq_conversation_channel_chat_id_user_id")
        ),
    )
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("phone", name=op.f("uq_person_phone")),
    )
    op.create_table(
        "site",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("policy_toml", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site")),
        sa.UniqueConstraint("slug", name=op.f("uq_site_slug")),
    )
    op.create_table(
        "chat_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("telegram", "wecom", "webchat", name="channel", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_chat_identity_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_identity")),
        sa.UniqueConstraint("channel", "external_id", name=op.f("uq_chat_identity_channel_external_id")),
    )
    with op.batch_alter_table("chat_identity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_identity_person_id"), ["person_id"], unique=False)

    op.create_table(
        "membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "reporter",
                "engineer",
                "supervisor",
                "manager",
                name="role",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_membership_person_id_person")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_membership_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership")),
        sa.UniqueConstraint(
            "person_id", "site_id", "role", name=op.f("uq_membership_person_id_site_id_role")
        ),
    )
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_membership_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_membership_site_id"), ["site_id"], unique=False)

    op.create_table(
        "subsystem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_subsystem_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsystem")),
        sa.UniqueConstraint("site_id", "name", name=op.f("uq_subsystem_site_id_name")),
    )
    with op.batch_alter_table("subsystem", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subsystem_site_id"), ["site_id"], unique=False)

    op.create_table(
        "asset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("subsystem_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("location", sa.String(length=120), nullable=False),
        sa.Column("model", sa.String(length=120), nullable=False),
        sa.Column("serial", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_asset_site_id_site")),
        sa.ForeignKeyConstraint(
            ["subsystem_id"], ["subsystem.id"], name=op.f("fk_asset_subsystem_id_subsystem")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset")),
        sa.UniqueConstraint("site_id", "code", name=op.f("uq_asset_site_id_code")),
    )
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_asset_subsystem_id"), ["subsystem_id"], unique=False)

    op.create_table(
        "ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("subsystem_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("place", sa.String(length=120), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("level_confirmed", sa.Boolean(), nullable=False),
        sa.Column("level_set_by", sa.String(length=16), nullable=False),
        sa.Column("proposed_level", sa.Integer(), nullable=True),
        sa.Column("proposed_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "reported",
                "classified",
                "acknowledged",
                "on_site",
                "restored",
                "resolved",
                "closed",
                "cancelled",
                name="ticketstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("classified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clocks_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolve_due_override", sa.DateTime(timezone=True), nullable=True),
        sa.Column("manager_flagged", sa.Boolean(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], name=op.f("fk_ticket_asset_id_asset")),
        sa.ForeignKeyConstraint(["assignee_id"], ["person.id"], name=op.f("fk_ticket_assignee_id_person")),
        sa.ForeignKeyConstraint(
            ["proposed_by_id"], ["person.id"], name=op.f("fk_ticket_proposed_by_id_person")
        ),
        sa.ForeignKeyConstraint(["reporter_id"], ["person.id"], name=op.f("fk_ticket_reporter_id_person")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_ticket_site_id_site")),
        sa.ForeignKeyConstraint(
            ["subsystem_id"], ["subsystem.id"], name=op.f("fk_ticket_subsystem_id_subsystem")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket")),
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_reporter_id"), ["reporter_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_status"), ["status"], unique=False)

    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("mime_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("location", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_attachment_conversation_id_conversation"),
        ),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], name=op.f("fk_attachment_ticket_id_ticket")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
    )
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachment_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "deadline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column(
            "clock",
            sa.Enum("response", "restore", "resolve", name="clock", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], name=op.f("fk_deadline_ticket_id_ticket")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadline")),
        sa.UniqueConstraint("ticket_id", "clock", name=op.f("uq_deadline_ticket_id_clock")),
    )
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deadline_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_deadline_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "ticket_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("old", sa.String(length=200), nullable=True),
        sa.Column("new", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["person.id"], name=op.f("fk_ticket_event_actor_id_person")),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_event_ticket_id_ticket")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_event")),
    )
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_event_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_event_ticket_id"))

    op.drop_table("ticket_event")
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deadline_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_deadline_due_at"))

    op.drop_table("deadline")
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachment_ticket_id"))

    op.drop_table("attachment")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_status"))
        batch_op.drop_index(batch_op.f("ix_ticket_site_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_reporter_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_assignee_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_asset_id"))

    op.drop_table("ticket")
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_subsystem_id"))
        batch_op.drop_index(batch_op.f("ix_asset_site_id"))

    op.drop_table("asset")
    with op.batch_alter_table("subsystem", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subsystem_site_id"))

    op.drop_table("subsystem")
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_membership_site_id"))
        batch_op.drop_index(batch_op.f("ix_membership_person_id"))

    op.drop_table("membership")
    with op.batch_alter_table("chat_identity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_identity_person_id"))

    op.drop_table("chat_identity")
    op.drop_table("site")
    op.drop_table("person")
    op.drop_table("conversation")

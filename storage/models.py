"""The tables. Times are UTC and timezone-aware (see storage.types.UTCDateTime)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.enums import Channel, Clock, Role, TicketStatus
from storage.types import enum_type, utc_column

DEFAULT_TIMEZONE = "Asia/Shanghai"

# Named constraints, so that migrations (SQLite batch mode included) can address them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The twelve subsystems of the seed, created for every new site (editable afterwards).
DEFAULT_SUBSYSTEMS: tuple[str, ...] = (
    "信息管理",
    "科技法庭",
    "电子会议",
    "计算机网络",
    "有(无)线通信",
    "办公自动化",
    "安防",
    "一卡通(门禁)",
    "机房",
    "视频会议",
    "信息发布",
    "信息安全",
)


def _enum_field(enum_cls: Any, *, index: bool = False, default: Any = ...) -> Any:
    column: sa.Column[Any] = sa.Column(enum_type(enum_cls), nullable=False, index=index)
    return Field(default=default, sa_column=column)


def _utc_field(*, nullable: bool = True, index: bool = False) -> Any:
    default = None if nullable else ...
    return Field(default=default, sa_column=utc_column(nullable=nullable, index=index))


def _json_field() -> Any:
    return Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))


class Site(SQLModel, table=True):
    """A client organisation served by the vendor; every other row belongs to one."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    slug: str = Field(max_length=40, unique=True)
    timezone: str = Field(default=DEFAULT_TIMEZONE, max_length=64)
    #: TOML text overriding parts of the service policy for this site (None: the default).
    policy_toml: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime = _utc_field(nullable=False)


class Subsystem(SQLModel, table=True):
    """One of a site's information subsystems (信息管理, 机房, ...)."""

    __table_args__ = (sa.UniqueConstraint("site_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    name: str = Field(max_length=60)
    position: int = 0
    active: bool = True


class Asset(SQLModel, table=True):
    """A device or place that can fail: a server, printer, wiring closet, machine room."""

    __table_args__ = (sa.UniqueConstraint("site_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    subsystem_id: int = Field(foreign_key="subsystem.id", index=True)
    code: str = Field(max_length=20)
    name: str = Field(max_length=120)
    location: str = Field(default="", max_length=120)
    model: str = Field(default="", max_length=120)
    serial: str = Field(default="", max_length=60)


class Person(SQLModel, table=True):
    """Someone who talks to the bot; roles come from Membership."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=60)
    phone: str | None = Field(default=None, max_length=20, unique=True)
    language: str = Field(default="zh_CN", max_length=10)
    created_at: datetime = _utc_field(nullable=False)


class Membership(SQLModel, table=True):
    """A person's role at a site."""

    __table_args__ = (sa.UniqueConstraint("person_id", "site_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    role: Role = _enum_field(Role)


class ChatIdentity(SQLModel, table=True):
    """Who a chat account is: (channel, external id) → person."""

    __tablename__ = "chat_identity"

    __table_args__ = (sa.UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = _enum_field(Channel)
    external_id: str = Field(max_length=64)
    person_id: int = Field(foreign_key="person.id", index=True)


class Ticket(SQLModel, table=True):
    """A reported fault and everything promised about it."""

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    #: None only when the classification window ran out before the reporter chose one.
    subsystem_id: int | None = Field(default=None, foreign_key="subsystem.id")
    asset_id: int | None = Field(default=None, foreign_key="asset.id", index=True)
    place: str = Field(default="", max_length=120)
    reporter_id: int = Field(foreign_key="person.id", index=True)
    assignee_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    level: int
    level_confirmed: bool = False
    #: Role (or "system") whose word set the current level; the client's word prevails.
    level_set_by: str = Field(default="system", max_length=16)
    proposed_level: int | None = None
    proposed_by_id: int | None = Field(default=None, foreign_key="person.id")
    status: TicketStatus = _enum_field(TicketStatus, index=True)
    description: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    reported_at: datetime = _utc_field(nullable=False)
    classified_at: datetime | None = _utc_field()
    acknowledged_at: datetime | None = _utc_field()
    arrived_at: datetime | None = _utc_field()
    restored_at: datetime | None = _utc_field()
    resolved_at: datetime | None = _utc_field()
    closed_at: datetime | None = _utc_field()
    cancelled_at: datetime | None = _utc_field()
    #: When the current level's clocks started: the report, or the last automatic rise.
    clocks_started_at: datetime = _utc_field(nullable=False)
    #: A resolve time agreed with the client after a third-party delay.
    resolve_due_override: datetime | None = _utc_field()
    #: A level-1 ticket that missed resolve again: the manager must look at it.
    manager_flagged: bool = False
    #: Bumped by every change; a lost update shows as a missing increment.
    revision: int = 0


class TicketEvent(SQLModel, table=True):
    """One line of a ticket's append-only timeline."""

    __tablename__ = "ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = _utc_field(nullable=False)
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    kind: str = Field(max_length=32)
    old: str | None = Field(default=None, max_length=200)
    new: str | None = Field(default=None, max_length=200)
    detail: dict[str, Any] = _json_field()


class Deadline(SQLModel, table=True):
    """One promised time of a ticket (one row per clock)."""

    __table_args__ = (sa.UniqueConstraint("ticket_id", "clock"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    clock: Clock = _enum_field(Clock)
    due_at: datetime = _utc_field(nullable=False, index=True)
    met_at: datetime | None = _utc_field()
    breached_at: datetime | None = _utc_field()


class Conversation(SQLModel, table=True):
    """The dialog one user has open in one chat on one channel (none: idle)."""

    __table_args__ = (sa.UniqueConstraint("channel", "chat_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = _enum_field(Channel)
    chat_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    #: The open dialog's name ("report", "fault_report", ...); None when idle.
    dialog: str | None = Field(default=None, max_length=24)
    #: The dialog's state (a value of that dialog's state enum).
    state: str = Field(default="idle", max_length=40)
    data: dict[str, Any] = _json_field()
    #: Bumped whenever a dialog starts: a due row of an earlier dialog finds it changed.
    serial: int = 0
    started_at: datetime | None = _utc_field()
    updated_at: datetime = _utc_field(nullable=False)


class Attachment(SQLModel, table=True):
    """A photo, voice note or document kept with a ticket or a wizard in progress."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    kind: str = Field(max_length=16)
    mime_type: str = Field(default="application/octet-stream", max_length=100)
    size: int = 0
    filename: str = Field(default="", max_length=200)
    #: Where the bytes live: a path under the data directory or a channel's file id.
    location: str = Field(max_length=500)
    created_at: datetime = _utc_field(nullable=False)


class InboxUpdate(SQLModel, table=True):
    """A platform update, stored before it is acknowledged and processed after."""

    __tablename__ = "inbox_update"
    __table_args__ = (
        sa.UniqueConstraint("channel", "key"),
        sa.Index(
            "ix_inbox_update_retry",
            "retry_at",
            postgresql_where=sa.text("processed_at IS NULL"),
            sqlite_where=sa.text("processed_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = _enum_field(Channel)
    #: The platform's dedup key: Telegram update_id, WeCom MsgId, a web chat client id.
    key: str = Field(max_length=80)
    payload: dict[str, Any] = _json_field()
    received_at: datetime = _utc_field(nullable=False)
    processed_at: datetime | None = _utc_field(index=True)
    #: While unprocessed: when the sweep takes it up again (its first handling failed or the
    #: process handling it died).
    retry_at: datetime | None = _utc_field()
    attempts: int = 0
    error: str | None = Field(default=None, max_length=500)


class Invite(SQLModel, table=True):
    """A code that lets an unknown chat account join a site in a role."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    role: Role = _enum_field(Role)
    created_at: datetime = _utc_field(nullable=False)
    expires_at: datetime = _utc_field(nullable=False)
    used_by_id: int | None = Field(default=None, foreign_key="person.id")
    used_at: datetime | None = _utc_field()


class FaultReport(SQLModel, table=True):
    """The fault handling report (故障处理报告) of a resolved ticket."""

    __tablename__ = "fault_report"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", unique=True)
    author_id: int = Field(foreign_key="person.id")
    cause: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    fix: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    prevention: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = _utc_field(nullable=False)


class WebchatMessage(SQLModel, table=True):
    """One line of the local web chat, as the page shows it (its own message store)."""

    __tablename__ = "webchat_message"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=64, index=True)
    #: "in": typed or pressed by the user; "out": sent by the bot.
    direction: str = Field(max_length=3)
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    buttons: list[list[dict[str, str]]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    #: Set: this line is the new content of an earlier bubble (the page replaces it in place).
    replaces_id: int | None = None
    created_at: datetime = _utc_field(nullable=False)


class Timer(SQLModel, table=True):
    """Something due at a time: a reminder or the breach of one clock of a ticket, or a
    deadline of an open dialog (the classification window's reminder and end).

    The scheduler claims due rows atomically (fired_at set in the claiming transaction), so
    every row fires once however many processes sweep.
    """

    __table_args__ = (
        sa.Index(
            "ix_timer_pending",
            "due_at",
            postgresql_where=sa.text("fired_at IS NULL"),
            sqlite_where=sa.text("fired_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: A ticket's timer (reminder, breach) ...
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    #: ... or a dialog's (kind "<dialog>.<deadline>"), valid while the dialog run ``serial`` is open.
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", index=True)
    serial: int | None = None
    kind: str = Field(max_length=32)  # "reminder", "breach", or "report.remind", ...
    clock: Clock | None = Field(default=None, sa_column=sa.Column(enum_type(Clock), nullable=True))
    fraction: float | None = None  # of the clock's span, for reminders
    due_at: datetime = _utc_field(nullable=False)
    fired_at: datetime | None = _utc_field()


class OutboxMessage(SQLModel, table=True):
    """A message to send, written in the transaction of the change that causes it.

    The sender claims pending rows with a lease, sends them, and marks each sent, deferred
    (not_before moves: a rate limit, a 429, a network error) or failed (the platform refuses
    for good). Nothing is lost across restarts: an unsent row stays until it is sent.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        sa.Index(
            "ix_outbox_message_pending",
            "not_before",
            postgresql_where=sa.text("sent_at IS NULL AND failed_at IS NULL"),
            sqlite_where=sa.text("sent_at IS NULL AND failed_at IS NULL"),
        ),
        sa.Index(
            "ix_outbox_message_leased",
            "claimed_until",
            postgresql_where=sa.text("sent_at IS NULL AND failed_at IS NULL AND claimed_until IS NOT NULL"),
            sqlite_where=sa.text("sent_at IS NULL AND failed_at IS NULL AND claimed_until IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = _enum_field(Channel)
    chat_id: str = Field(max_length=64)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    #: "text" a new message; "card" a ticket's live card sent anew (rendered from ``card_id``);
    #: "edit" that card changed in place; "answer" the answer to a pressed button.
    kind: str = Field(default="text", max_length=8)
    card_id: int | None = Field(default=None, foreign_key="ticket_card.id")
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    buttons: list[list[dict[str, str]]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    #: An answer's platform token: the pressed button's callback query (Telegram) or the
    #: pressed card's response code (WeCom).
    replaces: str | None = Field(default=None, max_length=128)
    created_at: datetime = _utc_field(nullable=False)
    not_before: datetime = _utc_field(nullable=False)
    claimed_until: datetime | None = _utc_field()
    sent_at: datetime | None = _utc_field()
    failed_at: datetime | None = _utc_field()
    attempts: int = 0
    error: str | None = Field(default=None, max_length=500)
    #: How many queued messages this one carries (a digest merges several).
    merged: int = 1


class TicketCard(SQLModel, table=True):
    """What one chat account of a person sees of a ticket: the card, kept current in place.

    A ticket has one live card per person and account. ``text`` and ``buttons`` are what it
    shows now (rendered for that person); ``handle`` is the platform's reference to the sent
    message (Telegram message id, WeCom task id, web chat line id) once it went out — several
    cards sent merged in one digest share it — and ``token`` a one-time right to change it
    (WeCom's response code, valid 72 h). A superseded card (``live`` False) has lost its buttons.
    """

    __tablename__ = "ticket_card"
    __table_args__ = (sa.Index("ix_ticket_card_live", "ticket_id", "channel", "chat_id", "live"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    person_id: int = Field(foreign_key="person.id")
    channel: Channel = _enum_field(Channel)
    chat_id: str = Field(max_length=64)
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    buttons: list[list[dict[str, str]]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    live: bool = True
    handle: str | None = Field(default=None, max_length=128)
    token: str | None = Field(default=None, max_length=128)
    token_at: datetime | None = _utc_field()
    created_at: datetime = _utc_field(nullable=False)
    updated_at: datetime = _utc_field(nullable=False)


class CronRun(SQLModel, table=True):
    """A periodic job's run (e.g. "overview:3:2026-12-02"): the first process to add it sends."""

    __tablename__ = "cron_run"

    key: str = Field(primary_key=True, max_length=80)
    ran_at: datetime = _utc_field(nullable=False)

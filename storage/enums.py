"""The fixed vocabularies stored in the tables."""

from enum import StrEnum


class Role(StrEnum):
    """What a person is at one site (a person may hold several roles at several sites)."""

    REPORTER = "reporter"
    ENGINEER = "engineer"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"


class TicketStatus(StrEnum):
    """The life of a ticket; see handlers/tickets/machine.py for the transitions."""

    REPORTED = "reported"
    CLASSIFIED = "classified"
    ACKNOWLEDGED = "acknowledged"
    ON_SITE = "on_site"
    RESTORED = "restored"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Clock(StrEnum):
    """The three promised times of seed section 2(4)."""

    RESPONSE = "response"
    RESTORE = "restore"
    RESOLVE = "resolve"


class Channel(StrEnum):
    """Chat platforms a person can be reached on."""

    TELEGRAM = "telegram"
    WECOM = "wecom"
    WEBCHAT = "webchat"

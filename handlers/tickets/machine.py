"""Which step may follow which, and who may take it: the ticket state machine as data.

```mermaid
stateDiagram-v2
    [*] --> reported
    reported --> classified: classify (reporter, supervisor, system)
    classified --> acknowledged: acknowledge (engineer)
    acknowledged --> on_site: arrive (engineer)
    acknowledged --> restored: restore (engineer, remote fix)
    on_site --> restored: restore (engineer)
    acknowledged --> resolved: resolve (engineer)
    on_site --> resolved: resolve (engineer)
    restored --> resolved: resolve (engineer)
    resolved --> closed: close (reporter, supervisor)
    reported --> cancelled: cancel (reporter, supervisor)
    classified --> cancelled
    acknowledged --> cancelled
```
Level changes, proposals, hand-overs, delays, notes and the automatic rise keep the status.
"Reporter" in a rule means the ticket's own reporter; the other roles are site roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from storage.enums import Role, TicketStatus
from storage.repositories.tickets import OPEN_STATUSES

S = TicketStatus


class Action(StrEnum):
    """Everything that can be done to a ticket."""

    CLASSIFY = "classify"
    ACKNOWLEDGE = "acknowledge"
    ARRIVE = "arrive"
    RESTORE = "restore"
    RESOLVE = "resolve"
    CLOSE = "close"
    CANCEL = "cancel"
    SET_LEVEL = "set_level"
    PROPOSE_LEVEL = "propose_level"
    ACCEPT_LEVEL = "accept_level"
    REJECT_LEVEL = "reject_level"
    ASSIGN = "assign"
    DELAY = "delay"
    NOTE = "note"
    RISE = "rise"


SYSTEM = "system"  # the service itself: the classification window's end, the automatic rise
REPORTER = "reporter"  # the ticket's own reporter


@dataclass(frozen=True)
class Rule:
    """From which statuses an action may start, where it leads and who may take it."""

    sources: frozenset[TicketStatus]
    target: TicketStatus | None
    actors: frozenset[str]


def _rule(
    sources: set[TicketStatus] | frozenset[TicketStatus], target: TicketStatus | None, *actors: str
) -> Rule:
    return Rule(frozenset(sources), target, frozenset(actors))


_WORKING = {S.ACKNOWLEDGED, S.ON_SITE}
_LIVE = OPEN_STATUSES | {S.RESOLVED}
_E, _SUP, _MGR = Role.ENGINEER.value, Role.SUPERVISOR.value, Role.MANAGER.value

RULES: dict[Action, Rule] = {
    Action.CLASSIFY: _rule({S.REPORTED}, S.CLASSIFIED, REPORTER, _SUP, SYSTEM),
    Action.ACKNOWLEDGE: _rule({S.CLASSIFIED}, S.ACKNOWLEDGED, _E),
    Action.ARRIVE: _rule({S.ACKNOWLEDGED}, S.ON_SITE, _E),
    Action.RESTORE: _rule(_WORKING, S.RESTORED, _E),
    Action.RESOLVE: _rule(_WORKING | {S.RESTORED}, S.RESOLVED, _E),
    Action.CLOSE: _rule({S.RESOLVED}, S.CLOSED, REPORTER, _SUP),
    Action.CANCEL: _rule({S.REPORTED, S.CLASSIFIED, S.ACKNOWLEDGED}, S.CANCELLED, REPORTER, _SUP),
    Action.SET_LEVEL: _rule(OPEN_STATUSES, None, REPORTER, _SUP),
    Action.PROPOSE_LEVEL: _rule(OPEN_STATUSES, None, _E),
    Action.ACCEPT_LEVEL: _rule(OPEN_STATUSES, None, REPORTER, _SUP),
    Action.REJECT_LEVEL: _rule(OPEN_STATUSES, None, REPORTER, _SUP),
    Action.ASSIGN: _rule(OPEN_STATUSES, None, _E, _SUP, _MGR),
    Action.DELAY: _rule(OPEN_STATUSES - {S.REPORTED}, None, _SUP),
    Action.NOTE: _rule(_LIVE, None, REPORTER, _E, _SUP, _MGR),
    Action.RISE: _rule(OPEN_STATUSES, None, SYSTEM),
}

#: Who settles a level, weakest first: the client's word (reporter, then supervisor)
#: prevails over the engineer's proposal and over the system's provisional level.
LEVEL_AUTHORITY = {SYSTEM: 0, REPORTER: 1, _SUP: 2}


class TicketRuleError(Exception):
    """A refused request. ``rule`` names the rule; the message says it in plain words."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"[{rule}] {message}")
        self.rule = rule
        self.message = message


class IllegalTransition(TicketRuleError):
    """The ticket's status does not allow the action."""


class Forbidden(TicketRuleError):
    """The actor may not take the action on this ticket."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a person with their roles at the ticket's site, or the system."""

    person_id: int | None
    roles: frozenset[Role]
    name: str = ""

    @property
    def is_system(self) -> bool:
        """True for the service itself."""
        return self.person_id is None

    def capacities(self, reporter_id: int) -> frozenset[str]:
        """The rule actors this actor counts as for a ticket reported by ``reporter_id``."""
        if self.is_system:
            return frozenset({SYSTEM})
        found = {role.value for role in self.roles if role is not Role.REPORTER}
        if self.roles and self.person_id == reporter_id:
            found.add(REPORTER)
        return frozenset(found)


def system_actor() -> Actor:
    """The service itself."""
    return Actor(None, frozenset(), "system")


def check(action: Action, status: TicketStatus, actor: Actor, reporter_id: int) -> Rule:
    """Refuse ``action`` unless the status allows it and the actor may take it."""
    rule = RULES[action]
    if not actor.is_system and not actor.roles:
        who = actor.name or "this person"
        raise Forbidden(
            "site.member", f"{who} is not a member of the ticket's site and may not '{action.value}'"
        )
    if status not in rule.sources:
        allowed = ", ".join(sorted(s.value for s in rule.sources))
        raise IllegalTransition(
            f"transition.{action.value}",
            f"a ticket that is {status.value} cannot take '{action.value}' (allowed from: {allowed})",
        )
    if not actor.capacities(reporter_id) & rule.actors:
        who = ", ".join(sorted("the ticket's reporter" if a == REPORTER else a for a in rule.actors))
        raise Forbidden(
            f"role.{action.value}",
            f"'{action.value}' may be done by: {who}; {actor.name or 'this actor'} is not one of them",
        )
    return rule


def level_authority(actor: Actor, reporter_id: int) -> str:
    """The strongest capacity in which ``actor`` may settle a ticket's level."""
    capacities = actor.capacities(reporter_id) & LEVEL_AUTHORITY.keys()
    return max(capacities, key=LEVEL_AUTHORITY.__getitem__)


class GuardedTicket(Protocol):
    """What the guards read of a ticket (storage.models.Ticket has all of it)."""

    status: TicketStatus
    reporter_id: int
    assignee_id: int | None
    level_set_by: str
    proposed_level: int | None


def guard(action: Action, ticket: GuardedTicket, actor: Actor) -> None:
    """Refuse ``action`` when a condition beyond status and role does not hold:

    - an answer to a proposed level needs a proposal;
    - settling the level (set, accept) needs a word at least as strong as the one that set it
      (the client prevails; a risen level is the contract's, only the supervisor overrides it),
      and the reporter sets it outright only while it is the service's provisional one;
    - an engineer hands over only a ticket they hold (supervisors and managers dispatch any).
    """
    if action in (Action.ACCEPT_LEVEL, Action.REJECT_LEVEL) and ticket.proposed_level is None:
        raise TicketRuleError("level.no_proposal", "there is no proposed level to answer")
    if action in (Action.SET_LEVEL, Action.ACCEPT_LEVEL) and not actor.is_system:
        capacity = level_authority(actor, ticket.reporter_id)
        current = LEVEL_AUTHORITY.get(ticket.level_set_by, LEVEL_AUTHORITY[_SUP])
        if LEVEL_AUTHORITY[capacity] < current:
            raise Forbidden(
                "level.client_prevails",
                f"the level was set by the {ticket.level_set_by}; only the supervisor can change it now",
            )
        if action is Action.SET_LEVEL and capacity == REPORTER and ticket.level_set_by != SYSTEM:
            raise Forbidden(
                "level.reporter_settled",
                "the reporter has settled the level; a change now comes through a proposal or the supervisor",
            )
    if (
        action is Action.ASSIGN
        and not actor.capacities(ticket.reporter_id) & {_SUP, _MGR}
        and ticket.assignee_id != actor.person_id
    ):
        raise Forbidden("assign.holder", "an engineer hands over only a ticket they hold")


def permitted(action: Action, ticket: GuardedTicket, actor: Actor) -> bool:
    """Whether ``actor`` may take ``action`` on ``ticket`` now (``check`` and ``guard`` pass)."""
    try:
        check(action, TicketStatus(ticket.status), actor, ticket.reporter_id)
        guard(action, ticket, actor)
    except TicketRuleError:
        return False
    return True

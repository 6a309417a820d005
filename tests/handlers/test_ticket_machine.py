"""The ticket state machine as a specification: every action, status and kind of actor.

The expectations are written out by hand from the diagram and the rules in
handlers/tickets/machine.py, so that a change to RULES shows up here as a failing case.
"""

from __future__ import annotations

import pytest

from handlers.tickets.machine import (
    RULES,
    Action,
    Actor,
    Forbidden,
    IllegalTransition,
    check,
    level_authority,
    system_actor,
)
from storage.enums import Role, TicketStatus

S = TicketStatus
A = Action
REPORTER_ID = 1

#: One actor of each kind, as seen on a ticket reported by person REPORTER_ID.
ACTORS: dict[str, Actor] = {
    "own_reporter": Actor(REPORTER_ID, frozenset({Role.REPORTER}), "张三"),
    "other_reporter": Actor(2, frozenset({Role.REPORTER}), "李四"),
    "engineer": Actor(3, frozenset({Role.ENGINEER}), "王工"),
    "supervisor": Actor(4, frozenset({Role.SUPERVISOR}), "赵主管"),
    "manager": Actor(5, frozenset({Role.MANAGER}), "钱经理"),
    "system": system_actor(),
    "stranger": Actor(6, frozenset(), "路人"),
}

OPEN = {S.REPORTED, S.CLASSIFIED, S.ACKNOWLEDGED, S.ON_SITE, S.RESTORED}
CLIENT = {"own_reporter", "supervisor"}


def _exp(
    sources: set[TicketStatus], target: TicketStatus | None, *actors: str
) -> tuple[set[TicketStatus], TicketStatus | None, set[str]]:
    return sources, target, set(actors)


#: action → (statuses it may start from, status it leads to, actor kinds that may take it)
EXPECTED: dict[Action, tuple[set[TicketStatus], TicketStatus | None, set[str]]] = {
    A.CLASSIFY: _exp({S.REPORTED}, S.CLASSIFIED, *CLIENT, "system"),
    A.ACKNOWLEDGE: _exp({S.CLASSIFIED}, S.ACKNOWLEDGED, "engineer"),
    A.ARRIVE: _exp({S.ACKNOWLEDGED}, S.ON_SITE, "engineer"),
    A.RESTORE: _exp({S.ACKNOWLEDGED, S.ON_SITE}, S.RESTORED, "engineer"),
    A.RESOLVE: _exp({S.ACKNOWLEDGED, S.ON_SITE, S.RESTORED}, S.RESOLVED, "engineer"),
    A.CLOSE: _exp({S.RESOLVED}, S.CLOSED, *CLIENT),
    A.CANCEL: _exp({S.REPORTED, S.CLASSIFIED, S.ACKNOWLEDGED}, S.CANCELLED, *CLIENT),
    A.SET_LEVEL: _exp(OPEN, None, *CLIENT),
    A.PROPOSE_LEVEL: _exp(OPEN, None, "engineer"),
    A.ACCEPT_LEVEL: _exp(OPEN, None, *CLIENT),
    A.REJECT_LEVEL: _exp(OPEN, None, *CLIENT),
    A.ASSIGN: _exp(OPEN, None, "engineer", "supervisor", "manager"),
    A.DELAY: _exp(OPEN - {S.REPORTED}, None, "supervisor"),
    A.NOTE: _exp(OPEN | {S.RESOLVED}, None, "own_reporter", "engineer", "supervisor", "manager"),
    A.RISE: _exp(OPEN, None, "system"),
}

MATRIX = [
    pytest.param(action, status, kind, id=f"{action.value}-{status.value}-{kind}")
    for action in Action
    for status in TicketStatus
    for kind in ACTORS
]


def test_the_table_covers_every_action() -> None:
    assert set(EXPECTED) == set(Action) == set(RULES)


@pytest.mark.parametrize(("action", "status", "kind"), MATRIX)
def test_check(action: Action, status: TicketStatus, kind: str) -> None:
    sources, target, actors = EXPECTED[action]
    actor = ACTORS[kind]

    if kind == "stranger":
        with pytest.raises(Forbidden) as refused:
            check(action, status, actor, REPORTER_ID)
        assert refused.value.rule == "site.member"
        assert refused.value.message == f"路人 is not a member of the ticket's site and may not '{action}'"
        return

    if status not in sources:
        with pytest.raises(IllegalTransition) as illegal:
            check(action, status, actor, REPORTER_ID)
        assert illegal.value.rule == f"transition.{action.value}"
        assert f"a ticket that is {status.value} cannot take '{action.value}'" in illegal.value.message
        allowed = ", ".join(sorted(s.value for s in sources))
        assert f"(allowed from: {allowed})" in illegal.value.message
        assert str(illegal.value) == f"[transition.{action.value}] {illegal.value.message}"
        return

    if kind not in actors:
        with pytest.raises(Forbidden) as forbidden:
            check(action, status, actor, REPORTER_ID)
        assert forbidden.value.rule == f"role.{action.value}"
        assert forbidden.value.message.startswith(f"'{action.value}' may be done by: ")
        assert forbidden.value.message.endswith(f"; {actor.name} is not one of them")
        return

    rule = check(action, status, actor, REPORTER_ID)
    assert rule is RULES[action]
    assert rule.target == target


@pytest.mark.parametrize(
    ("action", "who"),
    [
        pytest.param(A.CLASSIFY, "supervisor, system, the ticket's reporter", id="classify"),
        pytest.param(A.ACKNOWLEDGE, "engineer", id="acknowledge"),
        pytest.param(A.ASSIGN, "engineer, manager, supervisor", id="assign"),
        pytest.param(A.NOTE, "engineer, manager, supervisor, the ticket's reporter", id="note"),
    ],
)
def test_a_refusal_names_who_may_act(action: Action, who: str) -> None:
    status = next(iter(EXPECTED[action][0]))
    with pytest.raises(Forbidden) as refused:
        check(action, status, ACTORS["other_reporter"], REPORTER_ID)
    assert refused.value.message == f"'{action.value}' may be done by: {who}; 李四 is not one of them"


def test_a_nameless_stranger_is_still_told_why() -> None:
    with pytest.raises(Forbidden) as refused:
        check(A.NOTE, S.CLASSIFIED, Actor(9, frozenset()), REPORTER_ID)
    assert (
        str(refused.value)
        == "[site.member] this person is not a member of the ticket's site and may not 'note'"
    )


def _actor(person_id: int | None, *roles: Role) -> Actor:
    return Actor(person_id, frozenset(roles))


@pytest.mark.parametrize(
    ("actor", "capacities"),
    [
        pytest.param(ACTORS["own_reporter"], {"reporter"}, id="own-reporter"),
        pytest.param(ACTORS["other_reporter"], set(), id="other-reporter"),
        pytest.param(ACTORS["engineer"], {"engineer"}, id="engineer"),
        pytest.param(ACTORS["supervisor"], {"supervisor"}, id="supervisor"),
        pytest.param(ACTORS["manager"], {"manager"}, id="manager"),
        pytest.param(ACTORS["system"], {"system"}, id="system"),
        pytest.param(ACTORS["stranger"], set(), id="stranger"),
        pytest.param(_actor(REPORTER_ID), set(), id="reporter-who-left-the-site"),
        pytest.param(_actor(REPORTER_ID, Role.ENGINEER), {"engineer", "reporter"}, id="engineer-own-ticket"),
        pytest.param(
            _actor(REPORTER_ID, Role.REPORTER, Role.SUPERVISOR),
            {"supervisor", "reporter"},
            id="supervisor-own-ticket",
        ),
        pytest.param(
            _actor(2, Role.ENGINEER, Role.MANAGER), {"engineer", "manager"}, id="engineer-and-manager"
        ),
    ],
)
def test_capacities(actor: Actor, capacities: set[str]) -> None:
    assert actor.capacities(REPORTER_ID) == frozenset(capacities)


def test_only_the_system_is_the_system() -> None:
    assert system_actor().is_system
    assert system_actor().name == "system"
    assert not any(actor.is_system for kind, actor in ACTORS.items() if kind != "system")


@pytest.mark.parametrize(
    ("actor", "authority"),
    [
        pytest.param(ACTORS["system"], "system", id="system"),
        pytest.param(ACTORS["own_reporter"], "reporter", id="own-reporter"),
        pytest.param(ACTORS["supervisor"], "supervisor", id="supervisor"),
        pytest.param(
            _actor(REPORTER_ID, Role.REPORTER, Role.SUPERVISOR), "supervisor", id="supervisor-own-ticket"
        ),
        pytest.param(_actor(REPORTER_ID, Role.ENGINEER), "reporter", id="engineer-own-ticket"),
    ],
)
def test_level_authority(actor: Actor, authority: str) -> None:
    assert level_authority(actor, REPORTER_ID) == authority

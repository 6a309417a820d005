"""The buttons of a ticket: one codec, and which rule of the ticket machine each button takes.

``buttons_for`` derives what a person is offered from the machine (``permitted``), so a button
is shown exactly when pressing it would be allowed; ticket_buttons.py reads the same codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from handlers.dialogs.buttons import ButtonData
from handlers.messages import Button, Buttons
from handlers.sla.policy import LEVELS
from handlers.texts import text
from handlers.tickets.machine import Action, Actor, permitted
from storage.models import Ticket


class Verb(StrEnum):
    """What a ticket button does."""

    ACK = "ack"
    ARRIVE = "arr"
    RESTORE = "rst"
    RESOLVE = "res"
    CLOSE = "cls"
    ACCEPT = "acc"
    REJECT = "rej"
    PROPOSE = "prop"  # opens the choice of a level to propose
    PROPOSE_LEVEL = "pl"  # arg: the level
    SET_LEVEL = "sl"  # arg: the level
    HAND = "hand"  # opens the choice of an engineer
    HAND_TO = "to"  # arg: the engineer's person id
    CANCEL = "cxl"  # opens the confirmation
    CANCEL_YES = "cxy"


class TicketPress(ButtonData, prefix="t"):
    """A button under a ticket: ``t:<ticket>:<verb>[:<arg>]``."""

    ticket: int
    verb: Verb
    arg: int | None = None


#: verb → the rule it takes (choices check the rule of the step they lead to).
ACTIONS: dict[Verb, Action] = {
    Verb.ACK: Action.ACKNOWLEDGE,
    Verb.ARRIVE: Action.ARRIVE,
    Verb.RESTORE: Action.RESTORE,
    Verb.RESOLVE: Action.RESOLVE,
    Verb.CLOSE: Action.CLOSE,
    Verb.ACCEPT: Action.ACCEPT_LEVEL,
    Verb.REJECT: Action.REJECT_LEVEL,
    Verb.PROPOSE: Action.PROPOSE_LEVEL,
    Verb.PROPOSE_LEVEL: Action.PROPOSE_LEVEL,
    Verb.SET_LEVEL: Action.SET_LEVEL,
    Verb.HAND: Action.ASSIGN,
    Verb.HAND_TO: Action.ASSIGN,
    Verb.CANCEL: Action.CANCEL,
    Verb.CANCEL_YES: Action.CANCEL,
}
#: Verbs that carry an argument.
WITH_ARG = frozenset({Verb.PROPOSE_LEVEL, Verb.SET_LEVEL, Verb.HAND_TO})
#: Actions the chat has no button for (yet): the wizard classifies, the service rises, the
#: CLI and the next issues record delays and notes.
NO_BUTTON = frozenset({Action.CLASSIFY, Action.RISE, Action.DELAY, Action.NOTE})


@dataclass(frozen=True)
class Offer:
    """A button a card may carry: its verb and the catalogue key of its label."""

    verb: Verb
    label: str


#: The rows of a card, in order; each offer shows when its rule permits it.
ROWS: tuple[tuple[Offer, ...], ...] = (
    (Offer(Verb.ACK, "btn.ack"),),
    (
        Offer(Verb.ARRIVE, "btn.arrive"),
        Offer(Verb.RESTORE, "btn.restore"),
        Offer(Verb.RESOLVE, "btn.resolve"),
    ),
    (Offer(Verb.PROPOSE, "btn.propose"), Offer(Verb.HAND, "btn.hand")),
    (Offer(Verb.ACCEPT, "btn.accept"), Offer(Verb.REJECT, "btn.reject")),
    (Offer(Verb.SET_LEVEL, "btn.set_level"),),
    (Offer(Verb.CLOSE, "btn.close"),),
    (Offer(Verb.CANCEL, "btn.cancel_ticket"),),
)


def press(ticket_id: int, verb: Verb, arg: int | None = None) -> str:
    """The code of a ticket button."""
    return TicketPress(ticket_id, verb, arg).pack()


def buttons_for(ticket: Ticket, actor: Actor, lang: str) -> Buttons:
    """The buttons ``actor`` gets under the ticket: every offer whose rule permits it now."""
    assert ticket.id is not None
    ticket_id, level = ticket.id, ticket.level
    rows = []
    for offers in ROWS:
        row: list[Button] = []
        for offer in offers:
            if not permitted(ACTIONS[offer.verb], ticket, actor):
                continue
            if offer.verb is Verb.SET_LEVEL:  # one button per other level
                row += [
                    Button(
                        text(lang, offer.label, level=text(lang, f"level.{n}")),
                        press(ticket_id, Verb.SET_LEVEL, n),
                    )
                    for n in LEVELS
                    if n != level
                ]
            else:
                row.append(Button(text(lang, offer.label), press(ticket_id, offer.verb)))
        if row:
            rows.append(tuple(row))
    return tuple(rows)


def level_choices(ticket_id: int, level: int, lang: str) -> Buttons:
    """The levels an engineer can propose (after 改级别)."""
    return tuple(
        (
            Button(
                text(lang, "btn.propose_level", level=text(lang, f"level.{n}")),
                press(ticket_id, Verb.PROPOSE_LEVEL, n),
            ),
        )
        for n in LEVELS
        if n != level
    )


def engineer_choices(ticket_id: int, engineers: list[tuple[int, str]]) -> Buttons:
    """The engineers a ticket can be handed to (after 转派): (person id, name) each."""
    return tuple((Button(name, press(ticket_id, Verb.HAND_TO, person_id)),) for person_id, name in engineers)


def cancel_choice(ticket_id: int, lang: str) -> Buttons:
    """确认撤销 after 撤销."""
    return ((Button(text(lang, "btn.cancel_yes"), press(ticket_id, Verb.CANCEL_YES)),),)

"""The dialog engine: every multi-step exchange is a table of steps over a state enum.

A ``Dialog`` names its states (an enum), and for each state a ``Step``: what it asks and the
``Edge``s out of it — which input each accepts (a button codec, typed text, a file), where it
may lead, and what it does. Deadlines of an open dialog (a reminder, an expiry) are due rows
(``schedule``) that the scheduler's sweep fires through ``fire``. The Conversation row holds
the dialog's name, state and data, so a restart resumes where it stopped and any process can
take the next message. ``mermaid`` draws the table; a test keeps each dialog's diagram file in
step with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import delete
from sqlmodel import col

from handlers.dialogs.buttons import ButtonData
from handlers.dialogs.context import Context
from storage.due import note_due
from storage.models import Timer
from storage.repositories.conversations import IDLE

S = TypeVar("S", bound=StrEnum)


class Flow(Enum):
    """Where an edge leads besides a state."""

    END = "end"  # the dialog is over
    STAY = "stay"  # same state; the edge has said what it had to say


END, STAY = Flow.END, Flow.STAY


class Input(Enum):
    """What a step may accept besides buttons."""

    TEXT = "text"  # a message with text
    FILE = "file"  # a photo, voice note or document (with or without a caption)


Run = Callable[[Context, Any], Awaitable["StrEnum | Flow"]]


@dataclass(frozen=True)
class Edge(Generic[S]):
    """One way out of a step."""

    accepts: type[ButtonData] | Input
    to: tuple[S | Flow, ...]
    label: str
    #: Does it: gets the context and the input (the decoded button, the text, the file).
    run: Run


@dataclass(frozen=True)
class Step(Generic[S]):
    """A state of a dialog: the question it asks and the answers it takes."""

    ask: Callable[[Context], Awaitable[None]]
    edges: tuple[Edge[S], ...]


@dataclass(frozen=True)
class Deadline(Generic[S]):
    """A due row of an open dialog (scheduled by the dialog, fired by the sweep)."""

    name: str
    label: str
    to: tuple[S | Flow, ...]
    run: Callable[[Context], Awaitable[S | Flow]]


@dataclass(frozen=True)
class Dialog(Generic[S]):
    """A dialog: its states, the step of each, how it starts and its deadlines."""

    name: str
    states: type[S]
    steps: Mapping[S, Step[S]]
    #: (state, what leads there) for each way the dialog starts.
    starts: tuple[tuple[S, str], ...]
    deadlines: tuple[Deadline[S], ...] = ()
    #: The Mermaid file beside the dialog's module (set by ``register``).
    diagram: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        missing = set(self.states) - set(self.steps)
        if missing:
            raise ValueError(f"dialog {self.name}: no step for {sorted(missing)}")

    def deadline(self, name: str) -> Deadline[S]:
        """The deadline called ``name``."""
        return next(d for d in self.deadlines if d.name == name)

    def state(self, value: str) -> S:
        """The state stored as ``value``."""
        return self.states(value)


DIALOGS: dict[str, Dialog[Any]] = {}


def register(dialog: Dialog[S], module_file: str) -> Dialog[S]:
    """Make a dialog known to the router and the sweep (by its name); its diagram is the .md
    file beside ``module_file`` (the dialog's module)."""
    if dialog.name in DIALOGS:
        raise ValueError(f"a dialog called {dialog.name!r} exists already")
    module = Path(module_file)
    object.__setattr__(dialog, "diagram", module.with_name(f"{module.stem}.md"))
    DIALOGS[dialog.name] = dialog
    return dialog


def open_dialog(ctx: Context) -> Dialog[Any] | None:
    """The dialog the conversation is in, if any."""
    name = ctx.conversation.dialog
    return DIALOGS.get(name) if name else None


async def begin(
    ctx: Context, dialog: Dialog[S], state: S, data: Mapping[str, Any], *, ask: bool = True
) -> None:
    """Open ``dialog`` at ``state`` (any dialog open before ends) and ask its question
    (unless ``ask`` is False: the event that opened it is its first answer)."""
    await end(ctx)
    conversation = ctx.conversation
    conversation.dialog, conversation.data = dialog.name, dict(data)
    conversation.serial += 1
    conversation.started_at = ctx.event.at if ctx.event is not None else ctx.clock.now()
    if ask:
        await _enter(ctx, dialog, state)
    else:
        conversation.state = state.value
        ctx.touch()


async def end(ctx: Context) -> None:
    """Close the open dialog (its pending deadlines go with it)."""
    conversation, dialog = ctx.conversation, open_dialog(ctx)
    if conversation.dialog is None and conversation.state == IDLE:
        return
    if dialog is not None and dialog.deadlines and conversation.id is not None:
        await (await ctx.session.connection()).execute(
            delete(Timer).where(col(Timer.conversation_id) == conversation.id, col(Timer.fired_at).is_(None))
        )
    conversation.dialog, conversation.state, conversation.data = None, IDLE, {}
    conversation.started_at = None
    ctx.touch()


def schedule(ctx: Context, dialog: Dialog[Any], name: str, at: datetime) -> None:
    """A due row for deadline ``name`` of the open dialog run."""
    dialog.deadline(name)  # it must exist
    ctx.session.add(
        Timer(
            conversation_id=ctx.conversation.id,
            serial=ctx.conversation.serial,
            kind=f"{dialog.name}.{name}",
            due_at=at,
        )
    )
    note_due(ctx.session, at)


async def handle(ctx: Context) -> bool:
    """Give the event to the open dialog's current step; False when no dialog is open."""
    dialog = open_dialog(ctx)
    event = ctx.event
    if dialog is None or event is None:
        return False
    state = dialog.state(ctx.conversation.state)
    step = dialog.steps[state]
    for edge in step.edges:
        value = _accepted(ctx, edge.accepts)
        if value is not None:
            await _follow(ctx, dialog, edge.to, await edge.run(ctx, value))
            return True
    if event.action:  # a button of another step, or of a dialog that is over
        ctx.notice = ctx.t("stale_button")
    await step.ask(ctx)
    return True


async def fire(ctx: Context, timer: Timer) -> None:
    """Carry out a due deadline, unless the dialog run it belongs to is over."""
    dialog = open_dialog(ctx)
    if dialog is None or timer.serial != ctx.conversation.serial:
        return
    name = timer.kind.removeprefix(f"{dialog.name}.")
    deadline = dialog.deadline(name)
    await _follow(ctx, dialog, deadline.to, await deadline.run(ctx))


async def ask(ctx: Context) -> None:
    """Ask the current step's question again."""
    dialog = open_dialog(ctx)
    if dialog is not None:
        await dialog.steps[dialog.state(ctx.conversation.state)].ask(ctx)


def _accepted(ctx: Context, accepts: type[ButtonData] | Input) -> Any:
    event = ctx.event
    assert event is not None
    if isinstance(accepts, Input):
        if accepts is Input.FILE:
            return event.file
        return event.text if event.text and event.text.strip() else None
    return ctx.button if isinstance(ctx.button, accepts) else None


async def _follow(ctx: Context, dialog: Dialog[Any], allowed: Sequence[Any], target: Any) -> None:
    if target not in allowed:
        raise RuntimeError(f"dialog {dialog.name}: {target!r} is not among the declared targets {allowed}")
    await _enter(ctx, dialog, target)


async def _enter(ctx: Context, dialog: Dialog[Any], target: Any) -> None:
    if target is END:
        await end(ctx)
    elif target is not STAY:
        ctx.conversation.state = target.value
        ctx.touch()
        await dialog.steps[target].ask(ctx)


def mermaid(dialog: Dialog[Any]) -> str:
    """The dialog's table as a Mermaid state diagram (deadlines and /cancel in a note)."""
    lines = ["stateDiagram-v2"]
    for state, label in dialog.starts:
        lines.append(f"    [*] --> {state.value}: {label}")
    for state in dialog.states:
        for edge in dialog.steps[state].edges:
            accepts = edge.accepts.value if isinstance(edge.accepts, Input) else edge.accepts.__name__
            for target in edge.to:
                if target is not STAY:
                    lines.append(f"    {state.value} --> {_node(target)}: {edge.label} [{accepts}]")
    notes = [f"⏰ {d.name}: {d.label} → {', '.join(_node(t) for t in d.to)}" for d in dialog.deadlines]
    notes.append("/cancel (取消) at any step ends the dialog")
    lines.append(f"    note right of {dialog.starts[0][0].value}")
    lines += [f"        {note}" for note in notes]
    lines.append("    end note")
    return "\n".join(lines) + "\n"


def _node(target: Any) -> str:
    if target is END:
        return "[*]"
    return "(stays)" if target is STAY else str(target.value)

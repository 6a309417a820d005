"""Every dialog's table: its diagram file is current, and its table is whole."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.conversation.deadlines import DIALOGS
from handlers.dialogs.diagrams import document
from handlers.dialogs.engine import END, STAY, Dialog


@pytest.mark.parametrize("dialog", DIALOGS, ids=lambda d: d.name)
def test_the_diagram_beside_the_dialog_is_its_table(dialog: Dialog[Any]) -> None:
    assert dialog.diagram is not None and dialog.diagram.exists(), "run python -m handlers.dialogs.diagrams"
    assert dialog.diagram.read_text(encoding="utf-8") == document(dialog), (
        f"{dialog.diagram.name} is out of date: run python -m handlers.dialogs.diagrams"
    )


@pytest.mark.parametrize("dialog", DIALOGS, ids=lambda d: d.name)
def test_every_state_can_be_reached_and_left(dialog: Dialog[Any]) -> None:
    reached = {state for state, _ in dialog.starts}
    ends = False
    for state in list(dialog.steps):
        for edge in dialog.steps[state].edges:
            for target in edge.to:
                assert target in (END, STAY) or target in dialog.states, (state, target)
                ends = ends or target is END
                if target not in (END, STAY):
                    reached.add(target)
    states: set[Any] = set(dialog.steps)
    assert reached == states, f"unreachable: {states - reached}"
    assert ends, f"{dialog.name} never ends"

"""Each dialog's Mermaid diagram, written beside its module from its table.

    python -m handlers.dialogs.diagrams     # rewrite every diagram file

A test compares every file with what this writes, so a table and its diagram cannot drift.
"""

from __future__ import annotations

from typing import Any

from handlers.conversation import deadlines  # noqa: F401  (registers every dialog)
from handlers.dialogs.engine import DIALOGS, Dialog, mermaid


def document(dialog: Dialog[Any]) -> str:
    """The diagram file of ``dialog``."""
    return (
        f"# The {dialog.name} dialog\n\n"
        "Generated from the dialog's table by `python -m handlers.dialogs.diagrams`; "
        "a test checks that it is current.\n\n"
        f"```mermaid\n{mermaid(dialog)}```\n"
    )


def main() -> None:
    """Write every dialog's diagram file."""
    for dialog in DIALOGS.values():
        assert dialog.diagram is not None
        dialog.diagram.write_text(document(dialog), encoding="utf-8")
        print(dialog.diagram)


if __name__ == "__main__":
    main()

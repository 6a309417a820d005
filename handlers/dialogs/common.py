"""Buttons and layout many dialogs share: yes / no, confirm / cancel, a grid of choices."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.dialogs.buttons import ButtonData
from handlers.dialogs.context import Context
from handlers.messages import Button, Buttons

Ask = Callable[[Context], Awaitable[None]]

YES_WORDS = frozenset({"是", "是的", "y", "yes", "对", "有"})
NO_WORDS = frozenset({"否", "不是", "n", "no", "没有", "无"})


class YesNo(ButtonData, prefix="yn"):
    """是 / 否."""

    yes: bool


class Confirm(ButtonData, prefix="ok"):
    """确认 / 取消."""

    ok: bool


def grid(buttons: list[Button], width: int = 2) -> Buttons:
    """Buttons in rows of ``width``."""
    return tuple(tuple(buttons[i : i + width]) for i in range(0, len(buttons), width))


def yes_no_word(typed: str) -> bool | None:
    """A typed yes or no ("是", "no", ...); None for anything else."""
    word = typed.strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


def question(key: str) -> Ask:
    """A step's question that is one catalogue text."""

    async def ask(ctx: Context) -> None:
        ctx.say(ctx.t(key))

    return ask


def yes_no_question(key: str) -> Ask:
    """A step's question with 是 / 否 buttons."""

    async def ask(ctx: Context) -> None:
        choices = (Button(ctx.t("btn.yes"), YesNo(True).pack()), Button(ctx.t("btn.no"), YesNo(False).pack()))
        ctx.say(ctx.t(key), (choices,))

    return ask

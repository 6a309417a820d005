"""Button codes as typed codecs: the code that builds a button and the code that reads it share one.

A codec is a frozen dataclass registered under a short prefix::

    class TicketPress(ButtonData, prefix="t"):
        ticket: int
        verb: Verb
        arg: int | None = None

    TicketPress(12, Verb.SET_LEVEL, 1).pack() == "t:12:sl:1"
    decode("t:12:sl:1") == TicketPress(12, Verb.SET_LEVEL, 1)

Fields are ints (0 … 2**31-1, plain ASCII digits, no leading zeros), bools ("1"/"0"), StrEnums
(by value) or ``int | None`` (empty for None). ``decode`` never raises: anything that is not
exactly what ``pack`` writes (tampered, truncated, too long, another prefix) is None, so a forged
press never reaches a handler unparsed. ``pack`` refuses a code over Telegram's 64 bytes.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Self

from handlers.messages import MAX_ACTION_BYTES

SEPARATOR = ":"
MAX_INT = 2**31 - 1
_INT = re.compile(r"0|[1-9][0-9]{0,9}")


@typing.dataclass_transform(frozen_default=True)
class ButtonData:
    """Base of every button codec: a subclass names its prefix and becomes a frozen dataclass."""

    prefix: ClassVar[str]
    _fields: ClassVar[tuple[tuple[str, Callable[[str], Any], Callable[[Any], str]], ...]]

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if SEPARATOR in prefix or not prefix:
            raise ValueError(f"bad prefix {prefix!r}")
        if prefix in _CODECS:
            raise ValueError(f"button prefix {prefix!r} is taken by {_CODECS[prefix].__name__}")
        dataclasses.dataclass(frozen=True)(cls)
        hints = typing.get_type_hints(cls)
        cls.prefix = prefix
        cls._fields = tuple(
            (field.name, *_converters(hints[field.name], f"{cls.__name__}.{field.name}"))
            for field in dataclasses.fields(cls)  # type: ignore[arg-type]
        )
        _CODECS[prefix] = cls

    def pack(self) -> str:
        """The code to put on a button (trailing empty optional fields left out)."""
        parts = [self.prefix, *(write(getattr(self, name)) for name, _read, write in self._fields)]
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
        code = SEPARATOR.join(parts)
        if len(code.encode()) > MAX_ACTION_BYTES:
            raise ValueError(f"button code over {MAX_ACTION_BYTES} bytes: {code!r}")
        return code

    @classmethod
    def unpack(cls, parts: list[str]) -> Self | None:
        """The button from the parts after the prefix; None unless they are exactly what
        ``pack`` writes (a missing trailing part is an empty optional field)."""
        if len(parts) > len(cls._fields):
            return None
        parts = parts + [""] * (len(cls._fields) - len(parts))
        values = {}
        for part, (name, read, _write) in zip(parts, cls._fields, strict=True):
            try:
                values[name] = read(part)
            except ValueError:
                return None
        return cls(**values)


_CODECS: dict[str, type[ButtonData]] = {}


def decode(action: str | None) -> ButtonData | None:
    """The button behind a pressed code, or None for anything ``pack`` would not have written."""
    if not action or len(action.encode(errors="replace")) > MAX_ACTION_BYTES:
        return None
    prefix, *parts = action.split(SEPARATOR)
    found = _CODECS.get(prefix)
    button = None if found is None else found.unpack(parts)
    return button if button is not None and button.pack() == action else None  # one spelling only


def _read_int(text: str) -> int:
    if not _INT.fullmatch(text) or int(text) > MAX_INT:
        raise ValueError(text)
    return int(text)


def _write_int(value: int) -> str:
    if not 0 <= value <= MAX_INT:
        raise ValueError(f"{value} does not fit a button code")
    return str(value)


def _read_bool(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(text)
    return text == "1"


def _converters(hint: Any, where: str) -> tuple[Callable[[str], Any], Callable[[Any], str]]:
    """(read, write) for one field type."""
    if hint is bool:
        return _read_bool, lambda value: "1" if value else "0"
    if hint is int:
        return _read_int, _write_int
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        enum = hint
        for member in enum:
            if SEPARATOR in member.value or not member.value:
                raise TypeError(f"{where}: enum value {member.value!r} cannot go in a button code")
        return enum, lambda value: enum(value).value
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and set(args) == {int, type(None)}:
        return (
            lambda text: None if text == "" else _read_int(text),
            lambda value: "" if value is None else _write_int(value),
        )
    raise TypeError(f"{where}: a button field is int, bool, a StrEnum or int | None, not {hint!r}")

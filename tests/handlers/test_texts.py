"""The text catalogue: every entry in both languages, with the same placeholders."""

from __future__ import annotations

import string

import pytest

from handlers.texts import CATALOGUE, EN, LANGUAGES, ZH, language_of, text


def placeholders(template: str) -> set[str]:
    """The {names} a template fills."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_entry_has_both_languages_with_the_same_placeholders(key: str) -> None:
    entry = CATALOGUE[key]
    assert set(entry) == set(LANGUAGES), key
    assert all(entry[lang].strip() for lang in LANGUAGES)
    assert placeholders(entry[ZH]) == placeholders(entry[EN])


def test_buttons_fit_a_phone() -> None:
    """Button labels stay short (a phone shows two per row)."""
    for key, entry in CATALOGUE.items():
        if key.startswith("btn."):
            assert all(len(label.format(level="三级")) <= 16 for label in entry.values()), key


def test_language_choice() -> None:
    assert language_of("en-GB") == EN and language_of("zh-hans") == ZH and language_of(None) == ZH
    assert text("fr", "cancelled") == "已取消。"  # unknown languages read Chinese
    assert text(EN, "too_long", limit=5) == "Too long (at most 5 characters)."

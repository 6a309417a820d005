"""Loading and validating the SLA policy (handlers/sla/policy.py), and site overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from handlers.sla.policy import (
    DEFAULT_POLICY_PATH,
    LevelPolicy,
    PolicyBook,
    PolicyError,
    format_duration,
    load_policy,
    parse_duration,
    parse_policy,
)

M, H = timedelta(minutes=1), timedelta(hours=1)
DEFAULT_TEXT = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
LEVEL2_SECTION = '[levels.2]\nresponse = "30m"\nrestore = "8h"\nresolve = "24h"\n'
SITE_OVERRIDE = '[levels.1]\nresponse = "5m"\n'


def edited(old: str, new: str) -> str:
    """The default policy text with ``old`` replaced by ``new`` (which must be there)."""
    assert old in DEFAULT_TEXT, f"{old!r} is no longer in the default policy"
    return DEFAULT_TEXT.replace(old, new, 1)


# -- the default file ------------------------------------------------------------------------


def test_default_policy_has_the_seed_table() -> None:
    policy = load_policy()
    assert policy.source == str(DEFAULT_POLICY_PATH)
    assert dict(policy.levels) == {
        1: LevelPolicy(response=10 * M, restore=4 * H, resolve=12 * H, resolve_from="report"),
        2: LevelPolicy(response=30 * M, restore=8 * H, resolve=24 * H, resolve_from="report"),
        3: LevelPolicy(response=60 * M, restore=None, resolve=48 * H, resolve_from="arrival"),
    }
    assert policy.level(3).restore is None
    assert policy.classification_window == 10 * M
    assert policy.default_level == 2
    assert policy.reminders == (0.5, 0.8)


def test_policy_file_in_tmp_path_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(edited('response = "10m"', 'response = "15m"'), encoding="utf-8")
    policy = load_policy(path)
    assert policy.source == str(path)
    assert policy.level(1).response == 15 * M
    assert policy.level(2) == load_policy().level(2)


# -- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text, "src", "k") == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("10", "bad duration", id="no-unit"),
        pytest.param("10x", "bad duration", id="unknown-unit"),
        pytest.param("-5m", "bad duration", id="negative"),
        pytest.param("0m", "greater than zero", id="zero"),
        pytest.param(10, "bad duration", id="int"),
        pytest.param("1.5h", "bad duration", id="fraction"),
        pytest.param("", "bad duration", id="empty"),
        pytest.param(None, "bad duration", id="none"),
    ],
)
def test_parse_duration_refuses(value: object, reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_duration(value, "src.toml", "levels.1.response")
    assert (caught.value.source, caught.value.key) == ("src.toml", "levels.1.response")
    assert reason in caught.value.reason
    assert str(caught.value).startswith("src.toml: levels.1.response: ")


@pytest.mark.parametrize("text", ["30s", "10m", "90m", "4h", "36h"])
def test_format_duration_round_trips_text(text: str) -> None:
    assert format_duration(parse_duration(text, "src", "k")) == text


@pytest.mark.parametrize(
    "delta",
    [timedelta(seconds=90), 60 * M, 61 * M, 2 * H, 12 * H, 48 * H, timedelta(days=7), 101 * H],
    ids=str,
)
def test_format_duration_round_trips_value(delta: timedelta) -> None:
    """Whatever the spelling, it parses back to the same duration."""
    text = format_duration(delta)
    assert text[-1] in "smhd"
    assert parse_duration(text, "src", "k") == delta


# -- malformed policies ----------------------------------------------------------------------

MALFORMED = [
    pytest.param(DEFAULT_TEXT + "\n[extra]\nx = 1\n", "extra", "unknown key", id="unknown-top-key"),
    pytest.param(
        edited('response = "10m"', 'respond = "10m"'), "levels.1.respond", "unknown key", id="level-key"
    ),
    pytest.param(
        DEFAULT_TEXT + '\n[levels.4]\nresponse = "1h"\nresolve = "2h"\n',
        "levels.4",
        "unknown level",
        id="unknown-level",
    ),
    pytest.param(edited(LEVEL2_SECTION, ""), "levels.2", "missing level", id="missing-level"),
    pytest.param(edited('response = "60m"\n', ""), "levels.3.response", "missing", id="missing-response"),
    pytest.param(edited('resolve = "48h"\n', ""), "levels.3.resolve", "missing", id="missing-resolve"),
    pytest.param(
        edited('restore = "4h"', 'restore = "4 hours"'), "levels.1.restore", "bad duration", id="bad-dur"
    ),
    pytest.param(edited('resolve = "24h"', "resolve = 24"), "levels.2.resolve", "bad duration", id="int-dur"),
    pytest.param(
        edited('window = "10m"', 'window = "0m"'),
        "classification.window",
        "greater than zero",
        id="zero-window",
    ),
    pytest.param(
        edited('resolve_from = "arrival"', 'resolve_from = "site"'),
        "levels.3.resolve_from",
        'must be "report" or "arrival"',
        id="resolve-from",
    ),
    pytest.param(
        edited('restore = "8h"', 'restore = "25h"'),
        "levels.2.restore",
        "longer than resolve",
        id="restore-long",
    ),
    pytest.param(
        edited('response = "30m"', 'response = "25h"'),
        "levels.2.response",
        "longer than resolve",
        id="resp-long",
    ),
    pytest.param(
        edited("default_level = 2", "default_level = 0"),
        "classification.default_level",
        "1, 2 or 3",
        id="dl-0",
    ),
    pytest.param(
        edited("default_level = 2", 'default_level = "2"'),
        "classification.default_level",
        "1, 2 or 3",
        id="dl-str",
    ),
    pytest.param(
        edited("default_level = 2", "default_level = true"),
        "classification.default_level",
        "1, 2 or 3",
        id="dl-bool",
    ),
    pytest.param(
        edited("at = [0.5, 0.8]", "at = 0.5"), "reminders.at", "must be a list", id="reminders-scalar"
    ),
    pytest.param(
        edited("at = [0.5, 0.8]", "at = [0.5, 1.5]"), "reminders.at", "1.5 is not a fraction", id="rem-1.5"
    ),
    pytest.param(
        edited("at = [0.5, 0.8]", "at = [0.8, 0.5]"), "reminders.at", "increasing", id="rem-decreasing"
    ),
    pytest.param(
        edited("at = [0.5, 0.8]", "at = [0.5, 0.5]"), "reminders.at", "increasing", id="rem-repeated"
    ),
    pytest.param(
        edited('response = "10m"', 'response = "10m'), "(file)", "not valid TOML", id="invalid-toml"
    ),
]


@pytest.mark.parametrize(("text", "key", "reason"), MALFORMED)
def test_malformed_policy_file_is_refused(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = tmp_path / "bad_policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    error = caught.value
    assert (error.source, error.key) == (str(path), key)
    assert reason in error.reason
    assert str(error) == f"{path}: {key}: {error.reason}"


def test_missing_policy_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert (caught.value.source, caught.value.key) == (str(path), "(file)")
    assert "cannot be read" in caught.value.reason
    assert str(path) in str(caught.value)


def test_partial_policy_without_base_is_refused() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(SITE_OVERRIDE, "partial.toml")
    assert (caught.value.source, caught.value.key) == ("partial.toml", "levels.1.resolve")


# -- site overrides --------------------------------------------------------------------------


def test_site_override_changes_only_that_value() -> None:
    base = load_policy()
    policy = PolicyBook(base).for_site("north", SITE_OVERRIDE)
    assert policy.source == "site north policy"
    assert policy.level(1) == replace(base.level(1), response=5 * M)
    assert (policy.level(2), policy.level(3)) == (base.level(2), base.level(3))
    assert (policy.classification_window, policy.default_level, policy.reminders) == (10 * M, 2, (0.5, 0.8))
    assert base.level(1).response == 10 * M  # the base is untouched
    assert base.raw["levels"]["1"]["response"] == "10m"


def test_parse_policy_with_base_merges() -> None:
    base = load_policy()
    policy = parse_policy("[classification]\ndefault_level = 3\n", "site x policy", base=base)
    assert policy.default_level == 3
    assert policy.classification_window == 10 * M
    assert dict(policy.levels) == dict(base.levels)


@pytest.mark.parametrize("override", [None, ""])
def test_no_override_returns_the_base_itself(override: str | None) -> None:
    book = PolicyBook(load_policy())
    assert book.for_site("north", override) is book.base


@pytest.mark.parametrize(
    ("override", "key", "reason"),
    [
        pytest.param(
            '[levels.1]\nresponse = "5 minutes"\n', "levels.1.response", "bad duration", id="duration"
        ),
        pytest.param('colour = "red"\n', "colour", "unknown key", id="unknown-top-key"),
        pytest.param(
            '[levels.1]\nrespond = "5m"\n', "levels.1.respond", "unknown key", id="unknown-level-key"
        ),
        pytest.param(
            '[levels.1]\nrestore = "13h"\n', "levels.1.restore", "longer than resolve", id="merged-check"
        ),
        pytest.param('[levels.1\nresponse = "5m"\n', "(file)", "not valid TOML", id="invalid-toml"),
    ],
)
def test_malformed_site_override_is_refused(override: str, key: str, reason: str) -> None:
    book = PolicyBook(load_policy())
    with pytest.raises(PolicyError) as caught:
        book.for_site("north", override)
    assert (caught.value.source, caught.value.key) == ("site north policy", key)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"site north policy: {key}: ")


def test_site_override_is_cached_per_site_and_text() -> None:
    book = PolicyBook(load_policy())
    first = book.for_site("north", SITE_OVERRIDE)
    assert book.for_site("north", SITE_OVERRIDE) is first
    other = book.for_site("south", SITE_OVERRIDE)
    assert other is not first
    assert other.source == "site south policy"
    assert other.level(1).response == 5 * M

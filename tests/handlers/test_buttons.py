"""Button codes: one codec packs and unpacks each kind; anything else decodes to nothing."""

from __future__ import annotations

import pytest

from handlers.conversation.report_wizard import PickAsset, PickSite, PickSubsystem
from handlers.conversation.ticket_press import TicketPress, Verb
from handlers.dialogs.buttons import MAX_INT, ButtonData, decode
from handlers.dialogs.common import Confirm, YesNo

EXAMPLES: list[ButtonData] = [
    TicketPress(12, Verb.ACK),
    TicketPress(12, Verb.SET_LEVEL, 1),
    TicketPress(MAX_INT, Verb.HAND_TO, MAX_INT),
    TicketPress(0, Verb.CANCEL_YES),
    PickSite(3),
    PickSubsystem(41),
    PickAsset(7),
    YesNo(True),
    YesNo(False),
    Confirm(True),
]


@pytest.mark.parametrize("button", EXAMPLES, ids=repr)
def test_every_code_decodes_to_the_button_that_packed_it(button: ButtonData) -> None:
    code = button.pack()
    assert len(code.encode()) <= 64
    assert decode(code) == button


def test_the_codes_are_short_and_plain() -> None:
    assert TicketPress(12, Verb.ACK).pack() == "t:12:ack"
    assert TicketPress(12, Verb.SET_LEVEL, 1).pack() == "t:12:sl:1"
    assert YesNo(True).pack() == "yn:1"


@pytest.mark.parametrize(
    "forged",
    [
        "t:²:ack",  # a digit Python's isdigit() accepts but int() does not
        "t:99999999999999999999:ack",  # no such ticket number can exist
        "t:2147483648:ack",  # one past the largest
        "t:" + "1" * 200,  # a 200-byte code
        "t:1:ack" + "x" * 60,
        "w:sub:abc",  # the old wizard format
        "w:sub:",
        "t:12:ack:",  # not how pack writes it
        "t:012:ack",  # nor this
        "t:-1:ack",
        "t:12:nope",  # no such verb
        "t:12:sl:1:2",  # a field too many
        "t:12",  # a field missing
        "rs:",
        "yn:2",
        "yn:true",
        "",
        ":",
        "t: 12:ack",
        "t:１２:ack",  # full-width digits
    ],
)
def test_a_forged_code_decodes_to_nothing(forged: str) -> None:
    assert decode(forged) is None


def test_a_code_over_64_bytes_cannot_be_made() -> None:
    class Long(ButtonData, prefix="long-prefix-for-a-test-codec-that-is-far-too-long-to-fit-anywhere"):
        n: int

    with pytest.raises(ValueError, match="64 bytes"):
        Long(1).pack()


def test_a_prefix_is_taken_once() -> None:
    with pytest.raises(ValueError, match="taken"):

        class Again(ButtonData, prefix="t"):
            n: int

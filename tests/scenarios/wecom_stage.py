"""The WeCom part of the stage: a driver that plays people in WeCom.

People type and press through the fake callback sender (encrypted and signed with wechatpy,
as WeCom's servers do); what they receive is what the fake WeCom API delivered to them.
"""

from __future__ import annotations

import itertools

from bot.service import Service
from tests.fakes.wecom_api import Delivered, FakeWecomApi
from tests.fakes.wecom_callback import WecomCallbacks
from tests.scenarios.stage import Actor, Seen


def seen_of(delivered: Delivered) -> Seen:
    """A delivered message as its member sees it (a pressed card shows no buttons any more)."""
    if delivered.replaced is not None:
        return Seen(delivered.text)
    return Seen(
        delivered.text,
        tuple(label for label, _ in delivered.buttons),
        tuple(key for _, key in delivered.buttons),
    )


class WecomDriver:
    """Plays people inside the client's WeCom app."""

    name = "wecom"

    def __init__(self, api: FakeWecomApi, callbacks: WecomCallbacks, service: Service) -> None:
        self.api, self.callbacks, self.service = api, callbacks, service
        self._ids = itertools.count(7_000_000_000_000_000_001)

    async def meet(self, who: Actor) -> None:
        """A new member of the corp opens the app."""
        self.api.user(who.webchat_user, who.name)

    async def send(self, who: Actor, text: str) -> None:
        await self.deliver(self.callbacks.text_xml(who.webchat_user, text, str(next(self._ids))))

    async def press(self, who: Actor, label: str) -> None:
        """Tap the newest button with ``label``; failing a live one, a button of a card already
        updated (a tap that crossed the update on its way, as a stale Telegram button is)."""
        cards = list(reversed(self.api.messages_to(who.webchat_user)))
        for live in (True, False):
            for card in cards:
                if (card.replaced is None) == live:
                    for text, key in card.buttons:
                        if text == label:
                            await self._press(who, card, key, strict=live)
                            return
        raise AssertionError(f"{who.key} has no button {label!r}: {await self.seen(who)}")

    async def press_action(self, who: Actor, action: str) -> None:
        await self._press(who, self.api.messages_to(who.webchat_user)[-1], action, strict=False)

    async def answer(self, who: Actor) -> str | None:
        """WeCom answers a press by turning the pressed card into one line: its caption."""
        captions = [d.replaced for d in self.api.messages_to(who.webchat_user) if d.replaced is not None]
        return captions[-1] if captions else None

    async def seen(self, who: Actor) -> list[Seen]:
        """One Seen per message dutydesk sent: the cards of one message (six buttons each,
        task ids dd-GROUP-1, dd-GROUP-2, ...) are read as the one message they carry."""
        found: list[Seen] = []
        group = None
        for delivered in self.api.messages_to(who.webchat_user):
            task = (delivered.task_id or "").rpartition("-")
            seen = seen_of(delivered)
            if group is not None and task[0] == group and task[2] != "1":
                last = found[-1]
                found[-1] = Seen(last.text, last.labels + seen.labels, last.actions + seen.actions)
                continue
            group = task[0] or None
            found.append(seen)
        return found

    async def _press(self, who: Actor, card: Delivered, key: str, *, strict: bool) -> None:
        code = self.api.press(who.webchat_user, card.task_id or "", key, strict=strict)
        await self.deliver(self.callbacks.card_event_xml(who.webchat_user, card.task_id or "", key, code))

    async def deliver(self, xml: str) -> None:
        """Post one callback as WeCom does and wait until the service has answered it."""
        statuses = await self.callbacks.deliver(xml)
        assert all(status == 200 for status in statuses), statuses
        await self.service.idle()

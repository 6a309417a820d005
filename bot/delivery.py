"""Hands each outgoing message to the sender of its channel."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from handlers.messages import Outbound, Reply
from storage.enums import Channel

log = logging.getLogger("dutydesk.delivery")

Sender = Callable[[Outbound], Awaitable[None]]


class Delivery:
    """The senders of the channels that are switched on."""

    def __init__(self) -> None:
        self._senders: dict[Channel, Sender] = {}

    def add(self, channel: Channel, sender: Sender) -> None:
        """Switch a channel on."""
        self._senders[channel] = sender

    async def deliver(self, reply: Reply) -> None:
        """Send every message of ``reply``; one failure does not stop the others."""
        for message in reply.messages:
            sender = self._senders.get(message.to.channel)
            if sender is None:
                log.info("no %s channel: message to %s not sent", message.to.channel, message.to.chat_id)
                continue
            try:
                await sender(message)
            except Exception:  # a platform error must not lose the rest of the reply
                log.exception("sending to %s %s failed", message.to.channel, message.to.chat_id)

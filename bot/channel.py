"""What every chat channel is to the service: a receiver, a sender, and what it can carry.

The service holds a list of channels and never asks which one it has: each mounts its routes,
starts receiving (handing what it stores to the inbound pipeline), turns a stored update into
an event, sends the outbox's messages within its limits, and closes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from bot.pipeline import Pipeline
from handlers.messages import Inbound, Outbound
from scheduler.outbox import Delivered
from scheduler.pacing import Limits
from storage.enums import Channel as ChannelKind


class Channel(Protocol):
    """A chat platform, as the service uses it."""

    kind: ChannelKind
    limits: Limits
    #: How many of its stored updates are handled at once (the rest wait, stored).
    handling_at_once: int

    def routes(self, app: web.Application) -> None:
        """Mount the channel's HTTP routes (a webhook, a callback, a page)."""

    async def start(self, pipeline: Pipeline) -> None:
        """Start receiving: every update is stored through ``pipeline`` before it is confirmed."""

    def decode(self, payload: dict[str, Any], received_at: datetime) -> Inbound | None:
        """The event in a stored update; None for what needs no answer (an edit, a join...)."""

    async def send(self, message: Outbound) -> Delivered | None:
        """Deliver one outbox message; raise RetryLater or Refused when it did not go out."""

    async def stop_receiving(self) -> None:
        """Take no new updates (those being handled finish)."""

    async def close(self) -> None:
        """Release the platform client (after the outbox has sent what it could)."""

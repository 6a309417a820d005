"""Work a channel starts after answering a platform (handling a stored update)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Background:
    """Keeps the tasks alive until done, and lets the service wait for them.

    With ``limit``, at most that many run at once (the rest wait their turn): a burst of
    updates then leaves database connections for the webhook that stores the next ones.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._turns = asyncio.Semaphore(limit) if limit else None

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Start ``work`` now (or when a turn is free); it runs after the caller returns."""
        task = asyncio.create_task(self._in_turn(work) if self._turns else work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _in_turn(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._turns is not None
        async with self._turns:
            await work

    @property
    def busy(self) -> bool:
        """Whether any task is still running or waiting for its turn."""
        return bool(self._tasks)

    async def drain(self) -> None:
        """Wait until every task started so far (and those they start) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

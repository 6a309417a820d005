"""A TCP proxy for tests that can cut a connection to a server and let it through again.

Point a client at ``proxy.port`` instead of the server's own port; ``cut()`` then behaves like
the network (or the server) going away: every open connection is aborted at once and every new
one is accepted and closed straight away, so a client sees a connection error within
milliseconds instead of waiting for a time-out. ``restore()`` lets connections through again
(those aborted stay gone: clients must reconnect, as after a real outage).

Both are plain methods, so a test may call them from anywhere, even from a synchronous hook::

    async with TcpProxy("127.0.0.1", 5432) as proxy:
        engine = create_engine(f"postgresql://postgres@127.0.0.1:{proxy.port}/test")
        ...
        proxy.cut()
        ...
        proxy.restore()
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

CHUNK = 64 * 1024


class TcpProxy:
    """Forwards every connection made to 127.0.0.1:``port`` to ``target_host``:``target_port``."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target_host, self.target_port = target_host, target_port
        self.host = host
        self._wanted_port = port
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._open = True
        #: Bumped by every cut: a connection set up across a cut is aborted too.
        self._epoch = 0
        self._pipes: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Connections forwarded to the target so far.
        self.accepted = 0
        #: Connections accepted and closed at once because the proxy was cut.
        self.refused = 0
        #: Open connections aborted by cut().
        self.aborted = 0

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``host`` (a free port unless one was given)."""
        if self._server is not None:
            raise RuntimeError("the proxy is already started")
        self._server = await asyncio.start_server(self._serve, self.host, self._wanted_port)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and abort every connection."""
        self._abort_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    # -- control --------------------------------------------------------------------------------

    @property
    def is_cut(self) -> bool:
        """Whether connections are refused now."""
        return not self._open

    @property
    def connections(self) -> int:
        """How many connections are forwarded right now."""
        return len(self._pipes)

    def cut(self) -> None:
        """Abort every open connection and refuse new ones until ``restore()``."""
        self._open = False
        self._epoch += 1
        self._abort_all()

    def restore(self) -> None:
        """Let new connections through again."""
        self._open = True

    # -- forwarding -----------------------------------------------------------------------------

    def _abort_all(self) -> None:
        for pipe in list(self._pipes):
            self.aborted += 1
            _abort(*pipe)
        self._pipes.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        epoch = self._epoch
        if not self._open:
            self.refused += 1
            _abort(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            _abort(client_writer)
            return
        if not self._open or epoch != self._epoch:  # cut while connecting
            self.refused += 1
            _abort(client_writer, upstream_writer)
            return
        self.accepted += 1
        pipe = (client_writer, upstream_writer)
        self._pipes.add(pipe)
        forward = [
            asyncio.create_task(_pump(client_reader, upstream_writer)),
            asyncio.create_task(_pump(upstream_reader, client_writer)),
        ]
        self._tasks.update(forward)
        try:
            # Either direction ending (EOF, reset, abort) ends the connection.
            await asyncio.wait(forward, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in forward:
                task.cancel()
            await asyncio.gather(*forward, return_exceptions=True)
            self._tasks.difference_update(forward)
            self._pipes.discard(pipe)
            _abort(client_writer, upstream_writer)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes from ``reader`` to ``writer`` until EOF or an error."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()


def _abort(*writers: asyncio.StreamWriter) -> None:
    """Close at once, without flushing: the peer sees the connection reset."""
    for writer in writers:
        writer.transport.abort()

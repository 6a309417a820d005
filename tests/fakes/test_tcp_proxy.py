"""The test TCP proxy: forwards, cuts (open connections and new ones), restores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL
from tests.fakes.tcp_proxy import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A TCP echo server on 127.0.0.1; its port."""
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def _roundtrip(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(data)), 2.0)
    finally:
        writer.close()


async def _closed_at_once(reader: asyncio.StreamReader) -> bool:
    """Whether the peer closed (EOF or reset) within half a second."""
    try:
        return await asyncio.wait_for(reader.read(1), 0.5) == b""
    except (ConnectionError, asyncio.IncompleteReadError):
        return True


async def test_forwards_both_ways(echo_port: int) -> None:
    async with TcpProxy("127.0.0.1", echo_port) as proxy:
        assert proxy.port != echo_port
        assert await _roundtrip(proxy.port, b"hello") == b"hello"
        assert await _roundtrip(proxy.port, b"x" * 200_000) == b"x" * 200_000
        assert proxy.accepted == 2


async def test_cut_aborts_open_connections_and_refuses_new_ones_until_restored(echo_port: int) -> None:
    async with TcpProxy("127.0.0.1", echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        assert proxy.connections == 1

        proxy.cut()
        assert proxy.is_cut
        assert await _closed_at_once(reader)
        writer.close()
        assert (proxy.connections, proxy.aborted) == (0, 1)

        late_reader, late_writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await _closed_at_once(late_reader)
        late_writer.close()
        assert proxy.refused == 1

        proxy.restore()
        assert not proxy.is_cut
        assert await _roundtrip(proxy.port, b"again") == b"again"


async def test_stop_ends_every_connection(echo_port: int) -> None:
    proxy = TcpProxy("127.0.0.1", echo_port)
    await proxy.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"ping"
    await proxy.stop()
    assert await _closed_at_once(reader)
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", proxy.port)


@pytest.mark.skipif(not POSTGRES_URL, reason="set DUTYDESK_TEST_POSTGRES_URL")
async def test_asyncpg_sees_a_cut_at_once() -> None:
    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        dsn = url.set(drivername="postgresql", port=proxy.port).render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn)
        assert await connection.fetchval("SELECT 1") == 1

        proxy.cut()
        started = time.monotonic()
        with pytest.raises((asyncpg.exceptions.ConnectionDoesNotExistError, ConnectionError, OSError)):
            await connection.fetchval("SELECT 1")
        with pytest.raises((asyncpg.exceptions.ConnectionDoesNotExistError, ConnectionError, OSError)):
            await asyncpg.connect(dsn, timeout=5)
        assert time.monotonic() - started < 1.0

        proxy.restore()
        again = await asyncpg.connect(dsn)
        try:
            assert await again.fetchval("SELECT 2") == 2
        finally:
            await again.close()
        connection.terminate()

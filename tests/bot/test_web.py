"""The service process: `dutydesk run` answers GET /healthz over real HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bot.runtime import open_runtime
from bot.settings import Settings
from bot.web import build_app
from tests.scenarios.stage import free_port

DUTYDESK = Path(sys.executable).with_name("dutydesk")


async def _get_json(url: str, attempts: int = 100) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as client:
        for _ in range(attempts):
            try:
                async with client.get(url) as response:
                    return response.status, await response.json()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}")


async def test_run_serves_healthz_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DUTYDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dutydesk.db'}",
        "DUTYDESK_HTTP_PORT": str(port),
    }
    pipe = asyncio.subprocess.PIPE
    init = await asyncio.create_subprocess_exec(DUTYDESK, "init", cwd=tmp_path, env=env, stdout=pipe)
    await init.communicate()
    assert init.returncode == 0
    service = await asyncio.create_subprocess_exec(
        DUTYDESK, "run", cwd=tmp_path, env=env, stdout=pipe, stderr=pipe
    )
    try:
        status, body = await _get_json(f"http://127.0.0.1:{port}/healthz")
        assert status == 200
        assert body["status"] == "ok" and body["database"] == "ok"
    finally:
        service.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(service.communicate(), timeout=10)
    assert service.returncode == 0, err.decode()
    assert f"http://127.0.0.1:{port}/healthz" in out.decode()


async def test_healthz_says_503_when_the_database_is_unreachable() -> None:
    closed = free_port()
    settings = Settings(database_url=f"postgresql://nobody@127.0.0.1:{closed}/none")
    async with open_runtime(settings) as runtime, TestServer(build_app(runtime)) as server:
        status, body = await _get_json(str(server.make_url("/healthz")))
    assert status == 503
    assert body == {"status": "error", "database": "unreachable"}


async def test_unknown_paths_are_404(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with (
        open_runtime(settings) as runtime,
        TestServer(build_app(runtime)) as server,
        aiohttp.ClientSession() as client,
        client.get(server.make_url("/nope")) as response,
    ):
        assert response.status == 404

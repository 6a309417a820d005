"""The project's aiohttp server: health check now; channel webhooks and the web chat mount here."""

from __future__ import annotations

import asyncio
import logging
import signal
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from sqlalchemy import text

from bot.runtime import Runtime

log = logging.getLogger("dutydesk.web")
RUNTIME = web.AppKey("runtime", Runtime)


def _version() -> str:
    try:
        return version("dutydesk")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "unknown"


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, 503 when it does not."""
    runtime = request.app[RUNTIME]
    try:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means: not healthy
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok", "version": _version()})


def build_app(runtime: Runtime) -> web.Application:
    """The web application with every route of the service."""
    app = web.Application(client_max_size=1024 * 1024)
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    return app


async def serve(runtime: Runtime, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set or the process gets SIGINT/SIGTERM."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(build_app(runtime), access_log=None)
    await runner.setup()
    settings = runtime.settings
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    log.info(
        "dutydesk serving on http://%s:%s (%s)", settings.http_host, settings.http_port, settings.describe()
    )
    print(f"dutydesk is running on http://{settings.http_host}:{settings.http_port}/healthz", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("dutydesk stopping")
        await runner.cleanup()

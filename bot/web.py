"""The project's aiohttp server: health check now; channel webhooks and the web chat mount here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
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


def build_app(runtime: Runtime, mounts: Iterable[Callable[[web.Application], None]] = ()) -> web.Application:
    """The web application: the health check plus the routes each channel mounts."""
    app = web.Application(client_max_size=1024 * 1024)
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    for mount in mounts:
        mount(app)
    return app

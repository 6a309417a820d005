"""``dutydesk wecom menu``: install the app menu (报修 / 我的工单 / 帮助) in WeChat Work."""

from __future__ import annotations

import aiohttp
import typer

from bot.cli.common import CliError, console, run
from bot.runtime import Runtime
from bot.wecom.client import WecomClient, WecomError
from bot.wecom.convert import menu as app_menu

app = typer.Typer(help="WeChat Work (企业微信) set-up.", no_args_is_help=True)


@app.command("menu")
def menu() -> None:
    """Install the app menu: 报修 / 我的工单 / 帮助 (menu/create)."""

    async def _menu(runtime: Runtime) -> None:
        settings = runtime.settings
        if not settings.wecom_enabled:
            raise CliError("WeChat Work is not configured: set DUTYDESK_WECOM_CORP_ID and the others", 2)
        client = WecomClient.from_settings(settings)
        buttons = app_menu()
        try:
            await client.create_menu(buttons)
        except (WecomError, aiohttp.ClientError) as error:
            raise CliError(f"WeChat Work refused the menu: {error}") from error
        finally:
            await client.close()
        names = " / ".join(str(button["name"]) for button in buttons)
        console.print(f"menu installed for agent {settings.wecom_agent_id}: {names}")

    run(_menu, needs_schema=False)

"""Drive headless Debian Chromium from async tests, with page-object helpers for the web chat page.

Selenium blocks, so every call runs in a worker thread (``asyncio.to_thread``), one at a time
(a WebDriver session is not meant to be used from two threads at once)::

    async with Browser() as browser:
        await browser.open(f"{base}/chat")
        await browser.pick(0, "王晓丽")
        await browser.type(0, "打印机卡纸")
        await browser.wait_text(0, "收到")
        await browser.press(0, "接单")

Only the system's binaries are used (``/usr/bin/chromium``, ``/usr/bin/chromedriver``); Selenium
Manager is never asked to find or download anything. Tests skip when ``chromium_available()`` is
false.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH, HEIGHT = 1400, 900
ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--window-size={WIDTH},{HEIGHT}",
)

# The page's own markup (bot/webchat/static/chat.html): every helper finds elements through these.
_MESSAGES_JS = """
const [pane, direction] = arguments;
const root = document.querySelector(`[data-pane="${pane}"]`);
if (!root) return null;
return Array.from(root.querySelectorAll('[data-role="message"]'))
  .filter((m) => !direction || m.dataset.direction === direction)
  .map((m) => m.querySelector('[data-role="text"]')?.textContent ?? "");
"""
_PANE_TEXT_JS = """
const root = document.querySelector(`[data-pane="${arguments[0]}"]`);
return root ? root.innerText : null;
"""
_BUTTON_JS = """
const [pane, label] = arguments;
const root = document.querySelector(`[data-pane="${pane}"]`);
if (!root) return null;
const visible = (b) => b.offsetParent !== null && !b.disabled;
for (const role of ["button", "quick"]) {
  const found = Array.from(root.querySelectorAll(`[data-role="${role}"]`))
    .filter((b) => b.dataset.label === label && visible(b));
  if (found.length) return found[found.length - 1];
}
return null;
"""
_OPTION_JS = """
const [pane, who] = arguments;
const picker = document.querySelector(`[data-pane="${pane}"] [data-role="picker"]`);
if (!picker) return null;
return Array.from(picker.options).find((o) => o.value && (o.dataset.name === who || o.value === who))
  ?.value ?? null;
"""


def chromium_available() -> bool:
    """True when both Debian's chromium and chromium-driver are installed."""
    return CHROMIUM.is_file() and CHROMEDRIVER.is_file()


class Browser:
    """One headless Chromium with a fresh profile; use as ``async with Browser() as browser``."""

    def __init__(self, *, default_timeout: float = 10.0) -> None:
        self.default_timeout = default_timeout
        self._driver: webdriver.Chrome | None = None
        self._profile: str | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._profile = tempfile.mkdtemp(prefix="dutydesk-chromium-")
        try:
            self._driver = await asyncio.to_thread(self._start, self._profile)
        except BaseException:
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        driver, self._driver = self._driver, None
        try:
            if driver is not None:
                await asyncio.to_thread(driver.quit)
        finally:
            if self._profile is not None:
                await asyncio.to_thread(shutil.rmtree, self._profile, True)
                self._profile = None

    @staticmethod
    def _start(profile: str) -> webdriver.Chrome:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in (*ARGUMENTS, f"--user-data-dir={profile}"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)

    @property
    def driver(self) -> webdriver.Chrome:
        """The underlying Selenium driver (blocking: call it through ``run``)."""
        if self._driver is None:
            raise RuntimeError("the browser is not running: use `async with Browser() as browser`")
        return self._driver

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """Run one blocking Selenium call in a worker thread, never two at once."""
        async with self._lock:
            return await asyncio.to_thread(call, *args)

    async def execute(self, script: str, *args: Any) -> Any:
        """``driver.execute_script(script, *args)``: the script's ``return`` value."""
        return await self.run(self.driver.execute_script, script, *args)

    # -- generic ----------------------------------------------------------------------------

    async def open(self, url: str) -> None:
        """Load ``url`` and wait until the page has its panes and has loaded the people list."""
        await self.run(self.driver.get, url)
        await self._until(
            lambda: self.execute("return document.body && document.body.dataset.ready === '1'"),
            f"the page at {url} never became ready (people list not loaded?)",
        )

    async def reload(self) -> None:
        """Reload the current page (URL, hash included) and wait until it is ready again."""
        await self.open(await self.url())

    async def url(self) -> str:
        """The address shown in the address bar now (the page rewrites its hash and query)."""
        return str(await self.run(lambda: self.driver.current_url))

    async def screenshot(self, path: str | Path) -> None:
        """Save a PNG of the window (1400x900) to ``path``."""
        saved = await self.run(self.driver.save_screenshot, str(path))
        if not saved:
            raise AssertionError(f"could not save a screenshot to {path}")

    async def alert_text(self) -> str | None:
        """The text of an open alert/confirm dialog, or None when there is none."""

        def read() -> str | None:
            try:
                return self.driver.switch_to.alert.text
            except NoAlertPresentException:
                return None

        return await self.run(read)

    async def console(self) -> list[str]:
        """Browser console messages since the last call (for debugging a failing test)."""
        entries: list[dict[str, Any]] = await self.run(self.driver.get_log, "browser")
        return [f"{entry.get('level')}: {entry.get('message')}" for entry in entries]

    # -- the chat page ----------------------------------------------------------------------

    async def pick(
        self,
        pane_index: int,
        person: str,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        """Choose ``person`` (display name such as "王晓丽", or user id) in pane ``pane_index``'s picker."""
        found: list[str] = []

        async def option() -> bool:
            value = await self.execute(_OPTION_JS, pane_index, person)
            if value is None:
                return False
            found.append(str(value))
            return True

        await self._until(option, f"pane {pane_index} has no person {person!r} to pick", timeout)

        def choose() -> None:
            picker = self._in_pane(pane_index, '[data-role="picker"]')
            picker.find_element(By.CSS_SELECTOR, f'option[value="{_css(found[-1])}"]').click()

        await self.run(choose)
        await self._until(
            lambda: self._picked_is(pane_index, found[-1]), f"pane {pane_index} did not take {person!r}"
        )

    async def picked(self, pane_index: int) -> str:
        """The user id chosen in pane ``pane_index`` ("" when nobody is)."""
        value = await self.execute(
            'return document.querySelector(`[data-pane="${arguments[0]}"] [data-role="picker"]`).value',
            pane_index,
        )
        return str(value)

    async def type(self, pane_index: int, text: str, *, submit: Literal["enter", "click"] = "enter") -> None:
        """Type ``text`` into the pane's input and send it with Enter (or a click on 发送 Send).

        Line breaks in ``text`` are typed as Shift+Enter, so they stay in the message. A text
        longer than 200 characters is inserted at once, as a paste or an input method would (typing
        5000 keys one by one takes half a minute).
        """

        def keys() -> None:
            box = self._in_pane(pane_index, '[data-role="input"]')
            box.clear()
            if len(text) > 200:
                box.click()
                self.driver.execute_cdp_cmd("Input.insertText", {"text": text})
            else:
                for number, line in enumerate(text.split("\n")):
                    if number:
                        box.send_keys(Keys.SHIFT, Keys.ENTER)
                    if line:
                        box.send_keys(line)
            if submit == "enter":
                box.send_keys(Keys.ENTER)
            else:
                self._in_pane(pane_index, '[data-role="send"]').click()

        await self.run(keys)

    async def press(
        self,
        pane_index: int,
        button_label: str,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        """Click the last visible, enabled button labelled ``button_label`` in the pane.

        Buttons under the bot's messages (data-role="button") come first; when none has that
        label, the quick buttons at the bottom (报修, 我的工单, 帮助, 取消) are used. Waits up to
        ``timeout`` seconds for such a button to appear.
        """
        buttons: list[WebElement] = []

        async def find() -> bool:
            button = await self.execute(_BUTTON_JS, pane_index, button_label)
            if isinstance(button, WebElement):
                buttons.append(button)
                return True
            return False

        await self._until(
            find, f"pane {pane_index} has no button {button_label!r}", timeout, show_pane=pane_index
        )
        await self.run(buttons[-1].click)

    async def messages(self, pane_index: int, direction: Literal["in", "out"] | None = None) -> list[str]:
        """The texts of the messages shown in the pane, oldest first (only one direction if given)."""
        texts = await self.execute(_MESSAGES_JS, pane_index, direction)
        if texts is None:
            raise AssertionError(f"the page has no pane {pane_index}")
        return [str(text) for text in texts]

    async def wait_text(
        self,
        pane_index: int,
        text: str,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline that fails with the pane's text)
        *,
        direction: Literal["in", "out"] | None = None,
    ) -> str:
        """Wait until a message containing ``text`` is shown in the pane; return that message's text.

        On timeout raises AssertionError with the pane's visible text.
        """
        found: list[str] = []

        async def shown() -> bool:
            found.extend(m for m in await self.messages(pane_index, direction) if text in m)
            return bool(found)

        await self._until(
            shown, f"pane {pane_index} shows no message containing {text!r}", timeout, show_pane=pane_index
        )
        return found[0]

    async def pane_text(self, pane_index: int) -> str:
        """Everything the pane shows as text (picker, messages, buttons, error line)."""
        value = await self.execute(_PANE_TEXT_JS, pane_index)
        if value is None:
            raise AssertionError(f"the page has no pane {pane_index}")
        return str(value)

    async def error(self, pane_index: int) -> str:
        """The red error line under the pane's input ("" when there is none)."""
        value = await self.execute(
            'return document.querySelector(`[data-pane="${arguments[0]}"] [data-role="error"]`).textContent',
            pane_index,
        )
        return str(value)

    # -- internals --------------------------------------------------------------------------

    def _in_pane(self, pane_index: int, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, f'[data-pane="{pane_index}"] {selector}')

    async def _picked_is(self, pane_index: int, user: str) -> bool:
        return await self.picked(pane_index) == user

    async def _until(
        self,
        check: Callable[[], Awaitable[Any]],
        message: str,
        within: float | None = None,
        *,
        show_pane: int | None = None,
    ) -> None:
        """Poll the awaitable ``check()`` until it is truthy; AssertionError after ``within`` seconds."""
        seconds = self.default_timeout if within is None else within
        deadline = time.monotonic() + seconds
        while True:
            if await check():
                return
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
        if show_pane is not None:
            message += f" after {seconds}s; the pane shows:\n"
            message += await self.pane_text(show_pane)
        raise AssertionError(message)


def _css(value: str) -> str:
    """``value`` escaped for a double-quoted CSS attribute selector."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def require_chromium() -> None:
    """Skip without chromium, except where DUTYDESK_TEST_REQUIRE_BROWSER=1 (CI): there, fail."""
    if chromium_available():
        return
    if os.environ.get("DUTYDESK_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(
            "DUTYDESK_TEST_REQUIRE_BROWSER=1 but /usr/bin/chromium or /usr/bin/chromedriver is missing"
        )
    pytest.skip("needs Debian's chromium and chromium-driver in /usr/bin")

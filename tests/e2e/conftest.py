"""A real gateway on a loopback port, a loopback sink, and Debian's Chromium driven by
Playwright. Without Chromium the browser tests skip, unless ``CI`` is set: then they fail.

(``tests/e2e`` is a package so that this conftest does not shadow ``tests/conftest.py``.)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import make_config

from gateway.testing.admin import token_config
from gateway.web.app import create_app

CHROMIUM = Path(os.environ.get("GATEWAY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORT = {"width": 1366, "height": 768}  # a common office screen


def _unavailable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium, or set GATEWAY_CHROMIUM)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture
def require_browser() -> None:
    reason = _unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run and CI is set: {reason}")
    pytest.skip(reason)


@dataclass
class LiveGateway:
    url: str
    app: web.Application


@pytest.fixture
async def live_gateway(tmp_path: Path, sink: Any) -> AsyncIterator[LiveGateway]:
    """The gateway served by a real TCP site on 127.0.0.1 (a free port)."""
    sink_url = str(sink[1].make_url("")).rstrip("/")
    app = create_app(make_config(tmp_path, sink_url, tokens=token_config()))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield LiveGateway(f"http://{host}:{port}", app)
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser_page(require_browser: None) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport=VIEWPORT, locale="vi-VN")
            page = await context.new_page()
            page.set_default_timeout(10_000)
            yield page
            await context.close()
        finally:
            await browser.close()


async def screenshot(page: Any, name: str) -> Path:
    """Save the whole page under test-artifacts/ (kept by CI as an artefact)."""
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path

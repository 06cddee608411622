"""Headless Chromium for the dashboard tests: one browser per module, a fresh page per test.

Playwright drives Debian's ``chromium`` (never a browser Playwright downloads). Without it
the tests skip, except in CI (``CI=true``), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.browser.helpers import PageWatch

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "no chromium on PATH (Debian: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium, shared by the module's tests (starting it is the slow part)."""
    chromium = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def watch(browser: Browser) -> Iterator[PageWatch]:
    """A page in a context of its own (own sessionStorage), watched for dialogs and errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    watched = PageWatch(context.new_page())
    try:
        yield watched
    finally:
        context.close()
    assert not watched.errors, f"the page raised: {watched.errors}"


@pytest.fixture
def page(watch: PageWatch) -> Page:
    return watch.page

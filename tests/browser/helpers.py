"""What the dashboard tests share: publishing over HTTP, and reading the page's table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from playwright.sync_api import ConsoleMessage, Dialog, Locator, Page, expect

from tests.support import RunningServer

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@dataclass
class PageWatch:
    """A page, with the dialogs it opened and the errors its scripts raised."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("dialog", self._on_dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._on_console)

    def _on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


def publish(server: RunningServer, *items: dict[str, Any]) -> list[dict[str, Any]]:
    """Publish ``items`` as one batch; the stored items, in order."""
    response = httpx.post(f"{server.url}/items", json=list(items), headers=server.auth, timeout=10)
    assert response.status_code == 201, response.text
    stored: list[dict[str, Any]] = response.json()
    return stored


def open_dashboard(page: Page, base_url: str, query: Sequence[tuple[str, str]] = ()) -> None:
    """Load the dashboard and wait until its stream is live."""
    page.goto(f"{base_url}/" + (f"?{urlencode(query)}" if query else ""))
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def row(page: Page, topic: str, key: str) -> Locator:
    """The table row of (topic, key)."""
    return page.locator(f"#rows tr[data-topic={_css_string(topic)}][data-key={_css_string(key)}]")


def shown_keys(page: Page) -> list[str]:
    """The keys of the table's rows, top to bottom."""
    keys: list[str] = page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.key)")
    return keys


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot under tests/artifacts/ for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path

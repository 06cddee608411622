"""The dashboard's publish form: refusals shown as the problem says, and items published."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.browser.helpers import open_dashboard, row
from tests.support import run_server


def _cached(url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(f"{url}/items", timeout=10).json()
    return items


def _fill(page: Page, *, topic: str, key: str, data: str, token: str, ttl: str = "") -> None:
    form = page.locator("#publish")
    form.locator("[name=topic]").fill(topic)
    form.locator("[name=key]").fill(key)
    form.locator("[name=data]").fill(data)
    form.locator("[name=ttl]").fill(ttl)
    form.locator("[name=token]").fill(token)
    form.locator("button[type=submit]").click()


def test_a_wrong_token_shows_the_401_status_title_and_detail(page: Page) -> None:
    with run_server() as server:
        open_dashboard(page, server.url)
        refusal = httpx.post(
            f"{server.url}/items", json={"data": 1}, headers={"Authorization": "Bearer nope"}
        ).json()

        _fill(page, topic="t", key="k", data="1", token="nope")

        result = page.locator("#publish-result")
        expect(result).to_have_attribute("data-status", "error")
        expect(result.locator(".status")).to_have_text("401")
        expect(result.locator(".title")).to_have_text("Unauthorized")
        expect(result.locator(".detail")).to_have_text(refusal["detail"])
        assert _cached(server.url) == []


def test_a_published_item_appears_in_the_table(page: Page) -> None:
    with run_server() as server:
        open_dashboard(page, server.url)

        _fill(page, topic="prices", key="btc", data='{"usd": 97000}', token=server.token, ttl="60")

        expect(page.locator("#publish-result")).to_have_attribute("data-status", "ok")
        published = row(page, "prices", "btc")
        expect(published.locator("td.data")).to_have_text('{"usd":97000}')
        expect(published.locator("td.expires")).to_have_text(re.compile(r"^(1m 00s|59s)$"))
        (stored,) = _cached(server.url)
        expect(published.locator("td.id")).to_have_text(stored["id"])


def test_a_number_a_double_cannot_hold_is_published_as_typed(page: Page) -> None:
    with run_server() as server:
        open_dashboard(page, server.url)

        _fill(page, topic="ids", key="k", data='{"n": 9007199254740993}', token=server.token)

        expect(page.locator("#publish-result")).to_have_attribute("data-status", "ok")
        (stored,) = _cached(server.url)
        assert stored["data"] == {"n": 9007199254740993}


def test_invalid_json_data_is_reported_and_not_posted(page: Page) -> None:
    with run_server() as server:
        open_dashboard(page, server.url)

        _fill(page, topic="t", key="k", data="{usd: 1", token=server.token)

        result = page.locator("#publish-result")
        expect(result).to_have_attribute("data-status", "invalid")
        expect(result).to_contain_text("not valid JSON")
        page.wait_for_timeout(200)
        assert _cached(server.url) == []

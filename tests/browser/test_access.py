"""The subscriber token: kept out of the address bar, and used for the stream."""

from __future__ import annotations

import jwt
from playwright.sync_api import Page, expect

from tests.browser.helpers import open_dashboard, publish, row
from tests.support import run_server

SECRET = "a-test-secret-of-at-least-32-bytes!!"


def test_a_token_in_the_page_url_moves_to_session_storage(page: Page) -> None:
    with run_server() as server:
        open_dashboard(page, server.url, [("access_token", "abc.def.ghi"), ("topic", "t")])

        assert page.url == f"{server.url}/?topic=t"
        expect(page.locator("#subscriber-token")).to_have_value("abc.def.ghi")
        stored = page.evaluate("sessionStorage.getItem('tailcast.subscriberToken')")
        assert stored == "abc.def.ghi"


def test_the_subscriber_token_opens_a_stream_the_api_refuses_without_one(page: Page) -> None:
    token = jwt.encode({"tailcast": {"subscribe": ["*"]}}, SECRET, algorithm="HS256")
    with run_server(jwt_secret=SECRET) as server:
        publish(server, {"topic": "t", "key": "secret", "data": 1})
        page.goto(f"{server.url}/")

        expect(page.locator("#stream-error")).to_contain_text("401 Unauthorized")
        expect(page.locator("#connection-state")).to_have_attribute("data-state", "reconnecting")

        page.locator("#subscriber-token").fill(token)
        page.locator("#subscriber-token").press("Enter")

        expect(row(page, "t", "secret")).to_be_visible()
        expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
        expect(page.locator("#stream-error")).to_be_hidden()
        assert "access_token" not in page.url

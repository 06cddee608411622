"""The dashboard served by one origin, talking to a Tailcast on another (``?api=``)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.helpers import open_dashboard, publish, row, shown_keys
from tests.support import run_server


def test_a_page_from_another_origin_streams_publishes_and_polls_through_api(page: Page) -> None:
    with run_server() as site, run_server(cors_origins=site.url) as api:
        publish(site, {"topic": "t", "key": "from-site", "data": 0})
        publish(api, {"topic": "t", "key": "replayed", "data": 1})

        open_dashboard(page, site.url, [("api", api.url)])

        expect(row(page, "t", "replayed")).to_be_visible()
        publish(api, {"topic": "t", "key": "live", "data": 2})
        expect(row(page, "t", "live")).to_be_visible()

        form = page.locator("#publish")
        form.locator("[name=topic]").fill("t")
        form.locator("[name=key]").fill("form")
        form.locator("[name=data]").fill("3")
        form.locator("[name=token]").fill(api.token)
        form.locator("button[type=submit]").click()

        expect(row(page, "t", "form")).to_be_visible()
        expect(page.locator("#stat-published")).to_have_text("3")
        assert "from-site" not in shown_keys(page)

"""The dashboard across a server restart: the reset is shown and rows stay unique."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from tests.browser.helpers import open_dashboard, publish, row, shown_keys
from tests.support import run_server


def test_after_a_restart_the_reset_reason_shows_and_no_row_is_duplicated(page: Page) -> None:
    state = page.locator("#connection-state")
    with run_server(retry_ms=200) as first:
        port = urlsplit(first.url).port
        publish(
            first,
            {"topic": "t", "key": "a", "data": "before"},
            {"topic": "t", "key": "gone", "data": "only before"},
        )
        open_dashboard(page, first.url)
    # The memory backend forgets everything: the page resumes with an id from before.
    expect(state).to_have_attribute("data-state", "reconnecting")

    with run_server(port=port, retry_ms=200) as second:
        publish(
            second,
            {"topic": "t", "key": "a", "data": "after"},
            {"topic": "t", "key": "b", "data": "new"},
        )

        expect(row(page, "t", "b")).to_be_visible()
        expect(state).to_have_attribute("data-state", "live")
        expect(page.locator("#reset-reason")).to_have_text("reset: restarted")
        expect(row(page, "t", "a").locator("td.data")).to_have_text('"after"')
        # Rows from before the reset stay until they expire.
        assert sorted(shown_keys(page)) == ["a", "b", "gone"]

        publish(second, {"topic": "t", "key": "a", "data": "live"})

        expect(row(page, "t", "a").locator("td.data")).to_have_text('"live"')
        assert sorted(shown_keys(page)) == ["a", "b", "gone"]
        expect(page.locator("#reset-reason")).to_be_visible()

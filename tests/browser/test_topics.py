"""The dashboard's topic list, read from GET /topics: picking a topic filters the view and
the stream; the topic filter takes patterns."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect

from tests.browser.helpers import PageWatch, open_dashboard, publish, row, screenshot, shown_keys
from tests.support import run_server


def _pick(page: Page, topic: str) -> None:
    page.locator(f'#topic-list .topic-pick[data-topic="{topic}"]').click()


def test_the_topic_list_shows_each_topic_with_its_items_and_streams(page: Page) -> None:
    with run_server() as server:
        publish(server, {"topic": "news", "key": "a", "data": 0})
        publish(server, *({"topic": "prices", "key": k, "data": 0} for k in "xy"))
        open_dashboard(page, server.url)

        picks = page.locator("#topic-list .topic-pick")
        expect(picks).to_have_count(2)
        # The page's own stream (on every topic) receives both.
        expect(picks.nth(0)).to_contain_text("news")
        expect(picks.nth(0)).to_contain_text("1 item · 1 stream")
        expect(picks.nth(1)).to_contain_text("2 items · 1 stream")
        publish(server, {"topic": "alerts", "key": "z", "data": 0})
        expect(picks).to_have_count(3)  # polled again
        expect(picks.nth(0)).to_have_attribute("data-topic", "alerts")


def test_picking_a_topic_filters_the_table_and_the_stream(watch: PageWatch) -> None:
    page = watch.page
    with run_server() as server:
        publish(server, *({"topic": topic, "key": topic, "data": 0} for topic in "abc"))
        open_dashboard(page, server.url, [("rows", "50")])
        _pick(page, "b")

        expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
        expect(page.locator("#topic-filter")).to_have_value("b")
        assert parse_qs(urlsplit(page.url).query) == {"rows": ["50"], "topic": ["b"]}
        expect(page.locator('#topic-list .topic-pick[data-topic="b"]')).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(page.locator("#rows tr")).to_have_count(1)
        publish(
            server, {"topic": "a", "key": "a2", "data": 1}, {"topic": "b", "key": "b2", "data": 1}
        )
        expect(row(page, "b", "b2")).to_be_visible()
        assert sorted(shown_keys(page)) == ["b", "b2"]
        screenshot(page, "dashboard-topic-picked.png")

        page.locator("#all-topics").click()
        expect(row(page, "a", "a2")).to_be_visible()
        assert sorted(shown_keys(page)) == ["a", "a2", "b", "b2", "c"]
        assert watch.errors == []


def test_the_topic_filter_takes_a_pattern(page: Page) -> None:
    with run_server() as server:
        publish(server, *({"topic": t, "key": t, "data": 0} for t in ["p.a", "p", "q.a"]))
        open_dashboard(page, server.url, [("topic", "p.*")])
        expect(page.locator("#rows tr")).to_have_count(1)
        publish(
            server, {"topic": "p.new", "key": "n", "data": 1}, {"topic": "q", "key": "q", "data": 1}
        )
        expect(row(page, "p.new", "n")).to_be_visible()
        assert sorted(shown_keys(page)) == ["n", "p.a"]

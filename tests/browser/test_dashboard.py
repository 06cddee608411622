"""The dashboard in a real browser: the live table, its bounds and filters, and safety."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect

from tests.browser.helpers import PageWatch, open_dashboard, publish, row, screenshot, shown_keys
from tests.support import run_server


def test_replayed_items_show_then_a_published_item_appears_within_2_s(page: Page) -> None:
    with run_server() as server:
        publish(
            server,
            {"topic": "prices", "key": "btc", "data": {"usd": 97000}},
            {"topic": "prices", "key": "eth", "data": {"usd": 3100}},
            {"topic": "news", "key": "open", "data": "markets open"},
        )
        open_dashboard(page, server.url)
        assert shown_keys(page) == ["open", "eth", "btc"]

        (stored,) = publish(server, {"topic": "alerts", "key": "cpu", "data": {"load": 0.93}})

        fresh = row(page, "alerts", "cpu")
        expect(fresh).to_be_visible(timeout=2000)
        expect(fresh.locator("td.id")).to_have_text(stored["id"])
        expect(fresh.locator("td.data")).to_have_text('{"load":0.93}')
        assert shown_keys(page)[0] == "cpu"
        screenshot(page, "dashboard.png")


def test_a_newer_item_replaces_its_row_and_moves_it_to_the_top(page: Page) -> None:
    with run_server() as server:
        publish(
            server, {"topic": "t", "key": "a", "data": 1}, {"topic": "t", "key": "b", "data": 2}
        )
        open_dashboard(page, server.url)

        publish(server, {"topic": "t", "key": "a", "data": 3})

        expect(row(page, "t", "a").locator("td.data")).to_have_text("3")
        assert shown_keys(page) == ["a", "b"]


def test_numbers_a_double_cannot_hold_are_shown_as_published(page: Page) -> None:
    with run_server() as server:
        open_dashboard(page, server.url)

        publish(server, {"topic": "ids", "key": "k", "data": [9007199254740993, 2**64 + 1, 0.5]})

        shown = row(page, "ids", "k").locator("td.data")
        expect(shown).to_have_text("[9007199254740993,18446744073709551617,0.5]")


def test_live_items_are_highlighted_and_replayed_ones_are_not(page: Page) -> None:
    with run_server() as server:
        publish(server, {"topic": "t", "key": "old", "data": 1})
        open_dashboard(page, server.url)

        publish(server, {"topic": "t", "key": "new", "data": 2})

        expect(row(page, "t", "new")).to_have_class("fresh")
        expect(row(page, "t", "old")).not_to_have_class("fresh")


def test_a_row_is_removed_when_its_item_expires(page: Page) -> None:
    with run_server() as server:
        publish(server, {"topic": "t", "key": "short", "data": 1, "ttl": 1})
        publish(server, {"topic": "t", "key": "long", "data": 2})
        open_dashboard(page, server.url)

        expect(row(page, "t", "short")).to_have_count(0, timeout=5000)
        expect(row(page, "t", "long")).to_have_count(1)


def test_item_text_is_shown_as_text_and_never_runs(watch: PageWatch) -> None:
    page = watch.page
    img = "<img src=x onerror=alert(1)>"
    script = "<script>window.__tailcastPwned = true; alert(2)</script>"
    with run_server() as server:
        publish(server, {"topic": "xss", "key": img, "data": img})
        open_dashboard(page, server.url)
        publish(
            server,
            {"topic": script, "key": "script", "data": script},
            {"topic": "xss", "key": "link", "data": "see https://example.invalid/"},
        )

        expect(row(page, "xss", "link")).to_be_visible()
        expect(row(page, "xss", img).locator("td.data")).to_have_text(f'"{img}"')
        expect(row(page, script, "script").locator("td.data")).to_contain_text(script)
        expect(row(page, script, "script").locator(".chip")).to_have_text(script)
        table = page.locator("#items")
        for tag in ("img", "script", "a"):
            expect(table.locator(tag)).to_have_count(0)
        page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert page.evaluate("window.__tailcastPwned") is None
    assert watch.dialogs == []


def test_rows_parameter_bounds_the_table_to_the_newest_items(page: Page) -> None:
    with run_server() as server:
        publish(server, *({"topic": "t", "key": f"k{i}", "data": i} for i in range(30)))
        open_dashboard(page, server.url, [("rows", "5")])
        assert shown_keys(page) == ["k29", "k28", "k27", "k26", "k25"]
        expect(page.locator("#row-count")).to_have_text("newest 5 of 30 keys")

        publish(server, {"topic": "t", "key": "k30", "data": 30})

        expect(row(page, "t", "k30")).to_be_visible()
        assert shown_keys(page) == ["k30", "k29", "k28", "k27", "k26"]


def test_a_large_replay_shows_the_newest_500_rows_by_default(page: Page) -> None:
    with run_server() as server:
        for batch in range(10):
            publish(server, *({"topic": "t", "data": batch * 1000 + n} for n in range(1000)))
        page.goto(f"{server.url}/")

        expect(page.locator("#connection-state")).to_have_attribute(
            "data-state", "live", timeout=30_000
        )
        expect(page.locator("#row-count")).to_have_text("newest 500 of 10,000 keys")
        expect(page.locator("#rows tr")).to_have_count(500)
        expect(page.locator("#rows tr").first.locator("td.data")).to_have_text("9999")


def test_topic_parameters_filter_the_stream_and_fill_the_filter_input(page: Page) -> None:
    with run_server() as server:
        publish(server, *({"topic": topic, "key": topic, "data": 0} for topic in "abc"))
        open_dashboard(page, server.url, [("topic", "a"), ("topic", "b")])

        expect(page.locator("#topic-filter")).to_have_value("a, b")
        assert sorted(shown_keys(page)) == ["a", "b"]
        publish(
            server, {"topic": "c", "key": "c2", "data": 1}, {"topic": "a", "key": "a2", "data": 1}
        )
        expect(row(page, "a", "a2")).to_be_visible()
        assert "c2" not in shown_keys(page)


def test_changing_the_topic_filter_reopens_the_stream_and_updates_the_url(page: Page) -> None:
    with run_server() as server:
        publish(server, *({"topic": topic, "key": topic, "data": 0} for topic in "abc"))
        open_dashboard(page, server.url, [("topic", "a"), ("rows", "50")])

        page.locator("#topic-filter").fill("b, c")
        page.locator("#topic-filter").press("Enter")

        expect(row(page, "c", "c")).to_be_visible()
        expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
        assert sorted(shown_keys(page)) == ["b", "c"]
        query = parse_qs(urlsplit(page.url).query)
        assert query == {"topic": ["b", "c"], "rows": ["50"]}


def test_last_in_the_page_url_replays_only_the_newest_items(page: Page) -> None:
    with run_server() as server:
        publish(server, *({"topic": "t", "key": f"k{n}", "data": n} for n in range(5)))
        open_dashboard(page, server.url, [("last", "2")])
        assert shown_keys(page) == ["k4", "k3"]
        expect(page.locator("#connection-state")).to_have_attribute(
            "title", re.compile("^Replayed 2 items")
        )

        publish(server, {"topic": "t", "key": "k9", "data": 9})
        expect(row(page, "t", "k9")).to_be_visible(timeout=2000)
        assert shown_keys(page) == ["k9", "k4", "k3"]

"""The API docs at /docs render in a browser that can reach nothing but the service."""

from __future__ import annotations

from playwright.sync_api import Page, Route, expect

from tests.support import RunningServer


def test_the_api_docs_render_offline(page: Page, server: RunningServer) -> None:
    elsewhere: list[str] = []

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:  # as offline: nothing but the service answers
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_service)
    page.goto(f"{server.url}/docs")

    expect(page.locator(".opblock-summary-path", has_text="/items/{key}")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/stream")).to_be_visible()
    assert not elsewhere, f"/docs asked for {elsewhere}"

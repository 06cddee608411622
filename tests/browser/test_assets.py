"""How the page and its assets are served: types, cache headers and the CSP (no browser)."""

from __future__ import annotations

import re

import httpx

from tests.support import RunningServer


def _asset_links(page: str) -> dict[str, str]:
    """Asset name -> the versioned URL the page links it with."""
    return {
        match["name"]: match["url"]
        for match in re.finditer(r'"(?P<url>dashboard/(?P<name>[\w.]+)\?v=\w+)"', page)
    }


def test_the_page_is_html_revalidated_every_time_under_a_strict_csp(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert "http:" in policy["connect-src"].split()
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in response.text  # no inline script
    assert set(_asset_links(response.text)) == {"app.js", "style.css", "icon.svg"}


def test_versioned_assets_are_cacheable_for_a_year(server: RunningServer) -> None:
    links = _asset_links(httpx.get(f"{server.url}/").text)
    types = {
        "app.js": "text/javascript; charset=utf-8",
        "style.css": "text/css; charset=utf-8",
        "icon.svg": "image/svg+xml",
    }
    for name, link in links.items():
        response = httpx.get(f"{server.url}/{link}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == types[name]
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_an_asset_without_its_current_version_is_revalidated(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/dashboard/app.js?v=old")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


def test_a_matching_etag_answers_304_without_a_body(server: RunningServer) -> None:
    first = httpx.get(f"{server.url}/")
    again = httpx.get(f"{server.url}/", headers={"If-None-Match": first.headers["etag"]})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


def test_an_unknown_asset_is_a_404_problem(server: RunningServer) -> None:
    for name in ("nope.js", "index.html", "..%2Fapi.py"):
        response = httpx.get(f"{server.url}/dashboard/{name}")
        assert response.status_code == 404, name
        assert response.headers["content-type"] == "application/problem+json"

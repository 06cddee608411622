"""Make docs/dashboard.png: the dashboard with realistic data and a minute of chart history.

Run ``python -m tests.browser.screenshot [--dark]`` (about 80 s). Not a test: it publishes
a few thousand small items to a server of its own on 127.0.0.1 at a bounded rate.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

from tests.browser.conftest import CHROMIUM_ARGS
from tests.browser.helpers import open_dashboard, screenshot
from tests.support import RunningServer, run_server

DOCS = Path(__file__).resolve().parents[2] / "docs"
HISTORY_S = 75
JOINS = (12, 30, 33, 51)
"""Seconds into the history at which another subscriber joins."""
PRICES = {"btc": 97000.0, "eth": 3100.0, "sol": 182.0, "ada": 0.71, "doge": 0.16}
CITIES = {"london": 11.0, "tokyo": 17.0, "new-york": 8.0, "lagos": 29.0}
SERVICES = ("api", "web", "worker", "scheduler")
SHOWN = ("prices", "weather", "deploys", "alerts")


def _price(rng: random.Random, coin: str) -> dict[str, Any]:
    PRICES[coin] *= 1 + rng.gauss(0, 0.0015)
    usd = round(PRICES[coin], 2 if PRICES[coin] > 1 else 4)
    return {"topic": "prices", "key": coin, "ttl": 120, "data": {"usd": usd, "venue": "coinbase"}}


def _tick(rng: random.Random) -> dict[str, Any]:
    """One plausible item: a price, a reading, a deploy or an alert."""
    roll = rng.random()
    if roll < 0.55:
        return _price(rng, rng.choice(list(PRICES)))
    if roll < 0.8:
        city = rng.choice(list(CITIES))
        CITIES[city] += rng.gauss(0, 0.1)
        data: dict[str, Any] = {"temp_c": round(CITIES[city], 1), "humidity": rng.randint(40, 90)}
        return {"topic": "weather", "key": city, "ttl": 900, "data": data}
    if roll < 0.93:
        service = rng.choice(SERVICES)
        data = {"version": f"v2.{rng.randint(10, 14)}.{rng.randint(0, 9)}", "status": "healthy"}
        return {"topic": "deploys", "key": service, "ttl": 3600, "data": data}
    host = rng.choice(("db-1", "db-2", "cache-1", "edge-3"))
    data = {"cpu": round(rng.uniform(0.8, 0.99), 2), "msg": f"{host} running hot"}
    return {"topic": "alerts", "key": f"cpu/{host}", "ttl": 45, "data": data}


def _telemetry(rng: random.Random) -> dict[str, Any]:
    """Traffic on a topic the screenshot's dashboard does not show."""
    data = {"rpm": rng.randint(900, 3000), "temp_c": round(rng.uniform(40, 70), 1)}
    return {
        "topic": "telemetry",
        "key": f"pump-{rng.randint(1, 400):03d}",
        "ttl": 300,
        "data": data,
    }


def _submit_form(page: Page, token: str) -> None:
    form = page.locator("#publish")
    form.locator("[name=topic]").fill("prices")
    form.locator("[name=key]").fill("sol")
    form.locator("[name=data]").fill('{"usd": 184.2, "venue": "manual"}')
    form.locator("[name=ttl]").fill("120")
    form.locator("[name=token]").fill(token)
    form.locator("button[type=submit]").click()


def _publish(server: RunningServer, client: httpx.Client, items: list[dict[str, Any]]) -> None:
    client.post(f"{server.url}/items", json=items, headers=server.auth).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dark", action="store_true", help="dark colour scheme")
    parser.add_argument("--out", type=Path, default=DOCS / "dashboard.png")
    args = parser.parse_args()
    rng = random.Random(7)
    with (
        run_server() as server,
        httpx.Client(timeout=10) as client,
        sync_playwright() as playwright,
    ):
        _publish(server, client, [_tick(rng) for _ in range(40)])
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 1000},
            color_scheme="dark" if args.dark else "light",
        )
        page = context.new_page()
        open_dashboard(page, server.url, [("topic", topic) for topic in SHOWN])
        listeners = context.new_page()
        listeners.goto(f"{server.url}/healthz")
        _submit_form(page, server.token)
        started, opened = time.monotonic(), 0
        last, owed = started, 0.0
        last_update = False
        while (elapsed := time.monotonic() - started) < HISTORY_S + 0.3:
            rate = 16 + 10 * math.sin(elapsed / 9) + 6 * math.sin(elapsed / 3.1) + rng.uniform(0, 4)
            # Items owed at this rate since the last batch, however long the loop took.
            owed += rate * (started + elapsed - last)
            last = started + elapsed
            items = [_telemetry(rng) for _ in range(int(owed))]
            owed -= len(items)
            if rng.random() < 0.3 and elapsed < HISTORY_S - 4:  # then only the last update
                items.append(_tick(rng))
            if not last_update and elapsed >= HISTORY_S:  # the highlighted row
                items.append(_price(rng, "btc"))
                last_update = True
            if items:
                _publish(server, client, items)
            if opened < len(JOINS) and elapsed > JOINS[opened]:  # dashboards open elsewhere
                listeners.evaluate(f"new EventSource('{server.url}/stream')")
                opened += 1
            time.sleep(0.1 if last_update else 0.25)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        screenshot(page, args.out.name)
        browser.close()
    print(args.out)


if __name__ == "__main__":
    main()

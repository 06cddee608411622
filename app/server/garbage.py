"""Full garbage collections put off while streams arrive in numbers.

CPython's cyclic garbage collector walks every object it tracks in a full collection,
and starts one whenever the objects that outlived younger collections have grown by a
quarter since the last. An open stream holds about 65 such objects (its connection,
request, task and subscription), so while thousands of streams connect, full collections
follow one another, each longer than the last: about half a second at 20,000 streams,
during which the server answers nothing. While streams start faster than ``storm_rate``
per second, or wait for their turn (`app.http.pacing`), full collections are put off; young
collections go on, so short-lived garbage is still freed. Once starts have been calm for
``settle`` seconds the collector's own thresholds are back and it catches up in one
pass; a storm that lasts longer gets a full collection every ``max_defer`` seconds.

Publishing at volume is a storm too. Every cached item holds objects the collector tracks
(the item, the cache's entry for it), and those replaced or expired leave as fast as new
ones arrive: the long-lived objects grow by a quarter again and again, and each time a
full collection walks the whole cache. In process, batches of 1,000 into a cache of
100,000 items: 8 full collections in 200 batches took 864 ms of 2,678 (74,700 items/s;
123,600 with them put off). So full collections are put off as well while items are
applied faster than ``publish_rate`` per second.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

import anyio

from app.http.pacing import Turnstile

logger = logging.getLogger("tailcast")

_NEVER = 1 << 30
"""A threshold for the oldest generation that is never reached."""
_deferrals = 0
_saved: tuple[int, ...] = ()


def _defer() -> None:
    """Stop full collections, process-wide (several services in one process nest)."""
    global _deferrals, _saved
    if _deferrals == 0:
        _saved = gc.get_threshold()
        gc.set_threshold(_saved[0], _saved[1], _NEVER)
    _deferrals += 1


def _restore() -> None:
    global _deferrals
    _deferrals -= 1
    if _deferrals == 0:
        gc.set_threshold(*_saved)


async def defer_full_collections_during_storms(
    starts: Turnstile,
    applied: Callable[[], int] = lambda: 0,
    *,
    storm_rate: float = 200,
    publish_rate: float = 10_000,
    settle: float = 5,
    max_defer: float = 60,
    period: float = 0.25,
) -> None:
    """For the service's lifetime: put full collections off while streams arrive at
    ``starts`` faster than ``storm_rate`` per second, or wait there for their turn, or
    while items are applied faster than ``publish_rate`` per second (``applied``: how
    many have been so far)."""
    last, last_applied = starts.arrivals, applied()
    deferred_since = calm_since = 0.0
    try:
        while True:
            await anyio.sleep(period)
            now, arrivals, count = time.monotonic(), starts.arrivals, applied()
            streams = arrivals - last >= storm_rate * period or starts.waiting > 0
            items = count - last_applied >= publish_rate * period
            last, last_applied = arrivals, count
            if streams or items:
                calm_since = 0.0
                if not deferred_since:
                    deferred_since = now
                    _defer()
                    what = "many streams starting" if streams else "many items published"
                    logger.info("%s: full garbage collections put off", what)
                elif now - deferred_since >= max_defer:
                    gc.collect()
                    deferred_since = now
            elif deferred_since:
                calm_since = calm_since or now
                if now - calm_since >= settle:
                    deferred_since = 0.0
                    _restore()
                    logger.info(
                        "stream starts and publishing calmed down: full garbage collections resume"
                    )
    finally:
        if deferred_since:
            _restore()

"""Two instances on one Redis log: what one stores, the other streams."""

import httpx
from httpx_sse import connect_sse

from tests.redis_support import RedisProcess
from tests.support import run_server


def test_an_item_published_on_one_instance_streams_from_another(
    redis_server: RedisProcess,
) -> None:
    with (
        run_server(backend=redis_server.url, redis_prefix="shared") as first,
        run_server(backend=redis_server.url, redis_prefix="shared") as second,
        httpx.Client(timeout=5) as client,
    ):
        posted = client.post(first.url + "/items", json={"data": 1}, headers=first.auth)
        assert posted.status_code == 201
        # The other instance's tail may not have read it yet: in the replay, or live.
        with connect_sse(client, "GET", second.url + "/stream") as source:
            items = (sse for sse in source.iter_sse() if sse.event == "item")
            assert next(items).id == posted.json()["id"]

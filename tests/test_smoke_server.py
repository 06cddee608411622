import httpx
from httpx_sse import connect_sse

from tests.support import RunningServer


def test_published_item_is_replayed_on_a_new_stream(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        posted = client.post("/items", json={"key": "k", "data": 1}, headers=server.auth)
        assert posted.status_code == 201
        with connect_sse(client, "GET", "/stream") as source:
            events = source.iter_sse()
            first = next(events)
            assert (first.event, first.id) == ("item", posted.json()["id"])
            assert next(events).event == "live"

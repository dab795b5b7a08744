"""Queue depths read the lists where kombu really puts messages, priorities included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from shared.broker import make_producer
from shared.redis_client import make_redis
from shared.services.queues import queue_depths, queue_keys
from tests.conftest import test_settings
from tests.support.servers import RedisServer

QUEUES = ("depth-test-a", "depth-test-b", "depth-test-idle")


@pytest.fixture
def broker(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = make_redis(redis_server.url)
    client.delete(*(key for queue in QUEUES for key in queue_keys(queue)))
    yield client
    client.delete(*(key for queue in QUEUES for key in queue_keys(queue)))
    client.close()


def test_depth_counts_every_priority_list_of_a_queue(
    broker: redis.Redis, redis_server: RedisServer
) -> None:
    producer = make_producer(test_settings(redis_url=redis_server.url))
    sent = {"depth-test-a": [None, 0, 4, 7, 9, 9], "depth-test-b": [None, 2]}
    for queue, priorities in sent.items():
        for priority in priorities:
            producer.send_task("folio.jobs.none", args=["x"], queue=queue, priority=priority)
    assert queue_depths(broker, QUEUES) == {"depth-test-a": 6, "depth-test-b": 2,
                                            "depth-test-idle": 0}  # fmt: skip
    # The lists are the ones kombu wrote (a rename in kombu would show here first).
    filled = {key for queue in QUEUES for key in queue_keys(queue) if broker.llen(key)}
    assert filled == {"depth-test-a", "depth-test-a\x06\x163", "depth-test-a\x06\x166",
                      "depth-test-a\x06\x169", "depth-test-b"}  # fmt: skip


def test_an_unreachable_broker_raises() -> None:
    dead = make_redis("redis://127.0.0.1:1/0")
    with pytest.raises(redis.RedisError):
        queue_depths(dead, QUEUES)

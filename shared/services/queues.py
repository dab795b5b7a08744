"""Depth of each Celery queue, read straight from the broker's Redis.

kombu's Redis transport keeps queue ``q`` as one list per priority step: ``q`` itself
(priority 0, where every Folio message goes) and ``q\\x06\\x163``, ``q\\x06\\x166``,
``q\\x06\\x169``. The depth is the sum of their lengths: the messages waiting for a
worker. A message a worker has taken (running, or held for a countdown) is no longer
in a list, so it does not count.
"""

from __future__ import annotations

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel

from shared.job_types import QUEUES

PRIORITY_SEP = Channel.sep


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold ``queue``'s waiting messages, one per priority step."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS]


def queue_depths(broker: redis.Redis, queues: tuple[str, ...] = QUEUES) -> dict[str, int]:
    """Messages waiting in each of ``queues`` (one round trip); raises ``RedisError``."""
    with broker.pipeline(transaction=False) as pipe:
        for queue in queues:
            for key in queue_keys(queue):
                pipe.llen(key)
        lengths = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {queue: sum(lengths[i * steps : (i + 1) * steps]) for i, queue in enumerate(queues)}

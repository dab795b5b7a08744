"""Worker liveness as seen through Redis heartbeats.

Each worker process refreshes ``folio:workers:<hostname>`` with a 60-second expiry; the
web process counts the keys that still exist. (Workers arrive with the job system.)
"""

from __future__ import annotations

import redis

HEARTBEAT_PREFIX = "folio:workers:"
HEARTBEAT_TTL = 60


def count_live_workers(store: redis.Redis) -> int:
    """Workers whose heartbeat is younger than ``HEARTBEAT_TTL`` seconds."""
    return sum(1 for _ in store.scan_iter(match=HEARTBEAT_PREFIX + "*", count=1000))

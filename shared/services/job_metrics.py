"""Figures about jobs for ``/metrics``: counts from the jobs table, durations from Redis.

Durations are a histogram in Redis: workers record, the web's ``/metrics`` exports.

Jobs run on Celery workers, often on other hosts than the web. A registry in each worker
process would need a scrape target of its own per host (and multiprocess files per
pool), and would lose its counts with every restart. Instead each job that ends on a
worker adds its duration to one hash in the main Redis (which does not evict): the
count of its bucket and its seconds, in one ``MULTI`` (so a scrape never sees one
without the other). Any web process reads the hash back as a Prometheus histogram, so
one scrape target covers every worker, and the counts outlive restarts like any
Prometheus counter should (they restart from zero only if Redis loses the hash).

Fields are ``type|status|le`` (the number of durations in that bucket alone, ``le`` the
bucket's upper bound as text) and ``type|status|sum``; the cumulative buckets and the
count are summed when read, so buckets can change between releases without a
migration (an old bound is counted in every new bucket at or above it).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field

import redis

from shared.db import DbSession
from shared.job_types import JOB_TYPES
from shared.models import JobStatus
from shared.services.jobs import job_statistics

log = logging.getLogger(__name__)
DURATIONS_KEY = "folio:metrics:job_duration"
# Seconds: a small report ends in milliseconds, an import of 100,000 rows in minutes,
# and JOB_TIME_LIMIT stops a job after 30 minutes by default.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                    600.0, 1800.0, math.inf)  # fmt: skip
SUM = "sum"


@dataclass
class Histogram:
    """One series' cumulative buckets (``le`` text, durations at or under it), its count
    and its sum."""

    buckets: list[tuple[str, int]] = field(default_factory=list)
    count: int = 0
    sum: float = 0.0


def bound_text(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def bucket_for(seconds: float) -> float:
    """The smallest bucket bound that ``seconds`` fits under."""
    return next(bound for bound in DURATION_BUCKETS if seconds <= bound)


def record_duration(store: redis.Redis, job_type: str, status: str, seconds: float) -> None:
    """Count one job of ``job_type`` that ended ``status`` after ``seconds``.

    Best effort: a Redis outage loses this one observation (logged), never the job.
    """
    seconds = max(seconds, 0.0)
    prefix = f"{job_type}|{status}|"
    try:
        with store.pipeline(transaction=True) as pipe:
            pipe.hincrby(DURATIONS_KEY, prefix + bound_text(bucket_for(seconds)), 1)
            pipe.hincrbyfloat(DURATIONS_KEY, prefix + SUM, seconds)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("job duration not recorded (%s %s, %.3f s): %s",
                    job_type, status, seconds, exc)  # fmt: skip


def read_durations(store: redis.Redis) -> dict[tuple[str, str], Histogram]:
    """Every recorded series by (type, status), with cumulative buckets; raises
    ``RedisError``."""
    raw: dict[str | bytes, str | bytes] = store.hgetall(DURATIONS_KEY)
    counts: dict[tuple[str, str], dict[float, int]] = defaultdict(dict)
    sums: dict[tuple[str, str], float] = defaultdict(float)
    for key, value in raw.items():
        text = key.decode() if isinstance(key, bytes) else key
        job_type, status, last = text.rsplit("|", 2)
        if last == SUM:
            sums[(job_type, status)] = float(value)
        else:
            bucket = counts[(job_type, status)]
            bucket[float(last)] = bucket.get(float(last), 0) + int(value)
    series = {}
    for labels, by_bound in counts.items():
        buckets = [(bound_text(bound), sum(n for b, n in by_bound.items() if b <= bound))
                   for bound in DURATION_BUCKETS]  # fmt: skip
        series[labels] = Histogram(buckets, sum(by_bound.values()), sums[labels])
    return series


def count_jobs(session: DbSession) -> dict[tuple[str, str], int]:
    """Jobs by (type, status), with every known type and status present (0 if none)."""
    counts = dict.fromkeys(((t, s) for t in JOB_TYPES for s in JobStatus.ALL), 0)
    return counts | job_statistics(session).counts

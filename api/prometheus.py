"""``GET /metrics`` for Prometheus: what the web counts, plus what it reads when scraped.

Counted per request by two hooks registered before any other, so that they time every
other hook (the limiter, authentication) and see the final status: the instruments of
``shared.metrics``, added up across gunicorn's worker processes by prometheus-client's
multiprocess mode. The route label is the URL rule, never the raw path (one series
per route, whatever ids clients send).

Read at each scrape, because no single process holds them:

- jobs by type and status: one ``GROUP BY`` on the jobs table (job state lives there);
- job durations: the histogram that workers keep in Redis (``shared.services.job_metrics``);
- queue depths: the broker's lists (``shared.services.queues``).

A source that cannot answer is left out and reported by ``folio_metrics_source_up``: a
scrape answers 200 with everything else, never a 500.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from flask import Flask, Response, current_app, request
from prometheus_client import REGISTRY, Counter, Histogram, Metric
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from shared.db import db
from shared.metrics import HTTP_DURATION, HTTP_REQUESTS, UNMATCHED
from shared.services.job_metrics import count_jobs, read_durations
from shared.services.queues import queue_depths

log = logging.getLogger(__name__)
SELF = "metrics.metrics"  # the scrape is not counted as traffic
STARTED = "folio.started"  # in the WSGI environ: cheaper to reach than ``g``
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"  # any other token a client sends: one series, not one per token
# Each series' child, by its labels: ``labels()`` validates and locks on every call.
# Racing threads get the same child from ``labels()``, so no lock is needed here.
_COUNTERS: dict[tuple[str, str, int], Counter] = {}
_TIMERS: dict[tuple[str, str], Histogram] = {}
SAME_EVERYWHERE = "Every web instance reports the same figure: aggregate with max, not sum."


@dataclass(frozen=True)
class MetricsSources:
    """What a scrape reads besides the counters: the Redis clients, and where counters are."""

    store: redis.Redis  # the main Redis (job durations)
    broker: redis.Redis
    multiprocess_dir: str | None


def init_metrics(app: Flask) -> None:
    """Count every request; call before any other hook is registered."""
    app.before_request(_start_timer)
    app.after_request(_count_request)
    services = app.extensions["folio"]
    app.extensions["folio_metrics"] = MetricsSources(
        store=services.redis,
        broker=services.broker,
        # prometheus-client's own switch, read as it reads it (gunicorn.conf.py sets it).
        multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
    )


def _start_timer() -> None:
    request.environ[STARTED] = time.perf_counter()


def _count_request(response: Response) -> Response:
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    rule = req.url_rule
    if rule is not None and rule.endpoint == SELF:
        return response
    route = rule.rule if rule is not None else UNMATCHED
    method = req.method if req.method in METHODS else OTHER_METHOD
    key = (method, route, response.status_code)
    counter = _COUNTERS.get(key)
    if counter is None:  # first of its kind in this process (a few dozen at most)
        counter = _COUNTERS[key] = HTTP_REQUESTS.labels(*key)
    counter.inc()
    started = req.environ.get(STARTED)
    if started is not None:
        timer = _TIMERS.get(key[:2])
        if timer is None:
            timer = _TIMERS[key[:2]] = HTTP_DURATION.labels(method, route)
        timer.observe(time.perf_counter() - started)
    return response


class Scrape:
    """One scrape: the counters (of every worker process) and the sources read now."""

    def __init__(self, sources: MetricsSources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        counters: Collector = (
            MultiProcessCollector(None, path=self.sources.multiprocess_dir)
            if self.sources.multiprocess_dir
            else REGISTRY
        )
        yield from counters.collect()
        up = GaugeMetricFamily(
            "folio_metrics_source_up",
            "1 when this scrape could read the source (database: folio_jobs; redis: "
            "folio_job_duration_seconds; broker: folio_queue_depth), 0 when it could not "
            "(those metrics are then missing from this scrape).",
            labels=["source"],
        )
        readers: dict[str, Callable[[], list[Metric]]] = {
            "database": _jobs, "redis": self._durations, "broker": self._queues,
        }  # fmt: skip
        for source, read in readers.items():
            try:
                families = read()
            except (SQLAlchemyError, redis.RedisError) as exc:
                log.warning("metrics: %s unavailable: %s", source, exc)
                if isinstance(exc, SQLAlchemyError):
                    db.session.rollback()
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _durations(self) -> list[Metric]:
        family = HistogramMetricFamily(
            "folio_job_duration_seconds",
            "Run time of jobs that ended on a worker (its last attempt, from claim to "
            "end), by type and final status; kept in Redis, so it covers every worker. "
            "Jobs cancelled while still queued never ran and are not counted. " + SAME_EVERYWHERE,
            labels=["type", "status"],
        )
        for (job_type, status), histogram in sorted(read_durations(self.sources.store).items()):
            family.add_metric([job_type, status], histogram.buckets, histogram.sum)
        return [family]

    def _queues(self) -> list[Metric]:
        family = GaugeMetricFamily(
            "folio_queue_depth",
            "Messages waiting in each Celery queue (not yet taken by a worker). " + SAME_EVERYWHERE,
            labels=["queue"],
        )
        for queue, depth in queue_depths(self.sources.broker).items():
            family.add_metric([queue], depth)
        return [family]


def _jobs() -> list[Metric]:
    family = GaugeMetricFamily(
        "folio_jobs",
        "Jobs in the database by type and status. Finished jobs are purged after "
        "JOB_RESULT_TTL, so this can fall: count finished jobs with "
        "folio_job_duration_seconds_count. " + SAME_EVERYWHERE,
        labels=["type", "status"],
    )
    counts = count_jobs(db.session)
    db.session.rollback()  # ends the read transaction at once
    for (job_type, status), count in sorted(counts.items()):
        family.add_metric([job_type, status], count)
    return [family]


def metrics_response(accept: str) -> Response:
    """This scrape in the format the client asked for (OpenMetrics or Prometheus text)."""
    sources: MetricsSources = current_app.extensions["folio_metrics"]
    encode, content_type = choose_encoder(accept)
    body = encode(Scrape(sources))
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})

"""What a web process counts for ``GET /metrics``: the instruments, their names and HELP.

The instruments are prometheus-client's own, made once per process at import (as the
library expects: it keys each series by name). Under gunicorn the values live in files
of ``PROMETHEUS_MULTIPROC_DIR``, one per worker process, and ``/metrics`` adds them up
(``gunicorn.conf.py`` sets the directory before anything imports prometheus-client);
elsewhere (the Flask dev server, tests) they live in this process's default registry.

A Celery worker counts its cache reads too (``shared.services.catalog_cache``), in its
own memory, and exports nothing: a worker never sees the web's directory
(``worker/main.py``). What happens on workers (job durations) goes through Redis
instead (``shared.services.job_metrics``); what lives in the database or the broker
(jobs, queue depths) is read when scraped (``api.metrics``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# A catalog read from cache is a few milliseconds; a job's long poll waits up to 30 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED = "<unmatched>"  # the route label of a request that matched no route
HIT, MISS = "hit", "miss"

HTTP_REQUESTS = Counter(
    "folio_http_requests",
    "HTTP requests answered by the app, by method, route pattern (e.g. "
    "/api/books/<id:book_id>; <unmatched> for paths that match no route) and status. "
    "GET /metrics itself is not counted.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "folio_http_request_duration_seconds",
    "Time the app took to answer an HTTP request (from its first hook to its response "
    "object, body streaming excluded), by method and route pattern.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
CACHE_READS = Counter(
    "folio_cache_reads",
    "Public catalog reads by kind (books.list, books.get, books.popular, search) and "
    "result: hit = answered from the cache, miss = computed from the database by this "
    "request (including while the cache Redis is unavailable). Nothing is counted "
    "with CACHE_ENABLED=false.",
    ["kind", "result"],
)
CACHE_ERRORS = Counter(
    "folio_cache_storage_errors",
    "Cache Redis operations that failed (reads then go to the database; a failed "
    "version bump is also logged as an error).",
)
RATE_LIMITED = Counter(
    "folio_rate_limit_rejections",
    "Requests refused with 429 by a rate limit, by the limit's scope: global (the "
    "per-client budget of the whole API), auth.login, search.search or jobs.",
    ["scope"],
)
LIMITER_ERRORS = Counter(
    "folio_rate_limit_storage_errors",
    "Rate limit checks that failed because Redis could not answer; such requests are "
    "let through unlimited (fail open).",
)

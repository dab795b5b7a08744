"""Catalog cache: a cached page of the catalog against a bare route and against itself uncached.

``python -m bench.cache`` builds its stack in a temporary folder with the helpers of
``bench.jobs``: an embedded ``redis-server``, a SQLite database migrated with
``flask db upgrade``, one user made with ``flask create-user``, and 100,000 books from
``flask seed-db --books 100000`` (not timed). Two gunicorns from the Procfile's ``web``
line (``gunicorn.conf.py``: 2 workers x 4 threads), with ``bench.bare_app:app`` in place
of ``api.wsgi:app`` (Folio's app plus ``GET /api/bench/bare``, a constant
``{"status": "ok"}`` behind the same hooks), serve that same database with that same
Redis: **cached** with ``CACHE_ENABLED=true`` (the default) and **uncached** with
``CACHE_ENABLED=false``; both with the rate limiter on and limits too high to refuse.
Every request is anonymous (no token): the limiter keys on the client address and
applies ``RATELIMIT_DEFAULT``. Every process it starts is stopped by its PID at the end,
and the folder is removed. Three cases:

- ``cached list``: ``GET /api/books?page=1`` on the cached stack (a hit, after warm-up);
- ``bare``: ``GET /api/bench/bare`` on the cached stack;
- ``uncached list``: ``GET /api/books?page=1`` on the uncached stack.

1. Throughput: requests per second over a fixed number of requests from 8 threads, each
   with its own keep-alive connection (``http.client``, new connections every round), in
   interleaved rounds (each case leads in turn), medians; and the servers' CPU per
   request in the same rounds (gunicorn's processes and redis-server, ``/proc``). Goals:
   cached list / bare >= 0.7; cached list / uncached list >= 5.
2. Latency: the same requests one at a time from one connection, in interleaved rounds;
   median and p90.
3. Redis round trips per request (``MONITOR``), as ``bench.limits`` counts them.

``--profile`` then times the cases in this process (Flask test client, the same Redis and
database; CPU time of the thread per request), with two references: the bare view in a
plain Flask app and in Folio's app with the limiter off; and splits each list read
between the cache lookup (or the queries), the JSON response and its ETag.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import patch

import requests
from flask import Flask
from flask.testing import FlaskClient

from bench.bare_app import BARE_PATH
from bench.jobs import PROCFILE, Stack, build_template, flask_cli, machine, stack_env, verdict
from bench.limits import (
    LIMITED,
    RedisCalls,
    Route,
    Stopwatch,
    cpu_seconds,
    gunicorn_pids,
    loads_for,
    redis_calls,
    working_tree,
)
from tests.support.servers import RedisServer

BOOKS = 100_000
LIST_PATH = "/api/books?page=1"
PROCFILE_APP, BENCH_APP = "api.wsgi:app", "bench.bare_app:app"
SETTINGS = {
    "cached": LIMITED | {"CACHE_ENABLED": "true"},
    "uncached": LIMITED | {"CACHE_ENABLED": "false"},
}
GOAL_BARE, GOAL_SPEEDUP = 0.7, 5.0
OPTIONS = {  # flag: (default, with --quick, help)
    "--books": (BOOKS, BOOKS, "catalog size"),
    "--requests": (600, 300, "(1) requests per round, cached list and bare"),
    "--uncached-requests": (150, 60, "(1) requests per round, uncached list"),
    "--rounds": (8, 3, "(1) rounds of each case"),
    "--clients": (8, 8, "(1) keep-alive clients"),
    "--web-threads": (4, 4, "gunicorn threads per worker"),
    "--latency-requests": (100, 40, "(2) requests per round and case (a quarter uncached)"),
    "--latency-rounds": (4, 2, "(2) rounds"),
    "--redis-requests": (100, 40, "(3) requests counted in Redis"),
}


@dataclass(frozen=True)
class Case:
    name: str
    stack: str  # a key of SETTINGS
    route: Route


CACHED = Case("cached list", "cached", Route(f"GET {LIST_PATH}", LIST_PATH, anonymous=True))
BARE = Case("bare", "cached", Route(f"GET {BARE_PATH}", BARE_PATH, anonymous=True))
UNCACHED = Case("uncached list", "uncached",
                Route(f"GET {LIST_PATH}", LIST_PATH, anonymous=True))  # fmt: skip
CASES = (CACHED, BARE, UNCACHED)


def build_catalog(folder: Path, redis_url: str, books: int) -> Path:
    """The migrated database of ``bench.jobs`` with ``books`` seeded books."""
    database = build_template(folder, redis_url)
    flask_cli(stack_env(database, redis_url, 1), "seed-db", "--books", str(books))
    return database


def start_stack(database: Path, redis_url: str, folder: Path, kind: str, threads: int) -> Stack:
    """The Procfile's web line serving ``bench.bare_app:app``; logs in ``folder/kind``."""
    logs = folder / kind
    logs.mkdir()
    stack = Stack(database, stack_env(database, redis_url, threads) | SETTINGS[kind], logs)
    web = PROCFILE["web"]
    assert PROCFILE_APP in web, web
    with patch.dict(PROCFILE, web=web.replace(PROCFILE_APP, BENCH_APP)):
        stack.start_web()  # stops its own gunicorn if it fails
    return stack


def check_middleware(stacks: dict[str, Stack]) -> dict[Case, int]:
    """Every case answers 200 through the limiter (its headers); the body size of each."""
    sizes = {}
    for case in CASES:
        response = requests.get(stacks[case.stack].base_url + case.route.path, timeout=60)
        assert response.status_code == 200, (case, response.text[:300])
        for header in ("X-Request-ID", "X-RateLimit-Limit"):
            assert header in response.headers, (case, header, dict(response.headers))
        sizes[case] = len(response.content)
    return sizes


def rotated(index: int) -> Sequence[Case]:
    """The cases, each leading in turn, so that a drift in load hits them all alike."""
    shift = index % len(CASES)
    return CASES[shift:] + CASES[:shift]


# -- 1. throughput and 2. latency ----------------------------------------------------------


@dataclass
class Series:
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # gunicorn + redis-server, per request
    redis_ms: list[float] = field(default_factory=list)  # redis-server alone, per request
    latency_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)


def measure_throughput(
    stacks: dict[str, Stack], redis_server: RedisServer, requests_of: dict[Case, int], *,
    rounds: int, clients: int,
) -> dict[Case, Series]:  # fmt: skip
    """Requests/s and server CPU per request of every case, one case loaded at a time."""
    loads = {case: loads_for(stacks[case.stack], clients, case.route) for case in CASES}
    results = {case: Series() for case in CASES}
    try:
        for case, load in loads.items():  # warm-up: connections, imports, the cache entry
            _, statuses = load.run("GET", case.route.path, None, 8 * clients)
            assert set(statuses) == {200}, (case, statuses)
        assert redis_server.process is not None
        redis_pid = [redis_server.process.pid]
        pids = {kind: [*gunicorn_pids(stack), *redis_pid] for kind, stack in stacks.items()}
        for index in range(rounds):
            for case in rotated(index):
                load, total = loads[case], requests_of[case]
                for client in load.clients:
                    client.close()  # new connections, spread over both workers anew
                before = cpu_seconds(pids[case.stack]), cpu_seconds(redis_pid)
                rate, statuses = load.run("GET", case.route.path, None, total)
                after = cpu_seconds(pids[case.stack]), cpu_seconds(redis_pid)
                assert set(statuses) == {200}, (case, statuses)
                series = results[case]
                series.rates.append(rate)
                series.cpu_ms.append((after[0] - before[0]) * 1000 / total)
                series.redis_ms.append((after[1] - before[1]) * 1000 / total)
    finally:
        for load in loads.values():
            load.close()
    return results


def measure_latency(stacks: dict[str, Stack], results: dict[Case, Series], *,
                    requests_of: dict[Case, int], rounds: int) -> None:  # fmt: skip
    """One request at a time from one keep-alive connection per case, in rounds."""
    loads = {case: loads_for(stacks[case.stack], 1, case.route) for case in CASES}
    try:
        for index in range(rounds):
            for case in rotated(index):
                client = loads[case].clients[0]
                for _ in range(requests_of[case]):
                    started = time.perf_counter()
                    status, _ = client.request("GET", case.route.path)
                    results[case].latency_ms.append((time.perf_counter() - started) * 1000)
                    assert status == 200, (case, status)
    finally:
        for load in loads.values():
            load.close()


# -- optional: where a cached read's time goes, in process ---------------------------------


VIEW = "the view (catalog_read), all of it"
LOOKUP = "  CatalogCache.read (a hit: the lookup; caching off: computing the page)"
FIND = "    the lookup script (version, hot count, entry: one round trip, JSON decoding)"
COUNT = "    COUNT of the catalog (books.count_books)"
PAGE = "    the page's SELECT (books.list_books)"
DUMP = "    the books' dump (books_schema.dump)"
RENDER = "    rendering (JSON text and its ETag, once per entry)"
RESPOND = "  the response (make_conditional: ETag against If-None-Match)"
PARTS = (VIEW, LOOKUP, FIND, COUNT, PAGE, DUMP, RENDER, RESPOND)
PLAIN, UNLIMITED = "bare, plain Flask (no Folio)", "bare, Folio with the limiter off"


def profile_in_process(database: Path, redis_url: str, *, requests_per_round: int,
                       rounds: int) -> str:  # fmt: skip
    """CPU per request of each case in this process, and where a list read spends it.

    Two more references: the bare view in a plain Flask app, and in Folio's app with the
    limiter off. The view's helpers are wrapped with a stopwatch where the view looks
    them up (no code is changed; the wrappers are removed after).
    """
    import api.blueprints.books as books_views  # noqa: PLC0415 - only the profile needs these
    import api.cache  # noqa: PLC0415
    from bench.bare_app import bare, create_bench_app  # noqa: PLC0415
    from shared.config import Settings  # noqa: PLC0415
    from shared.services import books, catalog_cache, catalog_reads  # noqa: PLC0415

    logging.disable(logging.INFO)  # the apps' request logs, in this process only
    env = stack_env(database, redis_url, 1)
    apps = {kind: create_bench_app(Settings.from_env(env | SETTINGS[kind])) for kind in SETTINGS}
    plain = Flask("plain")
    plain.add_url_rule(BARE_PATH, "bare", bare)
    unlimited = create_bench_app(Settings.from_env(env | {"RATELIMIT_ENABLED": "false"}))
    probes: dict[str, tuple[FlaskClient, str]] = {
        case.name: (apps[case.stack].test_client(), case.route.path) for case in CASES
    }
    probes[PLAIN] = plain.test_client(), BARE_PATH
    probes[UNLIMITED] = unlimited.test_client(), BARE_PATH
    clock = Stopwatch()
    cache_class, response_class = catalog_cache.CatalogCache, api.cache.Response
    originals: list[tuple[Any, str, Any]] = [
        (books_views, "catalog_read", books_views.catalog_read),
        (cache_class, "read", cache_class.read),
        (cache_class, "_find", cache_class._find),
        (books, "count_books", books.count_books),
        (books, "list_books", books.list_books),
        (catalog_reads.books_schema, "dump", catalog_reads.books_schema.dump),
        (catalog_reads, "render", catalog_reads.render),
        (response_class, "make_conditional", response_class.make_conditional),
    ]
    cpu: dict[str, list[float]] = {name: [] for name in probes}
    spent: dict[str, Counter] = {name: Counter() for name in probes}
    try:
        for (owner, attribute, original), part in zip(originals, PARTS, strict=True):
            setattr(owner, attribute, clock.wrap(part, original))
        for client, path in probes.values():  # warm-up, and the cache entry
            for _ in range(20):
                assert client.get(path).status_code == 200, path
        names = list(probes)
        for index in range(rounds):
            for name in names[index % len(names) :] + names[: index % len(names)]:
                client, path = probes[name]
                before, started = Counter(clock.spent), time.thread_time()
                for _ in range(requests_per_round):
                    client.get(path)
                cpu[name].append((time.thread_time() - started) * 1000 / requests_per_round)
                spent[name].update(clock.spent - before)
    finally:
        for owner, attribute, original in originals:
            setattr(owner, attribute, original)
        logging.disable(logging.NOTSET)
    lines = [f"in process (Flask test client, CPU time of the thread), ms per request, median "
             f"of {rounds} rounds of {requests_per_round}:"]  # fmt: skip
    lines += [f"   {statistics.median(values):6.3f}  {name}" for name, values in cpu.items()]
    total = requests_per_round * rounds
    for case in (CACHED, UNCACHED):
        lines.append(f"   {case.name}, where the view spends it (mean per request):")
        lines += [f"     {spent[case.name][part] * 1000 / total:6.3f}  {part}" for part in PARTS
                  if spent[case.name][part]]  # fmt: skip
    return "\n".join(lines)


# -- the report ---------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(results: dict[Case, Series], calls: dict[Case, RedisCalls], sizes: dict[Case, int],
           args: argparse.Namespace) -> str:  # fmt: skip
    cached, bare, uncached = results[CACHED], results[BARE], results[UNCACHED]
    vs_bare, speedup = cached.rate / bare.rate, cached.rate / uncached.rate
    lines = [
        "| measure | figure | baseline | ratio | goal | server CPU ms per request, "
        "figure / baseline (baseline / figure) |",
        "| --- | ---: | ---: | ---: | --- | ---: |",
        f"| cached `GET {LIST_PATH}` against bare `GET {BARE_PATH}`, req/s | "
        f"{cached.rate:.0f} | {bare.rate:.0f} | {vs_bare:.2f} | >= {GOAL_BARE} "
        f"{verdict(vs_bare >= GOAL_BARE)} | {cached.cpu:.2f} / {bare.cpu:.2f} "
        f"({bare.cpu / cached.cpu:.2f}) |",
        f"| cached against uncached `GET {LIST_PATH}`, req/s | {cached.rate:.0f} | "
        f"{uncached.rate:.0f} | {speedup:.1f} | >= {GOAL_SPEEDUP:.0f} "
        f"{verdict(speedup >= GOAL_SPEEDUP)} | {cached.cpu:.2f} / {uncached.cpu:.2f} "
        f"({uncached.cpu / cached.cpu:.1f}) |",
        "",
        f"1. {args.rounds} rounds, {args.clients} keep-alive clients (http.client), gunicorn "
        f"2 workers x {args.web_threads} threads each, each case leading in turn; requests "
        f"per round: {args.requests} (cached list, bare), {args.uncached_requests} (uncached "
        "list):",
    ]
    for case in CASES:
        series = results[case]
        lines += [
            f"   {case.name} ({case.route.name}, {sizes[case]:,} bytes):",
            "     req/s: " + ", ".join(f"{rate:.0f}" for rate in series.rates),
            "     server CPU ms per request: " + ", ".join(f"{ms:.2f}" for ms in series.cpu_ms),
            "     of which redis-server, mean of all rounds (10 ms ticks): "
            f"{statistics.mean(series.redis_ms):.3f}",
        ]
    paired = [c / b for c, b in zip(cached.rates, bare.rates, strict=True)]
    lines.append("   per round cached / bare: " + ", ".join(f"{r:.2f}" for r in paired)
                 + f" (median {statistics.median(paired):.2f})")  # fmt: skip
    lines.append(
        f"2. latency, one request at a time on one connection ({args.latency_rounds} rounds "
        f"of {args.latency_requests} per case; uncached {args.latency_requests // 4}), ms:"
    )
    for case in CASES:
        values = results[case].latency_ms
        lines.append(f"   {case.name}: median {statistics.median(values):.2f}, "
                     f"p90 {percentile(values, 0.9):.2f}")  # fmt: skip
    lines.append(
        f"3. Redis commands per request ({args.redis_requests} requests, one at a time, "
        "MONITOR): sent by the app (a pipeline sends several in one round trip) [run inside "
        "a Lua script]:"
    )

    def per_request(counts: dict[str, float]) -> str:
        return ", ".join(f"{name} {value:.2f}" for name, value in counts.items())

    for case, counted in calls.items():
        text = per_request(counted.sent) or "none"
        if counted.in_scripts:
            text += f" [{per_request(counted.in_scripts)}]"
        lines.append(f"   {case.name}: {text}")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smaller numbers below")
    for flag, (default, quick, text) in OPTIONS.items():
        parser.add_argument(flag, type=int, default=default,
                            help=f"{text} (default {default}, --quick {quick})")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="then where the CPU goes, in process")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:  # the quick numbers become the defaults; those given still win
        parser.set_defaults(**{flag[2:].replace("-", "_"): quick
                               for flag, (_, quick, _) in OPTIONS.items()})  # fmt: skip
        args = parser.parse_args(argv)
    started = time.perf_counter()

    def progress(text: str) -> None:
        print(f"{text} ({time.perf_counter() - started:.0f} s)", flush=True)

    print(f"start: {machine()}; {working_tree()}", flush=True)
    with ExitStack() as cleanup:  # undone in reverse: the stacks, Redis, the folder
        folder = Path(tempfile.mkdtemp(prefix="folio-bench-cache-"))
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        redis_server = RedisServer()
        cleanup.callback(redis_server.remove)
        redis_server.start()
        database = build_catalog(folder, redis_server.url, args.books)
        progress(f"{args.books:,} books seeded")
        stacks: dict[str, Stack] = {}
        for kind in SETTINGS:
            stacks[kind] = start_stack(database, redis_server.url, folder, kind,
                                       args.web_threads)  # fmt: skip
            cleanup.callback(stacks[kind].stop)
        sizes = check_middleware(stacks)
        progress("stacks up")
        fast, slow = args.requests, args.uncached_requests
        per_round = {CACHED: fast, BARE: fast, UNCACHED: slow}
        results = measure_throughput(stacks, redis_server, per_round, rounds=args.rounds,
                                     clients=args.clients)  # fmt: skip
        progress("1. throughput measured")
        fast, slow = args.latency_requests, max(1, args.latency_requests // 4)
        measure_latency(stacks, results, requests_of={CACHED: fast, BARE: fast, UNCACHED: slow},
                        rounds=args.latency_rounds)  # fmt: skip
        progress("2. latency measured")
        calls = {case: redis_calls(stacks[case.stack], case.route, redis_server.url,
                                   args.redis_requests) for case in CASES}  # fmt: skip
        progress("3. Redis commands counted")
        print("\n" + report(results, calls, sizes, args))
        for stack in stacks.values():
            stack.stop()  # the cores to the profile alone
        if args.profile:
            profile = profile_in_process(database, redis_server.url, requests_per_round=200,
                                         rounds=6)  # fmt: skip
            print("\n" + profile)
    print(f"\nend: {machine()}; total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

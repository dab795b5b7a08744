"""Rate limiting: what a request costs with the limiter on, against the same stack with it off.

``python -m bench.limits`` builds its stack in a temporary folder with the helpers of
``bench.jobs``: an embedded ``redis-server``, a SQLite database migrated with
``flask db upgrade``, one user made with ``flask create-user`` and set to ``premium``, and
100 books from ``flask seed-db --books 100``. Two gunicorns from the Procfile's ``web``
line (``gunicorn.conf.py``: 2 workers x 4 threads) serve that same database with that same
Redis, one with ``RATELIMIT_ENABLED=true`` and limits too high to ever refuse, the other
with ``RATELIMIT_ENABLED=false``. Every process it starts is stopped by its PID at the
end, and the folder is removed. Two routes:

- ``GET /api/books/{id}`` of an existing book, anonymous (no ``Authorization`` header):
  the limiter keys on the client address and applies ``RATELIMIT_DEFAULT``;
- ``GET /api/users/me`` with the premium user's bearer token: the limiter keys on the
  user and applies ``RATELIMIT_PREMIUM``.

1. Throughput: requests per second over a fixed number of requests from 8 threads, each
   with its own keep-alive connection (``http.client``, new connections every round), in
   interleaved rounds (the order of the two stacks alternates), medians; ratio = limited
   / unlimited. Goal: >= 0.8. Also the servers' CPU per request in the same rounds (user +
   system time of gunicorn's processes and redis-server, from ``/proc/<pid>/stat``): less
   sensitive than requests/s to other load on the machine, and to how gunicorn's two
   workers happen to share the connections.
2. Redis round trips: every command Redis receives (``MONITOR``) while a fixed number of
   requests is sent one at a time to each stack; per request, the commands the app sent
   (one round trip each: nothing in the request path pipelines) and those run inside Lua.

``--profile`` then times both apps in this process (Flask test client, the same Redis and
database; CPU time of the thread per request) and splits the limited app's extra time
between the limiter's hooks and its storage calls, wrapped with a stopwatch.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.jobs import (
    EMAIL,
    PASSWORD,
    LoadGenerator,
    Stack,
    build_template,
    flask_cli,
    machine,
    stack_env,
    verdict,
)
from shared.config import PROJECT_ROOT, Settings
from tests.support.servers import RedisServer

HIGH = "100000000 per hour"  # never refuses in a bench
LIMITED = {"RATELIMIT_ENABLED": "true", "RATELIMIT_DEFAULT": HIGH, "RATELIMIT_PREMIUM": HIGH}
UNLIMITED = {"RATELIMIT_ENABLED": "false"}
SETTINGS = {"on": LIMITED, "off": UNLIMITED}
BOOKS = 100
GOAL = 0.8
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    anonymous: bool


def routes(book_id: int) -> tuple[Route, ...]:
    return (
        Route("anonymous GET /api/books/{id}", f"/api/books/{book_id}", anonymous=True),
        Route("premium GET /api/users/me", "/api/users/me", anonymous=False),
    )


def build_database(folder: Path, redis_url: str) -> tuple[Path, int]:
    """The migrated database with the premium user of ``bench.jobs`` and ``BOOKS`` books."""
    database = build_template(folder, redis_url)
    flask_cli(stack_env(database, redis_url, 1), "seed-db", "--books", str(BOOKS))
    with closing(sqlite3.connect(database)) as connection:
        book_id = connection.execute(
            "SELECT id FROM books ORDER BY id LIMIT 1 OFFSET ?", (BOOKS // 2,)
        ).fetchone()[0]
    return database, int(book_id)


def start_stack(database: Path, redis_url: str, folder: Path, kind: str, threads: int) -> Stack:
    """gunicorn from the Procfile, logged in as the premium user, logs in ``folder/kind``."""
    logs = folder / kind
    logs.mkdir()
    stack = Stack(database, stack_env(database, redis_url, threads) | SETTINGS[kind], logs)
    stack.start_web()  # stops its own gunicorn if it fails
    return stack


def loads_for(stack: Stack, clients: int, route: Route) -> LoadGenerator:
    load = LoadGenerator(stack, clients)
    if route.anonymous:
        for client in load.clients:
            client.headers = {}
    return load


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


def gunicorn_pids(stack: Stack) -> list[int]:
    """gunicorn's master and its workers (the master's children): processes we started."""
    assert stack.web is not None
    master = stack.web.popen.pid  # bash exec'd gunicorn: the same process
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


# -- 1. throughput ------------------------------------------------------------------------


@dataclass
class Throughput:
    rates: dict[str, list[float]] = field(default_factory=lambda: {"on": [], "off": []})
    # CPU ms per request per round: gunicorn's processes and redis-server, and redis alone
    cpu: dict[str, list[float]] = field(default_factory=lambda: {"on": [], "off": []})
    redis_cpu: dict[str, list[float]] = field(default_factory=lambda: {"on": [], "off": []})

    def median(self, kind: str) -> float:
        return statistics.median(self.rates[kind])

    @property
    def ratio(self) -> float:
        return self.median("on") / self.median("off")

    def cpu_median(self, kind: str) -> float:
        return statistics.median(self.cpu[kind])

    @property
    def cpu_ratio(self) -> float:
        """Unlimited / limited CPU per request: the throughput ratio the CPU would allow."""
        return self.cpu_median("off") / self.cpu_median("on")

    @property
    def paired(self) -> list[float]:
        """Per round: limited / unlimited, measured back to back."""
        return [on / off for on, off in zip(self.rates["on"], self.rates["off"], strict=True)]


def measure_throughput(
    stacks: dict[str, Stack], redis_server: RedisServer, paths: tuple[Route, ...], *,
    per_round: int, rounds: int, clients: int,
) -> dict[Route, Throughput]:  # fmt: skip
    """Requests/s of each stack and route, and the servers' CPU per request, in rounds.

    Only one stack is loaded at a time, so redis-server's CPU in a round is that stack's.
    """
    loads = {(kind, route): loads_for(stack, clients, route)
             for kind, stack in stacks.items() for route in paths}  # fmt: skip
    results = {route: Throughput() for route in paths}
    try:
        for (_, route), load in loads.items():  # warm-up: connections, imports, caches
            _, statuses = load.run("GET", route.path, None, 8 * clients)
            assert set(statuses) == {200}, statuses
        assert redis_server.process is not None
        redis_pid = [redis_server.process.pid]
        pids = {kind: [*gunicorn_pids(stack), *redis_pid] for kind, stack in stacks.items()}
        for index in range(rounds):
            for number, route in enumerate(paths):
                # Alternate which stack goes first, so a drift in load hits both alike.
                order = ("on", "off") if (index + number) % 2 == 0 else ("off", "on")
                for kind in order:
                    for client in loads[kind, route].clients:
                        # New connections every round: gunicorn's two workers accept them as
                        # they come, and 8 kept for good might sit mostly on one worker.
                        client.close()
                    before = cpu_seconds(pids[kind]), cpu_seconds(redis_pid)
                    rate, statuses = loads[kind, route].run("GET", route.path, None, per_round)
                    after = cpu_seconds(pids[kind]), cpu_seconds(redis_pid)
                    assert set(statuses) == {200}, statuses
                    result = results[route]
                    result.rates[kind].append(rate)
                    result.cpu[kind].append((after[0] - before[0]) * 1000 / per_round)
                    result.redis_cpu[kind].append((after[1] - before[1]) * 1000 / per_round)
    finally:
        for load in loads.values():
            load.close()
    return results


# -- 2. Redis round trips -----------------------------------------------------------------


MARK = "bench-limits-end"


@dataclass
class RedisCalls:
    """Commands per request: sent by a client (one round trip each), run inside scripts."""

    sent: dict[str, float]
    in_scripts: dict[str, float]

    @property
    def round_trips(self) -> float:
        return sum(self.sent.values())


def redis_calls(stack: Stack, route: Route, redis_url: str, requests: int) -> RedisCalls:
    """Every command Redis receives while ``requests`` requests are sent one at a time.

    Redis's ``MONITOR`` tells a client's commands from those a Lua script runs (``lua``):
    nothing in the request path pipelines, so one client command is one round trip.
    """
    load = loads_for(stack, 1, route)
    client = load.clients[0]
    server, marker = redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)
    marker.ping()  # connected before MONITOR starts: the end mark adds no handshake
    seen: list[dict[str, Any]] = []
    ended = threading.Event()

    def read(monitor: Any) -> None:
        with suppress(redis.RedisError):  # the connection closes if the mark never came
            for command in monitor.listen():
                if command["command"] == f"ECHO {MARK}":
                    ended.set()
                    return
                seen.append(command)

    try:
        assert client.request("GET", route.path)[0] == 200  # the connection is open
        with server.monitor() as monitor:
            reader = threading.Thread(target=read, args=(monitor,), daemon=True)
            reader.start()
            for _ in range(requests):
                status, _ = client.request("GET", route.path)
                assert status == 200, status
            marker.echo(MARK)
            reader.join(timeout=30)
        assert ended.is_set(), "MONITOR never saw the end mark"
    finally:
        load.close()
        server.close()
        marker.close()
    sent: Counter = Counter()
    in_scripts: Counter = Counter()
    for command in seen:
        name = command["command"].split(" ", 1)[0].lower()
        (in_scripts if command["client_type"] == "lua" else sent)[name] += 1
    return RedisCalls(*({name: calls / requests for name, calls in sorted(counter.items())}
                        for counter in (sent, in_scripts)))  # fmt: skip


# -- optional: where the limiter's time goes, in process ---------------------------------


CHECK = "limiter check (Flask-Limiter's before_request)"
HIT = "  of which the hit: EVALSHA (INCRBY + EXPIRE + TTL in Lua)"
MOVED = "  of which caller(): authentication, which the view then skips"
CHECK_REST = "  of which the rest: Flask-Limiter resolving limits and keys, Folio's callables"
HEADERS = "headers (Folio's after_request _rate_limit_headers)"
STATS = "  of which window stats (from the hit's reply, no round trip)"
HEADERS_REST = "  of which the rest: building the headers"
PARTS = (CHECK, HIT, MOVED, HEADERS, STATS)


class Stopwatch:
    """CPU seconds spent in wrapped callables, by name (``time.thread_time``)."""

    def __init__(self) -> None:
        self.spent: Counter = Counter()

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.spent[name] += time.thread_time() - started

        return timed


def profile_in_process(database: Path, redis_url: str, paths: tuple[Route, ...], *,
                       requests: int, rounds: int) -> str:  # fmt: skip
    """CPU per request of both apps in this process (Flask test client, the same Redis and
    database), and where the limited one spends it: its hooks and the limiter's storage
    calls are wrapped with a stopwatch on the app instance (no code is changed).
    """
    import api.limits  # noqa: PLC0415 - only the profile needs the app here
    from api import create_app  # noqa: PLC0415

    logging.disable(logging.INFO)  # the apps' request logs, in this process only
    env = stack_env(database, redis_url, 1)
    apps = {kind: create_app(Settings.from_env(env | SETTINGS[kind])) for kind in SETTINGS}
    clock = Stopwatch()
    limited = apps["on"]
    hooks = limited.before_request_funcs[None]
    hooks[:] = [clock.wrap(CHECK, f) if getattr(f, "__name__", "") == "_check_request_limit"
                else f for f in hooks]  # fmt: skip
    hooks = limited.after_request_funcs[None]
    hooks[:] = [clock.wrap(HEADERS, f) if f is api.limits._rate_limit_headers else f
                for f in hooks]  # fmt: skip
    strategy = limited.extensions["folio_limiter"].limiter
    strategy.hit = clock.wrap(HIT, strategy.hit)  # type: ignore[method-assign]
    strategy.get_window_stats = clock.wrap(STATS, strategy.get_window_stats)  # type: ignore[method-assign]
    original_current_user = api.limits.current_user
    api.limits.current_user = clock.wrap(MOVED, original_current_user)
    wrapped = {
        getattr(f, "__wrapped__", None)
        for f in (*limited.before_request_funcs[None], *limited.after_request_funcs[None])
    }
    assert len(wrapped - {None}) == 2, "the limiter's hooks were not found"  # fmt: skip
    try:
        with apps["off"].test_client() as client:
            login = client.post("/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
            token = login.get_json()["access_token"]
        lines = [f"in process: CPU ms per request, median of {rounds} rounds of {requests}, "
                 "then the limited app's parts (mean over its requests):"]  # fmt: skip
        for route in paths:
            lines += profile_route(apps, route, token, clock, requests=requests, rounds=rounds)
    finally:
        api.limits.current_user = original_current_user
        logging.disable(logging.NOTSET)
    return "\n".join(lines)


def profile_route(apps: dict[str, Any], route: Route, token: str, clock: Stopwatch, *,
                  requests: int, rounds: int) -> list[str]:  # fmt: skip
    headers = {} if route.anonymous else {"Authorization": f"Bearer {token}"}
    clients = {kind: app.test_client() for kind, app in apps.items()}
    for client in clients.values():  # warm-up
        for _ in range(50):
            assert client.get(route.path, headers=headers).status_code == 200
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    clock.spent.clear()
    for index in range(rounds):
        for kind in ("on", "off") if index % 2 == 0 else ("off", "on"):
            started = time.thread_time()
            for _ in range(requests):
                clients[kind].get(route.path, headers=headers)
            cpu[kind].append((time.thread_time() - started) * 1000 / requests)
    on, off = statistics.median(cpu["on"]), statistics.median(cpu["off"])
    lines = [f"   {route.name}: limits on {on:.2f}, off {off:.2f}: +{on - off:.2f} ms "
             f"(off / on = {off / on:.2f})"]  # fmt: skip
    spent = {name: clock.spent[name] * 1000 / (requests * rounds) for name in PARTS}
    spent[CHECK_REST] = spent[CHECK] - spent[HIT] - spent[MOVED]
    spent[HEADERS_REST] = spent[HEADERS] - spent[STATS]
    order = (CHECK, HIT, MOVED, CHECK_REST, HEADERS, STATS, HEADERS_REST)
    return lines + [f"     {spent[name]:.3f} ms  {name}" for name in order]


# -- the report ---------------------------------------------------------------------------


def report(results: dict[Route, Throughput], calls: dict[tuple[str, Route], RedisCalls],
           args: argparse.Namespace) -> str:  # fmt: skip
    lines = [
        "| route | limited req/s | unlimited req/s | ratio | goal | server CPU ms per request, "
        "limited / unlimited (ratio) | Redis round trips per request, limited / unlimited |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for route, result in results.items():
        on, off = calls["on", route], calls["off", route]
        lines.append(
            f"| {route.name} | {result.median('on'):.0f} | {result.median('off'):.0f} | "
            f"{result.ratio:.2f} | >= {GOAL} {verdict(result.ratio >= GOAL)} | "
            f"{result.cpu_median('on'):.2f} / {result.cpu_median('off'):.2f} "
            f"({result.cpu_ratio:.2f}) | {on.round_trips:.2f} / {off.round_trips:.2f} |"
        )
    lines += [
        "",
        f"1. {args.rounds} rounds of {args.requests} requests per route and stack, "
        f"{args.clients} keep-alive clients (http.client), gunicorn 2 workers x "
        f"{args.web_threads} threads each, the stacks' order alternating:",
    ]
    for route, result in results.items():
        paired = result.paired
        lines += [
            f"   {route.name}:",
            "     limits on  req/s: " + ", ".join(f"{rate:.0f}" for rate in result.rates["on"]),
            "     limits off req/s: " + ", ".join(f"{rate:.0f}" for rate in result.rates["off"]),
            "     per round on/off: " + ", ".join(f"{ratio:.2f}" for ratio in paired)
            + f" (median {statistics.median(paired):.2f})",
            "     server CPU ms per request, on:  "
            + ", ".join(f"{ms:.2f}" for ms in result.cpu["on"]),
            "     server CPU ms per request, off: "
            + ", ".join(f"{ms:.2f}" for ms in result.cpu["off"]),
            "     of which redis-server, mean of all rounds (10 ms ticks): "
            + f"on {statistics.mean(result.redis_cpu['on']):.3f}, "
            + f"off {statistics.mean(result.redis_cpu['off']):.3f}",
        ]  # fmt: skip
    lines.append(
        f"2. Redis commands per request ({args.redis_requests} requests, one at a time, "
        "MONITOR): sent by the app, one round trip each [run inside a Lua script]:"
    )

    def per_request(counts: dict[str, float]) -> str:
        return ", ".join(f"{name} {value:.2f}" for name, value in counts.items())

    for (kind, route), counted in calls.items():
        text = per_request(counted.sent) or "none"
        if counted.in_scripts:
            text += f" [{per_request(counted.in_scripts)}]"
        lines.append(f"   limits {kind:<3} {route.name}: {text}")
    return "\n".join(lines)


def working_tree() -> str:
    """Whether the code measured is a commit: uncommitted changes to what the stacks run."""
    argv = ["git", "status", "--porcelain", "--", "api", "shared", "worker"]
    status = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    if status.returncode != 0:
        return "not a git checkout"
    changed = [line[3:] for line in status.stdout.splitlines()]
    return f"uncommitted changes in {', '.join(changed)}" if changed else "clean tree"


# -- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="(1) requests per round")
    parser.add_argument("--rounds", type=int, default=10, help="(1) rounds of each")
    parser.add_argument("--clients", type=int, default=8, help="(1) keep-alive clients")
    parser.add_argument("--web-threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--redis-requests", type=int, default=200,
                        help="(2) requests counted in Redis")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="then where the limiter's CPU goes, in process")  # fmt: skip
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"start: {machine()}; {working_tree()}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="folio-bench-limits-"))
    redis_server = RedisServer()
    stacks: dict[str, Stack] = {}
    try:
        redis_server.start()
        database, book_id = build_database(folder, redis_server.url)
        paths = routes(book_id)
        for kind in SETTINGS:
            stacks[kind] = start_stack(database, redis_server.url, folder, kind,
                                       args.web_threads)  # fmt: skip
        print(f"stacks up ({time.perf_counter() - started:.0f} s)", flush=True)
        results = measure_throughput(stacks, redis_server, paths, per_round=args.requests,
                                     rounds=args.rounds, clients=args.clients)  # fmt: skip
        print(f"1. throughput measured ({time.perf_counter() - started:.0f} s)", flush=True)
        calls = {(kind, route): redis_calls(stack, route, redis_server.url, args.redis_requests)
                 for route in paths for kind, stack in stacks.items()}  # fmt: skip
        print(f"2. Redis commands counted ({time.perf_counter() - started:.0f} s)\n", flush=True)
        print(report(results, calls, args))
        for stack in stacks.values():
            stack.stop()
        if args.profile:
            print(
                "\n" + profile_in_process(database, redis_server.url, paths, requests=300, rounds=6)
            )
    finally:
        for stack in stacks.values():
            stack.stop()
        redis_server.remove()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nend: {machine()}; total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

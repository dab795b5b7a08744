"""Does a page cost the same at any depth? Cursor (keyset) mode against page (OFFSET) mode.

``python -m bench.cursor_depth`` builds, once, a SQLite catalog of ``--rows`` books under
``var/bench/`` (reused by later runs: seeding a million rows takes minutes), then times
``GET /api/books`` through the Flask test client (in-process, no network) at each depth,
for each mode, and prints the median of each and its ratio to depth 0 of the same mode.
The goal for cursors is a ratio under 1.5 at every depth; page mode is there to show what
OFFSET costs. Redis is not used by public reads: the settings point at a dead port, and
rate limiting is off, so nothing but the query and the serialization is measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sqlite3
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select, text

from api import create_app
from shared.config import PROJECT_ROOT, Settings
from shared.db import db
from shared.models import Book
from shared.services import books, seed

BENCH_DIR = PROJECT_ROOT / "var" / "bench"
DEAD_REDIS = "redis://127.0.0.1:9/0"  # discard port: nothing listens, nothing is sent
DEPTHS = (0, 10_000, 900_000)
PER_PAGE = 20
SEED_CHUNK = 100_000  # rows per transaction while seeding, so the WAL stays small
GOAL = 1.5


@dataclass(frozen=True)
class Case:
    mode: str  # "cursor" or "page"
    sort: str
    depth: int


@dataclass(frozen=True)
class Timing:
    case: Case
    median_ms: float
    runs: int


def build_app(rows: int) -> Flask:
    """The app on the benchmark database of ``rows`` books, seeded on first use."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"books-{rows}.db"
    marker = path.with_suffix(".ready")  # written only after a complete build
    build = {"rows": rows, "schema": schema_fingerprint()}
    if not marker.exists() or json.loads(marker.read_text()) != build:
        marker.unlink(missing_ok=True)
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
    settings = Settings(
        env="testing",
        database_url=f"sqlite:///{path}",
        redis_url=DEAD_REDIS,
        ratelimit_enabled=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    if not marker.exists():
        _seed(app, rows)
        marker.write_text(json.dumps(build))
    return app


def schema_fingerprint() -> str:
    """Changes whenever a migration or the seed changes: the database is then rebuilt."""
    digest = hashlib.sha256()
    for source in sorted((PROJECT_ROOT / "migrations" / "versions").glob("*.py")):
        digest.update(source.read_bytes())
    digest.update((PROJECT_ROOT / "shared" / "services" / "seed.py").read_bytes())
    return digest.hexdigest()[:16]


def _seed(app: Flask, rows: int) -> None:
    started = time.perf_counter()
    with app.app_context():
        upgrade()
        done = 0
        while done < rows:
            done += seed.seed_books(db.session(), min(SEED_CHUNK, rows - done))
            db.session.commit()
            elapsed = time.perf_counter() - started
            print(f"  seeded {done:>9,} / {rows:,} books ({elapsed:.0f} s)", file=sys.stderr)
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def cursor_key(app: Flask, sort: str, depth: int) -> list[Any]:
    """The sort key of the last row before ``depth`` (what a cursor to ``depth`` holds)."""
    with app.app_context():
        # Page mode with one row per page: row ``depth - 1`` in the listing's own order.
        page = books.list_books(
            db.session(), filters=books.BookFilters(), sort=sort, page=depth, per_page=1
        )
        assert page.items, f"no book at depth {depth}"
        return books.sort_key(page.items[0], sort)


def url_for_case(app: Flask, case: Case) -> str:
    query: dict[str, Any] = {"limit": PER_PAGE}
    if case.mode == "page":
        query = {"sort": case.sort, "page": case.depth // PER_PAGE + 1, "per_page": PER_PAGE}
        return f"/api/books?{urlencode(query)}"
    if case.depth == 0:
        query["sort"] = case.sort
    else:
        key = cursor_key(app, case.sort, case.depth)
        query["cursor"] = app.extensions["folio"].cursors.encode(
            sort=case.sort, filters={}, key=key
        )
    return f"/api/books?{urlencode(query)}"


def measure(app: Flask, all_cases: list[Case], *, repeat: int, budget: float) -> list[Timing]:
    """Median wall time per case over ``repeat`` rounds (fewer if ``budget`` seconds run out).

    Each round requests every case once, so that a burst of load from another process
    slows all cases alike instead of skewing the one that happened to be running.
    """
    client = app.test_client()
    urls = [url_for_case(app, case) for case in all_cases]
    for case, url in zip(all_cases, urls, strict=True):  # warm-up, and a sanity check
        response = client.get(url)
        assert response.status_code == 200, (case, response.get_data(as_text=True)[:300])
        assert response.get_json()["items"], f"{case} returned no items"
    samples: list[list[float]] = [[] for _ in all_cases]
    deadline = time.perf_counter() + budget
    for _ in range(repeat):
        for url, series in zip(urls, samples, strict=True):
            started = time.perf_counter()
            response = client.get(url)
            series.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        if time.perf_counter() > deadline:
            break
    return [
        Timing(case, statistics.median(series), len(series))
        for case, series in zip(all_cases, samples, strict=True)
    ]


def report(timings: list[Timing], rows: int) -> str:
    """A Markdown table: median per depth and its ratio to depth 0 of the same series."""
    baselines = {(t.case.mode, t.case.sort): t.median_ms for t in timings if t.case.depth == 0}
    lines = [
        f"rows: {rows:,}; per page: {PER_PAGE}; Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}",
        "",
        "| mode | sort | depth | median ms | runs | ratio to depth 0 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for t in timings:
        ratio = t.median_ms / baselines[(t.case.mode, t.case.sort)]
        flag = " (goal < 1.5 missed)" if t.case.mode == "cursor" and ratio >= GOAL else ""
        lines.append(
            f"| {t.case.mode} | {t.case.sort} | {t.case.depth:,} | {t.median_ms:.2f} "
            f"| {t.runs} | {ratio:.2f}{flag} |"
        )
    worst = max(
        (t.median_ms / baselines[(t.case.mode, t.case.sort)] for t in timings
         if t.case.mode == "cursor"),
        default=0.0,
    )  # fmt: skip
    lines += ["", f"worst cursor ratio deep/shallow: {worst:.2f} (goal < {GOAL})"]
    return "\n".join(lines)


def cases(depths: tuple[int, ...], rows: int) -> list[Case]:
    usable = [d for d in depths if d < rows]
    series = [("cursor", "id"), ("page", "id"), ("cursor", "-created_at"), ("cursor", "title")]
    return [Case(mode, sort, depth) for mode, sort in series for depth in usable]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=31, help="rounds of timed requests")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of timing at most")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    app = build_app(args.rows)
    with app.app_context():
        present = db.session.scalar(select(func.count(Book.id)))
    print(f"catalog ready: {present:,} books ({time.perf_counter() - started:.0f} s)")
    timings = measure(app, cases(DEPTHS, args.rows), repeat=args.repeat, budget=args.budget)
    print(report(timings, args.rows))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    with app.app_context():
        db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

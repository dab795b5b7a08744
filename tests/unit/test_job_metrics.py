"""Job durations kept in Redis read back as a Prometheus histogram."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from shared.redis_client import make_redis
from shared.services.job_metrics import DURATIONS_KEY, bucket_for, read_durations, record_duration
from tests.support.servers import RedisServer


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = make_redis(redis_server.url)
    client.delete(DURATIONS_KEY)
    yield client
    client.delete(DURATIONS_KEY)
    client.close()


def test_a_duration_falls_in_the_smallest_bucket_it_fits_under() -> None:
    assert bucket_for(0.0) == 0.05
    assert bucket_for(0.05) == 0.05
    assert bucket_for(0.051) == 0.1
    assert bucket_for(1800.0) == 1800.0
    assert bucket_for(1e9) == float("inf")


def test_durations_read_back_as_cumulative_buckets_with_count_and_sum(store: redis.Redis) -> None:
    for seconds in (0.2, 0.3, 7.0):
        record_duration(store, "books.report", "succeeded", seconds)
    record_duration(store, "books.import", "failed", 4000.0)
    record_duration(store, "books.import", "failed", -1.0)  # a clock step: counted as 0 s
    series = read_durations(store)
    assert set(series) == {("books.report", "succeeded"), ("books.import", "failed")}
    report = series[("books.report", "succeeded")]
    buckets = dict(report.buckets)
    assert (buckets["0.1"], buckets["0.25"], buckets["0.5"], buckets["5.0"]) == (0, 1, 2, 2)
    assert (buckets["10.0"], buckets["+Inf"]) == (3, 3)
    assert report.count == 3
    assert report.sum == pytest.approx(7.5)
    failed = dict(series[("books.import", "failed")].buckets)
    assert (failed["0.05"], failed["1800.0"], failed["+Inf"]) == (1, 1, 2)


def test_a_bucket_of_an_older_release_counts_in_every_bucket_above_it(store: redis.Redis) -> None:
    store.hset(DURATIONS_KEY, mapping={"books.report|succeeded|3.0": 2,
                                       "books.report|succeeded|sum": 5.0})  # fmt: skip
    series = read_durations(store)[("books.report", "succeeded")]
    buckets = dict(series.buckets)
    assert (buckets["2.5"], buckets["5.0"], buckets["+Inf"], series.count) == (0, 2, 2, 2)


def test_recording_while_redis_is_down_loses_only_the_observation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = make_redis("redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING):
        record_duration(dead, "books.report", "succeeded", 1.0)
    assert "job duration not recorded" in caplog.text
    with pytest.raises(redis.RedisError):
        read_durations(dead)

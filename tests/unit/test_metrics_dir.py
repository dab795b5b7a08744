"""gunicorn's metrics directory: the operator's, or a private one per master."""

from __future__ import annotations

from pathlib import Path

from shared import metrics_dir
from shared.metrics_dir import ENV, OWNED


def test_without_a_directory_each_master_makes_and_removes_its_own() -> None:
    first: dict[str, str] = {}
    second: dict[str, str] = {}
    one, two = metrics_dir.prepare(first), metrics_dir.prepare(second)
    assert one != two
    assert one.is_dir()
    assert first[ENV] == first[OWNED] == str(one)
    assert metrics_dir.prepare(first) == one  # a config reload keeps it
    metrics_dir.remove_owned(first)
    metrics_dir.remove_owned(second)
    assert not one.exists()
    assert not two.exists()


def test_the_operators_directory_is_emptied_of_metrics_and_kept(tmp_path: Path) -> None:
    given = tmp_path / "metrics"
    environ = {ENV: str(given)}
    path = metrics_dir.prepare(environ)
    assert path == given
    assert path.is_dir()  # made when missing
    (path / "counter_123.db").write_bytes(b"old")
    (path / "notes.txt").write_text("not ours")
    metrics_dir.empty(path)
    assert [p.name for p in path.iterdir()] == ["notes.txt"]
    metrics_dir.remove_owned(environ)
    assert path.is_dir()
    assert OWNED not in environ

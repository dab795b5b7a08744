"""The directory where gunicorn's worker processes keep their metrics.

In multiprocess mode prometheus-client writes each worker process's counters to files
in ``PROMETHEUS_MULTIPROC_DIR``, and ``GET /metrics`` adds up every file there, so a
scrape answered by any worker shows the totals of all of them (dead ones included:
counters must not drop when gunicorn replaces a worker). prometheus-client picks its
mode when it is imported, so ``gunicorn.conf.py`` calls ``prepare`` before the app is
loaded; this module imports nothing but the standard library for the same reason.

- ``PROMETHEUS_MULTIPROC_DIR`` set: that directory, emptied when the master starts (give
  each gunicorn on a host its own).
- Not set: a private directory per master, made now and removed when it exits, so that
  two gunicorns on one host (an operator's, or the tests') never mix or wipe each
  other's numbers. A master that is SIGKILLed leaves it in the temp folder.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
OWNED = "FOLIO_OWNED_METRICS_DIR"  # the private directory this master made (kept on reload)


def prepare(environ: MutableMapping[str, str]) -> Path:
    """The directory for this master's workers, now in ``environ`` for them to inherit."""
    if not environ.get(ENV):
        environ[ENV] = environ[OWNED] = tempfile.mkdtemp(prefix="folio-metrics-")
    path = Path(environ[ENV])
    path.mkdir(parents=True, exist_ok=True)
    return path


def empty(path: Path) -> None:
    """Forget the numbers of a previous run (gunicorn's ``on_starting``)."""
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def worker_exited(path: Path, pid: int) -> None:
    """Drop a dead worker's live gauges (``child_exit``); its counters keep counting."""
    from prometheus_client import multiprocess  # noqa: PLC0415 - only once ``ENV`` is set

    multiprocess.mark_process_dead(pid, str(path))


def remove_owned(environ: MutableMapping[str, str]) -> None:
    """Remove the private directory at the master's exit (an operator's one stays)."""
    owned = environ.get(OWNED)
    if owned and owned == environ.get(ENV):
        shutil.rmtree(owned, ignore_errors=True)

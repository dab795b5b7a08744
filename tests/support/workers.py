"""Real Celery processes for tests: ``celery worker`` and ``celery beat`` from ``worker.main``.

Each runs in its own session (process group) with the settings given as environment
variables, logs to a file, and is stopped by its PID: gracefully (SIGTERM, a warm
shutdown) or by SIGKILL to the whole group, which is what a crashed machine looks like.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared.config import PROJECT_ROOT
from shared.job_types import QUEUES


class CeleryProcess:
    """One ``celery worker`` or ``celery beat`` process."""

    def __init__(self, role: str, env: dict[str, str], *, pool: str = "threads") -> None:
        self.role = role
        self.env = env
        self.pool = pool
        self.dir = Path(tempfile.mkdtemp(prefix=f"folio-{role}-"))
        self.log = self.dir / f"{role}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_offset = 0

    def argv(self) -> list[str]:
        base = [sys.executable, "-m", "celery", "--app", "worker.main", self.role,
                "--loglevel", "INFO"]  # fmt: skip
        if self.role == "beat":
            return [*base, "--schedule", str(self.dir / "beat-schedule")]
        self.starts += 1
        return [*base, "--queues", ",".join(QUEUES), "--pool", self.pool, "--concurrency", "2",
                "--hostname", f"test{self.starts}-{os.getpid()}@%h",
                "--without-mingle", "--without-gossip"]  # fmt: skip

    def start(self) -> None:
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        env = {**os.environ, **self.env}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv(), cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        if self.role == "worker":
            self.wait_for_log("ready.")

    def wait_for_log(self, text: str, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output(tail=None):
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"celery {self.role} did not log {text!r}:\n{self.output()}")

    def output(self, *, tail: int | None = 4000) -> str:
        """What this run of the process logged (its last ``tail`` characters)."""
        with self.log.open("rb") as log:
            log.seek(self.log_offset)
            text = log.read().decode(errors="replace")
        return text if tail is None else text[-tail:]

    def stop(self) -> None:
        """Warm shutdown: SIGTERM, then SIGKILL to the group if it lingers."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker and its pool die mid-task."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

"""The Procfile's own lines run as an operator would: gunicorn in a process group of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.config import PROJECT_ROOT
from tests.support.servers import free_port, wait_for_port

PROCFILE = dict(
    line.split(": ", 1) for line in (PROJECT_ROOT / "Procfile").read_text().splitlines() if line
)


def procfile_env(settings: dict[str, str], *, port: int | None = None) -> dict[str, str]:
    """This environment plus ``settings``, with the venv's tools first on PATH."""
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    extra = {"PORT": str(port)} if port is not None else {}
    return os.environ | settings | extra | {"PATH": path}


def run_line(role: str, settings: dict[str, str]) -> None:
    """Run a one-shot Procfile line (``release``) to completion."""
    subprocess.run(["bash", "-c", PROCFILE[role]], env=procfile_env(settings), cwd=PROJECT_ROOT,
                   check=True, capture_output=True, timeout=120)  # fmt: skip


@contextmanager
def procfile_web(settings: dict[str, str], log: Path) -> Iterator[str]:
    """The ``web`` line on a free port (its base URL); SIGTERM to its group afterwards."""
    port = free_port()
    with log.open("w") as out:
        web = subprocess.Popen(
            ["bash", "-c", f"exec {PROCFILE['web']}"], env=procfile_env(settings, port=port),
            cwd=PROJECT_ROOT, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)

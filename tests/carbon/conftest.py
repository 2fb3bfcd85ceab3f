"""Fixtures for the carbon tests: isolated caches and a loopback HTTP server that plays
the UK Carbon Intensity and Electricity Maps APIs."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from carbon import conf
from carbon.selectors import intensity_cache_clear


@pytest.fixture(autouse=True)
def carbon_isolation(settings):
    """Every test gets its own cache-key prefix, an empty in-process cache, quick HTTP
    timeouts and the default provider chains (config/settings_test.py sets CARBON_OFFLINE,
    which drops the live providers; these tests exercise them against 127.0.0.1)."""
    settings.CARBON_PROVIDERS = conf.DEFAULT_PROVIDERS
    settings.CARBON_CACHE_KEY_PREFIX = f"carbon-test-{uuid.uuid4().hex[:12]}"
    settings.CARBON_HTTP_TIMEOUT_SECONDS = 0.3
    settings.CARBON_HTTP_RETRIES = 1
    settings.CARBON_HTTP_BACKOFF_SECONDS = 0
    settings.ELECTRICITYMAPS_TOKEN = ""
    # Nothing in the suite may reach the internet: unrouted bases fail fast.
    settings.UK_CARBON_INTENSITY_API_BASE = "http://127.0.0.1:9"
    settings.ELECTRICITYMAPS_API_BASE = "http://127.0.0.1:9"
    intensity_cache_clear()
    yield
    intensity_cache_clear()


@dataclass
class Reply:
    status: int = 200
    body: object = None  # JSON-encoded unless `raw` is given
    raw: bytes | None = None
    delay_s: float = 0.0


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeApi:
    """Routes: path -> list of replies, served in order; the last one repeats."""

    base_url: str = ""
    routes: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    def reply(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def json(self, path: str, body, status: int = 200) -> None:
        self.reply(path, Reply(status=status, body=body))

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


@pytest.fixture
def fake_api():
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            api.requests.append(Seen(parts.path, parse_qs(parts.query), headers))
            queue = api.routes.get(parts.path)
            reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else Reply(404, {"error": "no route"})
            if reply.delay_s:
                time.sleep(reply.delay_s)
            payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def uk_api(fake_api, settings):
    settings.UK_CARBON_INTENSITY_API_BASE = fake_api.base_url
    return fake_api


@pytest.fixture
def em_api(fake_api, settings):
    settings.ELECTRICITYMAPS_API_BASE = fake_api.base_url
    settings.ELECTRICITYMAPS_TOKEN = "test-token-123"
    return fake_api

"""Requests straight into the production WSGI application, in this process.

Django's test client runs the full middleware stack; a server runs `config.wsgi.application`,
which serves the predict route through the fast path (config/fastpath.py). Benchmarks
that charge "the whole request" call the latter, as gunicorn does, minus the socket.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class WsgiResponse:
    status_code: int
    content: bytes

    def json(self):
        return json.loads(self.content)


class WsgiClient:
    def __init__(self, *, api_key: str, host: str = "127.0.0.1", extra: dict[str, str] | None = None):
        from config.wsgi import application

        self.application = application
        self.base = {
            "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": host,
            "SERVER_PORT": "80", "HTTP_HOST": host, "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            # As the TLS-terminating proxy in front of production sends it.
            "HTTP_X_FORWARDED_PROTO": "https", "CONTENT_TYPE": "application/json",
            "HTTP_AUTHORIZATION": f"Bearer {api_key}", "wsgi.errors": sys.stderr, "wsgi.multithread": False,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0), **(extra or {}),
        }

    def post(self, path: str, body: bytes, **headers: str) -> WsgiResponse:
        environ = {**self.base, **headers, "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)),
                   "wsgi.input": io.BytesIO(body)}
        status = []
        response = self.application(environ, lambda s, h: status.append(int(s.split()[0])))
        try:
            content = b"".join(response)
        finally:
            if hasattr(response, "close"):
                response.close()
        return WsgiResponse(status[0], content)

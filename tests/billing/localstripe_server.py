"""localstripe for the tests: its aiohttp app on 127.0.0.1 only, on a free port.

localstripe's own CLI binds every interface on a fixed port; this imports its app and
serves it on the loopback address. It prints the port on the first line of stdout.

Two test-side additions, both at the HTTP layer, neither changing what localstripe
answers for an API call:
* Idempotency-Key replay, as Stripe documents it: a POST repeating a key gets the first
  response again (a different body with the same key is a 400 idempotency_error).
  localstripe ignores the header; without this a resumed run could not rely on keys.
* A request log (GET/DELETE /_test/requests): method, path and Idempotency-Key of each
  POST, so tests can assert every write carried one of our keys.
Its store is never written to /tmp/localstripe.pickle (each run starts empty).

    python -m tests.billing.localstripe_server
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None  # no shared pickle in /tmp, no O(store) write per call

_responses: dict[str, tuple[bytes, int, bytes]] = {}  # key -> (request fingerprint, status, body)
_log: list[dict] = []


@web.middleware
async def idempotency(request: web.Request, handler):
    if request.method != "POST" or not request.path.startswith("/v1/"):
        return await handler(request)
    body = await request.read()  # aiohttp caches it for the handler
    key = request.headers.get("Idempotency-Key")
    _log.append({"method": request.method, "path": request.path, "idempotency_key": key})
    if not key:
        return await handler(request)
    fingerprint = request.path.encode() + b"\n" + body
    if key in _responses:
        seen, status, cached = _responses[key]
        if seen != fingerprint:
            return web.json_response({"error": {"type": "idempotency_error", "message": (
                f"Keys for idempotent requests can only be used with the same parameters they were first used with. "
                f"Try using a key other than '{key}' if you meant to execute a different request.")}}, status=400)
        return web.Response(body=cached, status=status, content_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
    response = await handler(request)
    if response.status < 500 and response.status != 409 and isinstance(response, web.Response):
        _responses[key] = (fingerprint, response.status, response.body)
    return response


async def requests_log(request: web.Request):
    if request.method == "DELETE":
        _log.clear()
        return web.Response()
    return web.Response(text=json.dumps(_log), content_type="application/json")


async def main() -> None:
    app = server.app
    app.middlewares.insert(0, idempotency)
    app.router.add_get("/_test/requests", requests_log)
    app.router.add_delete("/_test/requests", requests_log)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())

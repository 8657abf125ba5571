# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A fault-injecting HTTP proxy in front of moto: EC2 as it behaves on a bad day.

Real EC2 throttles busy accounts (HTTP 503 ``RequestLimitExceeded``) and now
and then fails with a 5xx; moto never does. :class:`FaultProxy` listens on
127.0.0.1, forwards requests to a loopback upstream (the moto server) and
answers a seeded, reproducible fraction of the EC2 API calls with an error
instead::

    with FaultProxy(moto.url, fail_ratio=0.3, seed=7) as proxy:
        client = make_client("us-west-2", endpoint_url=proxy.url, ...)
        ...
        proxy.forwarded, proxy.failed          # Counters by action name
        proxy.fail_next(2, "throttle")         # the next two EC2 calls fail

Fault kinds (``faults``, chosen at random among those given):

- ``"throttle"``: 503 with EC2's XML error body, code ``RequestLimitExceeded``.
- ``"500"``: 500 ``InternalError``.
- ``"unavailable"``: 503 ``Unavailable``.
- ``"reset"``: the connection is closed without an answer.

Only EC2 query-API calls (those with an ``Action``) are ever failed, and only
the ones in ``actions`` when given; moto's own ``/moto-api/`` always passes.
A failed call never reaches moto, so nothing happens twice behind the
client's back. Context manager; ``stop()`` closes the listener and joins its
thread, also on failure.
"""

from __future__ import annotations

import collections
import http.client
import ipaddress
import random
import threading
import typing as t
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("throttle", "500", "unavailable", "reset")
_ERRORS = {
    "throttle": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "500": (500, "InternalError", "An internal error has occurred."),
    "unavailable": (503, "Unavailable", "The server is overloaded and can't handle the request."),
}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}


def ec2_error_body(code: str, message: str) -> bytes:
    """The XML body EC2 sends with an error."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode("utf-8")


class FaultProxy:
    """See the module doc."""

    def __init__(
        self,
        upstream_url: str,
        fail_ratio: float = 0.3,
        seed: int | None = None,
        faults: t.Sequence[str] = ("throttle",),
        actions: t.Iterable[str] | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream_url!r}")
        if ipaddress.ip_address(parsed.hostname) not in ipaddress.ip_network("127.0.0.0/8"):
            raise ValueError(f"upstream {parsed.hostname} is not on loopback")
        unknown = set(faults) - set(FAULTS)
        if unknown or not faults:
            raise ValueError(f"unknown faults {sorted(unknown)}; choose among {FAULTS}")
        self.upstream = (parsed.hostname, parsed.port or 80)
        self.fail_ratio = fail_ratio
        self.faults = tuple(faults)
        self.actions = None if actions is None else frozenset(actions)
        #: EC2 calls passed to moto / answered with a fault, by action.
        self.forwarded: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self._random = random.Random(seed)
        self._forced: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("fault proxy not started")
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def fail_next(self, count: int = 1, fault: str = "throttle") -> None:
        """Fail the next ``count`` eligible calls with ``fault``, whatever the ratio."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._forced.extend([fault] * count)

    def _decide(self, action: str | None) -> str | None:
        if action is None or (self.actions is not None and action not in self.actions):
            return None
        with self._lock:
            if self._forced:
                fault = self._forced.popleft()
            elif self._random.random() < self.fail_ratio:
                fault = self._random.choice(self.faults)
            else:
                fault = None
            (self.failed if fault else self.forwarded)[action] += 1
            return fault

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: t.Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._decide(_action(self.path, body, self.headers.get("Content-Type", "")))
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault is not None:
                    status, code, message = _ERRORS[fault]
                    self._reply(status, [("Content-Type", "text/xml;charset=UTF-8")], ec2_error_body(code, message))
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    answer = conn.getresponse()
                    data = answer.read()
                    kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP]
                    self._reply(answer.status, kept, data)
                finally:
                    conn.close()

            def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="fault proxy"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"forwarded": sum(self.forwarded.values()), "failed": sum(self.failed.values())}


def _action(path: str, body: bytes, content_type: str) -> str | None:
    """The query-API action of a request (EC2 posts it form-encoded), or None."""
    if path.startswith("/moto-api"):
        return None
    query = urllib.parse.urlsplit(path).query
    params = urllib.parse.parse_qs(query)
    if not params.get("Action") and body and "x-www-form-urlencoded" in content_type:
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    values = params.get("Action")
    return values[0] if values else None
